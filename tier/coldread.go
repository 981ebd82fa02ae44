package tier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/sdr"
)

const (
	// PrefetchAheadNodes is how far ahead of the hashing the prefetcher
	// reads spilled pages: at ~0.5-3 cold pages per node, some 250-1500
	// reads a job keeps asked for, enough to keep the device's queue full,
	// and a bound on the buffers they hold (at most ~6 MiB a job).
	PrefetchAheadNodes = 512
	// coldBatchNodes is how many nodes' cold parents the prefetcher hands
	// the hashing at once: one channel operation per batch, not per page.
	coldBatchNodes = 32
	// coldSubmit is the most reads handed to the reader in one call: the
	// engine submits (and the kernel starts) them together.
	coldSubmit = 32
	// coldDepth is the reads a job's reader keeps at the kernel. The
	// development VM's virtual disk wants deep queues: 4 x 64 MiB sectors,
	// 4 layers at 1.1 x S per sector labeled 220K nodes/s at depth 32, 286K
	// at 128 and 307K at 256 (one run each, same hour).
	coldDepth = 256
	// PassStepNodes is how often (in nodes) the hashing reports where it
	// is (JobSpill.Hashed): the pages of the nodes it passed go back to the
	// reader then, so this bounds the pages the hashing holds.
	PassStepNodes = 64
	// coldHeldPages bounds the pages the prefetcher holds for its
	// look-ahead, whatever the share of cold parents: a layer all on the
	// device asks up to 14 pages per node.
	coldHeldPages = 1024
	// batchStepScale scales coldHeldPages for batches, whose hashers
	// synchronise at every step: the pages a step's cold parents read
	// are held until its slowest hasher is past them.
	batchStepScale = 4
	// batchStepNodes is the longest step of a batch: up to 1024 nodes,
	// cut short where its cold parents would fill half the held pages
	// (BatchStepColdParents). A step of 256 nodes labeled a batch of 64
	// spilling at 1.1 x S 5% faster than one of 64 (2.24M against 2.13M
	// labels/s, 64 x 16 MiB); up to 1024 measured the same as 256 (2.35M
	// against 2.33M, medians of 4 alternating runs) with 80-90% fewer
	// late pages, and a dense batch no longer outgrows the held pages.
	batchStepNodes = 1024
)

// PassStep is how often (in nodes) the hashing of a job of lanes sectors
// reports where it is (JobSpill.Hashed): at most that many nodes for a
// batch, whose steps also end where BatchStepColdParents says.
func PassStep(lanes int) uint64 {
	if lanes > 1 {
		return batchStepNodes
	}
	return PassStepNodes
}

// BatchStepColdParents is the most cold parents (parents in blocks on the
// device) a batch's step may have: a step's pages are held until its
// slowest hasher, which may lag the job by one step, is past them, so two
// steps' pages must fit in the held pages, or the prefetcher would stop
// short of a page the hashing waits for.
func BatchStepColdParents() int { return heldPages(2)/2 - sdr.Degree }

// prefetchAhead is how far ahead of the position the hashing reports the
// prefetcher reads: a batch reports the start of the step its slowest
// hasher is on, one step behind the job's own lanes, and the job then
// starts the step after, so the look-ahead covers three steps before it
// reaches past them (and the held pages bound it where cold parents are
// dense).
func prefetchAhead(lanes int) uint64 {
	if lanes > 1 {
		return PrefetchAheadNodes + 3*batchStepNodes
	}
	return PrefetchAheadNodes
}

// heldPages bounds the pages the prefetcher of a job of lanes sectors
// holds.
func heldPages(lanes int) int {
	if lanes > 1 {
		return batchStepScale * coldHeldPages
	}
	return coldHeldPages
}

// ReaderBufferBytes is the DRAM the device reader of a spilling job of
// lanes sectors maps for its page buffers, outside the pool (plan counts
// it): 4.2 MiB for one sector, 16.2 MiB for a batch. They are the pages the
// prefetcher holds (at most heldPages before a node, whose parents add at
// most sdr.Degree) and a submission's worth of slack, so that ReadBatch
// never waits for a buffer only the prefetcher itself could free.
func ReaderBufferBytes(lanes int) uint64 {
	return uint64(heldPages(lanes)+sdr.Degree+coldSubmit) * PageSize
}

// coldEntry is one spilled parent of one node, in the order the hashing
// reads them: its page, and where in it the label is.
type coldEntry struct {
	node uint64
	page Page
	off  uint32
}

// coldBatch is a run of consecutive nodes' cold parents, or the error that
// ended the prefetch.
type coldBatch struct {
	entries []coldEntry
	err     error
}

