package labeler

import (
	"context"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/tier"
)

// spillConfig is the batch-wide spill setting.
type spillConfig struct {
	plan     tier.SpillPlan
	counters tier.SpillCounters
	// dirs are where batches keep their spill files.
	dirs []string
}

// spillPlacer is the placer of a spilling job: the labeler decides when a
// block is placed, written, passed and committed; tier.JobSpill decides
// where its bytes live. The job's DRAM share is drawn from the pool whole
// at the start (plan.Expander + plan.Window blocks, the pool's claim) and
// kept for the job's life. A single sector's spilled labels are read back
// from its layer files; a batch's from its spill files, which the tier
// writes as each block is done (done) and rebuilds from the layer files
// for a resumed batch (loadPrev).
type spillPlacer struct {
	run   *run
	js    *jobState
	file  *blockio.LayerFile
	t     *tier.JobSpill
	batch bool
}

func (r *run) newSpillPlacer(ctx context.Context, js *jobState, j *pool.Job) (*spillPlacer, error) {
	plan := r.spill.plan
	slots := make([][]byte, 0, plan.Expander+plan.Window)
	for range plan.Expander + plan.Window {
		waitStart := time.Now()
		id, err := j.Acquire(ctx)
		waited := time.Since(waitStart)
		for _, ln := range js.lanes {
			ln.res.PoolWait += waited
		}
		if err != nil {
			return nil, err
		}
		slots = append(slots, r.arena.Block(int(id))[:r.jobBlockSize(js)])
	}
	t, err := tier.NewJobSpill(tier.JobSpillConfig{
		Plan:          plan,
		Slots:         slots,
		ParentCache:   r.cfg.ParentCache,
		Nodes:         r.cfg.Graph.Nodes(),
		NodesPerBlock: js.nodesPerBlock,
		BlockSize:     r.jobBlockSize(js),
		Lanes:         len(js.lanes),
		SpillDirs:     r.spill.dirs,
		Counters:      &r.spill.counters,
		Reader:        tier.DeviceReaderOptions{Engine: r.cfg.SpillEngine, Fault: r.cfg.readFault},
		WriteFault:    r.cfg.spillWriteFault,
	})
	if err != nil {
		return nil, err
	}
	return &spillPlacer{run: r, js: js, t: t, batch: len(js.lanes) > 1}, nil
}

// jobBlockSize is the bytes of one of js's blocks: its lanes' labels of
// the block's nodes (a batch smaller than the run's batch size, its last,
// uses only its lanes' share of a pool block).
func (r *run) jobBlockSize(js *jobState) uint64 { return uint64(len(js.lanes)) * r.cfg.BlockSize }

func (p *spillPlacer) blocks() int { return len(p.js.lanes[0].cur.blocks) }

func (p *spillPlacer) views(prev bool) tier.LayerView {
	if !p.batch {
		if prev {
			return p.js.lanes[0].prev
		}
		return p.js.lanes[0].cur
	}
	v := make(batchView, len(p.js.lanes))
	for s, ln := range p.js.lanes {
		v[s] = ln.cur
		if prev {
			v[s] = ln.prev
		}
	}
	return v
}

func (p *spillPlacer) startLayer(_ context.Context, layer, startBlock int) error {
	p.file = p.js.lanes[0].file
	path := ""
	if !p.batch {
		path = p.file.TempPath()
	}
	return p.t.StartLayer(layer, path, p.blocks(), startBlock, p.views(false))
}

func (p *spillPlacer) placeBlock(ctx context.Context, b int) error {
	reuse := func(int) error { return p.file.Err() }
	if p.batch {
		// The tier waits for its own spill writes; the slot's block must
		// also be packed for the layer files (whose errors surface at
		// their commit).
		reuse = p.js.io.waitPacked
	}
	return p.t.PlaceBlock(ctx, b, reuse)
}

func (p *spillPlacer) done(b int) { p.t.SpillBlock(b) }

func (p *spillPlacer) written(int) func() {
	if p.batch {
		return nil
	}
	return p.t.Written()
}

func (p *spillPlacer) hashed(node uint64) error { return p.t.Hashed(node) }

func (p *spillPlacer) endLayer(ctx context.Context, layer int) error {
	path := ""
	if !p.batch {
		path = blockio.SectorDir(p.js.lanes[0].sector.Dir).Layer(layer)
	}
	return p.t.EndLayer(ctx, path, layer == p.run.cfg.Layers)
}

func (p *spillPlacer) loadPrev(ctx context.Context, layer int) error {
	if !p.batch {
		return p.t.LoadPrev(ctx, blockio.SectorDir(p.js.lanes[0].sector.Dir).Layer(layer), p.js.lanes[0].prev)
	}
	lf, err := p.js.openCommitted(layer, p.run.cfg.Graph.SectorSize(), p.run.cfg.BlockSize)
	if err != nil {
		return err
	}
	defer lf.close()
	fill := func(b int, block []byte) error { return lf.fill(ctx, b, block) }
	return p.t.LoadBatchPrev(ctx, layer, fill, p.views(true))
}

func (p *spillPlacer) close() { p.t.Close() }
