package blockio

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/measure"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

func TestSectorMetaRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		meta func(g *sdr.Graph) SectorMeta
	}{
		{name: "fresh", meta: func(g *sdr.Graph) SectorMeta { return NewSectorMeta(g, [32]byte{1, 2, 3, 31: 0x3f}, 11) }},
		{name: "with checksums", meta: func(g *sdr.Graph) SectorMeta {
			m := NewSectorMeta(g, [32]byte{9}, 3)
			m.LayerChecksums = []string{"sha256:00ff", ""}
			return m
		}},
	} {
		for _, proof := range []string{"StackedDrg2KiBV1", "StackedDrg32GiBV1_1"} {
			t.Run(tc.name+"/"+proof, func(t *testing.T) {
				g := proofGraph(t, proof)
				dir := t.TempDir()
				want := tc.meta(g)
				require.NoError(t, WriteSectorMeta(dir, want))
				got, err := ReadSectorMeta(dir)
				require.NoError(t, err)
				require.Equal(t, want, got)
				back, err := got.Graph()
				require.NoError(t, err)
				require.Equal(t, sdr.ParentCacheName(g), sdr.ParentCacheName(back))
				require.Equal(t, g.API(), back.API())

				// The file is what the brief promises a reader: hex ids, the
				// API version as the reference spells it, a format version.
				data, err := os.ReadFile(filepath.Join(dir, SectorMetaFile))
				require.NoError(t, err)
				var raw map[string]any
				require.NoError(t, json.Unmarshal(data, &raw))
				porep := g.PorepID()
				require.EqualValues(t, SectorMetaVersion, raw["version"])
				require.EqualValues(t, g.SectorSize(), raw["sector_size"])
				require.Equal(t, g.API().String(), raw["api_version"])
				require.Len(t, raw["replica_id"], 64)
				require.Contains(t, string(data), `"porep_id": "`+hex.EncodeToString(porep[:])+`"`)
				entries, err := os.ReadDir(dir)
				require.NoError(t, err)
				require.Len(t, entries, 1, "no temporary file is left behind")
			})
		}
	}
}

func TestSectorMetaErrors(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, content, want string
	}{
		{name: "not json", content: "{", want: "unexpected end of JSON input"},
		{name: "newer version", content: `{"version":2}`, want: "format version 2: this pc1-tiered reads version 1"},
		{name: "no version", content: `{}`, want: "format version 0"},
		{name: "malformed replica id", content: `{"version":1,"replica_id":"zz"}`, want: "replica_id: hex id \"zz\": encoding/hex: invalid byte"},
		{name: "short porep id", content: `{"version":1,"replica_id":"` + id + `","porep_id":"00"}`, want: "porep_id: hex id \"00\": want 32 bytes"},
		{name: "bad api", content: `{"version":1,"replica_id":"` + id + `","porep_id":"` + id + `","api_version":"2.0"}`, want: "api_version: unknown API version"},
		{name: "bad size", content: `{"version":1,"replica_id":"` + id + `","porep_id":"` + id + `","api_version":"1.1.0","sector_size":3000,"layers":2}`, want: "sector_size: sector size 3000 is not supported"},
		{name: "no layers", content: `{"version":1,"replica_id":"` + id + `","porep_id":"` + id + `","api_version":"1.1.0","sector_size":2048}`, want: "layers 0: must be at least 1"},
		{name: "too many checksums", content: `{"version":1,"replica_id":"` + id + `","porep_id":"` + id + `","api_version":"1.1.0","sector_size":2048,"layers":1,"layer_checksums":["a","b"]}`, want: "2 layer checksums for 1 layers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, SectorMetaFile)
			require.NoError(t, os.WriteFile(path, []byte(tc.content), 0o644))
			_, err := ReadSectorMeta(dir)
			require.ErrorContains(t, err, "sector metadata "+path+": ")
			require.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("missing", func(t *testing.T) {
		dir := t.TempDir()
		_, err := ReadSectorMeta(dir)
		require.ErrorContains(t, err, filepath.Join(dir, SectorMetaFile)+": no such file or directory")
	})
	t.Run("write refuses a bad meta", func(t *testing.T) {
		dir := t.TempDir()
		err := WriteSectorMeta(dir, SectorMeta{SectorSize: 2048})
		require.ErrorContains(t, err, "layers 0")
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Empty(t, entries)
	})
	t.Run("write into a missing directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nope")
		err := WriteSectorMeta(dir, NewSectorMeta(proofGraph(t, "StackedDrg2KiBV1_1"), [32]byte{}, 2))
		require.ErrorContains(t, err, filepath.Join(dir, SectorMetaFile))
	})
}

