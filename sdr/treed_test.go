package sdr

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestZeroCommD(t *testing.T) {
	raw, err := os.ReadFile("../testdata/vectors/zero_commd.json")
	require.NoError(t, err)
	var v struct {
		Cases []struct {
			SectorSize uint64 `json:"sector_size"`
			CommD      string `json:"comm_d"`
		} `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(raw, &v))
	require.NotEmpty(t, v.Cases)
	for _, c := range v.Cases {
		got, err := ZeroCommD(c.SectorSize)
		require.NoError(t, err)
		require.Equal(t, c.CommD, hex.EncodeToString(got[:]), "sector size %d", c.SectorSize)
		// Stream the zeros for the sizes that are quick to hash here.
		if c.SectorSize <= 8<<20 {
			streamed, err := CommD(zeroReader{}, c.SectorSize/NodeSize)
			require.NoError(t, err)
			require.Equal(t, got, streamed, "sector size %d streamed", c.SectorSize)
		}
	}
}

// memWriterAt is an io.WriterAt over a growing byte slice.
type memWriterAt struct{ b []byte }

func (m *memWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

func TestWriteTreeD(t *testing.T) {
	// 8192 leaves make the lower levels flush their buffers mid-stream.
	for _, leaves := range []int{64, 8192} {
		data := make([]byte, leaves*NodeSize)
		rng := rand.New(rand.NewPCG(1, uint64(leaves)))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		out := &memWriterAt{}
		root, err := WriteTreeD(bytes.NewReader(data), uint64(leaves), out)
		require.NoError(t, err)
		tree := out.b
		require.Len(t, tree, (2*leaves-1)*NodeSize)
		require.Equal(t, data, tree[:len(data)])
		require.Equal(t, root[:], tree[len(tree)-NodeSize:])
		// Every parent is the trimmed SHA-256 of its two children, checked
		// level by level with the standard library directly.
		lvl, off := leaves, 0
		for lvl > 1 {
			next := off + lvl*NodeSize
			for i := 0; i < lvl/2; i++ {
				d := sha256.Sum256(tree[off+2*i*NodeSize : off+(2*i+2)*NodeSize])
				d[31] &= 0x3f
				require.Equal(t, d[:], tree[next+i*NodeSize:next+(i+1)*NodeSize], "level of %d nodes, node %d", lvl, i)
			}
			off, lvl = next, lvl/2
		}
		// Chunking of the input does not matter.
		b, err := NewTreeDBuilder(uint64(leaves))
		require.NoError(t, err)
		for p := data; len(p) > 0; {
			n := min(len(p), 1+rng.IntN(100))
			_, err := b.Write(p[:n])
			require.NoError(t, err)
			p = p[n:]
		}
		got, err := b.Root()
		require.NoError(t, err)
		require.Equal(t, root, got)
	}
}

func TestTreeDErrors(t *testing.T) {
	_, err := NewTreeDBuilder(3)
	require.ErrorContains(t, err, "power of two")
	b, err := NewTreeDBuilder(2)
	require.NoError(t, err)
	_, err = b.Write(make([]byte, 40))
	require.NoError(t, err)
	_, err = b.Root()
	require.ErrorContains(t, err, "1 of 2 leaves")
	_, err = b.Write(make([]byte, 64))
	require.ErrorContains(t, err, "more than 2 leaves")
	_, err = CommD(io.LimitReader(zeroReader{}, 10), 2)
	require.ErrorContains(t, err, "reading staged data")
}

func TestReplicaID(t *testing.T) {
	var prover, ticket, commD, porep [32]byte
	for i := range 32 {
		prover[i], ticket[i], commD[i], porep[i] = byte(i), byte(0x40+i), byte(0x80+i), byte(0xc0+i)
	}
	got := ReplicaID(prover, 0x0102030405060708, ticket, commD, porep)
	// Expected value: `python3 -c "import hashlib; m=bytes(range(32))+bytes(range(1,9))+bytes(range(0x40,0x60))+bytes(range(0x80,0xa0))+bytes(range(0xc0,0xe0)); d=bytearray(hashlib.sha256(m).digest()); d[31]&=0x3f; print(d.hex())"`
	require.Equal(t, "4ec2bdfa2fb4696ba286e6e15b084040a3fb35f02822fb38c029c281fc8ec533", hex.EncodeToString(got[:]))
	require.Zero(t, got[31]&0xc0)
	// Each input matters.
	seen := map[[32]byte]bool{got: true}
	for _, id := range [][32]byte{
		ReplicaID(ticket, 0x0102030405060708, ticket, commD, porep),
		ReplicaID(prover, 1, ticket, commD, porep),
		ReplicaID(prover, 0x0102030405060708, prover, commD, porep),
		ReplicaID(prover, 0x0102030405060708, ticket, prover, porep),
		ReplicaID(prover, 0x0102030405060708, ticket, commD, prover),
	} {
		require.False(t, seen[id])
		seen[id] = true
	}
}
