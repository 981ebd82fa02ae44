package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pc1-tiered/pc1-tiered/bench"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// TestBenchCommand runs a small sweep through the command line, every kind
// of point included, the batch sweep's too (a batch of the 2 sectors by
// default), and checks the files a person reads.
func TestBenchCommand(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, nil, "bench", "--sector-size", "64KiB", "--sectors", "2", "--layers", "2",
		"--block-size", "4KiB", "--pool", "1.625", "--spill", "1.1,0.5", "--out", out, "--cache-dir", t.TempDir())
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "point 6/12: spill 0.5")
	require.Contains(t, stderr, "point 7/12: lockstep 2")
	require.Contains(t, stderr, "then one batch of 2 sectors, 5 points, spill files in "+filepath.Join(out, "spill"))
	require.Contains(t, stderr, "point 12/12: batch device")
	require.Contains(t, stdout, "every point's layer files are byte-identical to the first point's")
	require.Contains(t, stdout, "and its 2 sectors' to the same sectors sealed one at a time")
	for _, label := range []string{"max", "default", "pool 1.625", "min", "spill 1.1", "spill 0.5", "lockstep 2",
		"batch DRAM", "batch 1.2", "batch 1.1", "batch 0.5", "batch device", "reads/node-group", "spill files written"} {
		require.Contains(t, stdout, label)
	}
	_, err := os.Stat(filepath.Join(out, "spill"))
	require.True(t, os.IsNotExist(err), "bench removes the spill directory it made")
	_, err = os.Stat(filepath.Join(out, "batch", "point-0", "sector-1", sdr.LayerFileName(2)))
	require.NoError(t, err, "the batch's first point's layers are kept")
	for _, name := range []string{"bench.csv", "bench.json", "bench.png", "bench.svg"} {
		st, err := os.Stat(filepath.Join(out, name))
		require.NoError(t, err, name)
		require.NotZero(t, st.Size(), name)
	}
	f, err := os.Open(filepath.Join(out, "bench.csv"))
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 13)
	require.Equal(t, "batch device", rows[12][0])

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--spill", "x"}, `--spill: "x" is not a positive multiple`},
		{[]string{"--pool", "-1"}, `--pool: "-1" is not a positive multiple`},
		{[]string{"--sectors", "-1"}, "must be at least 1"},
		{[]string{"--lockstep", "9"}, `--lockstep: "9" is not a group size from 2 to 4`},
		{[]string{"--batch", "129"}, "--batch 129: want a batch of 2 to 128 sectors"},
		{[]string{"--batch", "-1"}, "--batch -1"},
		{[]string{"--spill-dir", "/nonexistent/spill"}, "--spill-dir: spill directory /nonexistent/spill"},
	} {
		code, _, stderr := runCLI(t, nil, append([]string{"bench", "--sector-size", "2KiB", "--out", t.TempDir()}, tc.args...)...)
		require.Equal(t, 2, code, stderr)
		require.Contains(t, stderr, tc.want)
	}
}

// TestBenchKeepsPointsBeforeAFailure: a point that fails after others were
// measured fails the command, but what was measured is written.
func TestBenchKeepsPointsBeforeAFailure(t *testing.T) {
	out := t.TempDir()
	// Point 1's directory cannot be made: a file stands in its place.
	require.NoError(t, os.WriteFile(filepath.Join(out, "point-1"), nil, 0o644))
	code, _, stderr := runCLI(t, nil, "bench", "--sector-size", "64KiB", "--sectors", "2", "--layers", "2",
		"--block-size", "4KiB", "--spill", "1.1", "--lockstep", "none", "--out", out, "--cache-dir", t.TempDir())
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "sweep point 1")
	require.Contains(t, stderr, "wrote the 1 points measured before the failure")
	raw, err := os.ReadFile(filepath.Join(out, "bench.csv"))
	require.NoError(t, err)
	require.Contains(t, string(raw), "max")
	require.NotContains(t, string(raw), "default")
}

