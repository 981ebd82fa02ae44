package sdr

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/blake2b"
)

// referenceFeistelRound is the round function as rust-fil-proofs writes it,
// through the general-purpose blake2b API.
func referenceFeistelRound(right, key, mask uint64) uint64 {
	var in [16]byte
	binary.BigEndian.PutUint64(in[0:8], right)
	binary.BigEndian.PutUint64(in[8:16], key)
	sum := blake2b.Sum512(in[:])
	return binary.BigEndian.Uint64(sum[:8]) & mask
}

// referenceExpanderParents is ExpanderParents built on
// referenceFeistelRound, independent of the Graph's precomputed keys.
func referenceExpanderParents(g *Graph, node uint64) [ExpanderDegree]uint32 {
	encode := func(x uint64) uint64 {
		left, right := (x&g.leftMask)>>g.halfBits, x&g.rightMask
		for _, k := range g.feistelKeys[:feistelRounds] {
			left, right = right, left^referenceFeistelRound(right, k, g.rightMask)
		}
		return left<<g.halfBits | right
	}
	var out [ExpanderDegree]uint32
	for i := range out {
		u := encode(node*ExpanderDegree + uint64(i))
		for u >= g.expanderDomain {
			u = encode(u)
		}
		if g.api == APIVersion1_0 {
			out[i] = uint32(u) / ExpanderDegree
		} else {
			out[i] = uint32(u / ExpanderDegree)
		}
	}
	return out
}

// TestFeistelBlake2bMatchesBlake2b checks the specialised hash's whole
// first output word against x/crypto's BLAKE2b-512 for the message shape
// the Feistel round uses, on edge and random words.
func TestFeistelBlake2bMatchesBlake2b(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []uint64{0, 1, 0xff, 1 << 63, ^uint64(0), 0x0123456789abcdef}
	for range 2000 {
		words = append(words, rng.Uint64())
	}
	for i, m0 := range words {
		m1 := words[(i*7+3)%len(words)]
		var in [16]byte
		binary.LittleEndian.PutUint64(in[0:], m0)
		binary.LittleEndian.PutUint64(in[8:], m1)
		sum := blake2b.Sum512(in[:])
		require.Equal(t, binary.LittleEndian.Uint64(sum[:8]), feistelBlake2b(m0, m1), "m0 %#x m1 %#x", m0, m1)
	}
}

// TestFeistelRoundMatchesReference checks the round function, with its byte
// order and mask, against the reference formulation for every production
// key and half width.
func TestFeistelRoundMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, p := range Proofs() {
		t.Run(p.Name, func(t *testing.T) {
			g, err := NewProofGraph(p)
			require.NoError(t, err)
			for r, kw := range g.feistelKeyWords {
				for range 200 {
					right := rng.Uint64() & g.rightMask
					require.Equal(t, referenceFeistelRound(right, g.feistelKeys[r], g.rightMask), g.feistelRound(right, kw), "round %d right %#x", r, right)
				}
			}
		})
	}
}

// TestExpanderParentsMatchReference compares whole expander parent sets,
// cycle walking and the API versions' truncation included, on sampled
// nodes of the production graphs (up to 64 GiB, where 1.0.0's truncation
// differs).
func TestExpanderParentsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, p := range Proofs() {
		t.Run(p.Name, func(t *testing.T) {
			g, err := NewProofGraph(p)
			require.NoError(t, err)
			nodes := []uint64{0, 1, 2, g.Nodes() - 1}
			for range 100 {
				nodes = append(nodes, rng.Uint64N(g.Nodes()))
			}
			for _, n := range nodes {
				var got [ExpanderDegree]uint32
				g.ExpanderParents(n, &got)
				require.Equal(t, referenceExpanderParents(g, n), got, "node %d", n)
			}
		})
	}
}

func TestParentsAllocateNothing(t *testing.T) {
	for _, name := range []string{"StackedDrg512MiBV1", "StackedDrg32GiBV1_1"} {
		t.Run(name, func(t *testing.T) {
			p, err := ProofByName(name)
			require.NoError(t, err)
			g, err := NewProofGraph(p)
			require.NoError(t, err)
			var ps [Degree]uint32
			node := uint64(12345)
			allocs := testing.AllocsPerRun(100, func() {
				g.Parents(node, &ps)
				node += 7919
			})
			require.Zero(t, allocs)
			dst := make([]byte, 16*ParentCacheBytesPerNode)
			allocs = testing.AllocsPerRun(20, func() { GenerateParents(g, node, dst) })
			require.Zero(t, allocs)
		})
	}
}

// TestRoundTableMatchesRoundFunction checks every entry of the tabulated
// round function against the x/crypto formulation, for graphs of several
// half widths.
func TestRoundTableMatchesRoundFunction(t *testing.T) {
	for _, tc := range []struct {
		proof    string
		halfBits uint
	}{
		{"StackedDrg2KiBV1", 5},
		{"StackedDrg8MiBV1_1", 11},
		{"StackedDrg512MiBV1_1", 14},
		{"StackedDrg32GiBV1_1", 17},
	} {
		t.Run(tc.proof, func(t *testing.T) {
			p, err := ProofByName(tc.proof)
			require.NoError(t, err)
			g, err := NewProofGraph(p)
			require.NoError(t, err)
			require.Equal(t, tc.halfBits, g.halfBits)
			table := g.roundTable()
			n := uint64(1) << g.halfBits
			require.Len(t, table, int(feistelRounds*n))
			for r := range uint64(feistelRounds) {
				for right := range n {
					want := referenceFeistelRound(right, g.feistelKeys[r], g.rightMask)
					require.Equal(t, uint32(want), table[r*n+right], "round %d right %d", r, right)
				}
			}
		})
	}
}
