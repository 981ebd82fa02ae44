package sdr

import (
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNodeHasherMessageLayout rebuilds the 1248-byte message by hand for
// both layer kinds and checks Sum against a plain SHA-256 of it.
func TestNodeHasherMessageLayout(t *testing.T) {
	replica := [32]byte{1, 2, 3, 31: 0x3f}
	var parents [Degree][32]byte
	for i := range parents {
		for j := range parents[i] {
			parents[i][j] = byte(i*32 + j)
		}
	}
	cases := []struct {
		name  string
		layer int
		node  uint64
		order []int // parent index of each of the 37 slots
	}{
		{"layer1", 1, 77, layer1Order()},
		{"layer2", 2, 1 << 33, layerNOrder()},
		{"layer11", 11, 5, layerNOrder()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h NodeHasher
			h.Reset(&replica, tc.layer)
			require.Equal(t, tc.layer, h.Layer())
			n := Degree
			if tc.layer == 1 {
				n = BaseDegree
			}
			for i := 0; i < n; i++ {
				copy(h.Parent(i), parents[i][:])
			}
			got := make([]byte, 32)
			h.Sum(tc.node, got)

			msg := make([]byte, 0, MessageSize)
			msg = append(msg, replica[:]...)
			msg = append(msg, byte(tc.layer>>24), byte(tc.layer>>16), byte(tc.layer>>8), byte(tc.layer))
			for s := 56; s >= 0; s -= 8 {
				msg = append(msg, byte(tc.node>>s))
			}
			msg = append(msg, make([]byte, 20)...)
			require.Len(t, tc.order, parentSlots)
			for _, p := range tc.order {
				msg = append(msg, parents[p][:]...)
			}
			require.Len(t, msg, MessageSize)
			want := sha256.Sum256(msg)
			want[31] &= 0x3f
			require.Equal(t, want[:], got)
		})
	}
}

func layer1Order() []int {
	var o []int
	for r := 0; r < 6; r++ {
		o = append(o, 0, 1, 2, 3, 4, 5)
	}
	return append(o, 0)
}

func layerNOrder() []int {
	var o []int
	for r := 0; r < 2; r++ {
		for i := 0; i < Degree; i++ {
			o = append(o, i)
		}
	}
	o = append(o, 0, 1, 2, 3, 4, 5, 6, 7)
	return append(o, 8)
}

func TestNodeZeroHashesHeaderOnly(t *testing.T) {
	replica := [32]byte{9}
	var h NodeHasher
	h.Reset(&replica, 3)
	copy(h.Parent(0), []byte("ignored parent bytes, not hashed"))
	got := make([]byte, 32)
	h.Sum(0, got)
	header := make([]byte, 64)
	copy(header, replica[:])
	header[35] = 3
	want := sha256.Sum256(header)
	want[31] &= 0x3f
	require.Equal(t, want[:], got)
}

func TestCompressionsPerNode(t *testing.T) {
	require.Equal(t, 1248, MessageSize)
	require.Equal(t, 20, CompressionsPerNode)
}

func BenchmarkNodeLabel(b *testing.B) {
	var h NodeHasher
	h.Reset(&[32]byte{1}, 2)
	out := make([]byte, 32)
	b.SetBytes(MessageSize)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Sum(uint64(i), out)
	}
}

// BenchmarkSHA256Blocks is the denominator of sha_limit_ratio in
// miniature: raw compression throughput over long messages.
func BenchmarkSHA256Blocks(b *testing.B) {
	buf := make([]byte, 64<<10)
	h := sha256.New()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		h.Write(buf)
	}
}
