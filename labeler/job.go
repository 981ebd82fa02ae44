package labeler

import (
	"context"
	"fmt"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
	"golang.org/x/sys/unix"
)

// lane is one sector's part of a job.
type lane struct {
	idx       int
	sector    Sector
	res       *SectorResult
	nl        *nodeLabeler
	cur, prev *layerView
	// file is the layer being written, nil between layers.
	file *blockio.LayerFile
	// meta is the sector's metadata, rewritten at every commit.
	meta blockio.SectorMeta
	// durable is how many blocks of the layer being written an earlier run
	// left on the disk. A lockstep group starts at its lanes' smallest
	// durable prefix; the others' blocks below their own are labeled again
	// for their partners' sake but not written again.
	durable int
}

// jobState is what one job's layers share: its lanes, one per sector, and
// the parent stream they all read.
type jobState struct {
	lanes []*lane
	// group hashes the lanes together; nil with one lane, which labels on
	// its own (nodeLabeler.labelRange).
	group *batchLabeler
	// io moves a group's lanes' labels between its interleaved pool
	// blocks and their packed layer files; nil with one lane.
	io            *laneIO
	stream        *blockio.ParentStream
	nodesPerBlock uint64
}

// laneErr names the sector an error concerns when the job has several.
func (js *jobState) laneErr(ln *lane, err error) error {
	if len(js.lanes) == 1 {
		return err
	}
	return fmt.Errorf("sector %d (%s): %w", ln.idx, ln.sector.Dir, err)
}

// coldFit returns how many of the n nodes whose parents start at parents
// have, together, at most budget parents in blocks on the device (by
// cur's and prev's placement, which holds until the next block is
// placed), and what is left of budget after them.
func coldFit(parents []uint32, n uint64, degree, budget int, cur, prev *layerView) (uint64, int) {
	for i := range n {
		ps := parents[i*sdr.Degree : i*sdr.Degree+uint64(degree)]
		cold := 0
		for s, p := range ps {
			v := cur
			if s >= sdr.BaseDegree {
				v = prev
			}
			if v.onDevice(p) {
				cold++
			}
		}
		if cold > budget {
			return i, budget
		}
		budget -= cold
	}
	return n, budget
}

// closeFiles closes the lanes' partial layer files, keeping them and their
// progress logs.
func (js *jobState) closeFiles() {
	for _, ln := range js.lanes {
		if ln.file != nil {
			ln.file.Close()
			ln.file = nil
		}
	}
}

// readLane fills lane s's labels in block, one of the job's blocks, with
// read, which reads the lane's packed labels as its layer file holds them:
// straight into the block for a single lane, through laneIO for a group.
func (js *jobState) readLane(ctx context.Context, block []byte, s int, read func([]byte) error) error {
	if js.io == nil {
		return read(block)
	}
	return js.io.load(ctx, block, s, read)
}

// charge splits a stretch of hashing between the lanes: it labeled all of
// them at once, and summed over sectors, hashing time stays core time.
func (js *jobState) charge(hashed, stalled time.Duration) {
	k := time.Duration(len(js.lanes))
	for i, ln := range js.lanes {
		h, s := hashed/k, stalled/k
		if i == 0 {
			h, s = h+hashed%k, s+stalled%k
		}
		ln.res.Hashing += h
		ln.res.Stalled += s
	}
}

// openLayer opens every lane's file for layer and returns the block
// labeling starts at: 0, or in the layer a resumed job starts in (resume),
// the shortest durable prefix of the lanes' partial files.
func (r *run) openLayer(js *jobState, layer int, resume bool, blocks int) (int, error) {
	size, blockSize := r.cfg.Graph.SectorSize(), r.cfg.BlockSize
	start := blocks
	for _, ln := range js.lanes {
		var durable int64
		var err error
		if resume {
			ln.file, durable, err = blockio.ResumeLayerFile(ln.sector.Dir, layer, size, int64(blockSize), blockio.WithFaults(r.cfg.Faults))
		} else {
			ln.file, err = blockio.CreateLayerFile(ln.sector.Dir, layer, size, blockio.WithFaults(r.cfg.Faults))
		}
		if err != nil {
			return 0, js.laneErr(ln, err)
		}
		ln.durable = int(uint64(durable) / blockSize)
		start = min(start, ln.durable)
	}
	if resume && (start > 0 || layer > 1) {
		for _, ln := range js.lanes {
			ln.res.ResumedLayer, ln.res.ResumedNode = layer, uint64(start)*js.nodesPerBlock
		}
	}
	return start, nil
}

