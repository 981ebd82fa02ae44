// Package labeler owns hashing and the walk over layers: it runs PC1
// labeling for a batch of sectors through one shared block pool, one job
// (goroutine) per sector or lockstep group, at most N hashing at once, each
// walking every layer block by block. Files: config.go (Config, Options,
// validation, the pool and spill setting), run.go (Run and the job's life),
// job.go (lanes, the layer loop), placer.go (pool placement), spill.go
// (spill placement through the tier), lockstep.go, hash.go and the kernels,
// resume.go, verify.go.
//
// With lockstep groups (Config.Lockstep, lockstep.go), one job labels k
// sectors of the batch together: one walk of the parent cache serves all
// of them, and each node's k labels are hashed at once by a k-stream
// SHA-NI kernel, which keeps a core's SHA unit busier than one sector's
// chain of dependent compressions can. To the pool a group is one job on
// a sector k times as large (blocks of k x BlockSize, one part per
// sector), so everything said below of a job holds for a group; each
// sector still has its own layer files, metadata and resume point.
//
// A job acquires the current layer's blocks from the pool as it advances,
// labels each block's nodes (base parents come from the current layer,
// which is always behind the node; expander parents from the previous
// layer, which the job holds whole), hands the finished block to a
// background writer, and at the end of the layer syncs the layer file and
// releases the previous layer's blocks: the current layer becomes the next
// one's expander layer. Jobs start staggered, job i once job i-1 has done
// 1/N of its first layer, so that at any moment they are at different
// points of their layers and their peaks do not coincide: that is what lets
// a pool smaller than 2 x N x S serve them without waits.
//
// # Invariants
//
//   - Output is byte-identical to sdr.ReferenceLabels: tests compare every
//     layer file with it at the smallest, default and largest pool sizes.
//   - A job holds at most two layers' blocks and returns all of them when it
//     ends, fails or is cancelled (pool.Job.Leave); a job waiting for a core
//     slot holds none.
//   - Layer files appear under their final names only complete, with their
//     checksum recorded first in the sector's metadata (pc1-tiered.json). A
//     failed, cancelled or killed batch leaves partial files (.partial) and
//     their progress logs, which never pass for layers.
//   - Run holds every sector directory's lock (blockio.LockSectors; or the
//     caller's, Config.Locks) from before it reads a sector's metadata
//     until it returns: a second batch on a sector stops, or waits, before
//     touching it (lock.go).
//   - Running the same batch again resumes each sector: committed layers
//     whose files still have their recorded checksum are kept, the first
//     uncommitted layer continues after the durable prefix of its partial
//     file (blockio.ResumeLayerFile), and the layer before it is read back
//     as the expander layer. A sector whose directory disagrees with the
//     batch (another replica id, graph or layer count, an altered or
//     missing layer) is labeled again from scratch, with a warning.
//   - With a DRAM budget below the pool minimum, jobs spill: the labeler
//     tells the tier (tier.JobSpill, through spillPlacer) when a block is
//     placed, written, passed and committed, and the tier decides where
//     its bytes live; cold labels are read back from the layer files.
//   - A lockstep group holds sectors that resume at the same layer, and
//     starts that layer at the shortest durable prefix among them; groups
//     never spill (single-sector jobs do).
//   - The hashing loops (labelRange, and groupLabeler.labelRange for
//     groups) allocate nothing and make no interface calls; parents are
//     read ahead from the parent cache by blockio.
package labeler
