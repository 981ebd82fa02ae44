package labeler

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
)

// batchLabeler labels the nodes of a batch's lanes together (a batch of
// B >= 2 sectors; one sector labels on its own, nodeLabeler.labelRange).
// The lanes' labels are node-major in the batch's blocks (record(node) =
// B labels, lane s at 32 s), so a parent's labels for every lane are one
// record: the batch works out each node's parent addresses once, for lane
// 0, and lane s's are those plus 32 s, in DRAM and on the spill tier's
// pages alike. Each node's B labels are hashed by k-stream kernels over
// lane subgroups of at most maxStreams, as even as B allows (B = 5 is
// 3 + 2, not 4 + 1: a lone stream leaves the SHA unit idle).
//
// A batch of more than one subgroup hashes on up to one core per
// subgroup: the nodes go by in chunks of batchChunkNodes; the job's
// goroutine works out a chunk's parent addresses (the spill tier hands
// cold ones over in order, to one reader), then every hasher labels its
// lanes of the chunk, node by node; helpers may lag the job by one chunk
// (labelAhead), and the job waits for all of them at a block's end.
// Lanes are independent (a label depends only on its own lane's labels),
// so the hashers share nothing but the addresses and the records they
// read.
//
// It must live on the heap (newBatchLabeler): the kernels read its
// hashers' streams.
type batchLabeler struct {
	k        int
	useSHANI bool
	layer    int
	degree   int
	nls      []*nodeLabeler
	// cur[s] and prev[s] are lane s's views of the layers, refreshed by
	// reset as the lanes swap them between layers; lane 0's also serve the
	// batch's parent addresses (their offset is 0).
	cur, prev []*layerView
	// chunks[c%2][i] holds lane 0's message halves for node first+i of
	// chunk c: its parents' addresses, then lane 0's header and padding.
	// Two, so that the job can work out chunk c+1 while a helper still
	// labels chunk c.
	chunks [2][]*[halfSlots]uintptr
	// plan is plan1 in layer 1, planN after.
	plan         *multiPlan
	plan1, planN multiPlan
	// hashers[0] runs on the job's goroutine, the others on their own
	// (helpers), which sync with it through sync.
	hashers []*batchHasher
	sync    *chunkSync
	// helperCPU is the CPU time the helper hashers spent (ns).
	helperCPU atomic.Int64
}

// chunkSync hands chunks to a batch's helper hashers and collects them.
// Hashing a chunk takes tens to hundreds of microseconds, about what waking
// a sleeping thread costs on a virtual machine (measured: a batch of 8 on
// two cores labeled 1.43M nodes/s through channels, fewer than on one
// core), so the two sides spin while work comes by, each on a core the
// batch holds; a helper parks after spinning spinBeforePark without work
// (the job is writing, waiting for the pool, or done), and so does the job
// waiting for a helper (waitFor).
type chunkSync struct {
	// seq is the number of chunks published; first[c%2] and n[c%2]
	// describe chunk c (written before seq moves, read after; not
	// rewritten until every helper has finished chunk c).
	seq      atomic.Uint64
	first, n [2]atomic.Uint64
	// done counts the helpers' finished chunks, over the batch's life.
	done    atomic.Uint64
	stopped atomic.Bool
	// parked[i] is set by helper i before it sleeps on wake[i].
	parked []atomic.Bool
	wake   []chan struct{}
	exited chan struct{}
	// jobParked is set by the job before it sleeps on jobWake (waitFor).
	jobParked atomic.Bool
	jobWake   chan struct{}
}

// spinBeforePark is how long a helper spins without work before it
// sleeps: longer than the job's work between chunks (working out the next
// chunk's addresses, placing a block), shorter than a pool wait. Spinning
// never yields: a locked thread that yields sleeps until the scheduler
// wakes it, tens of microseconds on a virtual machine.
const spinBeforePark = 200 * time.Microsecond

// batchPrefetchBytes is how many bytes of parent records a hasher keeps
// prefetched ahead of the node it hashes.
var batchPrefetchBytes = 8 << 10

