package labeler

import (
	"encoding/binary"
	"math/bits"
	"unsafe"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
)

// layerView addresses the labels of one layer spread over pool blocks:
// node p lives in blocks[p>>shift] at byte (p&mask)*stride + off. A
// single sector's labels are packed (stride 32, off 0); the k lanes of a
// lockstep group share blocks with their labels interleaved (stride
// 32k, lane s at off 32s), so that one parent's k labels are adjacent.
type layerView struct {
	blocks [][]byte
	// base[i] is the address of blocks[i]: the hot loop turns a node into
	// an address with one load instead of a slice header's three. Blocks
	// are tier memory outside the Go heap, so the addresses stay valid.
	base        []uintptr
	shift       uint
	mask        uint64
	stride, off uint64
	// cold serves the labels of blocks on the device (base 0): a spilling
	// job's only; nil otherwise.
	cold *tier.ColdLabels
}

func newLayerView(blocks int, nodesPerBlock uint64) *layerView {
	return newLaneView(blocks, nodesPerBlock, 1, 0)
}

// newLaneView is the view of lane s of k interleaved lanes.
func newLaneView(blocks int, nodesPerBlock uint64, k, s int) *layerView {
	return &layerView{
		blocks: make([][]byte, blocks),
		base:   make([]uintptr, blocks),
		shift:  uint(bits.TrailingZeros64(nodesPerBlock)),
		mask:   nodesPerBlock - 1,
		stride: uint64(k) * sdr.NodeSize,
		off:    uint64(s) * sdr.NodeSize,
	}
}

// SetBlock points block i at b, in DRAM (tier.LayerView).
func (v *layerView) SetBlock(i int, b []byte) {
	v.blocks[i] = b
	v.base[i] = uintptr(unsafe.Pointer(&b[0]))
}

// SetCold marks block i as on the device: its labels come from cold, one
// per read, in the order the hashing reads them (tier.LayerView).
func (v *layerView) SetCold(i int, cold *tier.ColdLabels) {
	v.blocks[i] = nil
	v.base[i] = 0
	v.cold = cold
}

func (v *layerView) label(p uint32) *[sdr.NodeSize]byte {
	b := v.blocks[uint64(p)>>v.shift]
	off := (uint64(p)&v.mask)*v.stride + v.off
	return (*[sdr.NodeSize]byte)(b[off : off+sdr.NodeSize])
}

// addr is the address of parent p's label in DRAM. For a block on the
// device (base 0) it is meaningless, and coldAddrs replaces it. Kept this
// small, it is inlined into the hot loop.
func (v *layerView) addr(p uint32) uintptr {
	return v.base[uint64(p)>>v.shift] + uintptr((uint64(p)&v.mask)*v.stride+v.off)
}

// onDevice says whether parent p's block is on the device (SetCold), so
// that its label comes from the spill tier rather than from addr.
func (v *layerView) onDevice(p uint32) bool { return v.base[uint64(p)>>v.shift] == 0 }

// prefetchDistance is how many nodes ahead parents are prefetched: far
// enough for a miss (about 100 ns) to complete while the nodes in between
// are hashed (about 700 ns each), near enough that the prefetched lines are
// still in L1/L2 when they are read. 2, 4, 8 and 16 measured the same
// within noise (BenchmarkLabelRange).
const prefetchDistance = 4

// nodeLabeler computes the labels of one job. It must live on the heap
// (newNodeLabeler): the hashing kernel is handed raw addresses of its header
// and padding, which must not move.
type nodeLabeler struct {
	h     sdr.NodeHasher
	layer int
	// shaNI selects the kernel that hashes parents where they lie; without
	// the SHA extensions parents are copied into h's message instead.
	shaNI bool

	header [64]byte
	// state is the SHA-256 state after the header block of the node
	// labelRange hashes next (sumChained).
	state [32]byte
	// pad is the second half of the last block: the message ends with one
	// parent label, then 0x80, zeros and the message length in bits.
	pad [32]byte
	// addrs[i%len] holds node i's 32-byte message halves: its parents'
	// addresses (filled when node i is prefetched, read when it is hashed),
	// then the header's two halves and the padding, which never change.
	addrs [prefetchDistance + 1][halfSlots]uintptr
	// order lists, per layer kind, which halves make up each 64-byte block
	// of a node's message: the reference's parent repetition as indexes.
	orderLayer1, orderLayerN [2 * sdr.CompressionsPerNode]uint8
}

// Slots of a node's halves after its parents.
const (
	halfHeaderLo = sdr.Degree + iota
	halfHeaderHi
	halfPad
	halfSlots
)

func newNodeLabeler(useSHANI bool) *nodeLabeler {
	l := &nodeLabeler{shaNI: useSHANI}
	l.pad[0] = 0x80
	binary.BigEndian.PutUint64(l.pad[24:], sdr.MessageSize*8)
	for i := range l.addrs {
		l.addrs[i][halfHeaderLo] = uintptr(unsafe.Pointer(&l.header[0]))
		l.addrs[i][halfHeaderHi] = uintptr(unsafe.Pointer(&l.header[32]))
		l.addrs[i][halfPad] = uintptr(unsafe.Pointer(&l.pad[0]))
	}
	// Layer 1: header, (P0..P5) six times, then P0 and the padding.
	o := append(l.orderLayer1[:0], halfHeaderLo, halfHeaderHi)
	for range 6 {
		o = append(o, 0, 1, 2, 3, 4, 5)
	}
	o = append(o, 0, halfPad)
	// Later layers: header, (P0..P13) twice, P0..P7, then P8 and the padding.
	o = append(l.orderLayerN[:0], halfHeaderLo, halfHeaderHi)
	for range 2 {
		for p := range uint8(sdr.Degree) {
			o = append(o, p)
		}
	}
	o = append(o, 0, 1, 2, 3, 4, 5, 6, 7, 8, halfPad)
	_ = o
	return l
}

