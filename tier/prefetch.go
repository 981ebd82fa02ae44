package tier

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"golang.org/x/sys/unix"
)

const (
	// PrefetchAheadNodes is how far ahead of the hashing the prefetcher
	// asks for spilled pages: enough reads in flight to keep the device
	// busy (about half a cold read per node: some 500 per job), and a bound
	// on the page cache the job's spilled reads hold (about 2 MiB).
	PrefetchAheadNodes = 1 << 10
	// evictBatchPages is how many passed pages the prefetcher collects
	// before dropping them in one call.
	evictBatchPages = 64
)

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
	plan          SpillPlan
	counts        *SpillCounters

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

func newPrefetcher(parentCache string, nodes, nodesPerBlock uint64, plan SpillPlan, counts *SpillCounters) (*prefetcher, error) {
	// The prefetcher needs no speed, only little memory: small chunks.
	s, err := blockio.OpenParentStream(parentCache, nodes, 4<<10, 1)
	if err != nil {
		return nil, fmt.Errorf("prefetcher: %w", err)
	}
	return &prefetcher{stream: s, nodesPerBlock: nodesPerBlock, plan: plan, counts: counts}, nil
}

// startLayer starts prefetching a layer whose most recent window blocks
// stay in DRAM.
func (f *prefetcher) startLayer(layer, window int, cur, prev *FileMap) {
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

func (f *prefetcher) run(layer int, w uint64, cur, prev *FileMap, stop, done chan struct{}) {
	defer close(done)
	// lastNeed[page] is the last node a held page was fetched for; needs
	// lists fetches in node order, to drop pages the hashing has passed.
	lastNeed := make(map[spilledPage]uint64)
	var needs []pageNeed
	// Advice is batched per mapping: one process_madvise call for many
	// scattered pages (index 0: cur, 1: prev).
	maps := [2]*FileMap{cur, prev}
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
			f.counts.PrefetchedPages.Add(1)
		}
		lastNeed[pg] = v
		needs = append(needs, pageNeed{page: pg, node: v})
	}

	// dropLate takes the place of need for nodes the hashing reached
	// first: it faulted their pages in itself, so they are only dropped.
	dropLate := func(pg spilledPage, _ uint64) {
		if _, held := lastNeed[pg]; !held {
			evict[b2i(pg.prev)] = append(evict[b2i(pg.prev)], pg.page)
			f.counts.LatePages.Add(1)
		}
	}

	if err := f.stream.Rewind(); err != nil {
		return // the hasher reads the same file and will report it
	}
	wait := time.NewTimer(time.Hour)
	defer wait.Stop()
	exp := uint64(f.plan.Expander)
	npb := f.nodesPerBlock
	const labelsPerPage = PageSize / sdr.NodeSize
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
		f.counts.ColdReads.Add(cold)
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
