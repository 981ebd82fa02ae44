package labeler

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
	"golang.org/x/sys/unix"
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
	// PoolSize is the pool size in bytes; 0 means the default for the
	// number of concurrent jobs.
	PoolSize uint64
	// BlockSize is the pool block size in bytes; 0 means DefaultBlockSize.
	BlockSize uint64
	// Parallel is how many sectors hash at once; 0 means GOMAXPROCS.
	// Extra sectors wait for a slot without holding pool blocks.
	Parallel int
	// Lockstep is how many sectors one job labels together (a lockstep
	// group, lockstep.go): 0 chooses automatically, 1 labels each sector
	// on its own, 2 to 4 forces groups of that many (at most Jobs). A
	// group shares one walk of the parent cache and hashes its sectors'
	// labels of a node together, which keeps the SHA unit busier than one
	// sector can. With the SHA extensions and no spill, the automatic choice
	// is the largest k <= 4 with k x GOMAXPROCS sectors hashing at once,
	// so that every core still has a group, whose pool fits the pool size
	// and DRAM budget; otherwise 1. Groups do not spill: forcing them
	// with a DRAM budget that turns the spill tier on is an error.
	Lockstep int
	// HugeTLB asks for reserved hugepages for the DRAM arena.
	HugeTLB bool
	// DRAMBudget, when set, caps the DRAM the pool may use. A budget below
	// the pool's minimum, (N+1) x S, turns on the spill tier: each job then
	// owns budget/N of DRAM (tier.PlanSpill) and reads the rest of its two
	// layers from the layer files.
	DRAMBudget uint64
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
	// with LockOptions, and releases them when it returns (lock.go).
	Locks       *blockio.SectorLocks
	LockOptions blockio.LockOptions
	// Faults, if set, sees every write and sync of the layer files,
	// progress logs and metadata (blockio's fault seam; tests).
	Faults blockio.Injector

	// portable forces the copy-and-crypto/sha256 hashing path, so tests
	// check it on machines that have the SHA extensions.
	portable bool
}

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
func (c *Config) spills() bool {
	lo, _, _ := pool.Bounds(c.Graph.SectorSize(), c.Jobs())
	return c.DRAMBudget != 0 && c.DRAMBudget < lo
}

