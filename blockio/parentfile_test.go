package blockio

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

func proofGraph(t testing.TB, name string) *sdr.Graph {
	t.Helper()
	p, err := sdr.ProofByName(name)
	require.NoError(t, err)
	g, err := sdr.NewProofGraph(p)
	require.NoError(t, err)
	return g
}

// TestParentCacheManifestDigests generates production caches and checks them
// against the digests rust-fil-proofs publishes (EnsureParentCache refuses
// to rename a generated file whose digest disagrees).
func TestParentCacheManifestDigests(t *testing.T) {
	for _, tc := range []struct {
		proof string
		long  bool
	}{
		{proof: "StackedDrg2KiBV1"},
		{proof: "StackedDrg2KiBV1_1"},
		{proof: "StackedDrg8MiBV1"},
		{proof: "StackedDrg8MiBV1_1"},
		{proof: "StackedDrg512MiBV1", long: true},
		{proof: "StackedDrg512MiBV1_1", long: true},
	} {
		t.Run(tc.proof, func(t *testing.T) {
			if tc.long && os.Getenv("PC1_LONG") == "" {
				t.Skip("set PC1_LONG=1 to generate 512 MiB parent caches (896 MiB each)")
			}
			g := proofGraph(t, tc.proof)
			info, err := EnsureParentCache(context.Background(), g, t.TempDir(), ParentCacheOptions{})
			require.NoError(t, err)
			require.True(t, info.Generated)
			require.True(t, info.InManifest)
			require.True(t, info.Verified)
			want, ok := sdr.ParentCacheManifest(sdr.ParentCacheName(g))
			require.True(t, ok)
			require.Equal(t, want.Digest, info.SHA256)
			st, err := os.Stat(info.Path)
			require.NoError(t, err)
			require.Equal(t, int64(g.Nodes()*sdr.ParentCacheBytesPerNode), st.Size())
		})
	}
}

func encodeTable(table []uint32) []byte {
	b := make([]byte, 4*len(table))
	for i, p := range table {
		binary.LittleEndian.PutUint32(b[4*i:], p)
	}
	return b
}

func TestParentCacheReuseAndRepair(t *testing.T) {
	ctx := context.Background()
	g := proofGraph(t, "StackedDrg2KiBV1_1")
	want := encodeTable(sdr.ParentTable(g))
	for _, tc := range []struct {
		name    string
		damage  func(path string)
		opt     ParentCacheOptions
		err     string
		regen   bool
		checked bool
	}{
		{name: "reuse verified", opt: ParentCacheOptions{}, checked: true},
		{name: "reuse unverified", opt: ParentCacheOptions{Verify: VerifyNever}},
		{name: "wrong size", damage: func(p string) { require.NoError(t, os.Truncate(p, 100)) }, err: "is 100 bytes, want 3584 for 64 nodes"},
		{name: "wrong size regenerated", damage: func(p string) { require.NoError(t, os.Truncate(p, 100)) }, opt: ParentCacheOptions{Regenerate: true}, regen: true, checked: true},
		{name: "flipped byte", damage: flipByte(t, 1000), err: "has sha256"},
		{name: "flipped byte unverified", damage: flipByte(t, 1000), opt: ParentCacheOptions{Verify: VerifyNever}},
		{name: "flipped byte regenerated", damage: flipByte(t, 1000), opt: ParentCacheOptions{Regenerate: true}, regen: true, checked: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			first, err := EnsureParentCache(ctx, g, dir, ParentCacheOptions{Workers: 3})
			require.NoError(t, err)
			require.True(t, first.Generated)
			got, err := os.ReadFile(first.Path)
			require.NoError(t, err)
			require.Equal(t, want, got)
			if tc.damage != nil {
				tc.damage(first.Path)
			}
			info, err := EnsureParentCache(ctx, g, dir, tc.opt)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.ErrorContains(t, err, first.Path)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.regen, info.Generated)
			require.Equal(t, tc.checked, info.Verified)
			if tc.regen {
				got, err := os.ReadFile(info.Path)
				require.NoError(t, err)
				require.Equal(t, want, got)
			}
		})
	}
}

func flipByte(t *testing.T, off int64) func(string) {
	return func(path string) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		require.NoError(t, err)
		defer f.Close()
		b := []byte{0}
		_, err = f.ReadAt(b, off)
		require.NoError(t, err)
		b[0] ^= 1
		_, err = f.WriteAt(b, off)
		require.NoError(t, err)
	}
}

