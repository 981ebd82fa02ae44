package sdr

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/chacha20"
)

// referenceChachaBlocks is the textbook ChaCha block function over an
// array state with a rounds parameter, so that the 20-round form can be
// anchored to x/crypto/chacha20 and the 8-round form then serve as
// chacha8Block's reference.
func referenceChachaBlocks(key *[32]byte, rounds int, out []uint32) {
	qr := func(x *[16]uint32, a, b, c, d int) {
		x[a] += x[b]
		x[d] = bits.RotateLeft32(x[d]^x[a], 16)
		x[c] += x[d]
		x[b] = bits.RotateLeft32(x[b]^x[c], 12)
		x[a] += x[b]
		x[d] = bits.RotateLeft32(x[d]^x[a], 8)
		x[c] += x[d]
		x[b] = bits.RotateLeft32(x[b]^x[c], 7)
	}
	for block := 0; block*16 < len(out); block++ {
		s := [16]uint32{0x61707865, 0x3320646e, 0x79622d32, 0x6b206574}
		for i := range 8 {
			s[4+i] = binary.LittleEndian.Uint32(key[4*i:])
		}
		s[12] = uint32(block)
		x := s
		for r := 0; r < rounds; r += 2 {
			qr(&x, 0, 4, 8, 12)
			qr(&x, 1, 5, 9, 13)
			qr(&x, 2, 6, 10, 14)
			qr(&x, 3, 7, 11, 15)
			qr(&x, 0, 5, 10, 15)
			qr(&x, 1, 6, 11, 12)
			qr(&x, 2, 7, 8, 13)
			qr(&x, 3, 4, 9, 14)
		}
		for i := 0; i < 16 && block*16+i < len(out); i++ {
			out[block*16+i] = x[i] + s[i]
		}
	}
}

func TestReferenceChacha20MatchesXCrypto(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 20 {
		var key [32]byte
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		var words [48]uint32
		referenceChachaBlocks(&key, 20, words[:])
		c, err := chacha20.NewUnauthenticatedCipher(key[:], make([]byte, chacha20.NonceSize))
		require.NoError(t, err)
		stream := make([]byte, 4*len(words))
		c.XORKeyStream(stream, stream)
		for i, w := range words {
			require.Equal(t, binary.LittleEndian.Uint32(stream[4*i:]), w, "word %d", i)
		}
	}
}

func TestChacha8BlockMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	keys := [][32]byte{{}, {31: 0xff}}
	for range 200 {
		var key [32]byte
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		keys = append(keys, key)
	}
	for _, key := range keys {
		var want [48]uint32
		referenceChachaBlocks(&key, 8, want[:])
		s := [16]uint32{0x61707865, 0x3320646e, 0x79622d32, 0x6b206574}
		for i := range 8 {
			s[4+i] = binary.LittleEndian.Uint32(key[4*i:])
		}
		for block := range 3 {
			s[12] = uint32(block)
			var got [16]uint32
			chacha8Block(&s, &got)
			require.Equal(t, want[16*block:16*block+16], got[:], "key %x block %d", key, block)
		}
	}
}

// referenceBaseParents is BaseParents as first written, on
// referenceChachaBlocks and the seed's bytes.
func referenceBaseParents(g *Graph, node uint64) [BaseDegree]uint32 {
	var out [BaseDegree]uint32
	if node < 2 {
		return out
	}
	seed := domainSeed("Filecoin_DRSample", g.porepID)
	var key [32]byte
	copy(key[:28], seed[:28])
	binary.LittleEndian.PutUint32(key[28:], uint32(node))
	var words [20]uint32
	referenceChachaBlocks(&key, 8, words[:])
	const mPrime = BaseDegree - 1
	meta := node * mPrime
	buckets := uint64(bits.Len64(meta - 1))
	random, predecessor := out[1:], 0
	if g.api == APIVersion1_0 {
		random, predecessor = out[:mPrime], mPrime
	}
	for i := range random {
		w := words[4*i:]
		bucket := (uint64(w[0])|uint64(w[1])<<32)%buckets + 1
		hi := min(meta, uint64(1)<<bucket)
		lo := max(2, hi>>1)
		dist := lo + (uint64(w[2])|uint64(w[3])<<32)%(hi-lo+1)
		p := (meta - dist) / mPrime
		if p == node {
			p = node - 1
		}
		random[i] = uint32(p)
	}
	out[predecessor] = uint32(node - 1)
	return out
}

func TestBaseParentsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, p := range Proofs() {
		t.Run(p.Name, func(t *testing.T) {
			g, err := NewProofGraph(p)
			require.NoError(t, err)
			nodes := []uint64{0, 1, 2, 3, g.Nodes() - 1}
			for range 200 {
				nodes = append(nodes, rng.Uint64N(g.Nodes()))
			}
			for _, n := range nodes {
				var got [BaseDegree]uint32
				g.BaseParents(n, &got)
				require.Equal(t, referenceBaseParents(g, n), got, "node %d", n)
			}
		})
	}
}