// Jobs is the number of sectors that hash at once: the pool's N, or with
// lockstep groups of k sectors, k times the pool's N, ceil(Jobs/k) groups.
func (c *Config) Jobs() int {
	p := c.Parallel
	if p <= 0 {
		p = runtime.GOMAXPROCS(0)
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
	if c.ParentCache == "" {
		return errors.New("labeler: no parent cache")
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
		return fmt.Errorf("lockstep %d: must be 0 (automatic), 1 (off) or a group size from 2 to %d", c.Lockstep, maxStreams)
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
	if err = c.validate(); err != nil {
		return
	}
	shaNI = cpuHasSHANI() && !c.portable
	if k, err = c.groupSize(runtime.GOMAXPROCS(0), shaNI && multiSHANI()); err != nil {
		return
	}
	// A lockstep group is one pool job on sectors k times as large, so
	// every guarantee of the pool holds for groups as it does for sectors.
	pcfg = pool.Config{
		SectorSize: uint64(k) * c.Graph.SectorSize(),
		BlockSize:  uint64(k) * c.BlockSize,
		Jobs:       groupsOf(c.Jobs(), k),
		Size:       c.PoolSize,
	}
	spill, err = c.spillPlan(&pcfg)
	return
}

func newPool(pcfg pool.Config, k int) (*pool.Pool, error) {
	p, err := pool.New(pcfg)
	if err != nil && k > 1 {
		err = fmt.Errorf("lockstep groups of %d sectors: %w", k, err)
	}
	return p, err
}

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
	// page faults on spilled labels the prefetcher did not hide.
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
	Sectors   []SectorResult
	Wall      time.Duration
	Jobs      int
	PoolSize  uint64
	BlockSize uint64
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
	// layer; PrefetchedPages the pages asked for ahead of the hashing and
	// LatePages those the hashing reached first and faulted in itself.
	ColdReads, PrefetchedPages, LatePages uint64
}

// spillPlan decides, from the DRAM budget, whether jobs spill, and sets
// the pool up for it.
func (c *Config) spillPlan(pcfg *pool.Config) (*spillConfig, error) {
	if c.DRAMBudget == 0 {
		return nil, nil
	}
	s := c.Graph.SectorSize()
	n := c.Jobs()
	lo, _, _ := pool.Bounds(s, n)
	if !c.spills() {
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
	perJob := int(c.DRAMBudget / uint64(n) / c.BlockSize)
	plan, err := tier.PlanSpill(int(s/c.BlockSize), perJob)
	if err != nil {
		return nil, fmt.Errorf("DRAM budget %d for %d jobs with %d-byte blocks: %w", c.DRAMBudget, n, c.BlockSize, err)
	}
	claim := plan.Expander + plan.Window
	pcfg.Claim = claim
	pcfg.Size = uint64(claim*n) * c.BlockSize
	return &spillConfig{plan: plan}, nil
}

// Run labels every sector of cfg and writes their layer files. The first
// error cancels the whole batch; committed layer files stay, partial ones
// are removed.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	shaNI, k, pcfg, spill, err := cfg.plan()
	if err != nil {
		return nil, err
	}
	jobs := cfg.Jobs()
	release, err := cfg.lockSectors(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	p, err := newPool(pcfg, k)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if cfg.Live != nil {
		cfg.Live.attach(p, spill)
		defer cfg.Live.attach(nil, nil)
	}
	arena, warning, err := tier.NewArena(p.NumBlocks(), pcfg.BlockSize, tier.ArenaOptions{HugeTLB: cfg.HugeTLB, Populate: true})
	if err != nil {
		return nil, err
	}
	defer arena.Close()
	// Decided once the configuration is known good, so a refused batch
	// leaves nothing behind; the metadata written here is what verify and
	// the next run's resume read.
	starts := make([]sectorStart, len(cfg.Sectors))
	for i, s := range cfg.Sectors {
		if starts[i], err = planStart(s, blockio.NewSectorMeta(cfg.Graph, s.ReplicaID, cfg.Layers), blockio.WithFaults(cfg.Faults)); err != nil {
			return nil, fmt.Errorf("sector %d (%s): %w", i, s.Dir, err)
		}
	}

	res := &Result{
		Sectors:    make([]SectorResult, len(cfg.Sectors)),
		Jobs:       jobs,
		PoolSize:   uint64(p.NumBlocks()) * pcfg.BlockSize,
		BlockSize:  cfg.BlockSize,
		ArenaBytes: arena.Bytes(),
		Lockstep:   k,
		Kernel:     kernelName(k, shaNI),
	}
	if warning != "" {
		res.Warnings = append(res.Warnings, warning)
	}
	for i, st := range starts {
		if st.restarted != "" {
			res.Warnings = append(res.Warnings, fmt.Sprintf("sector %d (%s): %s; labeling it from the start", i, cfg.Sectors[i].Dir, st.restarted))
		}
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r := &run{
		cfg:    &cfg,
		pool:   p,
		arena:  arena,
		slots:  make(chan struct{}, pcfg.Jobs),
		cores:  make(chan struct{}, runtime.GOMAXPROCS(0)),
		shaNI:  shaNI,
		spill:  spill,
		starts: starts,
	}
	groups := groupSectors(starts, k)
	r.gates = make([]chan struct{}, len(groups))
	for i := range r.gates {
		r.gates[i] = make(chan struct{})
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, members := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.job(ctx, i, members, res.Sectors); err != nil {
				cancel(fmt.Errorf("%s: %w", r.describe(members), err))
			}
		}()
	}
	wg.Wait()
	res.Wall = time.Since(start)
	res.PoolPeak = p.Stats().PeakInUseBytes
	res.DRAMBudget = cfg.DRAMBudget
	if spill != nil {
		res.Spill = &SpillResult{
			Expander:        spill.plan.Expander,
			Window:          spill.plan.Window,
			Demotions:       spill.demotions.Load(),
			Promotions:      spill.promotions.Load(),
			ColdReads:       spill.reads.labels.Load(),
			PrefetchedPages: spill.reads.prefetched.Load(),
			LatePages:       spill.reads.late.Load(),
		}
	}
	if err := context.Cause(ctx); err != nil {
		return res, err
	}
	return res, nil
}

type run struct {
	cfg   *Config
	pool  *pool.Pool
	arena *tier.Arena
	// slots limits how many jobs are joined to the pool at once (N).
	slots chan struct{}
	// cores limits how many jobs hash at once to the cores Go may use, so
	// that a job's hashing time is time on a core, not time descheduled.
	cores chan struct{}
	// shaNI selects the hashing kernel that reads parents in place.
	shaNI bool
	// spill is set when jobs keep part of their layers on the device.
	spill *spillConfig
	// starts[i] is where sector i's labeling starts.
	starts []sectorStart
	// gates[i] closes once job i has labeled 1/N of its first layer (or
	// ended), letting job i+1 start: staggered starts spread the jobs over
	// a layer, which is what lets them share the pool.
	gates []chan struct{}
}

// describe names a job's sectors in its errors.
func (r *run) describe(members []int) string {
	if len(members) == 1 {
		i := members[0]
		return fmt.Sprintf("sector %d (%s)", i, r.cfg.Sectors[i].Dir)
	}
	return fmt.Sprintf("lockstep group of sectors %d to %d", members[0], members[len(members)-1])
}

// job labels the sectors listed in members (indexes into the batch), one
// lane each: a single sector, or a lockstep group whose sectors resume at
// the same layer. results is the batch's per-sector results.
func (r *run) job(ctx context.Context, idx int, members []int, results []SectorResult) (err error) {
	gate := r.gates[idx]
	var gateOnce sync.Once
	openGate := func() { gateOnce.Do(func() { close(gate) }) }
	defer openGate()

	start := r.starts[members[0]]
	if start.layer > r.cfg.Layers {
		return nil // an earlier run committed every layer
	}
	if start.layer > 1 {
		openGate() // past its first layer: nothing to stagger
	}
	if idx > 0 {
		select {
		case <-r.gates[idx-1]:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-r.slots }()

	// Pin the job to its thread so the thread's CPU time is the job's:
	// hashing time minus CPU time is time stalled on page faults.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	j, err := r.pool.Join(r.cfg.Layers)
	if err != nil {
		return err
	}
	defer j.Leave()

	g := r.cfg.Graph
	nodes := g.Nodes()
	chunkNodes := parentChunkNodes
	if r.spill != nil {
		chunkNodes = spillParentChunkNodes
	}
	stream, err := blockio.OpenParentStream(r.cfg.ParentCache, nodes, chunkNodes, 2)
	if err != nil {
		return err
	}
	defer stream.Close()

	blockSize := r.cfg.BlockSize
	nodesPerBlock := blockSize / sdr.NodeSize
	blocksPerLayer := int(g.SectorSize() / blockSize)
	js := &jobState{
		stream:        stream,
		nodesPerBlock: nodesPerBlock,
	}
	for s, i := range members {
		js.lanes = append(js.lanes, &lane{
			idx:    i,
			sector: r.cfg.Sectors[i],
			res:    &results[i],
			nl:     newNodeLabeler(r.shaNI),
			cur:    newLaneView(blocksPerLayer, nodesPerBlock, len(members), s),
			prev:   newLaneView(blocksPerLayer, nodesPerBlock, len(members), s),
			meta:   r.starts[i].meta,
		})
	}
	js.lane = js.lanes[0]
	if len(js.lanes) > 1 {
		if js.group, err = newGroupLabeler(js.lanes, r.shaNI); err != nil {
			return err
		}
		js.io = newLaneIO(len(js.lanes), blockSize)
	}
	var place placer
	if r.spill != nil {
		sp, err := r.newSpillPlacer(ctx, js, j)
		if err != nil {
			return err
		}
		defer sp.close()
		place = sp
	} else {
		place = &poolPlacer{run: r, js: js, job: j}
	}
	// Runs before the pool blocks go back (j.Leave): a partial layer's
	// queued writes read them. The files and their progress logs stay, so
	// the next run resumes from what reached the disk.
	defer js.closeFiles()
	staggerAt := nodes / uint64(r.pool.Jobs())

	if start.layer > 1 {
		if err := place.loadPrev(ctx, start.layer-1); err != nil {
			return fmt.Errorf("resuming at layer %d: %w", start.layer, err)
		}
	}
	for layer := start.layer; layer <= r.cfg.Layers; layer++ {
		startBlock, err := r.openLayer(js, layer, layer == start.layer, blocksPerLayer)
		if err != nil {
			return fmt.Errorf("layer %d: %w", layer, err)
		}
		if err := r.layer(ctx, js, place, layer, startBlock, blocksPerLayer, staggerAt, openGate); err != nil {
			return fmt.Errorf("layer %d: %w", layer, err)
		}
		syncStart := time.Now()
		for _, ln := range js.lanes {
			err := ln.file.Commit(func(crc uint32) error {
				// Recorded before the rename: a committed layer always has
				// its checksum on record.
				ln.meta.LayerChecksums = append(ln.meta.LayerChecksums[:layer-1], checksumText(crc))
				return blockio.WriteSectorMeta(ln.sector.Dir, ln.meta, blockio.WithFaults(r.cfg.Faults))
			})
			ln.file = nil
			if err != nil {
				return js.laneErr(ln, fmt.Errorf("layer %d: %w", layer, err))
			}
		}
		// Every lane waits for all the group's commits.
		synced := time.Since(syncStart)
		for _, ln := range js.lanes {
			ln.res.SyncWait += synced
		}
		if err := place.endLayer(ctx, layer); err != nil {
			return fmt.Errorf("layer %d: %w", layer, err)
		}
		for _, ln := range js.lanes {
			ln.prev, ln.cur = ln.cur, ln.prev
		}
	}
	return nil
}

// lane is one sector's part of a job.
type lane struct {
	idx       int
	sector    Sector
	res       *SectorResult
	nl        *nodeLabeler
	cur, prev *layerView
	// file is the layer being written, nil between layers.
	file *blockio.LayerFile
	// meta is the sector's metadata, rewritten at every commit.
	meta blockio.SectorMeta
	// durable is how many blocks of the layer being written an earlier run
	// left on the disk. A lockstep group starts at its lanes' smallest
	// durable prefix; the others' blocks below their own are labeled again
	// for their partners' sake but not written again.
	durable int
}

// jobState is what one job's layers share: its lanes, one per sector, and
// the parent stream they all read.
type jobState struct {
	// lane is lanes[0], a single-sector job's only lane, which the spill
	// placer (single-sector jobs only) works on.
	*lane
	lanes []*lane
	// group hashes the lanes together; nil with one lane, which labels on
	// its own (nodeLabeler.labelRange).
	group *groupLabeler
	// io moves a group's lanes' labels between its interleaved pool
	// blocks and their packed layer files; nil with one lane.
	io            *laneIO
	stream        *blockio.ParentStream
	nodesPerBlock uint64
}

// laneErr names the sector an error concerns when the job has several.
func (js *jobState) laneErr(ln *lane, err error) error {
	if len(js.lanes) == 1 {
		return err
	}
	return fmt.Errorf("sector %d (%s): %w", ln.idx, ln.sector.Dir, err)
}

// closeFiles closes the lanes' partial layer files, keeping them and their
// progress logs.
func (js *jobState) closeFiles() {
	for _, ln := range js.lanes {
		if ln.file != nil {
			ln.file.Close()
			ln.file = nil
		}
	}
}

// readLane fills lane s's labels in block, one of the job's blocks, with
// read, which reads the lane's packed labels as its layer file holds them:
// straight into the block for a single lane, through laneIO for a group.
func (js *jobState) readLane(ctx context.Context, block []byte, s int, read func([]byte) error) error {
	if js.io == nil {
		return read(block)
	}
	return js.io.load(ctx, block, s, read)
}

// charge splits a stretch of hashing between the lanes: it labeled all of
// them at once, and summed over sectors, hashing time stays core time.
func (js *jobState) charge(hashed, stalled time.Duration) {
	k := time.Duration(len(js.lanes))
	for i, ln := range js.lanes {
		h, s := hashed/k, stalled/k
		if i == 0 {
			h, s = h+hashed%k, s+stalled%k
		}
		ln.res.Hashing += h
		ln.res.Stalled += s
	}
}

// openLayer opens every lane's file for layer and returns the block
// labeling starts at: 0, or in the layer a resumed job starts in (resume),
// the shortest durable prefix of the lanes' partial files.
func (r *run) openLayer(js *jobState, layer int, resume bool, blocks int) (int, error) {
	size, blockSize := r.cfg.Graph.SectorSize(), r.cfg.BlockSize
	start := blocks
	for _, ln := range js.lanes {
		var durable int64
		var err error
		if resume {
			ln.file, durable, err = blockio.ResumeLayerFile(ln.sector.Dir, layer, size, int64(blockSize), blockio.WithFaults(r.cfg.Faults))
		} else {
			ln.file, err = blockio.CreateLayerFile(ln.sector.Dir, layer, size, blockio.WithFaults(r.cfg.Faults))
		}
		if err != nil {
			return 0, js.laneErr(ln, err)
		}
		ln.durable = int(uint64(durable) / blockSize)
		start = min(start, ln.durable)
	}
	if resume && (start > 0 || layer > 1) {
		for _, ln := range js.lanes {
			ln.res.ResumedLayer, ln.res.ResumedNode = layer, uint64(start)*js.nodesPerBlock
		}
	}
	return start, nil
}

// placer decides where the blocks of the two layers a job reads live.
type placer interface {
	// startLayer is called before the first block of a layer.
	startLayer(ctx context.Context, layer int, file *blockio.LayerFile) error
	// placeBlock makes block b of the current layer writable in cur.
	placeBlock(ctx context.Context, b int) error
	// written returns the ack for block b's write to the layer file, or nil.
	written(b int) func()
	// hashed is called as labeling passes node (every spillStepNodes nodes
	// with a spill tier; never otherwise).
	hashed(node uint64) error
	// endLayer is called once the layer file is committed.
	endLayer(ctx context.Context, layer int) error
	// loadPrev makes the committed layer the previous layer (prev) of a
	// job resumed after it.
	loadPrev(ctx context.Context, layer int) error
}

// layer labels one layer block by block into the lanes' files. Their first
// startBlock blocks are already there (a resumed run): they are read back
// instead of labeled.
func (r *run) layer(ctx context.Context, js *jobState, place placer, layer, startBlock, blocks int, staggerAt uint64, openGate func()) error {
	if err := js.stream.Rewind(); err != nil {
		return err
	}
	if err := place.startLayer(ctx, layer, js.file); err != nil {
		return err
	}
	for _, ln := range js.lanes {
		ln.nl.reset(&ln.sector.ReplicaID, layer)
	}
	if js.group != nil {
		js.group.reset(js.lanes, layer)
	}
	step := ^uint64(0)
	if r.spill != nil {
		step = spillStepNodes
	}
	var chunk []uint32
	var chunkFirst, chunkEnd uint64
	for b := 0; b < startBlock; b++ {
		if err := place.placeBlock(ctx, b); err != nil {
			return fmt.Errorf("block %d: %w", b, err)
		}
		off := int64(b) * int64(r.cfg.BlockSize)
		for s, ln := range js.lanes {
			if err := js.readLane(ctx, ln.cur.blocks[b], s, func(p []byte) error { return ln.file.ReadAt(p, off) }); err != nil {
				return js.laneErr(ln, fmt.Errorf("resuming at block %d: %w", startBlock, err))
			}
		}
		if ack := place.written(b); ack != nil {
			ack()
		}
	}
	if startBlock > 0 {
		if err := place.hashed(uint64(startBlock) * js.nodesPerBlock); err != nil {
			return err
		}
	}
	for b := startBlock; b < blocks; b++ {
		if err := place.placeBlock(ctx, b); err != nil {
			return fmt.Errorf("block %d: %w", b, err)
		}
		coreStart := time.Now()
		select {
		case r.cores <- struct{}{}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		hashStart := time.Now()
		for _, ln := range js.lanes {
			ln.res.CoreWait += hashStart.Sub(coreStart)
		}
		cpuStart := threadCPU()
		first := uint64(b) * js.nodesPerBlock
		end := first + js.nodesPerBlock
		var err error
		for node := first; node < end && err == nil; {
			for node >= chunkEnd && err == nil {
				chunkFirst, chunk, err = js.stream.Next()
				if err != nil {
					err = fmt.Errorf("node %d: %w", node, err)
					break
				}
				chunkEnd = chunkFirst + uint64(len(chunk))/sdr.Degree
			}
			n := min(end, chunkEnd, node-node%step+step) - node
			parents := chunk[(node-chunkFirst)*sdr.Degree:]
			if js.group != nil {
				js.group.labelRange(node, n, parents)
			} else {
				js.nl.labelRange(node, n, parents, js.cur, js.prev)
			}
			node += n
			if node%step == 0 {
				err = place.hashed(node)
			}
		}
		hashed := time.Since(hashStart)
		js.charge(hashed, max(0, hashed-(threadCPU()-cpuStart)))
		<-r.cores
		if err != nil {
			return err
		}
		for s, ln := range js.lanes {
			ln.res.Nodes += js.nodesPerBlock
			if b < ln.durable {
				continue // already on the disk, identical
			}
			data, ack := ln.cur.blocks[b], place.written(b)
			if js.io != nil {
				if data, ack, err = js.io.pack(ctx, data, s, ack); err != nil {
					return err
				}
			}
			if err := ln.file.WriteAsync(data, int64(first*sdr.NodeSize), ack); err != nil {
				return js.laneErr(ln, err)
			}
		}
		if r.cfg.OnProgress != nil {
			for _, ln := range js.lanes {
				r.cfg.OnProgress(ln.idx, layer, end)
			}
		}
		if layer == 1 && end >= staggerAt {
			openGate()
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
	}
	return nil
}

// threadCPU is the CPU time the calling thread has used.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// poolPlacer keeps both layers in pool blocks in DRAM: a block of the
// current layer is acquired as labeling reaches it, and the previous
// layer's blocks are released when the layer is done. A lockstep group's
// pool blocks hold one block of each lane, lane s at s x BlockSize.
type poolPlacer struct {
	run             *run
	js              *jobState
	job             *pool.Job
	curIDs, prevIDs []pool.BlockID
}

func (p *poolPlacer) startLayer(context.Context, int, *blockio.LayerFile) error { return nil }

// acquire takes one pool block and splits it between the lanes.
func (p *poolPlacer) acquire(ctx context.Context) (pool.BlockID, error) {
	waitStart := time.Now()
	id, err := p.job.Acquire(ctx)
	waited := time.Since(waitStart)
	for _, ln := range p.js.lanes {
		ln.res.PoolWait += waited
	}
	return id, err
}

func (p *poolPlacer) placeBlock(ctx context.Context, b int) error {
	id, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	p.curIDs = append(p.curIDs, id)
	block := p.jobBlock(id)
	for _, ln := range p.js.lanes {
		ln.cur.setBlock(b, block)
	}
	return nil
}

// jobBlock is the part of pool block id the job's lanes use: a group
// smaller than the batch's group size (its last) uses only its lanes'
// share, and a single lane's block is exactly what its layer file holds.
func (p *poolPlacer) jobBlock(id pool.BlockID) []byte {
	n := uint64(len(p.js.lanes)) * p.run.cfg.BlockSize
	return p.run.arena.Block(int(id))[:n:n]
}

func (p *poolPlacer) written(int) func() { return nil }

func (p *poolPlacer) loadPrev(ctx context.Context, layer int) error {
	files := make([]*blockio.FileMap, len(p.js.lanes))
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	for s, ln := range p.js.lanes {
		f, err := blockio.MapFile(filepath.Join(ln.sector.Dir, sdr.LayerFileName(layer)), int64(p.run.cfg.Graph.SectorSize()))
		if err != nil {
			return p.js.laneErr(ln, err)
		}
		files[s] = f
	}
	for b := range p.js.prev.blocks {
		id, err := p.acquire(ctx)
		if err != nil {
			return err
		}
		p.prevIDs = append(p.prevIDs, id)
		block := p.jobBlock(id)
		off := int64(b) * int64(p.run.cfg.BlockSize)
		for s, ln := range p.js.lanes {
			if err := p.js.readLane(ctx, block, s, func(packed []byte) error { return files[s].ReadAt(packed, off) }); err != nil {
				return p.js.laneErr(ln, err)
			}
			ln.prev.setBlock(b, block)
		}
	}
	return nil
}

func (p *poolPlacer) hashed(uint64) error { return nil }

func (p *poolPlacer) endLayer(context.Context, int) error {
	// The previous layer has served as expander parents for the last time:
	// hand its blocks back before this layer becomes the next one's
	// expander layer.
	if err := p.job.Release(p.prevIDs...); err != nil {
		return err
	}
	p.prevIDs, p.curIDs = p.curIDs, p.prevIDs[:0]
	return nil
}
