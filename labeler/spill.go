package labeler

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
	"golang.org/x/sys/unix"
)

const (
	// spillStepNodes is how often (in nodes) a spilling job tells its
	// prefetcher where it is.
	spillStepNodes = 256
	// PrefetchAheadNodes is how far ahead of the hashing the prefetcher
	// asks for spilled pages: enough reads in flight to keep the device
	// busy (about half a cold read per node: some 500 per job), and a bound
	// on the page cache the job's spilled reads hold (about 2 MiB).
	PrefetchAheadNodes = 1 << 10
	// evictBatchPages is how many passed pages the prefetcher collects
	// before dropping them in one call.
	evictBatchPages = 64
)

// spillConfig is the batch-wide spill setting.
type spillConfig struct {
	plan tier.SpillPlan
	// counters shared by all jobs
	demotions, promotions atomic.Uint64
	reads                 spillReads
}

// spillReads counts what the prefetchers saw of the labels read from the
// device.
type spillReads struct {
	// labels counts parent reads that fell in a spilled part of a layer.
	labels atomic.Uint64
	// prefetched counts pages asked for ahead of the hashing; late counts
	// pages the hashing reached before the prefetcher did (it faulted them
	// in itself).
	prefetched, late atomic.Uint64
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
	// ring is where the layer being written keeps its most recent blocks:
	// the window slots, and in layer 1, which has no expander layer to
	// hold, the expander slots too.
	ring      []pool.BlockID
	blockSize uint64

	file            *blockio.LayerFile
	curMap, prevMap *blockio.FileMap
	// acks counts blocks of the current layer written to the device (the
	// writer acks in order).
	acks     chan struct{}
	nWritten int

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
	pf, err := newPrefetcher(r.cfg.ParentCache, r.cfg.Graph.Nodes(), js.nodesPerBlock, plan, &r.spill.reads)
	if err != nil {
		return nil, err
	}
	p.pf = pf
	return p, nil
}

func (p *spillPlacer) startLayer(ctx context.Context, layer int, file *blockio.LayerFile) error {
	m, err := blockio.MapFile(file.TempPath(), int64(p.run.cfg.Graph.SectorSize()))
	if err != nil {
		return err
	}
	p.file, p.curMap = file, m
	p.acks = make(chan struct{}, len(p.js.cur.blocks))
	p.nWritten = 0
	p.ring = p.winSlots
	if layer == 1 {
		p.ring = append(append([]pool.BlockID(nil), p.expSlots...), p.winSlots...)
	}
	p.pf.startLayer(layer, len(p.ring), p.curMap, p.prevMap)
	return nil
}

// placeBlock puts block b in the ring slot of block b-len(ring), spilling
// that block: once its write is on the device, its labels are read from
// the layer file.
func (p *spillPlacer) placeBlock(ctx context.Context, b int) error {
	w := len(p.ring)
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
		p.run.spill.demotions.Add(1)
	}
	p.js.cur.setBlock(b, p.run.arena.Block(int(p.ring[b%w])))
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

// hashed tells the prefetcher where the hashing is: it keeps its reads
// ahead of that and drops the pages behind it.
func (p *spillPlacer) hashed(node uint64) error {
	p.pf.pos.Store(node)
	return nil
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
	return p.promote(ctx, p.js.cur) // cur becomes prev after the swap in job
}

// loadPrev maps a layer committed by an earlier run as the previous layer
// and promotes its first plan.Expander blocks, as endLayer would have.
func (p *spillPlacer) loadPrev(ctx context.Context, layer int) error {
	m, err := blockio.MapFile(blockio.SectorDir(p.js.sector.Dir).Layer(layer), int64(p.run.cfg.Graph.SectorSize()))
	if err != nil {
		return err
	}
	p.prevMap = m
	return p.promote(ctx, p.js.prev)
}

