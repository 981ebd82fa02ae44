package labeler

import (
	"context"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/tier"
)

// spillStepNodes is how often (in nodes) a spilling job tells the tier
// where it is.
const spillStepNodes = tier.PassStepNodes

// spillConfig is the batch-wide spill setting.
type spillConfig struct {
	plan     tier.SpillPlan
	counters tier.SpillCounters
}

// spillPlacer is the placer of a spilling job: the labeler decides when a
// block is placed, written, passed and committed; tier.JobSpill decides
// where its bytes live. The job's DRAM share is drawn from the pool whole
// at the start (plan.Expander + plan.Window blocks, the pool's claim) and
// kept for the job's life.
type spillPlacer struct {
	run  *run
	ln   *lane
	file *blockio.LayerFile
	t    *tier.JobSpill
}

// newSpillPlacer places the layers of a single-sector job (lockstep
// groups never spill).
func (r *run) newSpillPlacer(ctx context.Context, js *jobState, j *pool.Job) (*spillPlacer, error) {
	ln := js.lanes[0]
	plan := r.spill.plan
	slots := make([][]byte, 0, plan.Expander+plan.Window)
	for range plan.Expander + plan.Window {
		waitStart := time.Now()
		id, err := j.Acquire(ctx)
		ln.res.PoolWait += time.Since(waitStart)
		if err != nil {
			return nil, err
		}
		slots = append(slots, r.arena.Block(int(id)))
	}
	t, err := tier.NewJobSpill(tier.JobSpillConfig{
		Plan:          plan,
		Slots:         slots,
		ParentCache:   r.cfg.ParentCache,
		Nodes:         r.cfg.Graph.Nodes(),
		NodesPerBlock: js.nodesPerBlock,
		BlockSize:     r.cfg.BlockSize,
		Counters:      &r.spill.counters,
		Reader:        tier.DeviceReaderOptions{Engine: r.cfg.SpillEngine, Fault: r.cfg.readFault},
	})
	if err != nil {
		return nil, err
	}
	return &spillPlacer{run: r, ln: ln, t: t}, nil
}

func (p *spillPlacer) blocks() int { return len(p.ln.cur.blocks) }

func (p *spillPlacer) startLayer(_ context.Context, layer, startBlock int) error {
	p.file = p.ln.file
	return p.t.StartLayer(layer, p.file.TempPath(), p.blocks(), startBlock, p.ln.cur)
}

func (p *spillPlacer) placeBlock(ctx context.Context, b int) error {
	return p.t.PlaceBlock(ctx, b, p.file.Err)
}

func (p *spillPlacer) written(int) func() { return p.t.Written() }

func (p *spillPlacer) hashed(node uint64) error { return p.t.Hashed(node) }

func (p *spillPlacer) endLayer(ctx context.Context, layer int) error {
	return p.t.EndLayer(ctx, blockio.SectorDir(p.ln.sector.Dir).Layer(layer), layer == p.run.cfg.Layers)
}

func (p *spillPlacer) loadPrev(ctx context.Context, layer int) error {
	return p.t.LoadPrev(ctx, blockio.SectorDir(p.ln.sector.Dir).Layer(layer), p.ln.prev)
}

func (p *spillPlacer) close() { p.t.Close() }
