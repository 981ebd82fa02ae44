package sdr

import "fmt"

// ReferenceLabels computes all layers of one sector the obvious way: the
// previous and the current layer whole in memory, one node after another.
// It is the oracle every faster labeler is tested against, not a production
// path (it needs 2 x sector size of memory).
//
// parents, if not nil, is the parent cache content as u32s (Degree per
// node); if nil, parents are computed from g node by node (slow: Feistel
// permutations cost dozens of BLAKE2b calls per node). emit is called once
// per layer, in order, with that layer's labels; the slice is reused for
// layer+2, so emit must copy what it keeps.
func ReferenceLabels(g *Graph, parents []uint32, replicaID [32]byte, layers int, emit func(layer int, labels []byte) error) error {
	if layers < 1 {
		return fmt.Errorf("layer count %d: must be at least 1", layers)
	}
	nodes := g.Nodes()
	if parents != nil && uint64(len(parents)) != nodes*Degree {
		return fmt.Errorf("parent table has %d entries, want %d for %d nodes", len(parents), nodes*Degree, nodes)
	}
	prev := make([]byte, nodes*NodeSize)
	cur := make([]byte, nodes*NodeSize)
	var h NodeHasher
	var ps [Degree]uint32
	for layer := 1; layer <= layers; layer++ {
		h.Reset(&replicaID, layer)
		for node := uint64(0); node < nodes; node++ {
			if node > 0 {
				if parents != nil {
					copy(ps[:], parents[node*Degree:])
				} else {
					g.Parents(node, &ps)
				}
				for i, p := range ps[:BaseDegree] {
					copy(h.Parent(i), cur[uint64(p)*NodeSize:])
				}
				if layer > 1 {
					for i, p := range ps[BaseDegree:] {
						copy(h.Parent(BaseDegree+i), prev[uint64(p)*NodeSize:])
					}
				}
			}
			h.Sum(node, cur[node*NodeSize:])
		}
		if err := emit(layer, cur); err != nil {
			return fmt.Errorf("layer %d: %w", layer, err)
		}
		prev, cur = cur, prev
	}
	return nil
}

// LayerFileName is the reference's name for layer k (from 1) in a sector's
// cache directory.
func LayerFileName(layer int) string {
	return fmt.Sprintf("sc-02-data-layer-%d.dat", layer)
}
