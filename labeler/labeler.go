package labeler

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
)

// DefaultMaxBlockSize caps the default block size; it is where the seed's
// implementation started (32 MiB: 1024 blocks per 32 GiB layer).
const DefaultMaxBlockSize = 32 << 20

// parentChunkNodes is how many nodes' parents one read-ahead chunk of the
// parent cache holds (56 bytes each: 1.75 MiB).
const parentChunkNodes = 32 << 10

// Sector is one sector to label.
type Sector struct {
	// ReplicaID is the sector's replica id.
	ReplicaID [32]byte
	// Dir is the sector's cache directory; layer files are written there.
	Dir string
}

// Config describes one batch of sectors labeled through one pool.
type Config struct {
	// Graph is the sectors' graph: all sectors of a batch share it.
	Graph *sdr.Graph
	// ParentCache is the path of the graph's (verified) parent cache file.
	ParentCache string
	// Layers is the number of layers to compute.
	Layers int
	// Sectors are the sectors to label.
	Sectors []Sector
	// PoolSize is the pool size in bytes; 0 means the default for the
	// number of concurrent jobs.
	PoolSize uint64
	// BlockSize is the pool block size in bytes; 0 means DefaultBlockSize.
	BlockSize uint64
	// Parallel is how many sectors hash at once (each on its own
	// goroutine); 0 means GOMAXPROCS. Extra sectors wait for a slot
	// without holding pool blocks.
	Parallel int
	// HugeTLB asks for reserved hugepages for the DRAM arena.
	HugeTLB bool
	// OnProgress, if set, is called from hashing goroutines after every
	// block with the sector index, layer and nodes done in that layer. It
	// must be cheap and safe for concurrent use.
	OnProgress func(sector, layer int, nodesDone uint64)

	// portable forces the copy-and-crypto/sha256 hashing path, so tests
	// check it on machines that have the SHA extensions.
	portable bool
}

// DefaultBlockSize is the block size used when none is given: a sixteenth
// of a layer, at most DefaultMaxBlockSize and at least 4 KiB (or the whole
// layer when it is smaller).
func DefaultBlockSize(sectorSize uint64) uint64 {
	b := min(sectorSize/16, DefaultMaxBlockSize)
	return max(b, min(sectorSize, 4<<10))
}

// Jobs is the number of sectors that hash at once: the pool's N.
func (c *Config) Jobs() int {
	p := c.Parallel
	if p <= 0 {
		p = runtime.GOMAXPROCS(0)
	}
	return max(1, min(p, len(c.Sectors)))
}

func (c *Config) validate() error {
	if c.Graph == nil {
		return errors.New("labeler: no graph")
	}
	if c.Layers < 1 {
		return fmt.Errorf("labeler: layer count %d must be at least 1", c.Layers)
	}
	if len(c.Sectors) == 0 {
		return errors.New("labeler: no sectors")
	}
	if c.ParentCache == "" {
		return errors.New("labeler: no parent cache")
	}
	s := c.Graph.SectorSize()
	b := c.BlockSize
	if b == 0 {
		b = DefaultBlockSize(s)
	}
	if b < sdr.NodeSize || b&(b-1) != 0 || b > s {
		return fmt.Errorf("block size %d: must be a power of two from 32 bytes to the sector size (%d)", b, s)
	}
	c.BlockSize = b
	return nil
}

// SectorResult is what one sector's job measured.
type SectorResult struct {
	// Hashing is the time the job's goroutine spent labeling, excluding
	// waits for the pool, a core slot, and the end-of-layer file sync.
	Hashing time.Duration
	// PoolWait is the time spent waiting for pool blocks.
	PoolWait time.Duration
	// SyncWait is the time spent waiting for layer files to reach the disk.
	SyncWait time.Duration
	// CoreWait is the time spent waiting for a core while holding blocks:
	// with more jobs than cores, jobs take turns block by block.
	CoreWait time.Duration
	// Nodes is the number of labels computed.
	Nodes uint64
}

// Result is what a batch measured.
type Result struct {
	Sectors   []SectorResult
	Wall      time.Duration
	Jobs      int
	PoolSize  uint64
	BlockSize uint64
	// PoolPeak is the most pool bytes held at once.
	PoolPeak uint64
	// ArenaBytes is the DRAM arena's mapped size.
	ArenaBytes uint64
	// Warnings are non-fatal conditions worth telling a person (a hugepage
	// fallback, say).
	Warnings []string
}

// Run labels every sector of cfg and writes their layer files. The first
// error cancels the whole batch; committed layer files stay, partial ones
// are removed.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	jobs := cfg.Jobs()
	p, err := pool.New(pool.Config{
		SectorSize: cfg.Graph.SectorSize(),
		BlockSize:  cfg.BlockSize,
		Jobs:       jobs,
		Size:       cfg.PoolSize,
	})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	arena, warning, err := tier.NewArena(p.NumBlocks(), cfg.BlockSize, tier.ArenaOptions{HugeTLB: cfg.HugeTLB, Populate: true})
	if err != nil {
		return nil, err
	}
	defer arena.Close()

	res := &Result{
		Sectors:    make([]SectorResult, len(cfg.Sectors)),
		Jobs:       jobs,
		PoolSize:   uint64(p.NumBlocks()) * cfg.BlockSize,
		BlockSize:  cfg.BlockSize,
		ArenaBytes: arena.Bytes(),
	}
	if warning != "" {
		res.Warnings = append(res.Warnings, warning)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r := &run{
		cfg:   &cfg,
		pool:  p,
		arena: arena,
		slots: make(chan struct{}, jobs),
		cores: make(chan struct{}, runtime.GOMAXPROCS(0)),
		shaNI: cpuHasSHANI() && !cfg.portable,
	}
	r.gates = make([]chan struct{}, len(cfg.Sectors))
	for i := range r.gates {
		r.gates[i] = make(chan struct{})
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range cfg.Sectors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.job(ctx, i, &res.Sectors[i]); err != nil {
				cancel(fmt.Errorf("sector %d (%s): %w", i, cfg.Sectors[i].Dir, err))
			}
		}()
	}
	wg.Wait()
	res.Wall = time.Since(start)
	res.PoolPeak = p.Stats().PeakInUseBytes
	if err := context.Cause(ctx); err != nil {
		return res, err
	}
	return res, nil
}

