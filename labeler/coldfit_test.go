package labeler

import (
	"testing"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// TestColdFit checks where a spilling batch's step ends: after the nodes
// whose parents in blocks on the device fit in the budget, counting base
// parents against the current layer's placement and expander parents
// against the previous layer's.
func TestColdFit(t *testing.T) {
	const nodesPerBlock = 4
	block := make([]byte, nodesPerBlock*sdr.NodeSize)
	view := func(hot ...bool) *layerView {
		v := newLayerView(len(hot), nodesPerBlock)
		for i, h := range hot {
			if h {
				v.SetBlock(i, block)
			} else {
				v.SetCold(i, nil)
			}
		}
		return v
	}
	// Blocks 0 and 1 of the current layer are on the device, 2 and 3 in
	// DRAM; the previous layer's block 1 is on the device.
	cur, prev := view(false, false, true, true), view(true, false, true, true)
	// node returns one node's parents: cold of its base parents in block
	// 0, the rest in block 2; coldExp of its expander parents in block 1,
	// the rest in block 0.
	node := func(cold, coldExp int) []uint32 {
		ps := make([]uint32, sdr.Degree)
		for s := range sdr.BaseDegree {
			ps[s] = 2 * nodesPerBlock
			if s < cold {
				ps[s] = 1
			}
		}
		for s := sdr.BaseDegree; s < sdr.Degree; s++ {
			ps[s] = 0
			if s-sdr.BaseDegree < coldExp {
				ps[s] = nodesPerBlock + 2
			}
		}
		return ps
	}
	nodes := func(ns ...[]uint32) []uint32 {
		var all []uint32
		for _, n := range ns {
			all = append(all, n...)
		}
		return all
	}
	for _, tc := range []struct {
		name          string
		parents       []uint32
		degree        int
		budget        int
		fit, leftOver int
	}{
		{name: "all fit", parents: nodes(node(1, 0), node(2, 0), node(0, 0)), degree: sdr.Degree, budget: 10, fit: 3, leftOver: 7},
		{name: "exactly the budget", parents: nodes(node(3, 0), node(2, 0), node(1, 0)), degree: sdr.Degree, budget: 5, fit: 2, leftOver: 0},
		{name: "expander parents count in layer 2 on", parents: nodes(node(0, 3), node(0, 8), node(0, 0)), degree: sdr.Degree, budget: 10, fit: 1, leftOver: 7},
		{name: "expander parents do not count in layer 1", parents: nodes(node(1, 8), node(1, 8), node(1, 8)), degree: sdr.BaseDegree, budget: 2, fit: 2, leftOver: 0},
		{name: "not even one", parents: nodes(node(6, 8)), degree: sdr.Degree, budget: 13, fit: 0, leftOver: 13},
		{name: "all hot", parents: nodes(node(0, 0), node(0, 0)), degree: sdr.Degree, budget: 0, fit: 2, leftOver: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := uint64(len(tc.parents) / sdr.Degree)
			fit, left := coldFit(tc.parents, n, tc.degree, tc.budget, cur, prev)
			require.Equal(t, uint64(tc.fit), fit)
			require.Equal(t, tc.leftOver, left)
		})
	}
}
