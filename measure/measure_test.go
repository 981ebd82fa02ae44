package measure

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestSHALimitRatio(t *testing.T) {
	for _, tc := range []struct {
		nodes, rate, want float64
	}{
		{nodes: 1.25e6, rate: 25e6, want: 1},
		{nodes: 1e6, rate: 25e6, want: 0.8},
		{nodes: 1e6, rate: 0, want: 0},
	} {
		require.InDelta(t, tc.want, SHALimitRatio(tc.nodes, SHARate{CompressionsPerSecond: tc.rate}), 1e-12)
	}
}

func TestMeasureSHA256Rate(t *testing.T) {
	r := MeasureSHA256Rate(20 * time.Millisecond)
	require.Greater(t, r.CompressionsPerSecond, 0.0)
	require.True(t, strings.HasPrefix(r.Implementation, "crypto/sha256"))
}

func TestReadSmapsField(t *testing.T) {
	huge, err := readSmapsField(strings.NewReader("Rss: 10 kB\nAnonHugePages:   4096 kB\n"), "AnonHugePages")
	require.NoError(t, err)
	require.Equal(t, uint64(4<<20), huge)
	_, err = readSmapsField(strings.NewReader("Rss: 10 kB\n"), "AnonHugePages")
	require.ErrorContains(t, err, "no AnonHugePages")
}

// TestMemSamplerSeesAnonymousMemory touches 64 MiB of fresh anonymous
// memory while sampling: the kernel's RssAnon must show it.
func TestMemSamplerSeesAnonymousMemory(t *testing.T) {
	before, err := ReadProcStatus()
	require.NoError(t, err)
	s := StartMemSampler(time.Millisecond, nil)
	mem, err := unix.Mmap(-1, 0, 64<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(t, err)
	for i := 0; i < len(mem); i += 4096 {
		mem[i] = 1
	}
	peaks := s.Stop()
	require.NoError(t, unix.Munmap(mem))
	require.GreaterOrEqual(t, peaks.RssAnon, before.RssAnon+60<<20)
	require.GreaterOrEqual(t, peaks.VmHWM, peaks.RssAnon)
}

func TestPageCacheBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte{1}, 1<<20), 0o644))
	cached, err := PageCacheBytes(path)
	require.NoError(t, err)
	require.Greater(t, cached, uint64(0), "a file just written is in the page cache")

	f, err := os.Open(path)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED))
	f.Close()
	after, err := PageCacheBytes(path)
	require.NoError(t, err)
	require.Less(t, after, cached, "dropped pages leave the cache")

	// Larger than one mincore chunk (32 MiB): drop the first 8 MiB only.
	big := filepath.Join(t.TempDir(), "big")
	require.NoError(t, os.WriteFile(big, bytes.Repeat([]byte{2}, 40<<20), 0o644))
	f, err = os.Open(big)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, unix.Fadvise(int(f.Fd()), 0, 8<<20, unix.FADV_DONTNEED))
	f.Close()
	n, err := PageCacheBytes(big)
	require.NoError(t, err)
	require.LessOrEqual(t, n, uint64(32<<20))
	require.Greater(t, n, uint64(30<<20), "the cached 32 MiB past the first chunk are counted")

	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	n, err = PageCacheBytes(empty)
	require.NoError(t, err)
	require.Zero(t, n)
}
