package sdr

//go:generate go run gen_feistel_blake2b.go

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"
)

const (
	// NodeSize is the size of one label in bytes.
	NodeSize = 32
	// BaseDegree is the number of DRG parents, in the layer being written.
	BaseDegree = 6
	// ExpanderDegree is the number of expander parents, in the previous layer.
	ExpanderDegree = 8
	// Degree is the number of parents of a node.
	Degree = BaseDegree + ExpanderDegree
	// MinSectorSize is the smallest sector the graph is defined for here.
	MinSectorSize = 2 * kib

	feistelRounds = 3
)

// Graph is the stacked DRG of one sector size and porep id: bucket-graph
// base parents plus Feistel expander parents. It is immutable and safe for
// concurrent use.
type Graph struct {
	nodes   uint64
	api     APIVersion
	porepID [32]byte

	// drgKey is the first 7 words of every node's ChaCha8 key; the node
	// index is the eighth.
	drgKey      [7]uint32
	feistelKeys [4]uint64
	// feistelKeyWords are the round keys as the second message word of
	// feistelBlake2b: the reference hashes each key big-endian, BLAKE2b
	// reads words little-endian, so swapping once here spares every call.
	feistelKeyWords [feistelRounds]uint64

	// Feistel network over [0, 4^halfBits) with cycle walking into
	// [0, expanderDomain).
	expanderDomain uint64
	halfBits       uint
	rightMask      uint64
	leftMask       uint64
	// roundTable returns buildRoundTable's table, built on first use so
	// that a Graph made only to name a cache or label from one costs
	// nothing; sync.OnceValue keeps the Graph safe for concurrent use.
	roundTable func() []uint32
}

// NewGraph builds the graph for a sector of sectorSize bytes. The size must
// be a power of two of at least 2 KiB and at most 2^37 bytes (2^32 nodes).
func NewGraph(sectorSize uint64, porepID [32]byte, api APIVersion) (*Graph, error) {
	if err := CheckSectorSize(sectorSize); err != nil {
		return nil, err
	}
	if api < APIVersion1_0 || api > APIVersion1_2 {
		return nil, fmt.Errorf("unknown API version %d", int(api))
	}
	g := &Graph{nodes: sectorSize / NodeSize, api: api, porepID: porepID}
	drg := domainSeed("Filecoin_DRSample", porepID)
	for i := range g.drgKey {
		g.drgKey[i] = binary.LittleEndian.Uint32(drg[4*i:])
	}
	fk := domainSeed("Filecoin_Feistel", porepID)
	for i := range g.feistelKeys {
		g.feistelKeys[i] = binary.LittleEndian.Uint64(fk[8*i:])
	}
	for i := range g.feistelKeyWords {
		g.feistelKeyWords[i] = bits.ReverseBytes64(g.feistelKeys[i])
	}
	g.expanderDomain = g.nodes * ExpanderDegree
	// The smallest power of four, at least 4, covering the domain.
	g.halfBits = 1
	for uint64(1)<<(2*g.halfBits) < g.expanderDomain {
		g.halfBits++
	}
	g.rightMask = uint64(1)<<g.halfBits - 1
	g.leftMask = g.rightMask << g.halfBits
	g.roundTable = sync.OnceValue(g.buildRoundTable)
	return g, nil
}

// NewProofGraph builds the graph of a registered proof.
func NewProofGraph(p Proof) (*Graph, error) {
	return NewGraph(p.SectorSize, p.PorepID(), p.API)
}

// CheckSectorSize reports whether size is one the graph supports, with an
// error that says what would be right.
func CheckSectorSize(size uint64) error {
	if size < MinSectorSize || size&(size-1) != 0 || size > 1<<37 {
		return fmt.Errorf("sector size %d is not supported: it must be a power of two from 2KiB (2048) to 128GiB", size)
	}
	return nil
}

// Nodes is the number of nodes in one layer.
func (g *Graph) Nodes() uint64 { return g.nodes }

// SectorSize is the layer size in bytes.
func (g *Graph) SectorSize() uint64 { return g.nodes * NodeSize }

// API is the graph's API version.
func (g *Graph) API() APIVersion { return g.api }

// PorepID is the porep id the graph was built from.
func (g *Graph) PorepID() [32]byte { return g.porepID }