// TestBenchBatchFlags: the batch sweep's size and spill directories.
func TestBenchBatchFlags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		batch string // what stderr says of the batch sweep ("": none)
		rows  int
	}{
		// max, default, min, spill 1.1, and the header.
		{name: "off", args: []string{"--batch", "0"}, rows: 5},
		{name: "1 is off", args: []string{"--batch", "1"}, rows: 5},
		{name: "one sector: no default batch", args: []string{"--sectors", "1"}, rows: 5},
		// A batch larger than the sweep: 3 sectors, the first 2 checked
		// against the per-sector sweep's; spill files where told.
		{name: "larger than --sectors", args: []string{"--batch", "3", "--spill-dir", "SPILL", "--spill-dir", "SPILL"}, batch: "then one batch of 3 sectors, 5 points, spill files in SPILL, SPILL", rows: 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, spill := t.TempDir(), t.TempDir()
			args := []string{"bench", "--sector-size", "64KiB", "--sectors", "2", "--layers", "2", "--block-size", "4KiB",
				"--spill", "1.1", "--lockstep", "none", "--out", out, "--cache-dir", t.TempDir()}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "SPILL", spill))
			}
			code, stdout, stderr := runCLI(t, nil, args...)
			require.Equal(t, 0, code, stderr)
			if tc.batch == "" {
				require.NotContains(t, stderr, "then one batch")
				require.NotContains(t, stdout, "batch point")
			} else {
				require.Contains(t, stderr, strings.ReplaceAll(tc.batch, "SPILL", spill))
				require.Contains(t, stdout, "and its 2 sectors' to the same sectors sealed one at a time")
				_, err := os.Stat(filepath.Join(out, "batch", "point-0", "sector-2"))
				require.NoError(t, err)
			}
			_, err := os.Stat(filepath.Join(out, "spill"))
			require.True(t, os.IsNotExist(err), "no spill directory made in --out")
			raw, err := os.ReadFile(filepath.Join(out, "bench.csv"))
			require.NoError(t, err)
			rows, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
			require.NoError(t, err)
			require.Len(t, rows, tc.rows)
		})
	}
}

// TestBenchQuick runs bench --quick as a person would (its own parent
// cache): every point of both sweeps, byte identity checked at each.
func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("seals 2 MiB sectors at 11 points")
	}
	out := t.TempDir()
	start := time.Now()
	code, stdout, stderr := runCLI(t, nil, "bench", "--quick", "--out", out, "--cache-dir", t.TempDir())
	require.Equal(t, 0, code, stderr)
	t.Logf("bench --quick: %s\n%s", time.Since(start).Round(time.Second), stdout)
	require.Contains(t, stderr, "bench: 2 x 2.0 MiB sectors, 2 layers, 2 hashing at once, 6 points")
	require.Contains(t, stderr, "point 11/11: batch device")
	require.Contains(t, stdout, "every point's layer files are byte-identical to the first point's")
	require.Contains(t, stdout, "every batch point's layer files are byte-identical to the batch's first point's")
	var pts []bench.SweepPoint
	raw, err := os.ReadFile(filepath.Join(out, "bench.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &pts))
	require.Len(t, pts, 11)
	for _, p := range pts {
		require.True(t, p.Identical, p.Spec.Label)
	}
	require.Equal(t, pts[0].LayerSHA256, pts[6].LayerSHA256, "the batch's sectors are the per-sector sweep's")
	device := pts[10]
	require.Equal(t, "batch device", device.Spec.Label)
	require.Equal(t, 2, device.Report.Spill.BatchLanes)
	require.Zero(t, device.Report.Spill.ExpanderBlocks, "a window only")
}

// TestBenchSpace checks the space a bench run needs, and that a run
// whose files cannot fit is refused before it starts, naming what it
// needs and what is free.
func TestBenchSpace(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name       string
		d          benchDisk
		out, spill uint64
	}{
		{name: "sector sweep only", d: benchDisk{sectors: 4, layers: 4, sectorSize: 64 * mib}, out: 1024 * mib},
		// The run that stopped at a full disk on the development VM after
		// its fifth point: 40.5 GiB, with 39 GiB free.
		{name: "batch of 64", d: benchDisk{sectors: 2, batch: 64, layers: 4, sectorSize: 64 * mib}, out: (512 + 32768) * mib, spill: 8192 * mib},
		{name: "quick", d: benchDisk{sectors: 2, batch: 2, layers: 2, sectorSize: 2 * mib}, out: 24 * mib, spill: 8 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, spill := tc.d.need()
			require.Equal(t, tc.out, out)
			require.Equal(t, tc.spill, spill)
		})
	}

	dir := t.TempDir()
	spill := filepath.Join(dir, "spill")
	require.NoError(t, os.Mkdir(spill, 0o755))
	require.NoError(t, checkBenchSpace(dir, []string{spill}, benchDisk{sectors: 2, batch: 2, layers: 2, sectorSize: 2 * mib}))
	// A petabyte sector fits nowhere: refused, naming both directories
	// (one filesystem) and the arithmetic.
	err := checkBenchSpace(dir, []string{spill}, benchDisk{sectors: 2, batch: 2, layers: 2, sectorSize: 1 << 50})
	require.Error(t, err)
	for _, want := range []string{dir + " and " + spill, "need 16 PiB free", "2 x 2 layers x 1.0 PiB", "is free", "--sectors"} {
		require.ErrorContains(t, err, want)
	}
}