// batchChunkNodes is how many nodes' addresses the batch works out before
// its hashers label them (139 KiB of addresses, in L2). Ending a chunk is
// the one synchronisation between hashers; BenchmarkGroupLabelRange, a
// batch of 8 on two cores: 2.54M labels/s with chunks of 128 nodes, 3.12M
// with 1024 (one core: 2.03-2.06M). A spilling batch's chunks may be
// shorter (the spill tier's step, tier.PassStep, cut where its cold
// parents reach tier.BatchStepColdParents): the pages it reads are held
// until the hashing passes them.
const batchChunkNodes = 1024

// batchHasher labels lanes [lo, hi) of a batch: subgroups [groups[j],
// groups[j+1]) one kernel call each.
type batchHasher struct {
	g       *batchLabeler
	lo, hi  int
	groups  []int
	streams multiStreams
	// lines are the cache lines of the hasher's part of the records
	// prefetched for one node.
	lines []uintptr
}

// newBatchLabeler makes the labeler of lanes, hashing on up to hashers
// cores (close stops the helpers), its helpers' threads placed by
// affinity.
func newBatchLabeler(lanes []*lane, useSHANI bool, hashers int, affinity hashAffinity) (*batchLabeler, error) {
	k := len(lanes)
	if k < 2 || k > tier.MaxBatchLanes {
		return nil, fmt.Errorf("batch of %d sectors: want 2 to %d", k, tier.MaxBatchLanes)
	}
	g := &batchLabeler{k: k, useSHANI: useSHANI, cur: make([]*layerView, k), prev: make([]*layerView, k)}
	for _, ln := range lanes {
		g.nls = append(g.nls, ln.nl)
	}
	l0 := g.nls[0]
	for c := range g.chunks {
		for range batchChunkNodes {
			a := new([halfSlots]uintptr)
			*a = l0.addrs[0] // lane 0's header and padding slots
			g.chunks[c] = append(g.chunks[c], a)
		}
	}
	var err error
	if g.plan1, err = newMultiPlan(l0.orderLayer1[:]); err != nil {
		return nil, err
	}
	if g.planN, err = newMultiPlan(l0.orderLayerN[:]); err != nil {
		return nil, err
	}
	subgroups := (k + maxStreams - 1) / maxStreams
	bound := func(j int) int { return j * k / subgroups }
	h := max(1, min(hashers, subgroups))
	for i := range h {
		first, last := i*subgroups/h, (i+1)*subgroups/h
		bh := &batchHasher{g: g, lo: bound(first), hi: bound(last)}
		for j := first; j <= last; j++ {
			bh.groups = append(bh.groups, bound(j))
		}
		recordLines := ((bh.hi-bh.lo)*sdr.NodeSize+63)/64 + 1
		bh.lines = make([]uintptr, 0, sdr.Degree*recordLines)
		g.hashers = append(g.hashers, bh)
	}
	if h > 1 {
		g.sync = newChunkSync(h - 1)
		for i, bh := range g.hashers[1:] {
			go bh.serve(g.sync, i, affinity)
		}
	}
	return g, nil
}

// newChunkSync makes the chunk hand-over of a job and helpers helpers.
func newChunkSync(helpers int) *chunkSync {
	cs := &chunkSync{parked: make([]atomic.Bool, helpers), exited: make(chan struct{}, helpers), jobWake: make(chan struct{}, 1)}
	for range helpers {
		cs.wake = append(cs.wake, make(chan struct{}, 1))
	}
	return cs
}

// cores is how many cores the batch hashes on.
func (g *batchLabeler) cores() int { return len(g.hashers) }

// close stops the helper hashers and waits for them.
func (g *batchLabeler) close() {
	cs := g.sync
	if cs == nil {
		return
	}
	cs.stopped.Store(true)
	for i := range cs.wake {
		select {
		case cs.wake[i] <- struct{}{}:
		default:
		}
	}
	for range cs.wake {
		<-cs.exited
	}
	g.sync = nil
}

// serve runs helper i on its own thread, so that the thread's CPU time is
// its hashing's: it labels each chunk published, then counts it done.
func (h *batchHasher) serve(cs *chunkSync, i int, affinity hashAffinity) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer affinity.apply()()
	defer func() { cs.exited <- struct{}{} }()
	var seen uint64
	for {
		spinThenSleep(func() bool { return cs.seq.Load() != seen || cs.stopped.Load() }, &cs.parked[i], cs.wake[i])
		if cs.seq.Load() == seen {
			return // stopped
		}
		c := seen % 2
		seen++
		start := threadCPU()
		h.label(h.g.chunks[c], cs.first[c].Load(), cs.n[c].Load())
		h.g.helperCPU.Add(int64(threadCPU() - start))
		cs.finishChunk()
	}
}

