package labeler

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
)

// DefaultMaxBlockSize caps the default block size; it is where the seed's
// implementation started (32 MiB: 1024 blocks per 32 GiB layer).
const DefaultMaxBlockSize = 32 << 20

// parentChunkNodes is how many nodes' parents one read-ahead chunk of the
// parent cache holds (56 bytes each: 1.75 MiB). 8Ki-node chunks measured
// 0.82-0.84 sha_limit_ratio on the 8 MiB seal against 0.91-0.93 for these.
const parentChunkNodes = 32 << 10

// spillParentChunkNodes is the chunk size when the spill tier is on: a
// spilling job waits on the device, not on the parent stream, and every
// byte of read-ahead buffer is DRAM taken from its budget.
const spillParentChunkNodes = 8 << 10

// Sector is one sector to label.
type Sector struct {
	// ReplicaID is the sector's replica id.
	ReplicaID [32]byte
	// Dir is the sector's cache directory; layer files are written there.
	Dir string
}

// Config describes one batch of sectors labeled through one pool.
type Config struct {
	// Graph is the sectors' graph: all sectors of a batch share it.
	Graph *sdr.Graph
	// ParentCache is the path of the graph's (verified) parent cache file.
	ParentCache string
	// Layers is the number of layers to compute.
	Layers int
	// Sectors are the sectors to label.
	Sectors []Sector
	// Options are the batch's knobs.
	Options
	// OnProgress, if set, is called from hashing goroutines after every
	// block with the sector index, layer and nodes done in that layer. It
	// must be cheap and safe for concurrent use.
	OnProgress func(sector, layer int, nodesDone uint64)
	// Live, if set, shows the batch's pool and spill counters while it
	// runs.
	Live *Live
	// Locks, if set, holds every sector directory's lock, taken by a
	// caller that writes into the directories before labeling them
	// (sealer.SealBatch writes tree_d); otherwise Run takes the locks,
	// with Options.LockOptions, and releases them when it returns
	// (lock.go).
	Locks *blockio.SectorLocks
	// Faults, if set, sees every write and sync of the layer files,
	// progress logs and metadata (blockio's fault seam; tests).
	Faults blockio.Injector

	// readFault, when set, sees every spill-tier read (the seam through
	// which tests inject EIO and short reads).
	readFault func(path string, off int64, n int, err error) (int, error)
	// spillWriteFault, when set, sees every write to a batch's spill
	// files (the seam through which tests fail them).
	spillWriteFault func(path string, off int64, n int, err error) (int, error)

	// portable forces the copy-and-crypto/sha256 hashing path, so tests
	// check it on machines that have the SHA extensions.
	portable bool
}

// Options are the labeling knobs, declared once here and taken as they are
// by every caller (sealer.Batch, sealer.LabelOptions, the command line):
// the zero value picks every default.
type Options struct {
	// PoolSize is the pool size in bytes; 0 means the default for the
	// number of concurrent jobs.
	PoolSize uint64
	// BlockSize is the pool block size in bytes; 0 means DefaultBlockSize.
	BlockSize uint64
	// Parallel is how many sectors hash at once; 0 means HashingCores.
	// Extra sectors wait for a slot without holding pool blocks.
	Parallel int
	// Batch is how many sectors one job labels together (a batch,
	// batch.go and lockstep.go): 0 chooses automatically, 1 labels each
	// sector on its own, 2 to tier.MaxBatchLanes forces batches of that
	// many (a batch larger than the sector count is one batch of them
	// all, with a warning). A batch shares one walk of the parent cache,
	// stores its labels node-major (a parent's labels for every sector in
	// one record) and hashes them with the k-stream kernels, which keeps
	// the SHA unit busier than one sector can; when it spills, one device
	// page read brings a parent for all its sectors.
	//
	// The automatic choice: without spill, with the SHA extensions, the
	// largest batch of at most 4 with one batch per core still hashing,
	// whose pool fits the pool size and DRAM budget (else 1); when the
	// DRAM budget is below the pool minimum for one sector per job, one
	// batch of every sector that hashes at once (at most
	// tier.MaxBatchLanes), which asks the device for the fewest reads.
	Batch int
	// Lockstep is Batch's older name, from when a batch (a "lockstep
	// group") held at most 4 sectors; it is taken as Batch when Batch is
	// 0.
	Lockstep int
	// SpillDirs are where a spilling batch keeps its spill files, one
	// directory per drive (pages are striped over them); empty means the
	// first sector's directory. Single sectors need none: their layer
	// files are their spill copies.
	SpillDirs []string
	// HugeTLB asks for reserved hugepages for the DRAM arena.
	HugeTLB bool
	// DRAMBudget, when set, caps the DRAM the pool may use. A budget below
	// the pool's minimum, (N+1) x S for N jobs of S bytes (a batch of B
	// sectors is a job of B x S), turns on the spill tier: each job then
	// owns budget/N of DRAM (tier.PlanSpill) and reads the rest of its two
	// layers from the device: a single sector's from its layer files, a
	// batch's from its spill files.
	DRAMBudget uint64
	// LockOptions say what to do when another seal holds a sector
	// directory (or generates the parent cache): fail at once naming it
	// (the default), or wait; OnWait is told, in one line, what is waited
	// for.
	LockOptions blockio.LockOptions
	// SpillEngine is how the spill tier reads spilled labels from the
	// device: tier.EngineAuto (io_uring where the host allows it, else a
	// pool of pread goroutines), or either forced.
	SpillEngine tier.Engine
}