// ColdLabels is where a spilling job's hashing finds the labels of its
// spilled parents. A prefetcher goroutine walks the parent cache
// PrefetchAheadNodes ahead of the hashing, picks the parents that fall in
// spilled blocks (the same rule the hashing's view follows), reads each
// distinct 4 KiB page once for its whole look-ahead with O_DIRECT through
// a DeviceReader (batched through io_uring where the host allows), and
// hands the hashing, node by node, the page and offset of every spilled
// parent in the order the hashing asks for them. The hashing waits only
// for a page that is late. Pages are the reader's buffers, counted and
// bounded: nothing is in the page cache, and each buffer goes back to the
// reader once the hashing has passed the last node that read it.
//
// Next is called by the hashing goroutine only; Passed by the job's
// goroutine (the same one). The prefetcher owns everything else.
type ColdLabels struct {
	r *DeviceReader
	// cur and prev are where the two layers' spilled pages are (prev
	// unused in layer 1, which reads no previous layer).
	cur, prev layerPages
	layout    SpillLayout

	stream        *blockio.ParentStream
	nodes         uint64
	nodesPerBlock uint64
	plan          SpillPlan
	counts        *SpillCounters

	// The layer the prefetcher is on.
	batches chan coldBatch
	stop    chan struct{}
	done    chan struct{}
	pos     atomic.Uint64
	// written counts the blocks of the layer being written that are on
	// the device (its writer acks them in order). A page of this layer is
	// read only once its block is: read earlier, its bytes would be what
	// the device held before the write.
	written atomic.Uint64

	// The hashing's side: the batch it reads (next entry at at).
	batch coldBatch
	at    int
	err   error
	zero  [sdr.NodeSize]byte
	// lateWaits and lateTime count the hashing's waits for a batch the
	// prefetcher had not handed over yet (the job's goroutine only).
	lateWaits uint64
	lateTime  time.Duration
}

// layerPages is where one layer's spilled pages are: its layer file (a
// single sector's) or its spill files (a batch's).
type layerPages struct {
	file  File
	spill *spillFiles
}

// at is the file and offset of page p.
func (lp layerPages) at(p uint64) (File, int64) {
	if lp.spill != nil {
		return lp.spill.page(p)
	}
	return lp.file, int64(p) * PageSize
}

func newColdLabels(r *DeviceReader, parentCache string, nodes, nodesPerBlock uint64, plan SpillPlan, layout SpillLayout, counts *SpillCounters) (*ColdLabels, error) {
	// The prefetcher needs no speed, only little memory: small chunks.
	s, err := blockio.OpenParentStream(parentCache, nodes, 4<<10, 1)
	if err != nil {
		return nil, fmt.Errorf("prefetcher: %w", err)
	}
	return &ColdLabels{r: r, stream: s, nodes: nodes, nodesPerBlock: nodesPerBlock, plan: plan, layout: layout, counts: counts}, nil
}

// startLayer starts reading ahead for layer from node start (a resumed
// layer starts past its durable prefix), with the most recent window
// blocks of the layer in DRAM; cur and prev are the layer files opened in
// the reader.
func (c *ColdLabels) startLayer(layer int, start uint64, window int, cur, prev layerPages) {
	c.cur, c.prev = cur, prev
	c.pos.Store(start)
	c.written.Store(0)
	c.batch, c.at, c.err = coldBatch{}, 0, nil
	c.batches = make(chan coldBatch, prefetchAhead(c.layout.Lanes)/coldBatchNodes+1)
	c.stop = make(chan struct{})
	c.done = make(chan struct{})
	go c.run(layer, start, uint64(window), c.stop, c.done)
}

// stopLayer returns once the prefetcher has stopped and every page of the
// layer is back with the reader.
func (c *ColdLabels) stopLayer() {
	if c.stop == nil {
		return
	}
	close(c.stop)
	<-c.done // the prefetcher released every page it held
	c.stop = nil
	for range c.batches {
	}
	c.batch = coldBatch{}
}

func (c *ColdLabels) close() {
	c.stopLayer()
	c.stream.Close()
}

