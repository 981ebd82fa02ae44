package labeler

import (
	"context"
	"fmt"
	"sync"

	"github.com/dustin/go-humanize"
	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
)

// Lockstep groups. One sector's labels are a chain of dependent SHA-256
// compressions: a core's SHA unit waits out each round's latency. k sectors
// of one batch share the graph, so one job can walk them together: one
// read of the parent cache and one set of parent indexes serve all k, and
// each node's k labels are hashed by one k-stream kernel (sumNodesMulti)
// whose independent round chains fill the unit's pipeline. How much that
// gains is the CPU's: 1.3 x one stream at k = 2 and nothing more at 3 or 4
// on an Intel VM; 1.3, 1.4 and 1.6 x at k = 2, 3 and 4 on an AMD EPYC VM
// (64 MiB sectors, 4 layers), where interleaving the lanes' labels in the
// blocks (laneIO) was worth a quarter of that at k = 4: a parent's k labels
// then come from DRAM in one or two cache lines instead of k.
//
// To the pool, a group is one job on a sector k times as large: blocks of
// k x BlockSize bytes holding the k lanes' labels of the same nodes,
// interleaved (laneIO). Every pool guarantee then holds for groups
// unchanged.

// groupsOf is how many groups of k hold jobs sectors.
func groupsOf(jobs, k int) int { return (jobs + k - 1) / k }

// groupSize decides the batch size from Config.Batch (or Lockstep), the
// cores Go may use, and whether the multi-stream SHA-NI kernels may be
// used. The configuration must be validated first (its block size set).
func (c *Config) groupSize(cores int, shaNI bool) (int, error) {
	jobs := c.Jobs()
	asked := c.batchAsked()
	name := "batch"
	if c.Batch == 0 && c.Lockstep != 0 {
		name = "lockstep groups"
	}
	switch {
	case asked == 1:
		return 1, nil
	case asked == 0:
		if c.spills() {
			// Below the pool minimum the device, not the SHA unit, sets
			// the pace, and one batch of every sector asks it for the
			// fewest reads: one page read per parent for them all.
			return min(jobs, tier.MaxBatchLanes), nil
		}
		// Without the SHA extensions there is no kernel to gain from; with
		// fewer than two sectors per core, grouping them would idle cores.
		// Else the largest batch that still gives every core one and
		// whose pool fits: more streams per core measured faster at every
		// k (labeler.BenchmarkGroupLabelRange).
		if !shaNI {
			return 1, nil
		}
		for k := min(maxStreams, jobs/max(cores, 1)); k >= 2; k-- {
			if c.groupPoolErr(k, jobs) == nil {
				return k, nil
			}
		}
		return 1, nil
	}
	if c.Parallel > 0 && c.Parallel < asked && len(c.Sectors) > c.Parallel {
		return 0, fmt.Errorf("%s of %d: parallel %d lets only %d sectors hash at once, fewer than one batch: give parallel at least %d, or leave it to its default",
			name, asked, c.Parallel, c.Parallel, asked)
	}
	// Fewer sectors than a batch: they all form one (Run says so).
	k := min(asked, jobs)
	if k == 1 {
		return 1, nil
	}
	if c.spillsIn(k) {
		return k, nil // the spill tier fits it in the budget
	}
	if err := c.groupPoolErr(k, jobs); err != nil {
		return 0, fmt.Errorf("%s of %d: %w", name, k, err)
	}
	return k, nil
}

// groupPoolErr says why the pool size or DRAM budget leaves no room for the
// pool of jobs sectors labeled in groups of k, or returns nil.
func (c *Config) groupPoolErr(k, jobs int) error {
	s := uint64(k) * c.Graph.SectorSize()
	b := uint64(k) * c.BlockSize
	n := groupsOf(jobs, k)
	lo, _, hi := pool.Bounds(s, n)
	switch {
	case c.PoolSize != 0 && (c.PoolSize/b*b < lo || c.PoolSize > hi):
		return fmt.Errorf("pool size %s is outside [%s, %s], the bounds for %d groups of %d sectors", humanize.IBytes(c.PoolSize),
			humanize.IBytes(lo), humanize.IBytes(hi), n, k)
	case c.DRAMBudget != 0 && c.DRAMBudget < lo:
		return fmt.Errorf("DRAM budget %s is below %s, the pool minimum for %d groups of %d sectors", humanize.IBytes(c.DRAMBudget),
			humanize.IBytes(lo), n, k)
	}
	return nil
}