// SpillOverheadBytes is the DRAM a spilling batch of lanes sectors (in
// blocks of blockSize bytes per sector) uses beside its blocks: its device
// reader's page buffers and its packer's buffers. The spill tier takes it
// off the DRAM budget before it shares the rest out in blocks, so that
// the budget bounds them too (a batch of 64 x 64 MiB sectors with a
// window of 4 blocks peaked at the budget + 70 MiB without). A single
// sector's reader buffers (4.2 MiB) stay outside the budget, as before
// batches: 0.
func SpillOverheadBytes(lanes int, blockSize uint64) uint64 {
	if lanes < 2 {
		return 0
	}
	return tier.ReaderBufferBytes(lanes) + uint64(laneIOBuffers(lanes))*blockSize
}

// BudgetForBlocks is the part of a DRAM budget that n spilling batches of
// lanes sectors (blocks of blockSize bytes per sector) share out in
// blocks: the budget less their buffers (SpillOverheadBytes), unless those
// would take more than a quarter of it (sectors of a few MiB, tests), when
// they stay outside it. plan and bench size their budgets through it.
func BudgetForBlocks(budget uint64, n, lanes int, blockSize uint64) uint64 {
	ov := uint64(n) * SpillOverheadBytes(lanes, blockSize)
	if ov > budget/4 {
		return budget
	}
	return budget - ov
}

// HashingCores is how many cores hash at once: GOMAXPROCS, but no more
// than the machine's CPUs. A process may run with GOMAXPROCS above its
// CPUs so that the goroutines that feed the hashing (layer writers, the
// parent stream, the spill tier's prefetcher and reader) find a P while
// every core hashes; the command line does.
func HashingCores() int { return max(1, min(runtime.GOMAXPROCS(0), runtime.NumCPU())) }

// DefaultBlockSize is the block size used when none is given: a sixteenth
// of a layer, at most DefaultMaxBlockSize and at least 4 KiB (or the whole
// layer when it is smaller).
func DefaultBlockSize(sectorSize uint64) uint64 {
	return blockSizeFor(sectorSize, 16)
}

// DefaultSpillBlockSize is the default block size when the spill tier is
// on: a 64th of a layer. A spilling job owns a fixed number of whole
// blocks, so smaller blocks waste less of its DRAM share to rounding and
// let its hot window grow in finer steps; the pool's sharing, which wants
// few large blocks, no longer applies.
func DefaultSpillBlockSize(sectorSize uint64) uint64 {
	return blockSizeFor(sectorSize, 64)
}

func blockSizeFor(sectorSize, perLayer uint64) uint64 {
	b := min(sectorSize/perLayer, DefaultMaxBlockSize)
	return max(b, min(sectorSize, 4<<10))
}

// spills reports whether the DRAM budget is below the pool minimum for
// single-sector jobs, which turns the spill tier on.
func (c *Config) spills() bool { return c.spillsIn(1) }

// spillsIn reports whether the DRAM budget is below the pool minimum for
// jobs of k sectors.
func (c *Config) spillsIn(k int) bool {
	lo, _, _ := pool.Bounds(uint64(k)*c.Graph.SectorSize(), groupsOf(c.Jobs(), k))
	return c.DRAMBudget != 0 && c.DRAMBudget < lo
}

// batchAsked is the batch size asked for: Batch, or its older name.
func (c *Config) batchAsked() int {
	if c.Batch != 0 {
		return c.Batch
	}
	return c.Lockstep
}

// Jobs is the number of sectors that hash at once: the pool's N, or with
// batches of k sectors, k times the pool's N, ceil(Jobs/k) batches. Its
// default is one sector per core; with a forced batch size k of at most 4
// (one core's kernel), one batch per core, k x the cores; with a wider
// batch, one batch, which hashes on every core.
func (c *Config) Jobs() int {
	p := c.Parallel
	if p <= 0 {
		p = HashingCores() * max(1, c.batchAsked())
		if c.batchAsked() > maxStreams {
			// A batch wider than one core's kernel hashes on every core.
			p = c.batchAsked()
		}
	}
	return max(1, min(p, len(c.Sectors)))
}