// promote reads the first plan.Expander blocks of the layer mapped by
// prevMap into the expander slots, sequentially, and points next at them
// and at the mapping for the rest.
func (p *spillPlacer) promote(ctx context.Context, next *layerView) error {
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
// PrefetchAheadNodes nodes will read, so they arrive while earlier nodes
// are hashed; MADV_WILLNEED does not wait, so many reads are in flight. It
// also drops each page from the page cache once the hashing has passed the
// last node it fetched it for: spilled labels then cost DRAM only while
// they are about to be used.
type prefetcher struct {
	stream        *blockio.ParentStream
	nodesPerBlock uint64
	plan          tier.SpillPlan
	counts        *spillReads

	// pos is the next node the hasher labels.
	pos atomic.Uint64

	stop chan struct{}
	done chan struct{}
}

// spilledPage names one page of one of the two mapped layers.
type spilledPage struct {
	prev bool
	page int64
}

type pageNeed struct {
	page spilledPage
	node uint64
}

func newPrefetcher(parentCache string, nodes, nodesPerBlock uint64, plan tier.SpillPlan, counts *spillReads) (*prefetcher, error) {
	// The prefetcher needs no speed, only little memory: small chunks.
	s, err := blockio.OpenParentStream(parentCache, nodes, 4<<10, 1)
	if err != nil {
		return nil, fmt.Errorf("prefetcher: %w", err)
	}
	return &prefetcher{stream: s, nodesPerBlock: nodesPerBlock, plan: plan, counts: counts}, nil
}

// startLayer starts prefetching a layer whose most recent window blocks
// stay in DRAM.
func (f *prefetcher) startLayer(layer, window int, cur, prev *blockio.FileMap) {
	f.pos.Store(0)
	f.stop = make(chan struct{})
	f.done = make(chan struct{})
	go f.run(layer, uint64(window), cur, prev, f.stop, f.done)
}

// stopLayer returns once the prefetcher no longer touches the layer's
// mappings and has dropped the pages it fetched.
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

func (f *prefetcher) run(layer int, w uint64, cur, prev *blockio.FileMap, stop, done chan struct{}) {
	defer close(done)
	// lastNeed[page] is the last node a held page was fetched for; needs
	// lists fetches in node order, to drop pages the hashing has passed.
	lastNeed := make(map[spilledPage]uint64)
	var needs []pageNeed
	// Advice is batched per mapping: one process_madvise call for many
	// scattered pages (index 0: cur, 1: prev).
	maps := [2]*blockio.FileMap{cur, prev}
	var fetch, evict [2][]int64
	flush := func(lists *[2][]int64, advice int) {
		for k := range lists {
			if len(lists[k]) > 0 {
				maps[k].AdvisePages(lists[k], advice) // best effort: a miss is a fault
				lists[k] = lists[k][:0]
			}
		}
	}
	drop := func(before uint64) {
		k := 0
		for k < len(needs) && needs[k].node < before {
			n := needs[k]
			if lastNeed[n.page] == n.node {
				evict[b2i(n.page.prev)] = append(evict[b2i(n.page.prev)], n.page.page)
				delete(lastNeed, n.page)
			}
			k++
		}
		needs = append(needs[:0], needs[k:]...)
		if len(evict[0])+len(evict[1]) >= evictBatchPages {
			flush(&evict, unix.MADV_PAGEOUT)
		}
	}
	defer func() {
		drop(^uint64(0))
		flush(&evict, unix.MADV_PAGEOUT)
	}()
	need := func(pg spilledPage, v uint64) {
		if _, held := lastNeed[pg]; !held {
			fetch[b2i(pg.prev)] = append(fetch[b2i(pg.prev)], pg.page)
			f.counts.prefetched.Add(1)
		}
		lastNeed[pg] = v
		needs = append(needs, pageNeed{page: pg, node: v})
	}

	// dropLate takes the place of need for nodes the hashing reached
	// first: it faulted their pages in itself, so they are only dropped.
	dropLate := func(pg spilledPage, _ uint64) {
		if _, held := lastNeed[pg]; !held {
			evict[b2i(pg.prev)] = append(evict[b2i(pg.prev)], pg.page)
			f.counts.late.Add(1)
		}
	}

	if err := f.stream.Rewind(); err != nil {
		return // the hasher reads the same file and will report it
	}
	wait := time.NewTimer(time.Hour)
	defer wait.Stop()
	exp := uint64(f.plan.Expander)
	npb := f.nodesPerBlock
	const labelsPerPage = blockio.PageSize / sdr.NodeSize
	var cold uint64
	for {
		first, parents, err := f.stream.Next()
		if err != nil {
			return
		}
		n := uint64(len(parents)) / sdr.Degree
		for i := uint64(0); i < n; i++ {
			v := first + i
			if v%32 == 0 {
				flush(&fetch, unix.MADV_WILLNEED)
			}
			for {
				pos := f.pos.Load()
				drop(pos)
				if v < pos+PrefetchAheadNodes {
					break
				}
				flush(&fetch, unix.MADV_WILLNEED)
				wait.Reset(50 * time.Microsecond)
				select {
				case <-stop:
					return
				case <-wait.C:
				}
			}
			// When the hashing got here first it faulted the pages in
			// itself: they are not fetched, only dropped like the others.
			use := need
			if v < f.pos.Load() {
				use = dropLate
			}
			ps := parents[i*sdr.Degree : (i+1)*sdr.Degree]
			vb := v / npb
			for s := 0; s < sdr.BaseDegree; s++ {
				if p := uint64(ps[s]); p/npb+w <= vb {
					use(spilledPage{page: int64(p / labelsPerPage)}, v)
					cold++
				}
			}
			if layer > 1 {
				for s := sdr.BaseDegree; s < sdr.Degree; s++ {
					if p := uint64(ps[s]); p/npb >= exp {
						use(spilledPage{prev: true, page: int64(p / labelsPerPage)}, v)
						cold++
					}
				}
			}
		}
		f.counts.labels.Add(cold)
		cold = 0
		select {
		case <-stop:
			return
		default:
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