// layer labels one layer block by block into the lanes' files. Their first
// startBlock blocks are already there (a resumed run): they are read back
// instead of labeled.
func (r *run) layer(ctx context.Context, js *jobState, place placer, layer, startBlock, blocks int, staggerAt uint64, openGate func()) error {
	if err := js.stream.Rewind(); err != nil {
		return err
	}
	if err := place.startLayer(ctx, layer, startBlock); err != nil {
		return err
	}
	for _, ln := range js.lanes {
		ln.nl.reset(&ln.sector.ReplicaID, layer)
	}
	if js.group != nil {
		js.group.reset(js.lanes, layer)
	}
	if js.io != nil {
		js.io.startLayer(startBlock)
	}
	step := ^uint64(0)
	// coldLeft is what the step may still read from the device: a
	// spilling batch's steps end early where their cold parents would
	// fill more than their share of the reader's pages.
	coldLeft, coldBudget := -1, -1
	if r.spill != nil {
		step = tier.PassStep(len(js.lanes))
		if js.group != nil {
			coldBudget = tier.BatchStepColdParents()
			coldLeft = coldBudget
		}
	}
	degree := sdr.Degree
	if layer == 1 {
		degree = sdr.BaseDegree
	}
	var chunk []uint32
	var chunkFirst, chunkEnd uint64
	for b := 0; b < startBlock; b++ {
		if err := place.placeBlock(ctx, b); err != nil {
			return fmt.Errorf("block %d: %w", b, err)
		}
		off := int64(b) * int64(r.cfg.BlockSize)
		for s, ln := range js.lanes {
			if err := js.readLane(ctx, ln.cur.blocks[b], s, func(p []byte) error { return ln.file.ReadAt(p, off) }); err != nil {
				return js.laneErr(ln, fmt.Errorf("resuming at block %d: %w", startBlock, err))
			}
		}
		place.done(b)
		if ack := place.written(b); ack != nil {
			ack()
		}
	}
	if startBlock > 0 {
		if err := place.hashed(uint64(startBlock) * js.nodesPerBlock); err != nil {
			return err
		}
	}
	for b := startBlock; b < blocks; b++ {
		if err := place.placeBlock(ctx, b); err != nil {
			return fmt.Errorf("block %d: %w", b, err)
		}
		coreStart := time.Now()
		cores := js.cores()
		if err := r.acquireCores(ctx, cores); err != nil {
			return err
		}
		hashStart := time.Now()
		for _, ln := range js.lanes {
			ln.res.CoreWait += hashStart.Sub(coreStart)
		}
		cpuStart := js.cpu()
		first := uint64(b) * js.nodesPerBlock
		end := first + js.nodesPerBlock
		var err error
		for node := first; node < end && err == nil; {
			for node >= chunkEnd && err == nil {
				chunkFirst, chunk, err = js.stream.Next()
				if err != nil {
					err = fmt.Errorf("node %d: %w", node, err)
					break
				}
				chunkEnd = chunkFirst + uint64(len(chunk))/sdr.Degree
			}
			n := min(end, chunkEnd, node-node%step+step) - node
			parents := chunk[(node-chunkFirst)*sdr.Degree:]
			cut := false
			if coldLeft >= 0 {
				var m uint64
				m, coldLeft = coldFit(parents, n, degree, coldLeft, js.lanes[0].cur, js.lanes[0].prev)
				if m < n {
					// The step ends after m nodes, maybe none.
					n, cut = m, true
				}
			}
			if js.group != nil {
				js.group.labelAhead(node, n, parents)
			} else {
				ln := js.lanes[0]
				ln.nl.labelRange(node, n, parents, ln.cur, ln.prev)
			}
			node += n
			if cut || node%step == 0 || node == end {
				coldLeft = coldBudget
				passed := node
				if js.group != nil {
					if node == end {
						js.group.wait()
					}
					// Cold pages stay until the slowest hasher is past them.
					passed = js.group.settle(node)
				}
				err = place.hashed(passed)
			}
		}
		if js.group != nil {
			// The block is done only when every lane is (and on an error,
			// no helper may still read what the job is about to free).
			js.group.wait()
		}
		hashed := time.Since(hashStart)
		// Time on every core the job hashed on: core time, of which the
		// part the threads did not run was stalled.
		hashed *= time.Duration(cores)
		js.charge(hashed, max(0, hashed-(js.cpu()-cpuStart)))
		r.releaseCores(cores)
		if err != nil {
			return err
		}
		place.done(b)
		var writes []laneWrite
		for s, ln := range js.lanes {
			ln.res.Nodes += js.nodesPerBlock
			if b < ln.durable {
				continue // already on the disk, identical
			}
			data, ack, off := ln.cur.blocks[b], place.written(b), int64(first*sdr.NodeSize)
			if js.io != nil {
				writes = append(writes, laneWrite{s: s, file: ln.file, off: off, ack: ack, name: fmt.Sprintf("sector %d (%s)", ln.idx, ln.sector.Dir)})
				continue
			}
			if err := ln.file.WriteAsync(data, off, ack); err != nil {
				return js.laneErr(ln, err)
			}
		}
		if js.io != nil {
			if err := js.io.submit(b, ln0Block(js, b), writes); err != nil {
				return err
			}
		}
		if r.cfg.OnProgress != nil {
			for _, ln := range js.lanes {
				r.cfg.OnProgress(ln.idx, layer, end)
			}
		}
		if layer == 1 && end >= staggerAt {
			openGate()
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
	}
	return nil
}

// ln0Block is block b of the layer being written, as the job's lanes
// share it.
func ln0Block(js *jobState, b int) []byte { return js.lanes[0].cur.blocks[b] }

// cores is how many cores the job hashes on.
func (js *jobState) cores() int {
	if js.group == nil {
		return 1
	}
	return js.group.cores()
}

// cpu is the CPU time the job's hashing threads have used: the calling
// thread's (the job's) and a batch's helper hashers'.
func (js *jobState) cpu() time.Duration {
	cpu := threadCPU()
	if js.group != nil {
		cpu += time.Duration(js.group.helperCPU.Load())
	}
	return cpu
}

// acquireCores takes n of the run's cores for one job's hashing. Jobs that
// take several take them one job at a time, so two of them never hold part
// of what each needs; jobs that take one never wait holding any.
func (r *run) acquireCores(ctx context.Context, n int) error {
	if n > 1 {
		r.coreMu.Lock()
		defer r.coreMu.Unlock()
	}
	for i := range n {
		select {
		case r.cores <- struct{}{}:
		case <-ctx.Done():
			r.releaseCores(i)
			return context.Cause(ctx)
		}
	}
	return nil
}

func (r *run) releaseCores(n int) {
	for range n {
		<-r.cores
	}
}

// threadCPU is the CPU time the calling thread has used.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