// TestParentCacheNotInManifest covers caches for raw porep ids: VerifyAlways
// recomputes the parents to check them.
func TestParentCacheNotInManifest(t *testing.T) {
	ctx := context.Background()
	g, err := sdr.NewGraph(4096, [32]byte{7}, sdr.APIVersion1_1)
	require.NoError(t, err)
	dir := t.TempDir()
	info, err := EnsureParentCache(ctx, g, dir, ParentCacheOptions{})
	require.NoError(t, err)
	require.False(t, info.InManifest)
	require.False(t, info.Verified)
	info, err = EnsureParentCache(ctx, g, dir, ParentCacheOptions{Verify: VerifyAlways})
	require.NoError(t, err)
	require.True(t, info.Verified)
	flipByte(t, 8)(info.Path)
	_, err = EnsureParentCache(ctx, g, dir, ParentCacheOptions{Verify: VerifyAlways})
	require.ErrorContains(t, err, "has sha256")
}

func TestParentCacheCancelLeavesNoPartial(t *testing.T) {
	g := proofGraph(t, "StackedDrg8MiBV1_1")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := EnsureParentCache(ctx, g, dir, ParentCacheOptions{})
	require.ErrorIs(t, err, context.Canceled)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)
}

func TestParentCacheUnwritableDir(t *testing.T) {
	g := proofGraph(t, "StackedDrg2KiBV1_1")
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err := EnsureParentCache(context.Background(), g, filepath.Join(file, "sub"), ParentCacheOptions{})
	require.ErrorContains(t, err, file)
}

func TestDefaultParentCacheDir(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	require.Equal(t, "/var/tmp/filecoin-parents", DefaultParentCacheDir(getenv))
	env["FIL_PROOFS_PARENT_CACHE"] = "/nvme/parents"
	require.Equal(t, "/nvme/parents", DefaultParentCacheDir(getenv))
}

// TestParentStreamRamp checks the first pass's chunks grow from
// rampFirstNodes to the chunk size, 4x a chunk, and later passes read
// whole chunks, every pass contiguous and equal to the table.
func TestParentStreamRamp(t *testing.T) {
	g, err := sdr.NewGraph(256<<10, sdr.Proofs()[5].PorepID(), sdr.APIVersion1_1)
	require.NoError(t, err)
	require.Equal(t, uint64(8192), g.Nodes())
	table := sdr.ParentTable(g)
	info, err := EnsureParentCache(context.Background(), g, t.TempDir(), ParentCacheOptions{})
	require.NoError(t, err)
	s, err := OpenParentStream(info.Path, g.Nodes(), 8192, 2)
	require.NoError(t, err)
	defer s.Close()
	for pass, want := range [][]int{{1024, 4096, 3072}, {8192}, {8192}} {
		got, sizes := readPass(t, s)
		require.Equal(t, want, sizes, "pass %d", pass)
		require.Equal(t, table, got, "pass %d", pass)
		require.NoError(t, s.Rewind())
	}
}

// readPass reads s to the end of its pass, checking that the chunks are
// contiguous from node 0, and returns the parents and the chunks' sizes in
// nodes.
func readPass(t *testing.T, s *ParentStream) (parents []uint32, sizes []int) {
	t.Helper()
	for {
		first, ps, err := s.Next()
		if err == io.EOF {
			return parents, sizes
		}
		require.NoError(t, err)
		require.Equal(t, uint64(len(parents)/sdr.Degree), first)
		parents = append(parents, ps...)
		sizes = append(sizes, len(ps)/sdr.Degree)
	}
}

func TestParentStream(t *testing.T) {
	g := proofGraph(t, "StackedDrg2KiBV1_1")
	table := sdr.ParentTable(g)
	info, err := EnsureParentCache(context.Background(), g, t.TempDir(), ParentCacheOptions{})
	require.NoError(t, err)
	for _, tc := range []struct{ chunk, depth int }{{64, 1}, {1, 1}, {7, 2}, {10, 3}, {100, 2}} {
		s, err := OpenParentStream(info.Path, g.Nodes(), tc.chunk, tc.depth)
		require.NoError(t, err)
		// A rewind before the first chunk keeps the pass opening started.
		opened := s.cur
		require.NoError(t, s.Rewind())
		require.Same(t, opened, s.cur)
		for pass := range 3 {
			got, _ := readPass(t, s)
			require.Equal(t, table, got, "chunk %d depth %d pass %d", tc.chunk, tc.depth, pass)
			// The next pass is already being read: its first chunk comes
			// without the caller asking.
			next := s.next
			require.NotNil(t, next)
			require.Eventually(t, func() bool { return len(next.ready) > 0 }, 10*time.Second, time.Millisecond)
			require.NoError(t, s.Rewind())
			require.Same(t, next, s.cur)
		}
		// Rewind part-way through a pass starts again at node 0.
		_, _, err = s.Next()
		require.NoError(t, err)
		require.NoError(t, s.Rewind())
		first, _, err := s.Next()
		require.NoError(t, err)
		require.Zero(t, first)
		require.NoError(t, s.Close())
		require.NoError(t, s.Close())
	}
	_, err = OpenParentStream(info.Path, g.Nodes()*2, 8, 1)
	require.ErrorContains(t, err, "is 3584 bytes, want 7168")
}
