package tier

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"golang.org/x/sys/unix"
)

// LayerView is where a job's hashing finds the blocks of one layer. The
// spill mechanism points each block either at DRAM (SetBlock) or at the
// device (SetCold): the hashing then asks ColdLabels for each label of
// that block it reads, in order.
type LayerView interface {
	SetBlock(b int, block []byte)
	SetCold(b int, cold *ColdLabels)
}

// SpillCounters are what a batch's spilling jobs did, shared by them all.
// Each counter changes only inside the transition that it counts.
type SpillCounters struct {
	// Demotions counts blocks dropped from DRAM once written; Promotions
	// blocks read back into DRAM when a layer turned over.
	Demotions, Promotions atomic.Uint64
	// ColdReads counts parent labels that fell in a spilled part of a
	// layer; PrefetchedPages the pages read for them (one read serves every
	// cold parent on the page in the look-ahead); LatePages the times the
	// hashing had to wait for a page (its read not finished, or not yet
	// asked for), LateNanos how long it waited.
	ColdReads, PrefetchedPages, LatePages, LateNanos atomic.Uint64
	// DeviceReads and DeviceReadBytes count the reads the jobs' readers
	// finished, DeviceReadCPUNanos the CPU their engines spent on them,
	// PeakInFlight the most reads one job had in flight, DeviceSyscalls
	// the io_uring_enter (or pread) calls they took.
	DeviceReads, DeviceReadBytes, DeviceReadCPUNanos, PeakInFlight, DeviceSyscalls atomic.Uint64
	// SpillWrites and SpillWriteBytes count the blocks batches wrote to
	// their spill files (single-sector jobs write none: their layer files
	// are their spill copies).
	SpillWrites, SpillWriteBytes atomic.Uint64
	// Engine names the readers' engine ("io_uring" or "pread"), and
	// EngineWarning why it is not io_uring when io_uring was not refused
	// by choice (the host disables it, say).
	Engine, EngineWarning atomic.Value
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
	// in BlockSize bytes (every lane's: a batch's blocks are node-major).
	Nodes, NodesPerBlock, BlockSize uint64
	// Lanes is the sectors the job labels together: 1 (or 0) reads
	// spilled labels back from the layer file, a batch of 2 to
	// MaxBatchLanes from spill files in SpillDirs (SpillLayout).
	Lanes int
	// SpillDirs are the directories a batch's spill files are striped
	// over, one per drive.
	SpillDirs []string
	// Counters are the batch's.
	Counters *SpillCounters
	// Reader shapes the job's device reader (engine, depth, fault seam);
	// its page size and buffer count are the spill tier's. Its Fault also
	// sees a batch's whole-block reads of its spill files (promotions).
	Reader DeviceReaderOptions
	// WriteFault, when set, sees every finished write to a batch's spill
	// files (bytes written, error) and may change both: the seam through
	// which tests fail spill writes.
	WriteFault func(path string, off int64, n int, err error) (int, error)
}

// JobSpill is one spilling job's placement of its two layers: the first
// Plan.Expander blocks of the previous layer and a ring of Plan.Window
// blocks of the layer being written stay in DRAM (Slots); every other
// block's labels are read from its layer file, which holds every label
// anyway, with O_DIRECT through the job's DeviceReader (ColdLabels), so
// spilling costs no extra writes. A written block leaves DRAM only after
// the layer file's writer has pushed it to the device and dropped it from
// the page cache, so a spilled label really is on the device only.
//
// A block's life: DRAM (a ring slot) -> demoted once written (its view
// marks it cold: ColdLabels serves its labels) -> promoted at the layer's
// end if it falls in the expander share, else read from the device for
// the next layer -> gone when that layer ends. Counters change only in
// those transitions.
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

	r    *DeviceReader
	cold *ColdLabels
	cur  LayerView
	// curFile and prevFile are the two layers' files in the reader;
	// prevPath is the previous layer's, read again to promote it.
	curFile, prevFile File
	prevPath          string
	hasPrev           bool
	// acks counts blocks of the current layer written to the device (the
	// writer acks in order).
	acks     chan struct{}
	nWritten int
	blocks   int
	// layer is the layer being written (0 before the first StartLayer).
	layer int

	// A batch's: its spill files' layout, the block mover and writer, and
	// the two layers' spill files.
	layout              SpillLayout
	bio                 *blockIO
	writer              *spillWriter
	curSpill, prevSpill *spillFiles
}

// batch reports whether the job is a batch, whose spilled labels live in
// spill files.
func (s *JobSpill) batch() bool { return s.layout.Lanes > 1 }

