package sealer

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// fr32Data is size bytes of random Fr32-padded sector data: every node's
// top two bits clear, as fr32 padding leaves them.
func fr32Data(seed uint64, size uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for i := sdr.NodeSize - 1; i < len(b); i += sdr.NodeSize {
		b[i] &= 0x3f
	}
	return b
}

// withLotusTrailer appends an unsealed-file trailer as Lotus' partialfile
// writes it: some rle+ bytes, then their length as u32 little-endian.
func withLotusTrailer(data, rle []byte) []byte {
	out := append(append([]byte(nil), data...), rle...)
	return binary.LittleEndian.AppendUint32(out, uint32(len(rle)))
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, data, 0o644))
	return p
}

func TestCheckStaged(t *testing.T) {
	const size = 2048
	dir := t.TempDir()
	data := fr32Data(1, size)
	for _, tc := range []struct {
		name   string
		path   string
		errMsg string
	}{
		{name: "exact", path: writeFile(t, dir, "exact", data)},
		{name: "lotus trailer", path: writeFile(t, dir, "trailer", withLotusTrailer(data, []byte{0x0c, 0x80, 0x01}))},
		{name: "lotus empty trailer", path: writeFile(t, dir, "trailer0", withLotusTrailer(data, nil))},
		{name: "short", path: writeFile(t, dir, "short", data[:size-32]), errMsg: "is 2016 bytes, want 2048 bytes (the 2KiB sector, Fr32-padded"},
		{name: "empty", path: writeFile(t, dir, "empty", nil), errMsg: "is 0 bytes, want 2048 bytes"},
		{name: "unpadded size", path: writeFile(t, dir, "unpadded", data[:size*127/128]), errMsg: "is 2032 bytes, want 2048"},
		{name: "too short for a trailer", path: writeFile(t, dir, "plus2", append(append([]byte(nil), data...), 0, 0)), errMsg: "optionally followed by Lotus' unsealed-file trailer"},
		{name: "tail not a trailer", path: writeFile(t, dir, "double", append(append([]byte(nil), data...), data...)), errMsg: "the 2048 bytes after the sector are not Lotus' unsealed-file trailer"},
		{name: "missing", path: filepath.Join(dir, "nope"), errMsg: "staged file " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{name: "directory", path: dir, errMsg: "is a directory"},
		{name: "device", path: "/dev/null", errMsg: "is not a regular file; for a committed-capacity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkStaged(tc.path, size)
			if tc.errMsg == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.errMsg)
			require.ErrorContains(t, err, tc.path, "the error names the file")
		})
	}
}

// memTree is an io.WriterAt over a growing byte slice.
type memTree struct{ b []byte }

func (m *memTree) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

func TestWriteTreeD(t *testing.T) {
	for _, size := range []uint64{2 << 10, 64 << 10, 1 << 20} {
		data := fr32Data(size, size)
		src := t.TempDir()
		exact := writeFile(t, src, "exact", data)
		trailer := writeFile(t, src, "trailer", withLotusTrailer(data, []byte{1, 2, 3, 4, 5}))
		want := &memTree{}
		wantRoot, err := sdr.WriteTreeD(bytes.NewReader(data), size/sdr.NodeSize, want)
		require.NoError(t, err)
		zeroRoot, err := sdr.ZeroCommD(size)
		require.NoError(t, err)
		zeroTree := &memTree{}
		_, err = sdr.WriteTreeD(zeros{}, size/sdr.NodeSize, zeroTree)
		require.NoError(t, err)

		for _, tc := range []struct {
			name, path string
			root       [32]byte
			tree       []byte
		}{
			{"exact", exact, wantRoot, want.b},
			{"lotus trailer", trailer, wantRoot, want.b},
			{"cc", "", zeroRoot, zeroTree.b},
		} {
			t.Run(sdr.FormatSize(size)+"/"+tc.name, func(t *testing.T) {
				dir := t.TempDir()
				var last uint64
				root, err := writeTreeD(context.Background(), tc.path, size, dir, &tc.root, nil, func(done uint64) { last = done })
				require.NoError(t, err)
				require.Equal(t, tc.root, root)
				got, err := os.ReadFile(filepath.Join(dir, sdr.TreeDFileName))
				require.NoError(t, err)
				require.Len(t, got, int(2*size-32), "a full binary tree of S/32 leaves: 2S - 32 bytes")
				require.Equal(t, tc.tree, got)
				require.Equal(t, root[:], got[len(got)-32:], "the root is the last node")
				require.Equal(t, size, last, "progress ends at the sector size")
				if tc.path != "" {
					require.Equal(t, data, got[:size], "the leaves are the staged data")
					require.NotEqual(t, zeroRoot, root)
				}
				entries, err := os.ReadDir(dir)
				require.NoError(t, err)
				require.Len(t, entries, 1, "no temporary file left")
			})
		}
	}
}

func TestWriteTreeDRefuses(t *testing.T) {
	const size = 64 << 10
	src := t.TempDir()
	for _, tc := range []struct {
		name   string
		data   func() []byte
		cancel bool
		errMsg string
	}{
		{name: "unpadded node", data: func() []byte {
			d := fr32Data(3, size)
			d[5*32+31] = 0x80
			return d
		}, errMsg: "node 5 (bytes 160..191) is not Fr32-padded: its last byte is 0x80"},
		{name: "bit 254 set", data: func() []byte {
			d := fr32Data(3, size)
			d[2000*32+31] |= 0x40
			return d
		}, errMsg: "node 2000 (bytes 64000..64031) is not Fr32-padded"},
		{name: "last node", data: func() []byte {
			d := fr32Data(3, size)
			d[size-1] = 0xff
			return d
		}, errMsg: "node 2047 "},
		{name: "cancelled", data: func() []byte { return fr32Data(4, size) }, cancel: true, errMsg: "context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, src, tc.name, tc.data())
			ctx, cancel := context.WithCancel(context.Background())
			if tc.cancel {
				cancel()
			}
			defer cancel()
			dir := t.TempDir()
			_, err := writeTreeD(ctx, path, size, dir, nil, nil, nil)
			require.ErrorContains(t, err, tc.errMsg)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Empty(t, entries, "no tree_d written")
		})
	}
}
