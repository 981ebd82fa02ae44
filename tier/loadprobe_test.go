package tier

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHashLoadLostPerRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    hashLoad
		want float64
	}{
		// Two threads lose a fifth of their hashing to 100K reads/s:
		// 0.4 core-seconds a second over 100K reads = 4 us a read.
		{"two threads lose 20%", hashLoad{threads: 2, alone: 50e6, loaded: 40e6, reads: 100e3}, 4e-6},
		{"one thread loses half", hashLoad{threads: 1, alone: 20e6, loaded: 10e6, reads: 50e3}, 10e-6},
		// Noise can make the loaded phase the faster: nothing lost, not
		// a negative cost.
		{"loaded faster", hashLoad{threads: 2, alone: 40e6, loaded: 41e6, reads: 100e3}, 0},
		{"no reads", hashLoad{threads: 2, alone: 40e6, loaded: 30e6}, 0},
		{"no hashing measured", hashLoad{threads: 2, reads: 1e3}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.InDelta(t, tc.want, tc.h.lostPerRead(), 1e-12)
		})
	}
}

func TestProbeHashLoad(t *testing.T) {
	// A stand-in for the spill path that keeps a core busy and reports
	// 1000 reads: the phases must bracket it, measure both hashing rates
	// and turn its count into a rate over its own wall time.
	busy := func(d time.Duration) (uint64, time.Duration, error) {
		start := time.Now()
		for time.Since(start) < d {
		}
		return 1000, time.Since(start), nil
	}
	h, err := probeHashLoad(context.Background(), 1, 200*time.Millisecond, busy)
	require.NoError(t, err)
	require.Equal(t, 1, h.threads)
	require.Greater(t, h.alone, 0.0)
	require.Greater(t, h.loaded, 0.0)
	require.InDelta(t, 1000/0.1, h.reads, 1000/0.1*0.5, "1000 reads over the loaded phase's 100 ms")

	_, err = probeHashLoad(context.Background(), 1, 40*time.Millisecond, func(time.Duration) (uint64, time.Duration, error) {
		return 0, 0, errors.New("device gone")
	})
	require.ErrorContains(t, err, "device gone")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = probeHashLoad(ctx, 1, time.Second, busy)
	require.ErrorIs(t, err, context.Canceled)
}

func TestProbeDeviceUnderHashing(t *testing.T) {
	opts := quickProbe
	opts.LoadThreads = 1
	ds, err := ProbeDevice(context.Background(), t.TempDir(), opts)
	require.NoError(t, err)
	if !ds.Direct {
		require.Zero(t, ds.LoadThreads, "no spill path without O_DIRECT, so no loaded phase")
		return
	}
	require.Equal(t, 1, ds.LoadThreads)
	require.Greater(t, ds.LoadedSpillReadsPerSecond, 0.0)
	// The reads cost the hashing something, but not a whole core each.
	require.GreaterOrEqual(t, ds.HashCPUSecondsPerRead, 0.0)
	require.Less(t, ds.HashCPUSecondsPerRead, 0.01)
}