// NewJobSpill starts a job's spill placement.
func NewJobSpill(cfg JobSpillConfig) (*JobSpill, error) {
	plan := cfg.Plan
	if len(cfg.Slots) != plan.Expander+plan.Window {
		return nil, fmt.Errorf("spill: %d DRAM slots for a plan of %d expander and %d window blocks", len(cfg.Slots), plan.Expander, plan.Window)
	}
	s := &JobSpill{cfg: cfg, expSlots: cfg.Slots[:plan.Expander], winSlots: cfg.Slots[plan.Expander:]}
	s.layout = SpillLayout{Lanes: max(cfg.Lanes, 1), NodesPerBlock: cfg.NodesPerBlock, Stripes: max(len(cfg.SpillDirs), 1)}
	if s.batch() {
		if cfg.Lanes > MaxBatchLanes {
			return nil, fmt.Errorf("spill: a batch of %d sectors: at most %d", cfg.Lanes, MaxBatchLanes)
		}
		if len(cfg.SpillDirs) == 0 {
			return nil, errors.New("spill: a batch needs a spill directory")
		}
		bio, err := newBlockIO(s.layout)
		if err != nil {
			return nil, err
		}
		s.bio = bio
		s.writer = newSpillWriter(bio, plan.Expander+plan.Window)
	}
	ro := cfg.Reader
	ro.PageSize, ro.Buffers = PageSize, int(ReaderBufferBytes(cfg.Lanes)/PageSize)
	// Layer and spill files are read only where they are written, whole
	// pages: a short read would leave a label in a stale buffer's bytes.
	ro.FullPages = true
	if ro.Depth == 0 {
		ro.Depth = coldDepth
	}
	r, err := NewDeviceReader(ro)
	if err != nil {
		return nil, err
	}
	cfg.Counters.Engine.Store(r.Engine().String())
	if w := r.Warning(); w != "" {
		cfg.Counters.EngineWarning.Store(w)
	}
	cold, err := newColdLabels(r, cfg.ParentCache, cfg.Nodes, cfg.NodesPerBlock, plan, s.layout, cfg.Counters)
	if err != nil {
		r.Close()
		s.closeBatch()
		return nil, err
	}
	s.r, s.cold = r, cold
	return s, nil
}

// StartLayer starts layer (from 1), written to the file at path (of
// blocks blocks, preallocated), whose blocks the hashing finds in cur,
// from block start (a resumed layer's durable prefix is read back first).
func (s *JobSpill) StartLayer(layer int, path string, blocks, start int, cur LayerView) error {
	var curPages layerPages
	if s.batch() {
		sf, err := newSpillFiles(s.r, s.cfg.SpillDirs, layer, blocks, s.layout, s.faults())
		if err != nil {
			return err
		}
		s.curSpill, curPages.spill = sf, sf
	} else {
		f, err := s.openLayer(path)
		if err != nil {
			return err
		}
		s.curFile, curPages.file = f, f
	}
	s.cur = cur
	s.acks = make(chan struct{}, blocks)
	s.nWritten, s.blocks, s.layer = 0, blocks, layer
	s.ring = s.winSlots
	if layer == 1 {
		s.ring = append(append([][]byte(nil), s.expSlots...), s.winSlots...)
	}
	s.cold.startLayer(layer, uint64(start)*s.cfg.NodesPerBlock, len(s.ring), curPages, s.prevPages())
	return nil
}

// faults are the seams of the job's spill files.
func (s *JobSpill) faults() spillFaults {
	return spillFaults{write: s.cfg.WriteFault, read: s.cfg.Reader.Fault}
}

func (s *JobSpill) prevPages() layerPages {
	if s.batch() {
		return layerPages{spill: s.prevSpill}
	}
	return layerPages{file: s.prevFile}
}

// SpillBlock hands a batch's block b of the current layer, whose labels
// are final, to the spill writer; it is acked (Written's count) once on
// the device. A single-sector job's layer file writer acks instead. A
// block that stays in its expander slot into the next layer (keptInPlace)
// is never read from the spill file: it is acked in its turn, unwritten.
func (s *JobSpill) SpillBlock(b int) {
	if !s.batch() {
		return
	}
	if s.keptInPlace(b) {
		s.writer.jobs <- spillWrite{sf: s.curSpill, b: b, ack: s.Written()}
		return
	}
	s.writer.jobs <- spillWrite{sf: s.curSpill, b: b, block: s.ring[b%len(s.ring)], ack: s.Written()}
	s.cfg.Counters.SpillWrites.Add(1)
	s.cfg.Counters.SpillWriteBytes.Add(s.layout.PagesPerBlock() * PageSize)
}

