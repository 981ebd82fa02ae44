package labeler

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/dustin/go-humanize"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/sdr"
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

// groupSize decides the batch's lockstep group size from Config.Lockstep,
// the cores Go may use, and whether the multi-stream SHA-NI kernels may be
// used. The configuration must be validated first (its block size set).
func (c *Config) groupSize(cores int, shaNI bool) (int, error) {
	jobs := c.Jobs()
	switch {
	case c.Lockstep == 1:
		return 1, nil
	case c.Lockstep == 0:
		// Spilling jobs wait on the device, not on the SHA unit; without
		// the SHA extensions there is no kernel to gain from; with fewer
		// than two sectors per core, grouping them would idle cores. Else
		// the largest group that still gives every core one and whose pool
		// fits: more streams per core measured faster at every k
		// (labeler.BenchmarkGroupLabelRange).
		if c.spills() || !shaNI {
			return 1, nil
		}
		for k := min(maxStreams, jobs/max(cores, 1)); k >= 2; k-- {
			if c.groupPoolErr(k, jobs) == nil {
				return k, nil
			}
		}
		return 1, nil
	}
	if c.spills() {
		lo, _, _ := pool.Bounds(c.Graph.SectorSize(), jobs)
		return 0, fmt.Errorf("lockstep groups of %d: the DRAM budget %s is below the pool minimum %s, which turns the spill tier on; spilling jobs label one sector each, as they wait on the device rather than on the SHA unit, so hashing sectors together would gain nothing: use lockstep 0 (automatic) or 1, or a budget of at least the pool minimum",
			c.Lockstep, humanize.IBytes(c.DRAMBudget), humanize.IBytes(lo))
	}
	if c.Parallel > 0 && c.Parallel < c.Lockstep && len(c.Sectors) > c.Parallel {
		return 0, fmt.Errorf("lockstep groups of %d: parallel %d lets only %d sectors hash at once, fewer than one group: give parallel at least %d, or leave it to its default (a group per core)",
			c.Lockstep, c.Parallel, c.Parallel, c.Lockstep)
	}
	// Fewer sectors than a group: they all form one (Run says so).
	k := min(c.Lockstep, jobs)
	if k == 1 {
		return 1, nil
	}
	if err := c.groupPoolErr(k, jobs); err != nil {
		return 0, fmt.Errorf("lockstep groups of %d: %w", k, err)
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
	return fmt.Sprintf("sha-ni x%d", k)
}

// groupLabeler labels the nodes of a lockstep group's lanes together. Each
// lane keeps its nodeLabeler (header, padding, address ring, node-0
// hasher); the group walks the parents once and hashes each node's labels
// in one sumNodesMulti call. It must live on the heap (newGroupLabeler):
// the kernels read its streams.
type groupLabeler struct {
	k        int
	useSHANI bool
	layer    int
	nls      [maxStreams]*nodeLabeler
	// cur[s] and prev[s] are lane s's layers, refreshed by reset as the
	// lanes swap them between layers.
	cur, prev [maxStreams]*layerView
	// plan is plan1 in layer 1, planN after.
	plan         *multiPlan
	plan1, planN multiPlan
	streams      multiStreams
}

func newGroupLabeler(lanes []*lane, useSHANI bool) (*groupLabeler, error) {
	if len(lanes) < 2 || len(lanes) > maxStreams {
		return nil, fmt.Errorf("lockstep group of %d sectors: want 2 to %d", len(lanes), maxStreams)
	}
	g := &groupLabeler{k: len(lanes), useSHANI: useSHANI}
	for s, ln := range lanes {
		g.nls[s] = ln.nl
	}
	var err error
	if g.plan1, err = newMultiPlan(g.nls[0].orderLayer1[:]); err != nil {
		return nil, err
	}
	if g.planN, err = newMultiPlan(g.nls[0].orderLayerN[:]); err != nil {
		return nil, err
	}
	return g, nil
}

// reset prepares for layer, after the lanes' nodeLabelers were reset.
func (g *groupLabeler) reset(lanes []*lane, layer int) {
	for s, ln := range lanes {
		g.cur[s], g.prev[s] = ln.cur, ln.prev
	}
	g.layer = layer
	g.plan = &g.planN
	if layer == 1 {
		g.plan = &g.plan1
	}
}

// labelRange labels nodes [first, first+count) of every lane into its cur,
// as nodeLabeler.labelRange does for one: parents holds sdr.Degree entries
// per node starting at first, the same for every lane; each lane's
// parents' addresses go to its own ring, prefetchDistance nodes ahead, and
// are prefetched there (the multi-stream kernels do not prefetch).
//
// This is the hot loop: it allocates nothing and makes no interface calls.
func (g *groupLabeler) labelRange(first, count uint64, parents []uint32) {
	degree := sdr.BaseDegree
	if g.layer > 1 {
		degree = sdr.Degree
	}
	const ring = prefetchDistance + 1
	k := g.k
	for i := uint64(0); i < min(count, prefetchDistance); i++ {
		ps := parents[i*sdr.Degree : (i+1)*sdr.Degree]
		for s := range k {
			l := g.nls[s]
			l.parentAddrs(&l.addrs[i%ring], first+i, ps, degree, g.cur[s], g.prev[s])
		}
	}
	for i := uint64(0); i < count; i++ {
		if ahead := i + prefetchDistance; ahead < count {
			ps := parents[ahead*sdr.Degree : (ahead+1)*sdr.Degree]
			for s := range k {
				l := g.nls[s]
				next := &l.addrs[ahead%ring]
				l.parentAddrs(next, first+ahead, ps, degree, g.cur[s], g.prev[s])
				// A parent's k labels are adjacent (laneIO): lanes 0 and
				// k-1 touch every line they span.
				if s == 0 || (s == k-1 && k > 2) {
					prefetchLabels(&next[0], degree)
				}
			}
		}
		node := first + i
		if node == 0 {
			// No parents: the header alone, which the kernels' plans do
			// not describe.
			for s := range k {
				g.nls[s].h.Sum(0, g.cur[s].label(0)[:])
			}
			continue
		}
		for s := range k {
			l := g.nls[s]
			binary.BigEndian.PutUint64(l.header[36:44], node)
			g.streams.halves[s] = &l.addrs[i%ring][0]
			g.streams.out[s] = g.cur[s].label(uint32(node))
		}
		sumNodesMulti(k, &g.streams, g.plan, g.useSHANI)
	}
}

// laneIO moves one lane's labels between a group's pool blocks, where they
// are interleaved with its partners' (stride 32k, lane s at 32s, so that a
// parent's k labels share one or two cache lines: the hashing reads each
// node's parents from DRAM once for all lanes instead of once per lane),
// and the lane's layer file, which holds them packed. Its buffers, two per
// lane, live on until the write they carry is acknowledged; they are the
// DRAM a group uses beyond its pool blocks.
type laneIO struct {
	k    int
	free chan []byte
}

func newLaneIO(k int, blockSize uint64) *laneIO {
	io := &laneIO{k: k, free: make(chan []byte, 2*k)}
	for range 2 * k {
		io.free <- make([]byte, blockSize)
	}
	return io
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