type run struct {
	cfg   *Config
	pool  *pool.Pool
	arena *tier.Arena
	// slots limits how many jobs are joined to the pool at once (N).
	slots chan struct{}
	// cores limits how many jobs hash at once to the cores Go may use, so
	// that a job's hashing time is time on a core, not time descheduled.
	cores chan struct{}
	// shaNI selects the hashing kernel that reads parents in place.
	shaNI bool
	// gates[i] closes once sector i has labeled 1/N of its first layer (or
	// ended), letting sector i+1 start: staggered starts spread the jobs
	// over a layer, which is what lets them share the pool.
	gates []chan struct{}
}

func (r *run) job(ctx context.Context, idx int, res *SectorResult) (err error) {
	gate := r.gates[idx]
	var gateOnce sync.Once
	openGate := func() { gateOnce.Do(func() { close(gate) }) }
	defer openGate()

	if idx > 0 {
		select {
		case <-r.gates[idx-1]:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-r.slots }()

	j, err := r.pool.Join(r.cfg.Layers)
	if err != nil {
		return err
	}
	defer j.Leave()

	g := r.cfg.Graph
	nodes := g.Nodes()
	stream, err := blockio.OpenParentStream(r.cfg.ParentCache, nodes, parentChunkNodes, 2)
	if err != nil {
		return err
	}
	defer stream.Close()

	blockSize := r.cfg.BlockSize
	nodesPerBlock := blockSize / sdr.NodeSize
	blocksPerLayer := int(g.SectorSize() / blockSize)
	cur := newLayerView(blocksPerLayer, nodesPerBlock)
	prev := newLayerView(blocksPerLayer, nodesPerBlock)
	curIDs := make([]pool.BlockID, 0, blocksPerLayer)
	var prevIDs []pool.BlockID
	staggerAt := nodes / uint64(r.pool.Jobs())

	sector := r.cfg.Sectors[idx]
	nl := newNodeLabeler(r.shaNI)
	for layer := 1; layer <= r.cfg.Layers; layer++ {
		file, err := blockio.CreateLayerFile(sector.Dir, layer, g.SectorSize())
		if err != nil {
			return fmt.Errorf("layer %d: %w", layer, err)
		}
		if err := stream.Rewind(); err != nil {
			file.Abort()
			return fmt.Errorf("layer %d: %w", layer, err)
		}
		nl.reset(&sector.ReplicaID, layer)
		var chunk []uint32
		var chunkFirst, chunkEnd uint64
		for b := 0; b < blocksPerLayer; b++ {
			waitStart := time.Now()
			id, err := j.Acquire(ctx)
			res.PoolWait += time.Since(waitStart)
			if err != nil {
				file.Abort()
				return fmt.Errorf("layer %d block %d: %w", layer, b, err)
			}
			curIDs = append(curIDs, id)
			cur.setBlock(b, r.arena.Block(int(id)))

			coreStart := time.Now()
			select {
			case r.cores <- struct{}{}:
			case <-ctx.Done():
				file.Abort()
				return context.Cause(ctx)
			}
			hashStart := time.Now()
			res.CoreWait += hashStart.Sub(coreStart)
			first := uint64(b) * nodesPerBlock
			end := first + nodesPerBlock
			for node := first; node < end; {
				if node >= chunkEnd {
					chunkFirst, chunk, err = stream.Next()
					if err != nil {
						<-r.cores
						file.Abort()
						return fmt.Errorf("layer %d node %d: %w", layer, node, err)
					}
					chunkEnd = chunkFirst + uint64(len(chunk))/sdr.Degree
				}
				n := min(end, chunkEnd) - node
				nl.labelRange(node, n, chunk[(node-chunkFirst)*sdr.Degree:], cur, prev)
				node += n
			}
			res.Hashing += time.Since(hashStart)
			<-r.cores
			res.Nodes += nodesPerBlock
			if err := file.WriteAsync(cur.blocks[b], int64(first*sdr.NodeSize), nil); err != nil {
				file.Abort()
				return fmt.Errorf("layer %d: %w", layer, err)
			}
			if r.cfg.OnProgress != nil {
				r.cfg.OnProgress(idx, layer, end)
			}
			if layer == 1 && end >= staggerAt {
				openGate()
			}
			if err := ctx.Err(); err != nil {
				file.Abort()
				return context.Cause(ctx)
			}
		}
		syncStart := time.Now()
		if err := file.Commit(); err != nil {
			return fmt.Errorf("layer %d: %w", layer, err)
		}
		res.SyncWait += time.Since(syncStart)
		// The previous layer has served as expander parents for the last
		// time: hand its blocks back before this layer becomes the next
		// one's expander layer.
		if err := j.Release(prevIDs...); err != nil {
			return fmt.Errorf("layer %d: %w", layer, err)
		}
		prev, cur = cur, prev
		prevIDs, curIDs = curIDs, prevIDs[:0]
	}
	return nil
}