// groupSectors splits the batch into jobs: consecutive sectors, k at a
// time, a group ending early where the next sector resumes at another
// layer than the group's, since a group walks its layers together.
func groupSectors(starts []sectorStart, k int) [][]int {
	var groups [][]int
	for i := range starts {
		if n := len(groups); n > 0 {
			g := groups[n-1]
			if len(g) < k && starts[g[0]].layer == starts[i].layer {
				groups[n-1] = append(g, i)
				continue
			}
		}
		groups = append(groups, []int{i})
	}
	return groups
}

// kernelName names the hashing kernel for Result.Kernel.
func kernelName(k int, shaNI bool) string {
	switch {
	case !shaNI:
		return "portable"
	case k == 1:
		return "sha-ni"
	}
	if k > maxStreams {
		// Hashed by kernels of up to maxStreams streams, on subgroups.
		groups := (k + maxStreams - 1) / maxStreams
		return fmt.Sprintf("sha-ni x%d (batch of %d)", (k+groups-1)/groups, k)
	}
	return fmt.Sprintf("sha-ni x%d", k)
}

// laneIO moves one lane's labels between a batch's blocks, where they are
// interleaved with its partners' (stride 32k, lane s at 32s, so that a
// parent's k labels share one or two cache lines: the hashing reads each
// node's parents from DRAM once for all lanes instead of once per lane),
// and the lane's layer file, which holds them packed. Its buffers live on
// until the write they carry is acknowledged; they are the DRAM a batch
// uses beyond its blocks.
//
// Packing runs on its own goroutine (the packer), block by block in the
// order the job hands them over (submit): a wide batch's lanes' writes,
// each synced, queue behind a few buffers, and the hashing must not wait
// for them (a batch of 64 spent a third of its time there). A handed-over
// block must stay unchanged until it is packed (waitPacked); the job
// flushes the packer before it commits a layer.
type laneIO struct {
	k    int
	free chan []byte
	jobs chan packJob
	done chan struct{}

	mu   sync.Mutex
	cond sync.Cond
	// packedTo is the block of the current layer below which every block
	// is packed (or needed no packing); submittedTo the one below which
	// every block was handed over.
	packedTo, submittedTo int
	err                   error
}

// packJob is one block's lanes to pack and write.
type packJob struct {
	b      int
	block  []byte
	writes []laneWrite
}

// laneWrite is lane s's part of a block, to be written to file at off;
// ack, if set, is called once it is on the device; name says which sector
// an error concerns.
type laneWrite struct {
	s    int
	file *blockio.LayerFile
	off  int64
	ack  func()
	name string
}

func newLaneIO(k int, blockSize uint64) *laneIO {
	// Two buffers per lane let every lane's write of one block queue
	// while the next block is packed; a wide batch's lanes share 8, which
	// the writers' pace frees (each is a block of one sector: DRAM
	// outside the budget).
	n := laneIOBuffers(k)
	io := &laneIO{k: k, free: make(chan []byte, n), jobs: make(chan packJob, 64), done: make(chan struct{})}
	io.cond.L = &io.mu
	for range n {
		io.free <- make([]byte, blockSize)
	}
	go io.packer()
	return io
}

// laneIOBuffers is how many block buffers a batch of k sectors packs its
// layer-file writes through.
func laneIOBuffers(k int) int { return min(2*k, 8) }

// close stops the packer once it has handed every block over to the
// writers; the layer files must still be open.
func (io *laneIO) close() {
	close(io.jobs)
	<-io.done
}

func (io *laneIO) packer() {
	defer close(io.done)
	ctx := context.Background()
	for j := range io.jobs {
		var err error
		for _, w := range j.writes {
			if io.failed() {
				break
			}
			data, ack, _ := io.pack(ctx, j.block, w.s, w.ack)
			if err = w.file.WriteAsync(data, w.off, ack); err != nil {
				ack()
				err = fmt.Errorf("%s: %w", w.name, err)
				break
			}
		}
		io.mu.Lock()
		io.packedTo = j.b + 1
		if err != nil && io.err == nil {
			io.err = err
		}
		io.cond.Broadcast()
		io.mu.Unlock()
	}
}

