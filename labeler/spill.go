package labeler

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
)

const (
	// spillStepNodes is how often (in nodes) a spilling job drops the
	// spilled pages it has read back from the page cache: what it reads
	// between two drops is the page cache it costs.
	spillStepNodes = 16 << 10
	// prefetchAheadNodes is how far ahead of the hashing the prefetcher
	// asks for spilled pages: enough reads in flight to keep the device
	// busy, few enough that they are not dropped before use.
	prefetchAheadNodes = 4 << 10
)

// spillConfig is the batch-wide spill setting.
type spillConfig struct {
	plan tier.SpillPlan
	// counters shared by all jobs
	demotions, promotions, prefetched atomic.Uint64
}

// spillPlacer keeps a fixed share of DRAM per job, placed by a
// tier.SpillPlan: the first plan.Expander blocks of the previous layer and
// a ring of plan.Window blocks for the layer being written. Everything else
// is read through read-only mappings of the layer files, which hold every
// label anyway: spilling costs no extra writes. A written block leaves DRAM
// only after the writer has pushed it to the device and dropped it from
// the page cache, so a spilled label really is on the device only.
type spillPlacer struct {
	run  *run
	js   *jobState
	plan tier.SpillPlan

	expSlots, winSlots []pool.BlockID
	blockSize          uint64

	file            *blockio.LayerFile
	curMap, prevMap *blockio.FileMap
	// acks counts blocks of the current layer written to the device (the
	// writer acks in order).
	acks     chan struct{}
	nWritten int
	// spilledCur is how many leading blocks of the current layer are read
	// from curMap.
	spilledCur int

	pf *prefetcher
}

func (r *run) newSpillPlacer(ctx context.Context, js *jobState, j *pool.Job) (*spillPlacer, error) {
	plan := r.spill.plan
	p := &spillPlacer{run: r, js: js, plan: plan, blockSize: r.cfg.BlockSize}
	// The job's share is taken whole at the start: it owns plan.Expander +
	// plan.Window blocks for its whole life (the pool's claim).
	for range plan.Expander + plan.Window {
		waitStart := time.Now()
		id, err := j.Acquire(ctx)
		js.res.PoolWait += time.Since(waitStart)
		if err != nil {
			return nil, err
		}
		if len(p.expSlots) < plan.Expander {
			p.expSlots = append(p.expSlots, id)
		} else {
			p.winSlots = append(p.winSlots, id)
		}
	}
	pf, err := newPrefetcher(r.cfg.ParentCache, r.cfg.Graph.Nodes(), js.nodesPerBlock, plan, &r.spill.prefetched)
	if err != nil {
		return nil, err
	}
	p.pf = pf
	return p, nil
}

func (p *spillPlacer) startLayer(ctx context.Context, layer int, file *blockio.LayerFile) error {
	file.SetDropAfterWrite()
	m, err := blockio.MapFile(file.TempPath(), int64(p.run.cfg.Graph.SectorSize()))
	if err != nil {
		return err
	}
	p.file, p.curMap = file, m
	p.acks = make(chan struct{}, len(p.js.cur.blocks))
	p.nWritten, p.spilledCur = 0, 0
	p.pf.startLayer(layer, p.curMap, p.prevMap)
	return nil
}

