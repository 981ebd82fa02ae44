package tier

import (
	"context"
	"fmt"
	"sync/atomic"
)

// LayerView is where a job's hashing finds the blocks of one layer. The
// spill mechanism points each block either at DRAM or at the layer file's
// mapping; the hashing reads through the view and never knows which.
type LayerView interface {
	SetBlock(b int, block []byte)
}

// SpillCounters are what a batch's spilling jobs did, shared by them all.
// Each counter changes only inside the transition that it counts.
type SpillCounters struct {
	// Demotions counts blocks dropped from DRAM once written; Promotions
	// blocks read back into DRAM when a layer turned over.
	Demotions, Promotions atomic.Uint64
	// ColdReads counts parent labels that fell in a spilled part of a
	// layer; PrefetchedPages the pages asked for ahead of the hashing and
	// LatePages those the hashing reached first (it faulted them in).
	ColdReads, PrefetchedPages, LatePages atomic.Uint64
}

// JobSpillConfig describes one spilling job.
type JobSpillConfig struct {
	// Plan splits the job's DRAM blocks between the two layers.
	Plan SpillPlan
	// Slots are the job's DRAM blocks, Plan.Expander + Plan.Window of them,
	// each BlockSize bytes; the job owns them for its whole life.
	Slots [][]byte
	// ParentCache is the graph's parent cache, which the prefetcher walks
	// ahead of the hashing.
	ParentCache string
	// Nodes is the layer's node count; a block holds NodesPerBlock nodes
	// in BlockSize bytes.
	Nodes, NodesPerBlock, BlockSize uint64
	// Counters are the batch's.
	Counters *SpillCounters
}

// JobSpill is one spilling job's placement of its two layers: the first
// Plan.Expander blocks of the previous layer and a ring of Plan.Window
// blocks of the layer being written stay in DRAM (Slots); every other
// block is read through a read-only mapping of its layer file, which holds
// every label anyway, so spilling costs no extra writes. A written block
// leaves DRAM only after the layer file's writer has pushed it to the
// device and dropped it from the page cache, so a spilled label really is
// on the device only.
//
// A block's life: DRAM (a ring slot) -> demoted once written (its view
// points at the mapping) -> promoted at the layer's end if it falls in the
// expander share, else read from the mapping for the next layer -> gone
// when that layer ends. Counters change only in those transitions.
//
// A JobSpill is driven by one goroutine (the job's); only its prefetcher
// runs beside it.
type JobSpill struct {
	cfg                JobSpillConfig
	expSlots, winSlots [][]byte
	// ring is where the layer being written keeps its most recent blocks:
	// the window slots, and in layer 1, which has no expander layer to
	// hold, the expander slots too.
	ring [][]byte

	cur             LayerView
	curMap, prevMap *FileMap
	// acks counts blocks of the current layer written to the device (the
	// writer acks in order).
	acks     chan struct{}
	nWritten int

	pf *prefetcher
}

// NewJobSpill starts a job's spill placement.
func NewJobSpill(cfg JobSpillConfig) (*JobSpill, error) {
	plan := cfg.Plan
	if len(cfg.Slots) != plan.Expander+plan.Window {
		return nil, fmt.Errorf("spill: %d DRAM slots for a plan of %d expander and %d window blocks", len(cfg.Slots), plan.Expander, plan.Window)
	}
	s := &JobSpill{cfg: cfg, expSlots: cfg.Slots[:plan.Expander], winSlots: cfg.Slots[plan.Expander:]}
	pf, err := newPrefetcher(cfg.ParentCache, cfg.Nodes, cfg.NodesPerBlock, plan, cfg.Counters)
	if err != nil {
		return nil, err
	}
	s.pf = pf
	return s, nil
}

