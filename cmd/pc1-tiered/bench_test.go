package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBenchCommand runs a small sweep through the command line, every kind
// of point included, and checks the files a person reads.
func TestBenchCommand(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, nil, "bench", "--sector-size", "64KiB", "--sectors", "2", "--layers", "2",
		"--block-size", "4KiB", "--pool", "1.625", "--spill", "1.1,0.5", "--out", out, "--cache-dir", t.TempDir())
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "point 6/7: spill 0.5")
	require.Contains(t, stderr, "point 7/7: lockstep 2")
	require.Contains(t, stdout, "byte-identical")
	for _, label := range []string{"max", "default", "pool 1.625", "min", "spill 1.1", "spill 0.5", "lockstep 2"} {
		require.Contains(t, stdout, label)
	}
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
	require.Len(t, rows, 8)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--spill", "x"}, `--spill: "x" is not a positive multiple`},
		{[]string{"--pool", "-1"}, `--pool: "-1" is not a positive multiple`},
		{[]string{"--sectors", "-1"}, "must be at least 1"},
		{[]string{"--lockstep", "9"}, `--lockstep: "9" is not a group size from 2 to 4`},
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
