package labeler

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
)

// Run labels every sector of cfg and writes their layer files. The first
// error cancels the whole batch; committed layer files stay, partial ones
// are removed.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	setup := time.Now()
	if cfg.ParentCache == "" {
		return nil, errors.New("labeler: no parent cache")
	}
	shaNI, k, pcfg, spill, err := cfg.plan()
	if err != nil {
		return nil, err
	}
	jobs := cfg.Jobs()
	if spill != nil {
		for _, d := range spill.dirs {
			if err := tier.CheckSpillDir(d); err != nil {
				return nil, err
			}
		}
	}
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
	if asked := cfg.batchAsked(); asked > k {
		res.Warnings = append(res.Warnings, fmt.Sprintf("batch %d asked for, but only %d sectors hash at once: they are labeled as one batch of %d", asked, jobs, k))
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
		cores:  make(chan struct{}, HashingCores()),
		shaNI:  shaNI,
		spill:  spill,
		starts: starts,
	}
	groups := groupSectors(starts, k)
	// The most threads the run hashes on at once: a job's, or a batch's
	// hashers (a batch alone takes every core, batches share them).
	threads := min(cap(r.cores), r.pool.Jobs())
	if k > 1 {
		threads = min(cap(r.cores), r.pool.Jobs()*r.batchHashers())
	}
	r.affinity = newHashAffinity(threads)
	res.HashCPUs = r.affinity.desc
	r.stagger = spill == nil && !p.HoldsAll(cfg.Layers)
	r.gates = make([]chan struct{}, len(groups))
	for i := range r.gates {
		r.gates[i] = make(chan struct{})
	}
	start := time.Now()
	res.Setup = start.Sub(setup)
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
			Demotions:       spill.counters.Demotions.Load(),
			Promotions:      spill.counters.Promotions.Load(),
			ColdReads:       spill.counters.ColdReads.Load(),
			PrefetchedPages: spill.counters.PrefetchedPages.Load(),
			LatePages:       spill.counters.LatePages.Load(),
			LateWait:        time.Duration(spill.counters.LateNanos.Load()),
			DeviceReads:     spill.counters.DeviceReads.Load(),
			DeviceReadBytes: spill.counters.DeviceReadBytes.Load(),
			DeviceReadCPU:   time.Duration(spill.counters.DeviceReadCPUNanos.Load()),
			DeviceSyscalls:  spill.counters.DeviceSyscalls.Load(),
			PeakInFlight:    int(spill.counters.PeakInFlight.Load()),
			SpillWrites:     spill.counters.SpillWrites.Load(),
			SpillWriteBytes: spill.counters.SpillWriteBytes.Load(),
			Lanes:           k,
		}
		if e, ok := spill.counters.Engine.Load().(string); ok {
			res.Spill.Engine = e
		}
		if w, ok := spill.counters.EngineWarning.Load().(string); ok {
			res.Warnings = append(res.Warnings, "spill tier: "+w)
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
	// coreMu orders the jobs that take several cores (acquireCores).
	coreMu sync.Mutex
	// affinity is where the hashing threads run.
	affinity hashAffinity
	// shaNI selects the hashing kernel that reads parents in place.
	shaNI bool
	// spill is set when jobs keep part of their layers on the device.
	spill *spillConfig
	// starts[i] is where sector i's labeling starts.
	starts []sectorStart
	// gates[i] closes once job i has labeled 1/N of its first layer (or
	// ended), letting job i+1 start when stagger is set: staggered starts
	// spread the jobs over a layer, which is what lets them share the
	// pool. A pool that holds every job's two layers at once needs no
	// stagger, and with no more jobs than cores a stagger leaves a core
	// idle for 1/N of a layer at the start and at the end: 2 x 64 MiB
	// sectors, 4 layers, the maximum pool, labeled 1.93-1.98M nodes/s on
	// 1.87-1.91 busy cores without it, 1.85-1.93M on 1.73-1.78 with it.
	// Spilling jobs keep it (not measured without).
	gates   []chan struct{}
	stagger bool
}

// layerCommit is the commit of one layer's files, run on its own
// goroutine while the job labels the next layer: each commit syncs its
// file and reads it back to check its checksum, one sequential read of
// the layer (4 GiB for a batch of 64 x 64 MiB sectors, 2 TiB for
// 64 x 32 GiB), and the next layer needs none of that, only the labels
// still in DRAM. The job waits for it before the layer after
// (commitLayer), before the previous layer's blocks go back to the pool
// (whose queued writes the commit drains), and before it returns. The
// next layer's files log no block as durable before it ends
// (LayerFile.LogAfter): a run killed meanwhile resumes at this commit,
// and one killed after a block of the next layer was logged resumes in
// that layer, as when the commit ran in line.
type layerCommit struct {
	done chan struct{}
	err  error
}