func TestSectorDirs(t *testing.T) {
	mk := func(t *testing.T, root string, names ...string) {
		for _, n := range names {
			require.NoError(t, os.MkdirAll(filepath.Join(root, n), 0o755))
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root string)
		want  []string // relative to root; "." for root itself
		err   string
	}{
		{name: "index order", setup: func(t *testing.T, root string) {
			mk(t, root, "sector-10", "sector-2", "sector-0", "sector-x", "other")
			require.NoError(t, os.WriteFile(filepath.Join(root, "sector-3"), nil, 0o644)) // a file, not a sector
		}, want: []string{"sector-0", "sector-2", "sector-10"}},
		{name: "one sector's directory", setup: func(t *testing.T, root string) {
			mk(t, root, "sector-0")
			require.NoError(t, os.WriteFile(filepath.Join(root, SectorMetaFile), nil, 0o644))
		}, want: []string{"."}},
		{name: "empty", setup: func(*testing.T, string) {}, err: "holds no sector"},
		{name: "missing", setup: func(t *testing.T, root string) { require.NoError(t, os.Remove(root)) }, err: "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "out")
			require.NoError(t, os.Mkdir(root, 0o755))
			tc.setup(t, root)
			got, err := SectorDirs(root)
			if tc.err != "" {
				require.ErrorContains(t, err, root)
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			var want []string
			for _, w := range tc.want {
				want = append(want, filepath.Join(root, w))
			}
			require.Equal(t, want, got)
		})
	}
}

func TestOpenLayer(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 4096)
	for i := range data {
		data[i] = byte(i * 13)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, sdr.LayerFileName(2)), data, 0o644))
	r, err := OpenLayer(dir, 2, 4096)
	require.NoError(t, err)
	defer r.Close()
	got := make([]byte, 32)
	require.NoError(t, r.ReadAt(got, 64))
	require.Equal(t, data[64:96], got)
	require.ErrorContains(t, r.ReadAt(got, 4096-16), "reading 32 bytes at offset 4080 of "+r.Path())
	require.NoError(t, r.Close())
	require.NoError(t, r.Close(), "Close is idempotent")

	_, err = OpenLayer(dir, 2, 8192)
	require.ErrorContains(t, err, sdr.LayerFileName(2)+" is 4096 bytes, want 8192")
	_, err = OpenLayer(dir, 1, 4096)
	require.ErrorContains(t, err, filepath.Join(dir, sdr.LayerFileName(1))+": no such file or directory")
}

// TestOpenLayerUncached reads a whole 8 MiB layer file block by block, as
// a promotion does: every byte arrives, and nothing of the file is left in
// the page cache (read-ahead included). A file of the wrong size is
// refused at open.
func TestOpenLayerUncached(t *testing.T) {
	dir := t.TempDir()
	const size, block = 8 << 20, 1 << 20
	want := make([]byte, size)
	for i := range want {
		want[i] = byte(i * 7)
	}
	path := SectorDir(dir).Layer(1)
	require.NoError(t, os.WriteFile(path, want, 0o644))
	f, err := os.Open(path)
	require.NoError(t, err)
	require.NoError(t, WriteBackAndDrop(f, 0, size))
	require.NoError(t, f.Close())

	r, err := OpenLayerUncached(path, size)
	require.NoError(t, err)
	got := make([]byte, block)
	for off := 0; off < size; off += block {
		require.NoError(t, r.ReadAt(got, int64(off)))
		require.Equal(t, want[off:off+block], got)
	}
	require.NoError(t, r.Close())
	cached, err := measure.PageCacheBytes(path)
	require.NoError(t, err)
	require.Zero(t, cached, "an uncached read leaves nothing in the page cache")

	_, err = OpenLayerUncached(path, size+4096)
	require.ErrorContains(t, err, "is 8388608 bytes, want 8392704")
}
