package tier

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

var quickProbe = ProbeOptions{FileSize: 8 << 20, Duration: 200 * time.Millisecond, QueueDepth: 8}

// TestProbeDevice probes a temporary directory (and /dev/shm, a tmpfs,
// where there is one) with a small file: every figure must be a sane
// positive number, never a particular speed, and the file must be gone.
func TestProbeDevice(t *testing.T) {
	dirs := []string{t.TempDir()}
	var sfs unix.Statfs_t
	if unix.Statfs("/dev/shm", &sfs) == nil && uint32(sfs.Type) == unix.TMPFS_MAGIC {
		shm, err := os.MkdirTemp("/dev/shm", "probe-test-")
		require.NoError(t, err)
		t.Cleanup(func() { os.RemoveAll(shm) })
		dirs = append(dirs, shm)
	}
	buffered := quickProbe
	buffered.buffered = true
	type probeCase struct {
		dir  string
		opts ProbeOptions
	}
	cases := []probeCase{{dirs[0], buffered}}
	for _, dir := range dirs {
		cases = append(cases, probeCase{dir, quickProbe})
	}
	for _, tc := range cases {
		dir := tc.dir
		t.Run(fmt.Sprintf("%s buffered=%v", dir, tc.opts.buffered), func(t *testing.T) {
			ds, err := ProbeDevice(context.Background(), dir, tc.opts)
			require.NoError(t, err)
			if tc.opts.buffered {
				require.False(t, ds.Direct)
			}
			require.Equal(t, dir, ds.Dir)
			require.EqualValues(t, 8<<20, ds.FileBytes)
			require.Equal(t, 8, ds.QueueDepth)
			require.NotEmpty(t, ds.FSType)
			require.NotZero(t, ds.Device)
			require.Greater(t, ds.FreeBytes, uint64(0))
			require.Greater(t, ds.SeqReadBytesPerSecond, 0.0)
			require.Greater(t, ds.RandomReads, uint64(0))
			require.Greater(t, ds.RandomReadsPerSecond, 0.0)
			require.Greater(t, ds.MissReadsPerSecond, 0.0)
			// Every read is a system call: together they cost some CPU.
			require.Greater(t, ds.KernelCPUSecondsPerRead+ds.MissKernelCPUSecondsPerRead+ds.MissUserCPUSecondsPerRead, 0.0)
			require.Greater(t, ds.SpillReadsPerSecond, 0.0, "the spill path's own rate")
			require.Greater(t, ds.SpillCPUSecondsPerRead, 0.0)
			require.Less(t, ds.SpillCPUSecondsPerRead, 1.0)
			// A read cannot cost a whole second of CPU: the figures are
			// per read, not totals.
			require.Less(t, ds.KernelCPUSecondsPerRead+ds.MissKernelCPUSecondsPerRead, 1.0)
			if ds.InMemory {
				require.Contains(t, ds.Warnings[0], "saves no DRAM")
			}
			if !ds.Direct {
				require.Contains(t, strings.Join(ds.Warnings, "\n"), "no O_DIRECT", "the buffered fallback must be said")
			}
			left, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Empty(t, left, "the probe file must be removed")
		})
	}
}

// TestProbeDeviceErrors: errors name the directory, and a probe that fails
// or is cancelled half-way leaves no file behind.
func TestProbeDeviceErrors(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "plain-file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	emptyDir := t.TempDir()
	for _, tc := range []struct {
		name, dir string
		ctx       context.Context
		opts      ProbeOptions
		want      string
	}{
		{"missing", filepath.Join(base, "no-such-dir"), context.Background(), quickProbe, "no such file"},
		{"not a dir", file, context.Background(), quickProbe, "not a directory"},
		{"too big", emptyDir, context.Background(), ProbeOptions{FileSize: 1 << 62}, "does not fit"},
		{"cancelled", emptyDir, cancelled, quickProbe, "context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ProbeDevice(tc.ctx, tc.dir, tc.opts)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.dir)
			require.Contains(t, err.Error(), tc.want)
			left, err := os.ReadDir(emptyDir)
			require.NoError(t, err)
			require.Empty(t, left)
		})
	}
}

func TestProbeOptionsDefaults(t *testing.T) {
	for _, tc := range []struct {
		in, want ProbeOptions
	}{
		{ProbeOptions{}, ProbeOptions{FileSize: DefaultProbeFileSize, Duration: DefaultProbeDuration, QueueDepth: DefaultProbeQueueDepth}},
		{ProbeOptions{FileSize: 3<<20 + 5, Duration: time.Second, QueueDepth: 4}, ProbeOptions{FileSize: 3 << 20, Duration: time.Second, QueueDepth: 4}},
		{ProbeOptions{FileSize: 100}, ProbeOptions{FileSize: 1 << 20, Duration: DefaultProbeDuration, QueueDepth: DefaultProbeQueueDepth}},
	} {
		require.Equal(t, tc.want, tc.in.withDefaults())
	}
}