// commitLayer starts committing files, every lane's file of layer (lane
// order), a few at a time (a wide batch would otherwise sync and check
// them one sector after another).
func (r *run) commitLayer(js *jobState, layer int, files []*blockio.LayerFile) *layerCommit {
	c := &layerCommit{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		errs := make([]error, len(js.lanes))
		sem := make(chan struct{}, commitsAtOnce)
		var wg sync.WaitGroup
		for s, ln := range js.lanes {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				err := files[s].Commit(func(crc uint32) error {
					// Recorded before the rename: a committed layer always
					// has its checksum on record.
					ln.meta.LayerChecksums = append(ln.meta.LayerChecksums[:layer-1], checksumText(crc))
					return blockio.WriteSectorMeta(ln.sector.Dir, ln.meta, blockio.WithFaults(r.cfg.Faults))
				})
				if err != nil {
					errs[s] = js.laneErr(ln, fmt.Errorf("layer %d: %w", layer, err))
				}
			})
		}
		wg.Wait()
		c.err = errors.Join(errs...)
	}()
	return c
}

// batchHashers is how many cores a batch may hash on: a batch alone on
// the machine every core, batches that share it their share.
func (r *run) batchHashers() int { return max(1, cap(r.cores)/r.pool.Jobs()) }

// takeFiles takes the lanes' layer files, for their commit.
func (js *jobState) takeFiles() []*blockio.LayerFile {
	files := make([]*blockio.LayerFile, len(js.lanes))
	for s, ln := range js.lanes {
		files[s], ln.file = ln.file, nil
	}
	return files
}

// wait returns the commit's error once it is done; nil waits for nothing.
func (c *layerCommit) wait() error {
	if c == nil {
		return nil
	}
	<-c.done
	return c.err
}

// commitsAtOnce bounds the layer commits a job runs at once.
const commitsAtOnce = 8

// describe names a job's sectors in its errors.
func (r *run) describe(members []int) string {
	if len(members) == 1 {
		i := members[0]
		return fmt.Sprintf("sector %d (%s)", i, r.cfg.Sectors[i].Dir)
	}
	first, last := members[0], members[len(members)-1]
	return fmt.Sprintf("batch of %d (%s ... %s), sectors %d to %d", len(members), r.cfg.Sectors[first].Dir, r.cfg.Sectors[last].Dir, first, last)
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
	if idx > 0 && r.stagger {
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
	// hashing time minus CPU time is time stalled (waiting for spilled
	// labels, or for a core).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer r.affinity.apply()()

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
	if len(js.lanes) > 1 {
		if js.group, err = newBatchLabeler(js.lanes, r.shaNI, r.batchHashers(), r.affinity); err != nil {
			return err
		}
		defer js.group.close()
		js.io = newLaneIO(len(js.lanes), blockSize)
	}
	var place placer
	if r.spill != nil {
		sp, err := r.newSpillPlacer(ctx, js, j)
		if err != nil {
			if js.io != nil {
				js.io.close() // its defer below is not registered yet
			}
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
	if js.io != nil {
		// Before the files close: the packer may still be handing them
		// blocks.
		defer js.io.close()
	}
	// A layer's commit runs while the next layer is labeled (layerCommit),
	// except a single spilling sector's, whose next layer reads spilled
	// labels back from the committed file. Waited for before the files
	// close and the blocks go back.
	var committing *layerCommit
	commitBehind := r.spill == nil || len(js.lanes) > 1
	defer func() {
		cerr := committing.wait()
		if cerr != nil && errors.Is(err, blockio.ErrPreviousNotCommitted) {
			err = cerr // the cause, not its echo in the next layer's files
			return
		}
		err = errors.Join(err, cerr)
	}()
	staggerAt := nodes / uint64(r.pool.Jobs())

	if start.layer > 1 {
		if err := place.loadPrev(ctx, start.layer-1); err != nil {
			return fmt.Errorf("resuming at layer %d: %w", start.layer, err)
		}
	}
	startBlock, err := r.openLayer(js, start.layer, true, blocksPerLayer)
	if err != nil {
		return fmt.Errorf("layer %d: %w", start.layer, err)
	}
	for layer := start.layer; layer <= r.cfg.Layers; layer++ {
		if err := r.layer(ctx, js, place, layer, startBlock, blocksPerLayer, staggerAt, openGate); err != nil {
			return fmt.Errorf("layer %d: %w", layer, err)
		}
		if js.io != nil {
			if err := js.io.flush(); err != nil {
				return fmt.Errorf("layer %d: %w", layer, err)
			}
		}
		syncStart := time.Now()
		// The previous layer's commit first: its writes came from the
		// blocks endLayer is about to hand back.
		err = committing.wait()
		committing = nil
		if err != nil {
			return err // this layer's checksum cannot go on record before it
		}
		files := js.takeFiles()
		if layer < r.cfg.Layers && commitBehind {
			// The next layer's files first: their space is reserved before
			// this layer's commit starts, so that a full disk stops the
			// run with this layer committed, as a commit in line did.
			if startBlock, err = r.openLayer(js, layer+1, false, blocksPerLayer); err != nil {
				return errors.Join(r.commitLayer(js, layer, files).wait(), fmt.Errorf("layer %d: %w", layer+1, err))
			}
			committing = r.commitLayer(js, layer, files)
			// Where a rerun resumes stays where the kill came: in the next
			// layer only once this one has its final name.
			for _, ln := range js.lanes {
				ln.file.LogAfter(committing.wait)
			}
		} else {
			if err := r.commitLayer(js, layer, files).wait(); err != nil {
				return err
			}
			if layer < r.cfg.Layers {
				if startBlock, err = r.openLayer(js, layer+1, false, blocksPerLayer); err != nil {
					return fmt.Errorf("layer %d: %w", layer+1, err)
				}
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