// keptInPlace reports whether block b of the layer being written is
// still in DRAM when the layer ends, in the expander slot the next layer
// keeps it in: in layer 1 the ring starts with the expander slots, so
// block b < Plan.Expander sits in expSlots[b], and stays there unless a
// later block of the ring's cycle takes the slot. Where DRAM holds a whole
// layer 1 (1.1 x S per sector, say), that spares writing layer 1 to the
// spill files and reading it back at its end.
func (s *JobSpill) keptInPlace(b int) bool {
	return s.layer == 1 && b < len(s.expSlots) && b+len(s.ring) >= s.blocks
}

// PlaceBlock puts block b of the current layer in the ring slot of block
// b-len(ring), demoting that block: once its write is on the device and
// beforeReuse(old) says the slot's bytes may change (and reports the
// labeler's first write error), its labels are read from the device.
func (s *JobSpill) PlaceBlock(ctx context.Context, b int, beforeReuse func(old int) error) error {
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
		if err := beforeReuse(old); err != nil {
			return err
		}
		if s.batch() {
			if err := s.writer.Err(); err != nil {
				return err
			}
		}
		s.cur.SetCold(old, s.cold)
		s.cfg.Counters.Demotions.Add(1)
	}
	s.cur.SetBlock(b, s.ring[b%w])
	return nil
}

// Written is the ack the layer file's writer calls once a block of the
// current layer is on the device.
func (s *JobSpill) Written() func() {
	acks, written := s.acks, &s.cold.written
	return func() {
		written.Add(1)
		acks <- struct{}{}
	}
}

// Hashed tells the prefetcher the hashing has labeled every node before
// node: the pages only those nodes read go back to the reader, and the
// look-ahead moves on. It returns the first error of the layer's cold
// reads: the labels of a block whose parents could not be read (computed
// from zeros) must not be written.
func (s *JobSpill) Hashed(node uint64) error {
	s.cold.Passed(node)
	return s.cold.Err()
}

// EndLayer is called once the current layer is committed under the name
// path. Unless it was the last, the layer becomes the next one's expander
// layer: its first Plan.Expander blocks are promoted into DRAM with
// sequential reads and the rest are read from its file; the view the layer
// was started with is pointed at them.
func (s *JobSpill) EndLayer(ctx context.Context, path string, last bool) error {
	if s.batch() {
		return s.endBatchLayer(ctx, last)
	}
	s.cold.stopLayer()
	err := s.r.CloseFile(s.curFile)
	if s.hasPrev {
		err = errors.Join(err, s.r.CloseFile(s.prevFile))
	}
	s.hasPrev = false
	if err != nil || last {
		return err
	}
	// Opened again under its committed name, which its errors then give.
	f, err := s.openLayer(path)
	if err != nil {
		return err
	}
	s.prevFile, s.prevPath, s.hasPrev = f, path, true
	return s.promote(ctx, s.cur)
}

// LoadPrev opens a layer committed by an earlier run (the file at path) as
// the previous layer of a resumed job and promotes its first
// Plan.Expander blocks into prev, as EndLayer would have.
func (s *JobSpill) LoadPrev(ctx context.Context, path string, prev LayerView) error {
	f, err := s.openLayer(path)
	if err != nil {
		return err
	}
	s.prevFile, s.prevPath, s.hasPrev = f, path, true
	return s.promote(ctx, prev)
}

