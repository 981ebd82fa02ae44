// Package blockio owns every byte pc1-tiered reads from or writes to disk:
// layer files, parent caches, reports (and, with the spill tier, spill
// files). Nothing above it opens a file.
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