// StartLayer starts layer (from 1), written to the file at path (of
// blocks blocks, preallocated), whose blocks the hashing finds in cur.
func (s *JobSpill) StartLayer(layer int, path string, blocks int, cur LayerView) error {
	m, err := MapFile(path, int64(uint64(blocks)*s.cfg.BlockSize))
	if err != nil {
		return err
	}
	s.cur, s.curMap = cur, m
	s.acks = make(chan struct{}, blocks)
	s.nWritten = 0
	s.ring = s.winSlots
	if layer == 1 {
		s.ring = append(append([][]byte(nil), s.expSlots...), s.winSlots...)
	}
	s.pf.startLayer(layer, len(s.ring), s.curMap, s.prevMap)
	return nil
}

// PlaceBlock puts block b of the current layer in the ring slot of block
// b-len(ring), demoting that block: once its write is on the device
// (writeErr reports the writer's first error), its labels are read from
// the layer file.
func (s *JobSpill) PlaceBlock(ctx context.Context, b int, writeErr func() error) error {
	w := len(s.ring)
	if old := b - w; old >= 0 {
		for s.nWritten <= old {
			select {
			case <-s.acks:
				s.nWritten++
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		if err := writeErr(); err != nil {
			return err
		}
		s.cur.SetBlock(old, s.mapped(s.curMap, old))
		s.cfg.Counters.Demotions.Add(1)
	}
	s.cur.SetBlock(b, s.ring[b%w])
	return nil
}

// Written is the ack the layer file's writer calls once a block of the
// current layer is on the device.
func (s *JobSpill) Written() func() {
	acks := s.acks
	return func() { acks <- struct{}{} }
}

// Hashed tells the prefetcher where the hashing is: it keeps its reads
// ahead of that and drops the pages behind it.
func (s *JobSpill) Hashed(node uint64) { s.pf.pos.Store(node) }

// EndLayer is called once the current layer is committed. Unless it was
// the last, the layer becomes the next one's expander layer: its first
// Plan.Expander blocks are promoted into DRAM with sequential reads and
// the rest stay in its file; the view the layer was started with is
// pointed at them.
func (s *JobSpill) EndLayer(ctx context.Context, last bool) error {
	s.pf.stopLayer()
	var err error
	if s.prevMap != nil {
		err = s.prevMap.Close()
	}
	s.prevMap, s.curMap = s.curMap, nil
	if err != nil || last {
		return err
	}
	return s.promote(ctx, s.cur)
}

// LoadPrev maps a layer committed by an earlier run (the file at path, of
// blocks blocks) as the previous layer of a resumed job and promotes its
// first Plan.Expander blocks into prev, as EndLayer would have.
func (s *JobSpill) LoadPrev(ctx context.Context, path string, blocks int, prev LayerView) error {
	m, err := MapFile(path, int64(uint64(blocks)*s.cfg.BlockSize))
	if err != nil {
		return err
	}
	s.prevMap = m
	return s.promote(ctx, prev)
}

// promote reads the first Plan.Expander blocks of the layer mapped by
// prevMap into the expander slots, sequentially, and points next at them
// and at the mapping for the rest.
func (s *JobSpill) promote(ctx context.Context, next LayerView) error {
	blocks := len(s.prevMap.Bytes()) / int(s.cfg.BlockSize)
	for b := range blocks {
		if b < s.cfg.Plan.Expander {
			slot := s.expSlots[b]
			if err := s.prevMap.ReadAt(slot, int64(uint64(b)*s.cfg.BlockSize)); err != nil {
				return err
			}
			next.SetBlock(b, slot)
			s.cfg.Counters.Promotions.Add(1)
		} else {
			next.SetBlock(b, s.mapped(s.prevMap, b))
		}
	}
	return ctx.Err()
}

// mapped is block b of a mapped layer.
func (s *JobSpill) mapped(m *FileMap, b int) []byte {
	off := uint64(b) * s.cfg.BlockSize
	return m.Bytes()[off : off+s.cfg.BlockSize : off+s.cfg.BlockSize]
}

// Close stops the prefetcher and unmaps the layers. The views must no
// longer be read.
func (s *JobSpill) Close() {
	s.pf.close()
	if s.curMap != nil {
		s.curMap.Close()
	}
	if s.prevMap != nil {
		s.prevMap.Close()
	}
}