// reset prepares for layer, after the lanes' nodeLabelers were reset.
func (g *batchLabeler) reset(lanes []*lane, layer int) {
	for s, ln := range lanes {
		g.cur[s], g.prev[s] = ln.cur, ln.prev
	}
	g.layer = layer
	g.degree = sdr.BaseDegree
	g.plan = &g.plan1
	if layer > 1 {
		g.degree = sdr.Degree
		g.plan = &g.planN
	}
}

// labelRange labels nodes [first, first+count) of every lane into its cur,
// as nodeLabeler.labelRange does for one: parents holds sdr.Degree entries
// per node starting at first, the same for every lane.
//
// This is the hot loop: it allocates nothing and makes no interface calls.
func (g *batchLabeler) labelRange(first, count uint64, parents []uint32) {
	g.labelAhead(first, count, parents)
	g.wait()
}

// labelAhead is labelRange, except that it may return while helpers
// still label the last chunk it published: settle says up to where every
// lane is labeled, wait waits for all of it. A helper preempted by another
// thread (the spill tier's writers and reader share the cores) then holds
// up the job's next chunk, not this one's end: its lag is absorbed up to
// one chunk, where waiting at every chunk's end made each preemption of
// either side cost both.
func (g *batchLabeler) labelAhead(first, count uint64, parents []uint32) {
	l0 := g.nls[0]
	for count > 0 {
		n := min(count, batchChunkNodes)
		cs := g.sync
		chunk := g.chunks[0]
		if cs != nil {
			// The buffer of chunk seq was chunk seq-2's: every helper must
			// be done with it.
			seq := cs.seq.Load()
			chunk = g.chunks[seq%2]
			cs.waitFor(max(seq, 1) - 1)
		}
		for i := range n {
			l0.parentAddrs(chunk[i], first+i, parents[i*sdr.Degree:(i+1)*sdr.Degree], g.degree, g.cur[0], g.prev[0])
		}
		if cs != nil {
			cs.publish(first, n)
		}
		g.hashers[0].label(chunk, first, n)
		first, count, parents = first+n, count-n, parents[n*sdr.Degree:]
	}
}

// wait returns once every lane of every node labelAhead was given is
// labeled.
func (g *batchLabeler) wait() {
	if cs := g.sync; cs != nil {
		cs.waitFor(cs.seq.Load())
	}
}

// settle waits until the helpers are at most one chunk behind (as
// labelAhead would before its next chunk) and returns the node every lane
// is labeled up to, given that the job's own lanes are labeled up to node:
// node, or the start of the last chunk if a helper is still on it. The
// spill tier is told that node: the pages of the chunk a helper labels
// must stay, and the look-ahead must move on for the job's next chunk.
func (g *batchLabeler) settle(node uint64) uint64 {
	cs := g.sync
	if cs == nil {
		return node
	}
	seq := cs.seq.Load()
	if seq == 0 {
		return node
	}
	cs.waitFor(seq - 1)
	if cs.finished(seq) {
		return node
	}
	return min(node, cs.first[(seq-1)%2].Load())
}

// publish hands the helpers nodes [first, first+n), waking any parked.
func (cs *chunkSync) publish(first, n uint64) {
	c := cs.seq.Load() % 2
	cs.first[c].Store(first)
	cs.n[c].Store(n)
	cs.seq.Add(1)
	for i := range cs.parked {
		if cs.parked[i].Load() {
			select {
			case cs.wake[i] <- struct{}{}:
			default:
			}
		}
	}
}

// finished says whether every helper has finished the first chunks
// chunks.
func (cs *chunkSync) finished(chunks uint64) bool {
	return cs.done.Load() >= chunks*uint64(len(cs.wake))
}

// finishChunk counts one chunk finished by a helper, waking the job if it
// sleeps in waitFor.
func (cs *chunkSync) finishChunk() {
	cs.done.Add(1)
	if cs.jobParked.Load() {
		select {
		case cs.jobWake <- struct{}{}:
		default:
		}
	}
}

