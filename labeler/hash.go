package labeler

import "github.com/pc1-tiered/pc1-tiered/sdr"

// layerView addresses the labels of one layer spread over pool blocks:
// node p lives in blocks[p>>shift] at byte (p&mask)*32.
type layerView struct {
	blocks [][]byte
	shift  uint
	mask   uint64
}

func (v *layerView) label(p uint32) *[sdr.NodeSize]byte {
	b := v.blocks[uint64(p)>>v.shift]
	off := (uint64(p) & v.mask) * sdr.NodeSize
	return (*[sdr.NodeSize]byte)(b[off : off+sdr.NodeSize])
}

// labelRange labels nodes [first, first+count) of the layer h was reset
// for, into cur. parents holds sdr.Degree entries per node starting at
// first. Base parents are always behind the node (or node 0), so their
// blocks are already in cur; expander parents are read from prev. This is
// the hot loop: it allocates nothing and makes no interface calls.
func labelRange(h *sdr.NodeHasher, first, count uint64, parents []uint32, cur, prev *layerView) {
	slots := h.ParentSlots()
	expander := h.Layer() > 1
	for i := uint64(0); i < count; i++ {
		node := first + i
		out := cur.label(uint32(node))
		if node == 0 {
			h.Sum(0, out[:])
			continue
		}
		ps := parents[i*sdr.Degree : (i+1)*sdr.Degree : (i+1)*sdr.Degree]
		for s := 0; s < sdr.BaseDegree; s++ {
			*(*[sdr.NodeSize]byte)(slots[s*sdr.NodeSize:]) = *cur.label(ps[s])
		}
		if expander {
			for s := sdr.BaseDegree; s < sdr.Degree; s++ {
				*(*[sdr.NodeSize]byte)(slots[s*sdr.NodeSize:]) = *prev.label(ps[s])
			}
		}
		h.Sum(node, out[:])
	}
}
