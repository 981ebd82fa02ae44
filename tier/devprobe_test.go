package tier

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pc1-tiered/pc1-tiered/blockio/uring"
)

// TestProbeDeviceReader probes a small file in a temporary directory with
// each engine: the figures must be positive (never a particular speed) and
// the probe file must be gone afterwards.
func TestProbeDeviceReader(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.String(), func(t *testing.T) {
			dir := t.TempDir()
			opts := ReaderProbeOptions{
				Reader:   DeviceReaderOptions{Engine: eng, Depth: 8, Reap: 2},
				Batch:    4,
				FileSize: 8 << 20,
				Duration: 100 * time.Millisecond,
			}
			// The file is created by the probe; whether its directory
			// takes O_DIRECT is checked on a stand-in.
			probe := filepath.Join(dir, "direct-check")
			require.NoError(t, os.WriteFile(probe, make([]byte, 4096), 0o600))
			opts.Reader.buffered = !directOK(t, probe)
			require.NoError(t, os.Remove(probe))

			s, err := ProbeDeviceReader(context.Background(), dir, opts)
			if eng == EngineURing && errors.Is(err, uring.ErrUnavailable) {
				t.Skipf("io_uring unavailable here: %v", err)
			}
			require.NoError(t, err)
			t.Log(s)
			require.Equal(t, eng.String(), s.Engine)
			require.Positive(t, s.Reads)
			require.Positive(t, s.ReadsPerSecond)
			require.LessOrEqual(t, s.PeakInFlight, 2*8+4, "at most the buffers")
			left, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Empty(t, left, "the probe file must be removed")
		})
	}
}

// TestMeasureDeviceReader is a measurement, not a check: with
// PC1_TIERED_READER_PROBE set to a file (or a directory to create one in)
// it reads it for PC1_TIERED_READER_PROBE_SECONDS (default 20) with each
// engine (or PC1_TIERED_READER_PROBE_ENGINE's) at depth 64, batch 32,
// reap >= 16 (PC1_TIERED_READER_PROBE_DEPTH and _REAP change those) and
// logs the figures.
func TestMeasureDeviceReader(t *testing.T) {
	path := os.Getenv("PC1_TIERED_READER_PROBE")
	if path == "" {
		t.Skip("set PC1_TIERED_READER_PROBE to a file or directory to measure")
	}
	d := 20 * time.Second
	if s := os.Getenv("PC1_TIERED_READER_PROBE_SECONDS"); s != "" {
		secs, err := time.ParseDuration(s + "s")
		require.NoError(t, err)
		d = secs
	}
	depth, reap := 64, 16
	for name, v := range map[string]*int{"PC1_TIERED_READER_PROBE_DEPTH": &depth, "PC1_TIERED_READER_PROBE_REAP": &reap} {
		if s := os.Getenv(name); s != "" {
			n, err := strconv.Atoi(s)
			require.NoError(t, err, name)
			*v = n
		}
	}
	for _, eng := range engines {
		if e := os.Getenv("PC1_TIERED_READER_PROBE_ENGINE"); e != "" && e != eng.String() {
			continue
		}
		s, err := ProbeDeviceReader(context.Background(), path, ReaderProbeOptions{
			Reader:   DeviceReaderOptions{Engine: eng, Depth: depth, Reap: reap},
			Batch:    32,
			FileSize: 4 << 30,
			Duration: d,
		})
		require.NoError(t, err)
		require.Positive(t, s.Reads)
		t.Log(s)
	}
}
