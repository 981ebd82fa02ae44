package labeler

import (
	"sync"

	"github.com/pc1-tiered/pc1-tiered/pool"
)

// Live lets a caller watch a batch while it runs (metrics, a dashboard):
// pass one in Config.Live and call its methods from any goroutine. Before
// the batch starts and after it ends they report zeros.
type Live struct {
	mu    sync.Mutex
	pool  *pool.Pool
	spill *spillConfig
}

// LiveCounts is a snapshot of a running batch.
type LiveCounts struct {
	// PoolBytes is the pool's size; PoolInUseBytes what jobs hold now.
	PoolBytes, PoolInUseBytes uint64
	// Spill counters (zero without the spill tier): blocks dropped from
	// DRAM once written and promoted back at layer turnovers, parent labels
	// read from spilled parts of layers, pages the hashing reached before
	// the prefetcher, pages read from the device for spilled labels, and
	// bytes batches wrote to their spill files.
	Demotions, Promotions, ColdReads, LatePages, PagesRead, SpillFileBytes uint64
}

func (l *Live) attach(p *pool.Pool, spill *spillConfig) {
	l.mu.Lock()
	l.pool, l.spill = p, spill
	l.mu.Unlock()
}

// Counts returns the batch's counters now.
func (l *Live) Counts() LiveCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	var c LiveCounts
	if l.pool != nil {
		s := l.pool.Stats()
		c.PoolBytes = uint64(s.Blocks) * s.BlockSize
		c.PoolInUseBytes = uint64(s.InUse) * s.BlockSize
	}
	if sp := l.spill; sp != nil {
		c.Demotions, c.Promotions = sp.counters.Demotions.Load(), sp.counters.Promotions.Load()
		c.ColdReads, c.LatePages = sp.counters.ColdReads.Load(), sp.counters.LatePages.Load()
		c.PagesRead, c.SpillFileBytes = sp.counters.PrefetchedPages.Load(), sp.counters.SpillWriteBytes.Load()
	}
	return c
}