func (io *laneIO) failed() bool {
	io.mu.Lock()
	defer io.mu.Unlock()
	return io.err != nil
}

// startLayer starts a layer whose blocks below start are on the disk
// already.
func (io *laneIO) startLayer(start int) {
	io.mu.Lock()
	io.packedTo, io.submittedTo = start, start
	io.mu.Unlock()
}

// submit hands block b's lane writes to the packer. It returns the first
// error an earlier write met.
func (io *laneIO) submit(b int, block []byte, writes []laneWrite) error {
	io.mu.Lock()
	err := io.err
	io.submittedTo = b + 1
	io.mu.Unlock()
	if err != nil {
		return err
	}
	io.jobs <- packJob{b: b, block: block, writes: writes}
	return nil
}

// waitPacked returns once block b of the current layer is packed (its
// bytes may change), or with the packer's first error.
func (io *laneIO) waitPacked(b int) error {
	io.mu.Lock()
	defer io.mu.Unlock()
	for io.packedTo <= b && io.err == nil && b < io.submittedTo {
		io.cond.Wait()
	}
	return io.err
}

// flush returns once every block handed over is with the writers, with
// the packer's first error.
func (io *laneIO) flush() error {
	io.mu.Lock()
	defer io.mu.Unlock()
	for io.packedTo < io.submittedTo && io.err == nil {
		io.cond.Wait()
	}
	return io.err
}

func (io *laneIO) get(ctx context.Context) ([]byte, error) {
	select {
	case b := <-io.free:
		return b, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// pack copies lane s's labels out of group block g into a buffer for the
// lane's layer file and returns it with the ack that hands it back (and
// then calls ack, if any).
func (io *laneIO) pack(ctx context.Context, g []byte, s int, ack func()) ([]byte, func(), error) {
	b, err := io.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	stride := io.k * sdr.NodeSize
	for i, o := 0, s*sdr.NodeSize; i < len(b); i, o = i+sdr.NodeSize, o+stride {
		*(*[sdr.NodeSize]byte)(b[i:]) = *(*[sdr.NodeSize]byte)(g[o:])
	}
	return b, func() {
		io.free <- b
		if ack != nil {
			ack()
		}
	}, nil
}

// load fills lane s's labels in group block g from read, which fills a
// packed block (a lane's part of its layer file).
func (io *laneIO) load(ctx context.Context, g []byte, s int, read func([]byte) error) error {
	b, err := io.get(ctx)
	if err != nil {
		return err
	}
	defer func() { io.free <- b }()
	if err := read(b); err != nil {
		return err
	}
	stride := io.k * sdr.NodeSize
	for i, o := 0, s*sdr.NodeSize; i < len(b); i, o = i+sdr.NodeSize, o+stride {
		*(*[sdr.NodeSize]byte)(g[o:]) = *(*[sdr.NodeSize]byte)(b[i:])
	}
	return nil
}

// BatchedParallel is the Parallel a seal of c's sectors can take when it
// was not told one, so that the multi-stream kernels apply: with
// Parallel 0 only as many sectors hash at once as there are cores, one
// each, and no core gets a batch. It is k sectors a core for the largest
// k <= 4 the sectors allow whose default pool (of batches of k) fits in
// mem bytes, or 0 when that is none (no SHA extensions, fewer than two
// sectors a core, too little memory) or when c already says how many
// hash at once, how they group, or how much DRAM they get.
//
// Measured on the development VM (2 vCPUs), 8 x 64 MiB sectors, 4 layers:
// one sector a core 1.90M nodes/s, two batches of 4 2.74-2.91M, at the
// same pool per sector (1.75 x S), four times the sectors in flight.
func (c *Config) BatchedParallel(mem uint64) int {
	if c.Parallel != 0 || c.Batch != 0 || c.Lockstep != 0 || c.DRAMBudget != 0 || c.PoolSize != 0 || !multiSHANI() {
		return 0
	}
	cores := HashingCores()
	for k := maxStreams; k >= 2; k-- {
		p := k * cores
		if p > len(c.Sectors) {
			continue
		}
		if _, def, _ := pool.Bounds(uint64(k)*c.Graph.SectorSize(), groupsOf(p, k)); def <= mem {
			return p
		}
	}
	return 0
}
