package labeler

import "time"

// SectorResult is what one sector's job measured.
type SectorResult struct {
	// Hashing is the time the job's goroutine spent labeling, excluding
	// waits for the pool, a core slot, and the end-of-layer file sync.
	Hashing time.Duration
	// PoolWait is the time spent waiting for pool blocks.
	PoolWait time.Duration
	// SyncWait is the time spent waiting for layer files to reach the disk.
	SyncWait time.Duration
	// CoreWait is the time spent waiting for a core while holding blocks:
	// with more jobs than cores, jobs take turns block by block.
	CoreWait time.Duration
	// Stalled is the part of Hashing the job's thread was not on a CPU:
	// waiting for spilled labels not read in time, or for a core the
	// scheduler gave another thread.
	Stalled time.Duration
	// Nodes is the number of labels computed.
	Nodes uint64
	// ResumedLayer and ResumedNode are where labeling resumed from an
	// earlier run's work (0 and 0: it started from scratch).
	ResumedLayer int
	ResumedNode  uint64
}

// Result is what a batch measured.
type Result struct {
	Sectors []SectorResult
	// Wall is the labeling's time, from the jobs' start to the last
	// one's end; Setup what came before it: locking the sectors, mapping
	// and faulting in the pool's DRAM (about 2 s per GiB on the
	// development VM for memory not used in the last few seconds, 0.1 s
	// for memory that was), reading the sectors' progress.
	Wall, Setup time.Duration
	Jobs        int
	PoolSize    uint64
	BlockSize   uint64
	// PoolPeak is the most pool bytes held at once.
	PoolPeak uint64
	// ArenaBytes is the DRAM arena's mapped size.
	ArenaBytes uint64
	// Warnings are non-fatal conditions worth telling a person (a hugepage
	// fallback, say).
	Warnings []string
	// DRAMBudget is Config.DRAMBudget.
	DRAMBudget uint64
	// Spill is set when the spill tier was used.
	Spill *SpillResult
	// Lockstep is the number of sectors labeled together by one job
	// (1: each on its own). Pool blocks are then Lockstep x BlockSize
	// bytes, one BlockSize part per sector.
	Lockstep int
	// Kernel names the hashing kernel: "sha-ni x2" (lockstep groups of 2
	// hashed together), "sha-ni" or "portable".
	Kernel string
	// HashCPUs says where the hashing threads were kept and why, empty
	// when the scheduler placed them (hashAffinity).
	HashCPUs string
}

// SpillResult counts what the spill tier did.
type SpillResult struct {
	// Expander and Window are the blocks each job kept in DRAM of the
	// previous layer and of the layer being written.
	Expander, Window int
	// Demotions counts blocks dropped from DRAM once written; Promotions
	// blocks read back into DRAM when a layer turned over.
	Demotions, Promotions uint64
	// ColdReads counts parent labels read from the spilled part of a
	// layer; PrefetchedPages the pages read for them ahead of the hashing
	// (one read serves every cold parent on its page in the look-ahead);
	// LatePages the times the hashing waited for one, LateWait how long.
	ColdReads, PrefetchedPages, LatePages uint64
	LateWait                              time.Duration
	// Engine is how spilled pages were read: "io_uring" or "pread".
	Engine string
	// DeviceReads and DeviceReadBytes are the reads the spill tier
	// finished (O_DIRECT: each one went to the device), DeviceReadCPU the
	// CPU its engines spent on them, PeakInFlight the most reads one job
	// had in flight, DeviceSyscalls the engines' io_uring_enter (or pread)
	// calls.
	DeviceReads, DeviceReadBytes, DeviceSyscalls uint64
	DeviceReadCPU                                time.Duration
	PeakInFlight                                 int
	// SpillWrites and SpillWriteBytes are the blocks batches wrote to
	// their spill files (single sectors write none: their layer files are
	// their spill copies); Lanes is the sectors per spilling job.
	SpillWrites, SpillWriteBytes uint64
	Lanes                        int
}
