// Package labeler owns hashing and the walk over layers: it runs PC1
// labeling for a batch of sectors through one shared block pool, one job
// (goroutine) per sector or batch, at most N hashing at once, each walking
// every layer block by block. Files: config.go (Config, Options,
// validation, the pool and spill setting), run.go (Run and the job's life),
// job.go (lanes, the layer loop), placer.go (pool placement), spill.go
// (spill placement through the tier), batch.go (the batch's hashing on
// several cores), lockstep.go (choosing the batch size, the packer),
// hash.go and the kernels, affinity.go (keeping hashing threads off the
// CPUs that take the storage interrupts when there is room), resume.go,
// verify.go.
//
// One sector's nodes form a chain (each node's first parent is the node
// before), so its kernel (sha256HalvesNext) overlaps each node with the
// next node's header block, the one part of a node that depends on no
// label.
//
// With batches (Options.Batch, batch.go), one job labels k sectors
// together: one walk of the parent cache and one set of parent addresses
// per node serve all of them, their labels are node-major (a parent's k
// labels are one record), and each node's k labels are hashed by k-stream
// SHA-NI kernels over subgroups of at most 4, which keeps a core's SHA unit
// busier than one sector's chain of dependent compressions can; a batch of
// several subgroups hashes on several cores. To the pool a batch is one
// job on a sector k times as large (blocks of k x BlockSize), so
// everything said below of a job holds for a batch; each sector still has
// its own layer files, metadata and resume point.
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
// a pool smaller than 2 x N x S serve them without waits. A pool of
// 2 x N x S (pool.HoldsAll) starts them together: nothing to share.
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
//     its bytes live; cold labels are read back from the layer files (a
//     single sector's) or the batch's spill files.
//   - A batch holds sectors that resume at the same layer, and starts that
//     layer at the shortest durable prefix among them.
//   - A batch's block is written to the layer files by the packer, off the
//     hashing; its slot is reused only once the packer has copied it out,
//     and a layer is committed only once the packer has handed over every
//     block.
//   - The hashing loops (labelRange, and batchHasher.label for batches)
//     allocate nothing and make no interface calls; parents are read ahead
//     from the parent cache by blockio.
package labeler