// waitFor returns once every helper has finished the first chunks chunks.
// It spins, as the helpers do, and sleeps after spinBeforePark: a helper
// that long behind is waiting for a spilled page or was preempted by the
// spill tier's threads, and a spinning job would keep from its core the
// threads they wait for (the reader's, whose completions are reaped on
// its own thread).
func (cs *chunkSync) waitFor(chunks uint64) {
	spinThenSleep(func() bool { return cs.finished(chunks) }, &cs.jobParked, cs.jobWake)
}

// spinThenSleep returns once ready holds, for either side of a batch's
// chunks: it spins, and once it has spun spinBeforePark it sets parked,
// looks once more (the other side may have moved before it saw the flag)
// and sleeps on wake, which the other side signals when it sees the flag.
// A stale wake-up only costs another look.
func spinThenSleep(ready func() bool, parked *atomic.Bool, wake <-chan struct{}) {
	var since time.Time
	for poll := 0; !ready(); poll++ {
		if poll%1024 != 0 {
			continue
		}
		if since.IsZero() {
			since = time.Now()
		}
		if time.Since(since) < spinBeforePark {
			continue
		}
		parked.Store(true)
		if !ready() {
			<-wake
		}
		parked.Store(false)
		since = time.Time{}
	}
}

// label labels the hasher's lanes of nodes [first, first+n), whose lane-0
// addresses are in the batch's chunk, prefetching its part of the parent
// records prefetchDistance nodes ahead (the kernels do not prefetch).
func (h *batchHasher) label(chunk []*[halfSlots]uintptr, first, n uint64) {
	g := h.g
	degree := g.degree
	lo, hi := uintptr(h.lo*sdr.NodeSize), uintptr(h.hi*sdr.NodeSize)
	// Prefetch about batchPrefetchBytes ahead: a wide hasher's records
	// (14 KiB a node for 32 lanes) prefetched 4 nodes ahead would push
	// the ones it is reading out of L1.
	dist := uint64(max(1, min(prefetchDistance, batchPrefetchBytes/(degree*(h.hi-h.lo)*sdr.NodeSize))))
	for i := range min(n, dist) {
		h.prefetch(chunk[i], degree, lo, hi)
	}
	for i := range n {
		if ahead := i + dist; ahead < n {
			h.prefetch(chunk[ahead], degree, lo, hi)
		}
		node := first + i
		if node == 0 {
			// No parents: the header alone, which the kernels' plans do
			// not describe.
			for s := h.lo; s < h.hi; s++ {
				g.nls[s].h.Sum(0, g.cur[s].label(0)[:])
			}
			continue
		}
		a0 := chunk[i]
		for j := 0; j+1 < len(h.groups); j++ {
			glo, ghi := h.groups[j], h.groups[j+1]
			for s := glo; s < ghi; s++ {
				l := g.nls[s]
				binary.BigEndian.PutUint64(l.header[36:44], node)
				a := a0
				if s > 0 {
					// Lane s's message: the same records, its own header.
					a = &l.addrs[0]
					off := uintptr(s * sdr.NodeSize)
					for p := range degree {
						a[p] = a0[p] + off
					}
				}
				h.streams.halves[s-glo] = &a[0]
				h.streams.out[s-glo] = g.cur[s].label(uint32(node))
			}
			sumNodesMulti(ghi-glo, &h.streams, g.plan, g.useSHANI)
		}
	}
}

// prefetch asks for the cache lines of bytes [lo, hi) of each parent
// record at a.
func (h *batchHasher) prefetch(a *[halfSlots]uintptr, degree int, lo, hi uintptr) {
	lines := h.lines[:0]
	for _, p := range a[:degree] {
		for line := (p + lo) &^ 63; line < p+hi; line += 64 {
			lines = append(lines, line)
		}
	}
	prefetchLabels(&lines[0], len(lines))
}

// batchView points every lane's view of one layer at the same blocks: the
// spill tier places a batch's blocks once (tier.LayerView).
type batchView []*layerView

func (v batchView) SetBlock(i int, b []byte) {
	for _, lv := range v {
		lv.SetBlock(i, b)
	}
}

func (v batchView) SetCold(i int, cold *tier.ColdLabels) {
	for _, lv := range v {
		lv.SetCold(i, cold)
	}
}
