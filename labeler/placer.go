package labeler

import (
	"context"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/pool"
)

// placer decides where the blocks of the two layers a job reads live.
type placer interface {
	// startLayer is called before the first block of a layer.
	startLayer(ctx context.Context, layer, startBlock int) error
	// placeBlock makes block b of the current layer writable in cur.
	placeBlock(ctx context.Context, b int) error
	// done is called once block b's labels are final (hashed, or read
	// back by a resumed run), before the layer files are written.
	done(b int)
	// written returns the ack for block b's write to the layer file, or nil.
	written(b int) func()
	// hashed is called as labeling passes node: every tier.PassStep nodes
	// with a spill tier (a batch's steps end sooner where their cold
	// parents reach tier.BatchStepColdParents), and at the end of every
	// block before it is written. An error means the labels since the last call are wrong.
	hashed(node uint64) error
	// endLayer is called once the layer file is committed.
	endLayer(ctx context.Context, layer int) error
	// loadPrev makes the committed layer the previous layer (prev) of a
	// job resumed after it.
	loadPrev(ctx context.Context, layer int) error
}

// poolPlacer keeps both layers in pool blocks in DRAM: a block of the
// current layer is acquired as labeling reaches it, and the previous
// layer's blocks are released when the layer is done. A lockstep group's
// pool blocks hold one block of each lane, lane s at s x BlockSize.
type poolPlacer struct {
	run             *run
	js              *jobState
	job             *pool.Job
	curIDs, prevIDs []pool.BlockID
}

func (p *poolPlacer) startLayer(context.Context, int, int) error { return nil }

// acquire takes one pool block and splits it between the lanes.
func (p *poolPlacer) acquire(ctx context.Context) (pool.BlockID, error) {
	waitStart := time.Now()
	id, err := p.job.Acquire(ctx)
	waited := time.Since(waitStart)
	for _, ln := range p.js.lanes {
		ln.res.PoolWait += waited
	}
	return id, err
}

func (p *poolPlacer) placeBlock(ctx context.Context, b int) error {
	id, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	p.curIDs = append(p.curIDs, id)
	block := p.jobBlock(id)
	for _, ln := range p.js.lanes {
		ln.cur.SetBlock(b, block)
	}
	return nil
}

// jobBlock is the part of pool block id the job's lanes use: a group
// smaller than the batch's group size (its last) uses only its lanes'
// share, and a single lane's block is exactly what its layer file holds.
func (p *poolPlacer) jobBlock(id pool.BlockID) []byte {
	n := uint64(len(p.js.lanes)) * p.run.cfg.BlockSize
	return p.run.arena.Block(int(id))[:n:n]
}

func (p *poolPlacer) done(int) {}

func (p *poolPlacer) written(int) func() { return nil }

func (p *poolPlacer) loadPrev(ctx context.Context, layer int) error {
	lf, err := p.js.openCommitted(layer, p.run.cfg.Graph.SectorSize(), p.run.cfg.BlockSize)
	if err != nil {
		return err
	}
	defer lf.close()
	for b := range p.js.lanes[0].prev.blocks {
		id, err := p.acquire(ctx)
		if err != nil {
			return err
		}
		p.prevIDs = append(p.prevIDs, id)
		block := p.jobBlock(id)
		if err := lf.fill(ctx, b, block); err != nil {
			return err
		}
		for _, ln := range p.js.lanes {
			ln.prev.SetBlock(b, block)
		}
	}
	return nil
}

// committedLayer is a committed layer's files, one per lane, read back
// to resume a job after it.
type committedLayer struct {
	js        *jobState
	files     []*blockio.LayerReader
	blockSize uint64
}

// openCommitted opens the lanes' committed files of layer, read without
// filling the page cache.
func (js *jobState) openCommitted(layer int, sectorSize, blockSize uint64) (*committedLayer, error) {
	lf := &committedLayer{js: js, blockSize: blockSize}
	for _, ln := range js.lanes {
		f, err := blockio.OpenLayerUncached(blockio.SectorDir(ln.sector.Dir).Layer(layer), sectorSize)
		if err != nil {
			lf.close()
			return nil, js.laneErr(ln, err)
		}
		lf.files = append(lf.files, f)
	}
	return lf, nil
}

// fill puts block b of every lane's file into the job's block.
func (lf *committedLayer) fill(ctx context.Context, b int, block []byte) error {
	off := int64(b) * int64(lf.blockSize)
	for s, ln := range lf.js.lanes {
		if err := lf.js.readLane(ctx, block, s, func(packed []byte) error { return lf.files[s].ReadAt(packed, off) }); err != nil {
			return lf.js.laneErr(ln, err)
		}
	}
	return nil
}

func (lf *committedLayer) close() {
	for _, f := range lf.files {
		f.Close()
	}
}

func (p *poolPlacer) hashed(uint64) error { return nil }

func (p *poolPlacer) endLayer(context.Context, int) error {
	// The previous layer has served as expander parents for the last time:
	// hand its blocks back before this layer becomes the next one's
	// expander layer.
	if err := p.job.Release(p.prevIDs...); err != nil {
		return err
	}
	p.prevIDs, p.curIDs = p.curIDs, p.prevIDs[:0]
	return nil
}