// placeBlock puts block b in the window slot of block b-Window, spilling
// that block: once its write is on the device, its labels are read from
// the layer file.
func (p *spillPlacer) placeBlock(ctx context.Context, b int) error {
	w := p.plan.Window
	if old := b - w; old >= 0 {
		for p.nWritten <= old {
			select {
			case <-p.acks:
				p.nWritten++
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		if err := p.file.Err(); err != nil {
			return err
		}
		p.js.cur.setBlock(old, p.blockOf(p.curMap, old))
		p.spilledCur = old + 1
		p.run.spill.demotions.Add(1)
	}
	p.js.cur.setBlock(b, p.run.arena.Block(int(p.winSlots[b%w])))
	return nil
}

func (p *spillPlacer) blockOf(m *blockio.FileMap, b int) []byte {
	off := uint64(b) * p.blockSize
	return m.Bytes()[off : off+p.blockSize : off+p.blockSize]
}

func (p *spillPlacer) written(int) func() {
	acks := p.acks
	return func() { acks <- struct{}{} }
}

// hashed publishes the hashing position to the prefetcher and drops the
// spilled pages read back since the last call, so that the page cache never
// holds more than one step's worth of spilled labels.
func (p *spillPlacer) hashed(node uint64) error {
	p.pf.pos.Store(node)
	var err error
	if p.spilledCur > 0 {
		err = p.curMap.Evict(0, int64(uint64(p.spilledCur)*p.blockSize))
	}
	if p.prevMap != nil && p.plan.Expander < len(p.js.prev.blocks) {
		off := int64(uint64(p.plan.Expander) * p.blockSize)
		err = errors.Join(err, p.prevMap.Evict(off, int64(p.run.cfg.Graph.SectorSize())-off))
	}
	p.pf.epoch.Add(1)
	return err
}

// endLayer turns the finished layer into the next one's expander layer: its
// first plan.Expander blocks are promoted into DRAM with sequential reads,
// the rest stay in its (now committed) file.
func (p *spillPlacer) endLayer(ctx context.Context, layer int) error {
	p.pf.stopLayer()
	var err error
	if p.prevMap != nil {
		err = p.prevMap.Close()
	}
	p.prevMap, p.curMap = p.curMap, nil
	if err != nil || layer == p.run.cfg.Layers {
		return err
	}
	next := p.js.cur // becomes prev after the swap in job
	for b := range next.blocks {
		if b < p.plan.Expander {
			slot := p.run.arena.Block(int(p.expSlots[b]))
			if err := p.prevMap.ReadAt(slot, int64(uint64(b)*p.blockSize)); err != nil {
				return err
			}
			next.setBlock(b, slot)
			p.run.spill.promotions.Add(1)
		} else {
			next.setBlock(b, p.blockOf(p.prevMap, b))
		}
	}
	return ctx.Err()
}

func (p *spillPlacer) close() {
	p.pf.close()
	if p.curMap != nil {
		p.curMap.Close()
	}
	if p.prevMap != nil {
		p.prevMap.Close()
	}
}

// prefetcher runs ahead of one job's hashing on its own goroutine, reading
// the parent cache itself, and asks for the spilled pages the next
// prefetchAheadNodes nodes will read, so they arrive while earlier nodes
// are hashed. It keeps many reads in flight (MADV_WILLNEED does not wait).
type prefetcher struct {
	stream        *blockio.ParentStream
	nodesPerBlock uint64
	plan          tier.SpillPlan
	counter       *atomic.Uint64

	// pos is the next node the hasher labels; epoch changes whenever the
	// hasher dropped spilled pages, so earlier requests must be repeated.
	pos, epoch atomic.Uint64

	layerCh chan prefetchLayer
	stop    chan struct{}
	done    chan struct{}
}

type prefetchLayer struct {
	layer     int
	cur, prev *blockio.FileMap
}

func newPrefetcher(parentCache string, nodes, nodesPerBlock uint64, plan tier.SpillPlan, counter *atomic.Uint64) (*prefetcher, error) {
	s, err := blockio.OpenParentStream(parentCache, nodes, parentChunkNodes, 2)
	if err != nil {
		return nil, fmt.Errorf("prefetcher: %w", err)
	}
	return &prefetcher{stream: s, nodesPerBlock: nodesPerBlock, plan: plan, counter: counter, layerCh: make(chan prefetchLayer)}, nil
}

func (f *prefetcher) startLayer(layer int, cur, prev *blockio.FileMap) {
	f.pos.Store(0)
	f.stop = make(chan struct{})
	f.done = make(chan struct{})
	go f.run(prefetchLayer{layer: layer, cur: cur, prev: prev}, f.stop, f.done)
}

// stopLayer returns once the prefetcher no longer touches the layer's
// mappings.
func (f *prefetcher) stopLayer() {
	if f.stop != nil {
		close(f.stop)
		<-f.done
		f.stop = nil
	}
}

func (f *prefetcher) close() {
	f.stopLayer()
	f.stream.Close()
}

func (f *prefetcher) run(l prefetchLayer, stop, done chan struct{}) {
	defer close(done)
	if err := f.stream.Rewind(); err != nil {
		return // the hasher reads the same file and will report it
	}
	w := uint64(f.plan.Window)
	exp := uint64(f.plan.Expander)
	npb := f.nodesPerBlock
	epoch := f.epoch.Load()
	for {
		first, parents, err := f.stream.Next()
		if err != nil {
			return
		}
		n := uint64(len(parents)) / sdr.Degree
		for i := uint64(0); i < n; i++ {
			v := first + i
			for v >= f.pos.Load()+prefetchAheadNodes {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Microsecond):
				}
			}
			if e := f.epoch.Load(); e != epoch {
				// The hasher dropped the pages asked for so far: start
				// again from where it is.
				epoch = e
				if p := max(f.pos.Load(), first); p < v {
					i = p - first
					v = p
				}
			}
			ps := parents[i*sdr.Degree : (i+1)*sdr.Degree]
			vb := v / npb
			for s := 0; s < sdr.BaseDegree; s++ {
				if p := uint64(ps[s]); p/npb+w <= vb {
					l.cur.WillNeed(int64(p*sdr.NodeSize), sdr.NodeSize)
					f.counter.Add(1)
				}
			}
			if l.layer > 1 {
				for s := sdr.BaseDegree; s < sdr.Degree; s++ {
					if p := uint64(ps[s]); p/npb >= exp {
						l.prev.WillNeed(int64(p*sdr.NodeSize), sdr.NodeSize)
						f.counter.Add(1)
					}
				}
			}
		}
		select {
		case <-stop:
			return
		default:
		}
	}
}
