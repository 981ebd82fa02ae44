package labeler

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"unsafe"
)

// Multi-stream hashing: the labels of k sectors at the same node computed
// together, so that the SHA unit overlaps k independent round chains
// instead of waiting out one chain's latency (sha256multi_amd64.s). This
// file holds the data the kernels read, the dispatch, and the portable path
// used without the SHA extensions.

const (
	// maxStreams is the largest k a kernel exists for.
	maxStreams = 4
	// maxPlanBlocks bounds a message's length in 64-byte blocks (a node
	// message has sdr.CompressionsPerNode = 20).
	maxPlanBlocks = 32
	// maxPlanDistinct bounds a message's distinct blocks, each of which the
	// kernels schedule once into their stack frame (a node message has 9 in
	// layers >= 2, 5 in layer 1).
	maxPlanDistinct = 10
)

// multiStreams is what the kernels read per stream s < k: halves[s] points
// at the stream's half table (entry i = address of 32 message bytes, as
// nodeLabeler.addrs[n]: parents 0..13, then halfHeaderLo, halfHeaderHi,
// halfPad), out[s] is where its digest goes. Streams share the plan, so the
// same half index means the same role in every stream.
//
// The assembly reads halves at offset 8*s and out at 32+8*s.
type multiStreams struct {
	halves [maxStreams]*uintptr
	out    [maxStreams]*[32]byte
}

// multiPlan is the block structure of a message, shared by all streams:
// which halves make up each distinct block, and in which order the blocks
// are compressed. Build it with newMultiPlan; the kernels trust it.
//
// The assembly reads blocks at 0, seq at 16, ready at 48, halves at 80.
type multiPlan struct {
	// blocks is the number of compressions, distinct the number of
	// distinct blocks (numbered in order of first use).
	blocks, distinct int
	// seq[j] is the distinct block compressed j-th.
	seq [maxPlanBlocks]uint8
	// ready[j] is how many distinct blocks have their message schedule
	// computed by the end of block j: all those used up to block j+1, so
	// that a schedule is computed during the rounds of the block before
	// its first use. As distinct blocks are numbered in order of first
	// use, ready[0] <= 2 and ready grows by at most 1 a block: the kernels
	// schedule block 0 up front, then at most one block during each block.
	ready [maxPlanBlocks]uint8
	// halves[2u], halves[2u+1] are the half indexes of distinct block u.
	halves [2 * maxPlanDistinct]uint8
}

// newMultiPlan builds the plan of a message given, like sha256Halves'
// order, as two half indexes per 64-byte block (nodeLabeler.orderLayer1 or
// orderLayerN).
func newMultiPlan(order []uint8) (multiPlan, error) {
	var p multiPlan
	n := len(order) / 2
	switch {
	case len(order)%2 != 0:
		return p, fmt.Errorf("multi-stream plan: %d half indexes, want two per block", len(order))
	case n == 0 || n > maxPlanBlocks:
		return p, fmt.Errorf("multi-stream plan: %d blocks, want 1 to %d", n, maxPlanBlocks)
	}
	for j := range n {
		a, b := order[2*j], order[2*j+1]
		u := 0
		for u < p.distinct && (p.halves[2*u] != a || p.halves[2*u+1] != b) {
			u++
		}
		if u == p.distinct {
			if p.distinct == maxPlanDistinct {
				return p, fmt.Errorf("multi-stream plan: more than %d distinct blocks", maxPlanDistinct)
			}
			p.halves[2*u], p.halves[2*u+1] = a, b
			p.distinct++
		}
		p.seq[j] = uint8(u)
	}
	p.blocks = n
	need := 0
	for j := range n {
		for _, u := range p.seq[j:min(j+2, n)] {
			need = max(need, int(u)+1)
		}
		p.ready[j] = uint8(need)
	}
	return p, nil
}

// multiKernels holds the SHA-NI kernels by stream count. It is written once,
// at start-up, by sha256multi_amd64.go's init when the CPU has the SHA
// extensions, and only read afterwards. It is a variable rather than a
// function because the kernels can be named only in amd64 files: code
// shared by all architectures reaches them through it, with no stubs.
var multiKernels [maxStreams + 1]func(*multiStreams, *multiPlan)

// multiSHANI reports whether sha256Multi has SHA-NI kernels to use.
func multiSHANI() bool { return multiKernels[maxStreams] != nil }

// sha256Multi writes to streams.out[s], for each stream s < k, the SHA-256
// digest of its message (plan's blocks of its halves, padding included).
// With useSHANI and the SHA extensions present, the k streams are hashed
// together by one kernel; otherwise one at a time by crypto/sha256.
// 1 <= k <= maxStreams.
func sha256Multi(k int, streams *multiStreams, plan *multiPlan, useSHANI bool) {
	if useSHANI {
		if f := multiKernels[k]; f != nil {
			f(streams, plan)
			return
		}
	}
	sha256MultiPortable(k, streams, plan)
}

// sumNodesMulti writes the labels of k nodes, one per stream, each message
// being a node's header block, parents and padding as listed by plan (built
// from nodeLabeler's orderLayer1 or orderLayerN, matching the layer): the
// digest with its last byte masked to a field element, as sumHalves does.
// The caller has written each stream's header (node index included).
func sumNodesMulti(k int, streams *multiStreams, plan *multiPlan, useSHANI bool) {
	sha256Multi(k, streams, plan, useSHANI)
	for s := range k {
		streams.out[s][31] &= 0x3f
	}
}

// sha256MultiPortable is the path without the SHA extensions: each
// stream's message is gathered, stripped of its padding and hashed by
// crypto/sha256, as the single-stream portable path (sdr.NodeHasher) does.
func sha256MultiPortable(k int, streams *multiStreams, plan *multiPlan) {
	var msg [maxPlanBlocks * 64]byte
	size := plan.blocks * 64
	for s := range k {
		halves := unsafe.Pointer(streams.halves[s])
		for j, u := range plan.seq[:plan.blocks] {
			for h := range 2 {
				i := uintptr(plan.halves[2*int(u)+h])
				// The table holds addresses as uintptr; reading an entry
				// as an unsafe.Pointer converts it without vet's
				// uintptr-to-pointer pattern.
				src := *(*unsafe.Pointer)(unsafe.Add(halves, i*unsafe.Sizeof(uintptr(0))))
				*(*[32]byte)(msg[64*j+32*h:]) = *(*[32]byte)(src)
			}
		}
		n, ok := unpaddedLen(msg[:size])
		if !ok {
			panic("labeler: multi-stream message does not end with its SHA-256 padding")
		}
		*streams.out[s] = sha256.Sum256(msg[:n])
	}
}

// unpaddedLen returns the length of the message whose padded form is m, if
// m ends with valid SHA-256 padding and has no block beyond it.
func unpaddedLen(m []byte) (int, bool) {
	bits := binary.BigEndian.Uint64(m[len(m)-8:])
	n := int(bits / 8)
	if bits%8 != 0 || bits/8 > uint64(len(m)) || (n+9+63)/64*64 != len(m) || m[n] != 0x80 {
		return 0, false
	}
	for _, c := range m[n+1 : len(m)-8] {
		if c != 0 {
			return 0, false
		}
	}
	return n, true
}
