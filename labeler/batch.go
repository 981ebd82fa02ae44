package labeler

import (
	"encoding/binary"
	"fmt"

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
// It must live on the heap (newBatchLabeler): the kernels read its
// streams.
type batchLabeler struct {
	k        int
	useSHANI bool
	layer    int
	nls      []*nodeLabeler
	// cur[s] and prev[s] are lane s's views of the layers, refreshed by
	// reset as the lanes swap them between layers; lane 0's also serve the
	// batch's parent addresses (their offset is 0).
	cur, prev []*layerView
	// groups are the subgroups' first lanes, and one past the last.
	groups []int
	// plan is plan1 in layer 1, planN after.
	plan         *multiPlan
	plan1, planN multiPlan
	streams      multiStreams
	// lines are the cache lines of the records prefetched for one node.
	lines []uintptr
}

func newBatchLabeler(lanes []*lane, useSHANI bool) (*batchLabeler, error) {
	k := len(lanes)
	if k < 2 || k > tier.MaxBatchLanes {
		return nil, fmt.Errorf("batch of %d sectors: want 2 to %d", k, tier.MaxBatchLanes)
	}
	g := &batchLabeler{k: k, useSHANI: useSHANI, cur: make([]*layerView, k), prev: make([]*layerView, k)}
	for _, ln := range lanes {
		g.nls = append(g.nls, ln.nl)
	}
	n := (k + maxStreams - 1) / maxStreams
	for i := range n + 1 {
		g.groups = append(g.groups, i*k/n)
	}
	var err error
	if g.plan1, err = newMultiPlan(g.nls[0].orderLayer1[:]); err != nil {
		return nil, err
	}
	if g.planN, err = newMultiPlan(g.nls[0].orderLayerN[:]); err != nil {
		return nil, err
	}
	recordLines := (k*sdr.NodeSize+63)/64 + 1
	g.lines = make([]uintptr, 0, sdr.Degree*recordLines)
	return g, nil
}

// reset prepares for layer, after the lanes' nodeLabelers were reset.
func (g *batchLabeler) reset(lanes []*lane, layer int) {
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
// per node starting at first, the same for every lane. Lane 0's address
// ring holds the batch's parent addresses, prefetchDistance nodes ahead,
// and their records are prefetched then (the kernels do not prefetch).
//
// This is the hot loop: it allocates nothing and makes no interface calls.
func (g *batchLabeler) labelRange(first, count uint64, parents []uint32) {
	degree := sdr.BaseDegree
	if g.layer > 1 {
		degree = sdr.Degree
	}
	const ring = prefetchDistance + 1
	l0 := g.nls[0]
	for i := uint64(0); i < min(count, prefetchDistance); i++ {
		l0.parentAddrs(&l0.addrs[i%ring], first+i, parents[i*sdr.Degree:(i+1)*sdr.Degree], degree, g.cur[0], g.prev[0])
	}
	recordBytes := uintptr(g.k * sdr.NodeSize)
	for i := uint64(0); i < count; i++ {
		if ahead := i + prefetchDistance; ahead < count {
			next := &l0.addrs[ahead%ring]
			l0.parentAddrs(next, first+ahead, parents[ahead*sdr.Degree:(ahead+1)*sdr.Degree], degree, g.cur[0], g.prev[0])
			lines := g.lines[:0]
			for _, a := range next[:degree] {
				for line := a &^ 63; line < a+recordBytes; line += 64 {
					lines = append(lines, line)
				}
			}
			prefetchLabels(&lines[0], len(lines))
		}
		node := first + i
		if node == 0 {
			// No parents: the header alone, which the kernels' plans do
			// not describe.
			for s := range g.k {
				g.nls[s].h.Sum(0, g.cur[s].label(0)[:])
			}
			continue
		}
		a0 := &l0.addrs[i%ring]
		for j := 0; j+1 < len(g.groups); j++ {
			lo, hi := g.groups[j], g.groups[j+1]
			for s := lo; s < hi; s++ {
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
				g.streams.halves[s-lo] = &a[0]
				g.streams.out[s-lo] = g.cur[s].label(uint32(node))
			}
			sumNodesMulti(hi-lo, &g.streams, g.plan, g.useSHANI)
		}
	}
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