// Next returns the address of the label of the next spilled parent the
// hashing reads, a parent of node v. On a read error it returns the
// address of a zero label and keeps the error for Err: the hashing loop
// makes no error checks, its caller does, before anything it labeled is
// written.
//
// This is on the hot path: it allocates nothing.
func (c *ColdLabels) Next(v uint64) uintptr {
	for c.at == len(c.batch.entries) {
		if c.err != nil {
			return uintptr(unsafe.Pointer(&c.zero[0]))
		}
		var ok bool
		select {
		case c.batch, ok = <-c.batches:
		default:
			// The prefetcher is behind the hashing.
			start := time.Now()
			c.batch, ok = <-c.batches
			c.lateTime += time.Since(start)
			c.lateWaits++
		}
		c.at = 0
		if !ok {
			// Only a stopped layer closes the channel; a hashing still
			// asking is a bug, and must not spin or read freed pages.
			c.batch.err = errors.New("spill: the prefetcher stopped before the hashing was done")
		}
		if c.batch.err != nil {
			c.err = c.batch.err
			c.batch.entries = nil
		}
	}
	e := c.batch.entries[c.at]
	c.at++
	if e.node != v {
		// The prefetcher and the hashing disagree about which parents are
		// spilled: a bug, and labels would be wrong. Stop the job.
		c.err = fmt.Errorf("spill: prefetched a cold parent of node %d where the hashing reads one of node %d", e.node, v)
		return uintptr(unsafe.Pointer(&c.zero[0]))
	}
	b, err := c.r.Wait(e.page)
	if err != nil {
		c.err = err
		return uintptr(unsafe.Pointer(&c.zero[0]))
	}
	return uintptr(unsafe.Pointer(&b[e.off]))
}

// Passed tells the prefetcher the hashing has labeled every node before v:
// it releases the pages only those nodes read, and the look-ahead moves
// on. Entries hold no reference of their own: the prefetcher's one
// reference per page lasts until the hashing passes the page's last
// reader, one lock per page instead of three per parent.
func (c *ColdLabels) Passed(v uint64) { c.pos.Store(v) }

// Err is the first error of the layer's cold reads.
func (c *ColdLabels) Err() error { return c.err }

// pageKey names one page of one of the two layer files, as read for the
// labels of one block: with blocks smaller than a page, a page read for
// one block holds stale bytes of the next ones, not yet written.
type pageKey struct {
	prev  bool
	block int64
	page  int64
}

func (c *ColdLabels) run(layer int, start, w uint64, stop, done chan struct{}) {
	defer close(done)
	defer close(c.batches)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	p := coldPrefetch{c: c, ctx: ctx, stop: stop, held: make(map[pageKey]heldPage), first: start}
	defer p.drop(^uint64(0))
	if err := p.walk(layer, start, w); err != nil && !errors.Is(err, errStopped) {
		// Pages handed over before the error stay until the layer stops.
		if p.send(coldBatch{err: err}) == nil {
			<-stop
		}
	}
}

// errStopped ends a prefetch whose layer was stopped.
var errStopped = errors.New("prefetch stopped")

// coldPrefetch is the prefetcher goroutine's state for one layer.
type coldPrefetch struct {
	c    *ColdLabels
	ctx  context.Context
	stop chan struct{}

	// held are the pages the prefetcher holds a reference on; order[head:]
	// lists them by the node that last asked, to drop those the hashing
	// passed. drop runs for every node walked: moving the tens of
	// thousands of entries left down each time it dropped one took 0.8 s
	// of a 41 s run (64 x 16 MiB at 1.1 x S), so the front only moves and
	// the slice is compacted once half of it is dropped.
	held  map[pageKey]heldPage
	order []pageNeed
	head  int
	// entries are the cold parents of nodes [first, ...) not handed over
	// yet; pending those whose page is in the submission being built.
	entries []coldEntry
	pending []pendingEntry
	reqs    []PageRead
	keys    []pageKey
	pages   [coldSubmit]Page
	first   uint64
	cold    uint64
}

type pageNeed struct {
	key  pageKey
	node uint64
}

type pendingEntry struct {
	entry int
	key   pageKey
}

// heldPage is a page the prefetcher holds a reference on (asked: its read
// was submitted, so page is valid), with the last node of the look-ahead
// that reads it.
type heldPage struct {
	page  Page
	asked bool
	last  uint64
}

