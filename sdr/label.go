package sdr

import (
	"crypto/sha256"
	"encoding/binary"
)

const (
	headerSize = 64
	// parentSlots is how many 32-byte parent slots a node message has: the
	// reference repeats the parents to fill 37 slots so that every node costs
	// the same 20 compressions.
	parentSlots = 37
	// MessageSize is the length of a node's SHA-256 message.
	MessageSize = headerSize + parentSlots*NodeSize
	// CompressionsPerNode is the number of SHA-256 compressions one label
	// costs (1248 bytes plus padding).
	CompressionsPerNode = (MessageSize + 9 + 63) / 64
)

// NodeHasher computes node labels of one layer of one replica. The caller
// copies parent labels into the slots returned by Parent, then calls Sum.
// The zero value is unusable: call Reset.
//
// A NodeHasher is not safe for concurrent use; give each hashing goroutine
// its own.
type NodeHasher struct {
	msg   [MessageSize]byte
	layer int
}

// Reset prepares the hasher for layer (counted from 1) of replicaID.
func (h *NodeHasher) Reset(replicaID *[32]byte, layer int) {
	h.msg = [MessageSize]byte{}
	copy(h.msg[:32], replicaID[:])
	binary.BigEndian.PutUint32(h.msg[32:36], uint32(layer))
	h.layer = layer
}

// Layer is the layer the hasher was reset for.
func (h *NodeHasher) Layer() int { return h.layer }

// Parent returns the slot for parent i (0..13) of the next label. In layer 1
// only slots 0..5 are used.
func (h *NodeHasher) Parent(i int) []byte {
	off := headerSize + i*NodeSize
	return h.msg[off : off+NodeSize : off+NodeSize]
}

// ParentSlots returns the contiguous slots of parents 0..13 (448 bytes), so
// a caller that gathers parents in bulk can write them in one go.
func (h *NodeHasher) ParentSlots() []byte {
	return h.msg[headerSize : headerSize+Degree*NodeSize]
}

// Sum writes the label of node into out (32 bytes), reading the parents
// already placed in their slots. Node 0 has no parents: its label hashes the
// header alone.
func (h *NodeHasher) Sum(node uint64, out []byte) {
	binary.BigEndian.PutUint64(h.msg[36:44], node)
	var sum [32]byte
	if node == 0 {
		sum = sha256.Sum256(h.msg[:headerSize])
	} else {
		h.repeatParents()
		sum = sha256.Sum256(h.msg[:])
	}
	sum[31] &= 0x3f
	copy(out[:NodeSize], sum[:])
}

// repeatParents fills slots beyond the distinct parents with the
// reference's repetition: in layer 1, (P0..P5) six times then P0; later,
// (P0..P13) twice, then P0..P7, then P8.
func (h *NodeHasher) repeatParents() {
	const base = headerSize
	if h.layer == 1 {
		const n = BaseDegree * NodeSize
		for off := base + n; off < base+6*n; off += n {
			copy(h.msg[off:off+n], h.msg[base:base+n])
		}
		copy(h.msg[base+6*n:], h.msg[base:base+NodeSize])
		return
	}
	const n = Degree * NodeSize
	copy(h.msg[base+n:base+2*n], h.msg[base:base+n])
	copy(h.msg[base+2*n:base+2*n+8*NodeSize], h.msg[base:base+8*NodeSize])
	copy(h.msg[base+2*n+8*NodeSize:], h.msg[base+8*NodeSize:base+9*NodeSize])
}