func (c *Config) validate() error {
	if c.Graph == nil {
		return errors.New("labeler: no graph")
	}
	if c.Layers < 1 {
		return fmt.Errorf("labeler: layer count %d must be at least 1", c.Layers)
	}
	if len(c.Sectors) == 0 {
		return errors.New("labeler: no sectors")
	}
	s := c.Graph.SectorSize()
	b := c.BlockSize
	if b == 0 {
		b = DefaultBlockSize(s)
		if c.spills() {
			b = DefaultSpillBlockSize(s)
		}
	}
	if b < sdr.NodeSize || b&(b-1) != 0 || b > s {
		return fmt.Errorf("block size %d: must be a power of two from 32 bytes to the sector size (%d)", b, s)
	}
	c.BlockSize = b
	if c.Lockstep < 0 || c.Lockstep > maxStreams {
		return fmt.Errorf("lockstep %d: must be 0 (automatic), 1 (off) or a group size from 2 to %d; larger batches: use batch", c.Lockstep, maxStreams)
	}
	if c.Batch < 0 || c.Batch > tier.MaxBatchLanes {
		return fmt.Errorf("batch %d: must be 0 (automatic), 1 (each sector alone) or a batch size from 2 to %d", c.Batch, tier.MaxBatchLanes)
	}
	if c.Batch != 0 && c.Lockstep != 0 && c.Batch != c.Lockstep {
		return fmt.Errorf("batch %d and lockstep %d: lockstep is batch's older name; give one", c.Batch, c.Lockstep)
	}
	return nil
}

// Check reports whether Run would accept the configuration (sizes, pool
// bounds, DRAM budget, lockstep groups), without touching the disk or
// mapping any memory: bench checks every point of a sweep before it spends
// an hour measuring the first ones.
func (c Config) Check() error {
	_, k, pcfg, _, err := c.plan()
	if err != nil {
		return err
	}
	p, err := newPool(pcfg, k)
	if err != nil {
		return err
	}
	p.Close()
	return nil
}

// plan validates c (filling in its defaults) and derives the batch's
// lockstep group size, the pool's configuration and the spill setting.
func (c *Config) plan() (shaNI bool, k int, pcfg pool.Config, spill *spillConfig, err error) {
	blockGiven := c.BlockSize != 0
	if err = c.validate(); err != nil {
		return
	}
	shaNI = cpuHasSHANI() && !c.portable
	if k, err = c.groupSize(HashingCores(), shaNI && multiSHANI()); err != nil {
		return
	}
	if !blockGiven && c.spillsIn(k) {
		// A batch that spills wants the spill tier's finer blocks even
		// when single sectors would not have spilled.
		c.BlockSize = DefaultSpillBlockSize(c.Graph.SectorSize())
	}
	// A lockstep group is one pool job on sectors k times as large, so
	// every guarantee of the pool holds for groups as it does for sectors.
	pcfg = pool.Config{
		SectorSize: uint64(k) * c.Graph.SectorSize(),
		BlockSize:  uint64(k) * c.BlockSize,
		Jobs:       groupsOf(c.Jobs(), k),
		Size:       c.PoolSize,
	}
	spill, err = c.spillPlan(&pcfg, k)
	return
}

func newPool(pcfg pool.Config, k int) (*pool.Pool, error) {
	p, err := pool.New(pcfg)
	if err != nil && k > 1 {
		err = fmt.Errorf("lockstep groups of %d sectors: %w", k, err)
	}
	return p, err
}

// spillPlan decides, from the DRAM budget, whether jobs spill, and sets
// the pool up for it.
func (c *Config) spillPlan(pcfg *pool.Config, k int) (*spillConfig, error) {
	if c.DRAMBudget == 0 {
		return nil, nil
	}
	s := c.Graph.SectorSize()
	n := pcfg.Jobs
	lo, _, _ := pool.Bounds(pcfg.SectorSize, n)
	if !c.spillsIn(k) {
		// The pool fits in the budget: no spill, the pool at most the
		// budget. (pcfg describes lockstep groups' pool, if any.)
		_, def, _ := pool.Bounds(pcfg.SectorSize, pcfg.Jobs)
		if pcfg.Size == 0 {
			pcfg.Size = min(def, c.DRAMBudget)
		}
		if pcfg.Size > c.DRAMBudget {
			return nil, fmt.Errorf("pool size %d is over the DRAM budget %d", pcfg.Size, c.DRAMBudget)
		}
		return nil, nil
	}
	if c.PoolSize != 0 {
		return nil, fmt.Errorf("pool size %d with a DRAM budget %d below the pool minimum %d: leave the pool size to the spill tier", c.PoolSize, c.DRAMBudget, lo)
	}
	plan, _, err := tier.PlanBudget(BudgetForBlocks(c.DRAMBudget, n, k, c.BlockSize), n, pcfg.BlockSize, int(s/c.BlockSize))
	if err != nil {
		return nil, fmt.Errorf("DRAM budget %d for %d jobs with %d-byte blocks: %w", c.DRAMBudget, n, pcfg.BlockSize, err)
	}
	claim := plan.Expander + plan.Window
	pcfg.Claim = claim
	pcfg.Size = uint64(claim*n) * pcfg.BlockSize
	sc := &spillConfig{plan: plan}
	if k > 1 {
		sc.dirs = c.SpillDirs
		if len(sc.dirs) == 0 {
			sc.dirs = []string{c.Sectors[0].Dir}
		}
	}
	return sc, nil
}