func (p *coldPrefetch) walk(layer int, start, w uint64) error {
	c := p.c
	if err := c.stream.Rewind(); err != nil {
		return fmt.Errorf("prefetcher: %w", err)
	}
	wait := time.NewTimer(time.Hour)
	defer wait.Stop()
	exp := uint64(c.plan.Expander)
	npb := c.nodesPerBlock
	for {
		chunkFirst, parents, err := c.stream.Next()
		if errors.Is(err, io.EOF) {
			if err := p.flush(c.nodes); err != nil {
				return err
			}
			// The pages stay until the hashing has passed their readers:
			// entries hold no reference of their own.
			for {
				p.drop(c.pos.Load())
				wait.Reset(50 * time.Microsecond)
				select {
				case <-p.stop:
					return errStopped
				case <-wait.C:
				}
			}
		}
		if err != nil {
			return fmt.Errorf("prefetcher: %w", err)
		}
		n := uint64(len(parents)) / sdr.Degree
		for i := uint64(0); i < n; i++ {
			v := chunkFirst + i
			if v < start {
				continue
			}
			if v-p.first >= coldBatchNodes {
				if err := p.flush(v); err != nil {
					return err
				}
			}
			vb := v / npb
			for {
				pos := c.pos.Load()
				p.drop(pos)
				// Node v's cold base parents lie in blocks up to vb - w,
				// which must be on the device before they are read; the
				// hashing's own placement waits for the same writes, so
				// this never waits for the hashing to pass v.
				if v < pos+prefetchAhead(c.layout.Lanes) && len(p.held) < heldPages(c.layout.Lanes) && vb < c.written.Load()+w {
					break
				}
				// Ahead enough: hand over what is ready and wait.
				if err := p.flush(v); err != nil {
					return err
				}
				wait.Reset(20 * time.Microsecond)
				select {
				case <-p.stop:
					return errStopped
				case <-wait.C:
				}
			}
			ps := parents[i*sdr.Degree : (i+1)*sdr.Degree]
			for s := 0; s < sdr.BaseDegree; s++ {
				if q := uint64(ps[s]); q/npb+w <= vb {
					p.use(false, q, v)
				}
			}
			if layer > 1 {
				for s := sdr.BaseDegree; s < sdr.Degree; s++ {
					if q := uint64(ps[s]); q/npb >= exp {
						p.use(true, q, v)
					}
				}
			}
			if len(p.reqs) > coldSubmit-sdr.Degree {
				if err := p.submit(); err != nil {
					return err
				}
			}
		}
		c.counts.ColdReads.Add(p.cold)
		p.cold = 0
		select {
		case <-p.stop:
			return errStopped
		default:
		}
	}
}

// use adds the cold parent q of node v, of the previous layer or the
// current one.
func (p *coldPrefetch) use(prev bool, q, v uint64) {
	page, off := p.c.layout.Locate(q)
	k := pageKey{prev: prev, block: int64(q / p.c.nodesPerBlock), page: int64(page)}
	e := coldEntry{node: v, off: off}
	h, ok := p.held[k]
	switch {
	case !ok:
		f, foff := p.c.pagesOf(prev).at(page)
		p.reqs = append(p.reqs, PageRead{File: f, Off: foff})
		p.keys = append(p.keys, k)
		fallthrough
	case !h.asked:
		p.pending = append(p.pending, pendingEntry{entry: len(p.entries), key: k})
	default:
		e.page = h.page
	}
	h.last = v
	p.held[k] = h
	p.order = append(p.order, pageNeed{key: k, node: v})
	p.entries = append(p.entries, e)
	p.cold++
}

// submit asks for the pages collected so far and gives their entries a
// reference each.
func (p *coldPrefetch) submit() error {
	if len(p.reqs) == 0 {
		return nil
	}
	r := p.c.r
	pages := p.pages[:len(p.reqs)]
	if err := r.ReadBatch(p.ctx, p.reqs, pages); err != nil {
		// The job fails (or its layer was stopped); the pages this batch
		// got go back when the reader closes.
		if p.ctx.Err() != nil {
			return errStopped
		}
		return err
	}
	p.c.counts.PrefetchedPages.Add(uint64(len(p.reqs)))
	for i, k := range p.keys {
		h := p.held[k]
		h.page, h.asked = pages[i], true
		p.held[k] = h
	}
	for _, pe := range p.pending {
		p.entries[pe.entry].page = p.held[pe.key].page
	}
	p.reqs, p.keys, p.pending = p.reqs[:0], p.keys[:0], p.pending[:0]
	return nil
}

// flush hands the hashing the cold parents of the nodes before end.
func (p *coldPrefetch) flush(end uint64) error {
	if err := p.submit(); err != nil {
		return err
	}
	if err := p.send(coldBatch{entries: p.entries}); err != nil {
		p.entries = nil
		return err
	}
	p.entries, p.first = nil, end
	return nil
}

func (p *coldPrefetch) send(b coldBatch) error {
	select {
	case p.c.batches <- b:
		return nil
	case <-p.stop:
		return errStopped
	}
}

// drop releases the pages no node from before on reads.
func (p *coldPrefetch) drop(before uint64) {
	k := p.head
	for k < len(p.order) && p.order[k].node < before {
		n := p.order[k]
		if h, ok := p.held[n.key]; ok && h.last == n.node {
			if h.asked {
				p.c.r.Release(h.page)
			}
			delete(p.held, n.key)
		}
		k++
	}
	switch {
	case k == len(p.order):
		p.order, p.head = p.order[:0], 0
	case k > len(p.order)/2:
		p.order, p.head = p.order[:copy(p.order, p.order[k:])], 0
	default:
		p.head = k
	}
}

func (c *ColdLabels) pagesOf(prev bool) layerPages {
	if prev {
		return c.prev
	}
	return c.cur
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// PageSize is the unit in which spilled labels are read back: one O_DIRECT
// read, one reader buffer.
const PageSize = 4096