// endBatchLayer waits for the layer's spill writes, drops the previous
// layer's spill files and, unless the layer was the last, promotes the
// first Plan.Expander blocks of this one from its spill files.
func (s *JobSpill) endBatchLayer(ctx context.Context, last bool) error {
	for s.nWritten < s.blocks {
		select {
		case <-s.acks:
			s.nWritten++
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	s.cold.stopLayer()
	err := errors.Join(s.writer.Err(), s.prevSpill.close(s.r))
	s.prevSpill = nil
	if err != nil || last {
		return errors.Join(err, s.curSpill.close(s.r))
	}
	s.prevSpill, s.curSpill = s.curSpill, nil
	return s.promoteBatch(ctx, s.cur)
}

// promoteBatch reads the first Plan.Expander blocks of the previous
// layer's spill files into the expander slots and points next at them,
// and at the device for the rest.
func (s *JobSpill) promoteBatch(ctx context.Context, next LayerView) error {
	blocks := int(s.cfg.Nodes / s.cfg.NodesPerBlock)
	for b := range blocks {
		if b >= s.cfg.Plan.Expander {
			next.SetCold(b, s.cold)
			continue
		}
		if s.keptInPlace(b) {
			next.SetBlock(b, s.expSlots[b])
			continue
		}
		if err := s.bio.read(s.prevSpill, b, s.expSlots[b]); err != nil {
			return fmt.Errorf("spill file for layer %d, block %d: %w", s.prevSpill.layer, b, err)
		}
		next.SetBlock(b, s.expSlots[b])
		s.cfg.Counters.Promotions.Add(1)
	}
	return ctx.Err()
}

// LoadBatchPrev rebuilds, for a batch resumed after layer, that layer's
// spill files from its layer files (spill files never outlive a run):
// fill puts block b's records, node-major, in the buffer it is given.
// Its first Plan.Expander blocks stay in DRAM, as EndLayer would have
// left them.
func (s *JobSpill) LoadBatchPrev(ctx context.Context, layer int, fill func(b int, block []byte) error, prev LayerView) error {
	blocks := int(s.cfg.Nodes / s.cfg.NodesPerBlock)
	sf, err := newSpillFiles(s.r, s.cfg.SpillDirs, layer, blocks, s.layout, s.faults())
	if err != nil {
		return err
	}
	s.prevSpill = sf
	for b := range blocks {
		// The window's slots are free until the next layer starts.
		block := s.winSlots[0]
		if b < s.cfg.Plan.Expander {
			block = s.expSlots[b]
		}
		if err := fill(b, block); err != nil {
			return err
		}
		if err := s.bio.write(sf, b, block); err != nil {
			return fmt.Errorf("spill file for layer %d, block %d: %w", layer, b, err)
		}
		s.cfg.Counters.SpillWrites.Add(1)
		s.cfg.Counters.SpillWriteBytes.Add(s.layout.PagesPerBlock() * PageSize)
		if b < s.cfg.Plan.Expander {
			prev.SetBlock(b, block)
			s.cfg.Counters.Promotions.Add(1)
		} else {
			prev.SetCold(b, s.cold)
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
	}
	return nil
}

// openLayer opens a layer file in the reader, saying what to do where the
// filesystem refuses O_DIRECT.
func (s *JobSpill) openLayer(path string) (File, error) {
	f, err := s.r.Open(path)
	if errors.Is(err, unix.EINVAL) {
		return f, fmt.Errorf("spill: %w: the spill tier reads spilled labels with O_DIRECT, which this filesystem refuses; put the output on a disk filesystem (ext4, xfs) or give the seal enough DRAM not to spill", err)
	}
	return f, err
}

// promote reads the first Plan.Expander blocks of the previous layer into
// the expander slots, sequentially, leaving nothing in the page cache, and
// points next at them and at the device for the rest.
func (s *JobSpill) promote(ctx context.Context, next LayerView) error {
	blocks := int(s.cfg.Nodes / s.cfg.NodesPerBlock)
	f, err := blockio.OpenLayerUncached(s.prevPath, s.cfg.Nodes*sdr.NodeSize)
	if err != nil {
		return err
	}
	defer f.Close()
	for b := range blocks {
		if b >= s.cfg.Plan.Expander {
			next.SetCold(b, s.cold)
			continue
		}
		slot := s.expSlots[b]
		if s.keptInPlace(b) {
			next.SetBlock(b, slot)
			continue
		}
		if err := f.ReadAt(slot, int64(uint64(b)*s.cfg.BlockSize)); err != nil {
			return err
		}
		next.SetBlock(b, slot)
		s.cfg.Counters.Promotions.Add(1)
	}
	return ctx.Err()
}

// Close stops the prefetcher, closes the reader and adds its figures to
// the batch's counters. The views must no longer be read.
func (s *JobSpill) Close() {
	s.cold.close()
	s.closeBatch()
	st := s.r.Stats()
	c := s.cfg.Counters
	c.DeviceReads.Add(st.Reads)
	c.DeviceReadBytes.Add(st.Bytes)
	c.DeviceReadCPUNanos.Add(uint64(st.EngineCPU))
	c.DeviceSyscalls.Add(st.Syscalls)
	c.LatePages.Add(st.Waits + s.cold.lateWaits)
	c.LateNanos.Add(uint64(st.WaitTime + s.cold.lateTime))
	for {
		peak := c.PeakInFlight.Load()
		if uint64(st.PeakInFlight) <= peak || c.PeakInFlight.CompareAndSwap(peak, uint64(st.PeakInFlight)) {
			break
		}
	}
	s.r.Close()
}

// closeBatch stops a batch's spill writer and unmaps its staging buffer;
// the spill files close with the reader.
func (s *JobSpill) closeBatch() {
	if s.writer != nil {
		s.writer.close()
		s.writer = nil
	}
	if s.bio != nil {
		s.bio.close()
		s.bio = nil
	}
}
