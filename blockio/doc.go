// Package blockio owns pc1-tiered's files and their on-disk layout: the
// sector directory and the names in it (SectorDir), layer files written in
// the background and committed atomically (LayerFile), their progress logs
// and resume (progress.go), the sector's metadata (SectorMeta), parent
// caches in rust-fil-proofs' name and format, the parent stream the
// labeler reads, and atomic writes of reports and outputs.
//
// Other packages open files only for what is theirs: the tier maps layer
// files read-only to read spilled labels back and creates the device
// probe's scratch file; sealer reads staged data and writes tree_d through
// WriteFileAtomic / AtomicFile; measure reads /proc. Everything that
// writes a file PC2 or a later run trusts goes through here.
//
// # Invariants
//
//   - Output files appear only complete: they are written under a
//     temporary name, fsynced, renamed into place and the directory synced,
//     so a crash or a full disk never leaves a truncated file under a name
//     PC2 or a later run would trust.
//   - Space is reserved with fallocate before writing, so a full disk is an
//     error at creation, not a SIGBUS or a short write half-way through.
//   - Errors name the file (and the node or layer) they concern.
//   - Parent caches use rust-fil-proofs' name and format, in its directory,
//     so each program reuses the other's caches; a cache whose size or
//     digest is wrong is refused or, on request, regenerated.
//   - One seal at a time per sector directory (lock.go), and parent caches
//     locked as rust-fil-proofs locks them (parentlock.go): generated under
//     an exclusive flock, read under a shared one.
//   - A layer gets its final name and its checksum on record only if the
//     file is the one this process wrote, with the bytes it wrote
//     (commitcheck.go).
//   - Every write, sync, reservation and rename of an output goes through
//     one fault seam (faultfs.go), so tests can fail any of them.
package blockio