// reset prepares for layer (from 1) of replicaID.
func (l *nodeLabeler) reset(replicaID *[32]byte, layer int) {
	l.h.Reset(replicaID, layer)
	l.layer = layer
	l.header = [64]byte{}
	copy(l.header[:32], replicaID[:])
	binary.BigEndian.PutUint32(l.header[32:36], uint32(layer))
}

// labelRange labels nodes [first, first+count) into cur. parents holds
// sdr.Degree entries per node starting at first. Base parents are always
// behind the node, so they are already labeled in cur; expander parents
// are read from prev.
//
// Parent reads are random over 2 x S bytes; loaded when needed, each
// node's 14 misses would stall the core between two hashes. So the parents
// of the node prefetchDistance ahead are prefetched before each node is
// hashed, and arrive while it is.
//
// This is the hot loop: it allocates nothing and makes no interface calls.
func (l *nodeLabeler) labelRange(first, count uint64, parents []uint32, cur, prev *layerView) {
	degree := sdr.BaseDegree
	if l.layer > 1 {
		degree = sdr.Degree
	}
	const ring = prefetchDistance + 1
	for i := uint64(0); i < min(count, prefetchDistance); i++ {
		l.parentAddrs(&l.addrs[i%ring], first+i, parents[i*sdr.Degree:(i+1)*sdr.Degree], degree, cur, prev)
	}
	// chained says l.state holds the state after node's header block (the
	// previous node's kernel call computed it).
	chained := false
	for i := uint64(0); i < count; i++ {
		next, nnext := &l.addrs[(i+prefetchDistance)%ring], 0
		if ahead := i + prefetchDistance; ahead < count {
			l.parentAddrs(next, first+ahead, parents[ahead*sdr.Degree:(ahead+1)*sdr.Degree], degree, cur, prev)
			nnext = degree
		}
		node := first + i
		out := cur.label(uint32(node))
		switch {
		case node == 0:
			prefetchLabels(&next[0], nnext)
			l.h.Sum(0, out[:])
		case l.shaNI:
			if !chained {
				binary.BigEndian.PutUint64(l.header[36:44], node)
				sha256HeaderState(&l.header, &l.state)
				chained = true
			}
			l.sumChained(node, &l.addrs[i%ring], out, next, nnext)
		default:
			prefetchLabels(&next[0], nnext)
			l.sumCopy(node, &l.addrs[i%ring], degree, out)
		}
	}
}

// parentAddrs fills a with the addresses of node's parents' labels, ps,
// in slot order (the order the spill tier's prefetcher hands cold labels
// in).
func (l *nodeLabeler) parentAddrs(a *[halfSlots]uintptr, node uint64, ps []uint32, degree int, cur, prev *layerView) {
	ps = ps[:sdr.Degree:sdr.Degree]
	for s := 0; s < sdr.BaseDegree; s++ {
		a[s] = cur.addr(ps[s])
	}
	if degree == sdr.Degree {
		for s := sdr.BaseDegree; s < sdr.Degree; s++ {
			a[s] = prev.addr(ps[s])
		}
	}
	if cur.cold != nil || prev.cold != nil {
		coldAddrs(a, node, ps, degree, cur, prev)
	}
}

// coldAddrs replaces the addresses of node's parents in blocks on the
// device with those of their labels as the spill tier read them, in slot
// order (the order its prefetcher hands them over in). A spilling job's
// views share one ColdLabels.
//
//go:noinline
func coldAddrs(a *[halfSlots]uintptr, node uint64, ps []uint32, degree int, cur, prev *layerView) {
	for s := 0; s < degree; s++ {
		v := cur
		if s >= sdr.BaseDegree {
			v = prev
		}
		if v.onDevice(ps[s]) {
			a[s] = v.cold.Next(node)
		}
	}
}

// sumChained hashes node's message straight from its parents' labels (the
// 37 parent slots as pairs of labels in the reference's repetition order,
// the last pair completed by the padding), from l.state, the state its
// header block leaves, and computes the next node's into l.state
// meanwhile: a node's header depends on no label, so one stream's
// latency-bound chain is 19 blocks a node instead of 20
// (BenchmarkMultiKernels, pairs-k1 against chain-k1). It prefetches the
// nnext addresses at next while it is at it.
func (l *nodeLabeler) sumChained(node uint64, a *[halfSlots]uintptr, out *[sdr.NodeSize]byte, next *[halfSlots]uintptr, nnext int) {
	binary.BigEndian.PutUint64(l.header[36:44], node+1)
	order := &l.orderLayerN
	if l.layer == 1 {
		order = &l.orderLayer1
	}
	sha256HalvesNext(out, &a[0], &order[2], sdr.CompressionsPerNode-1, &next[0], nnext, &l.state, &l.header)
	out[31] &= 0x3f
}

// sumCopy is the portable path: copy the parents' labels (at the addresses
// parentAddrs found) into the message and hash it with crypto/sha256.
func (l *nodeLabeler) sumCopy(node uint64, a *[halfSlots]uintptr, degree int, out *[sdr.NodeSize]byte) {
	slots := l.h.ParentSlots()
	for s := range degree {
		// The labels lie outside the Go heap (the arena, the spill tier's
		// buffers): an address is all the hashing keeps of them.
		label := *(**[sdr.NodeSize]byte)(unsafe.Pointer(&a[s]))
		*(*[sdr.NodeSize]byte)(slots[s*sdr.NodeSize:]) = *label
	}
	l.h.Sum(node, out[:])
}