func domainSeed(tag string, porepID [32]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(tag))
	h.Write(porepID[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Parents writes the 14 parents of node in cache order: base parents in
// slots 0..5, expander parents in slots 6..13.
func (g *Graph) Parents(node uint64, out *[Degree]uint32) {
	g.BaseParents(node, (*[BaseDegree]uint32)(out[:BaseDegree]))
	g.ExpanderParents(node, (*[ExpanderDegree]uint32)(out[BaseDegree:]))
}

// BaseParents writes the six bucket-graph parents of node, all in the layer
// being written and all < node (except for nodes 0 and 1, whose parents are
// all 0).
func (g *Graph) BaseParents(node uint64, out *[BaseDegree]uint32) {
	if node < 2 {
		*out = [BaseDegree]uint32{}
		return
	}
	k := &g.drgKey
	state := [16]uint32{
		0x61707865, 0x3320646e, 0x79622d32, 0x6b206574,
		k[0], k[1], k[2], k[3], k[4], k[5], k[6], uint32(node),
		0, 0, 0, 0,
	}
	// Five parents draw two u64 each: 20 words, two ChaCha blocks.
	var words [32]uint32
	chacha8Block(&state, (*[16]uint32)(words[:16]))
	state[12] = 1
	chacha8Block(&state, (*[16]uint32)(words[16:]))
	next := 0
	nextU64 := func() uint64 {
		v := uint64(words[next]) | uint64(words[next+1])<<32
		next += 2
		return v
	}

	const mPrime = BaseDegree - 1
	meta := node * mPrime
	// ceil(log2(meta)); meta >= 10 here. The reference computes it in
	// floating point, which agrees for every meta below 2^53.
	buckets := uint64(bits.Len64(meta - 1))

	random := out[1:]
	predecessor := 0
	if g.api == APIVersion1_0 {
		random = out[:mPrime]
		predecessor = mPrime
	}
	for i := range random {
		bucket := nextU64()%buckets + 1
		hi := min(meta, uint64(1)<<bucket)
		lo := max(2, hi>>1)
		dist := lo + nextU64()%(hi-lo+1)
		p := (meta - dist) / mPrime
		if p == node {
			p = node - 1
		}
		random[i] = uint32(p)
	}
	out[predecessor] = uint32(node - 1)
}

// ExpanderParents writes the eight Feistel expander parents of node, all in
// the previous layer.
func (g *Graph) ExpanderParents(node uint64, out *[ExpanderDegree]uint32) {
	rounds := g.roundTable()
	// The eight permutations are independent, but written one after the
	// other each cycle walk ends on a branch that goes either way about
	// half the time, and the misprediction discards the next permutation's
	// table lookups already under way. So all eight first encodings are
	// issued together, then two more rounds of eight, each kept only where
	// the value was still outside the domain, and only the ~1 in 8 still
	// outside walk on alone. Two extra rounds measured faster than one or
	// three (BenchmarkExpanderParents at 512 MiB on a loaded two-vCPU VM,
	// three runs each: 159-182 cpu-ns/op against 202-235 and 187-212).
	var u [ExpanderDegree]uint64
	for i := range u {
		u[i] = g.feistelEncode(node*ExpanderDegree+uint64(i), rounds)
	}
	for range 2 {
		for i, x := range u {
			if v := g.feistelEncode(x, rounds); x >= g.expanderDomain {
				u[i] = v
			}
		}
	}
	for i, x := range u {
		for x >= g.expanderDomain {
			x = g.feistelEncode(x, rounds)
		}
		if g.api == APIVersion1_0 {
			// API 1.0.0 truncated before dividing; it matters only when the
			// domain exceeds 2^32 (32 GiB and 64 GiB V1 proofs).
			out[i] = uint32(x) / ExpanderDegree
		} else {
			out[i] = uint32(x / ExpanderDegree)
		}
	}
}

func (g *Graph) feistelEncode(x uint64, rounds []uint32) uint64 {
	h := g.halfBits
	left := (x & g.leftMask) >> h
	right := x & g.rightMask
	left, right = right, left^uint64(rounds[right])
	left, right = right, left^uint64(rounds[1<<h|right])
	left, right = right, left^uint64(rounds[2<<h|right])
	return left<<h | right
}

// buildRoundTable tabulates the round function: round r of right is entry
// r<<halfBits | right. A round only ever sees a half-width value, so the
// whole function is 3 x 2^halfBits hashes (at most 786432, for 2^32 nodes;
// 3 MiB), while a full cache hashes ~48 times per node: 2^35 hashes for
// 32 GiB. A lookup is a few ns, a hash at best ~100.
func (g *Graph) buildRoundTable() []uint32 {
	n := uint64(1) << g.halfBits
	t := make([]uint32, feistelRounds*n)
	for r, k := range g.feistelKeyWords {
		for right := range n {
			t[uint64(r)*n+right] = uint32(g.feistelRound(right, k))
		}
	}
	return t
}

// feistelRound is the reference's round function: the first 8 bytes,
// big-endian, of BLAKE2b-512 over right and the key, both big-endian, masked
// to the half width. Only buildRoundTable calls it now, but its cost is
// still the table's (and what a 32 GiB graph's first use waits for): the
// general-purpose blake2b API spent most of each call on state setup,
// padding and copying for what is always one 16-byte block, hence the
// specialised feistelBlake2b. keyWord is a feistelKeyWords entry.
func (g *Graph) feistelRound(right, keyWord uint64) uint64 {
	return bits.ReverseBytes64(feistelBlake2b(bits.ReverseBytes64(right), keyWord)) & g.rightMask
}

// ParentTable computes every node's parents into one in-memory table
// (Degree u32s per node, the parent cache's content). It is meant for
// small sectors and tests: a 32 GiB sector's table is 56 GiB.
func ParentTable(g *Graph) []uint32 {
	table := make([]uint32, g.nodes*Degree)
	var ps [Degree]uint32
	for node := uint64(0); node < g.nodes; node++ {
		g.Parents(node, &ps)
		copy(table[node*Degree:], ps[:])
	}
	return table
}
