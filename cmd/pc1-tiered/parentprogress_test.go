package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// TestProgressParentCache drives Progress.ParentCache with a fake clock:
// the exact lines in a pipe and on a terminal, where the live line is
// redrawn at most every cacheDrawEvery and gives the rate and time left.
func TestProgressParentCache(t *testing.T) {
	const (
		start = "pc1-tiered: generating the parent cache for P at /c/x.cache (1000 nodes)"
		end   = "pc1-tiered: generated the parent cache in 4s (250 nodes/s)"
	)
	// Each step is (done, seconds since the start); total is 1000 nodes.
	steps := []struct {
		done uint64
		at   time.Duration
	}{
		{0, 0}, {250, time.Second}, {500, 2 * time.Second},
		{600, 2*time.Second + 100*time.Millisecond}, // under cacheDrawEvery since the last draw: not drawn
		{1000, 4 * time.Second},
	}
	for _, tc := range []struct {
		name     string
		terminal bool
		sectors  int
		want     string // exact output; "" to check contains instead
		contains []string
	}{
		{name: "pipe: start and end lines only", want: start + "\n" + end + "\n"},
		{name: "pipe with sectors: no sector lines either", sectors: 2, want: start + "\n" + end + "\n"},
		{name: "terminal", terminal: true, want: "" +
			"\x1b[2K" + start + "\n" + "\x1b[2Kparent cache    0.0%  estimating the time left\n" +
			"\x1b[1A\x1b[2Kparent cache   25.0%  250 nodes/s  3s left\n" +
			"\x1b[1A\x1b[2Kparent cache   50.0%  250 nodes/s  2s left\n" +
			"\x1b[1A\x1b[2K" + end + "\n"},
		{name: "terminal with a sector: the cache's line above the sector's", terminal: true, sectors: 1, contains: []string{
			"\x1b[2K" + start + "\n\x1b[2Kparent cache    0.0%  estimating the time left\n\x1b[2Ksector 0  waiting\n",
			"\x1b[2A\x1b[2Kparent cache   50.0%  250 nodes/s  2s left\n\x1b[2Ksector 0  waiting\n",
			"\x1b[2A\x1b[2K" + end + "\n\x1b[2Ksector 0  waiting\n",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			p := NewProgress(&out, tc.terminal, tc.sectors, 2, 1000)
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var now time.Time
			p.now = func() time.Time { return now }
			on := p.ParentCache("P", "/c/x.cache")
			for _, s := range steps {
				now = t0.Add(s.at)
				on(s.done, 1000)
			}
			if tc.want != "" {
				require.Equal(t, tc.want, out.String())
			}
			for _, c := range tc.contains {
				require.Contains(t, out.String(), c)
			}
			require.NotContains(t, out.String(), "60.0%", "redrawn at most every cacheDrawEvery")
		})
	}
}

// TestParentCacheGenerationOutput runs parents and both kinds of seal on
// a parent cache they must generate: the start and end lines, with no
// redraw in a pipe and the live line on a terminal; run again, the cache
// is found and nothing is said about it.
func TestParentCacheGenerationOutput(t *testing.T) {
	ticket := strings.Repeat("11", 32)
	for _, tc := range []struct {
		name  string
		proof string
		args  func(out string) []string
	}{
		{name: "parents 2KiB", proof: "StackedDrg2KiBV1_1", args: func(string) []string { return []string{"parents"} }},
		{name: "parents 8MiB", proof: "StackedDrg8MiBV1_1", args: func(string) []string { return []string{"parents"} }},
		{name: "seal replica ids", proof: "StackedDrg2KiBV1_1", args: func(out string) []string { return []string{"seal", "--out", out} }},
		{name: "seal from inputs", proof: "StackedDrg2KiBV1_1", args: func(out string) []string {
			return []string{"seal", "--out", out, "--prover-id", "f01000", "--sector-number", "1", "--ticket", ticket}
		}},
	} {
		for _, terminal := range []bool{false, true} {
			name := tc.name + "/pipe"
			if terminal {
				name = tc.name + "/terminal"
			}
			t.Run(name, func(t *testing.T) {
				cache := t.TempDir()
				p, err := sdr.ProofByName(tc.proof)
				require.NoError(t, err)
				g, err := sdr.NewProofGraph(p)
				require.NoError(t, err)
				args := append(tc.args(t.TempDir()), "--proof", tc.proof, "--cache-dir", cache)
				startLine := "pc1-tiered: generating the parent cache for " + tc.proof + " at " +
					filepath.Join(cache, sdr.ParentCacheFileName(g)) + " (" + strconv.FormatUint(g.Nodes(), 10) + " nodes)\n"

				code, _, stderr := runCLIOn(t, terminal, args...)
				require.Equal(t, 0, code, stderr)
				require.Equal(t, 1, strings.Count(stderr, startLine), stderr)
				require.Regexp(t, `pc1-tiered: generated the parent cache in [0-9.]+m?s( \([0-9.]+[KM]? nodes/s\))?\n`, stderr)
				require.Less(t, strings.Index(stderr, startLine), strings.Index(stderr, "generated the parent cache in"))
				if terminal {
					require.Contains(t, stderr, "parent cache    0.0%  estimating the time left\n")
				} else {
					require.NotContains(t, stderr, "\r")
					require.NotContains(t, stderr, "\x1b[", "no redraw in a pipe")
					require.Equal(t, 2, strings.Count(stderr, "\n"), "only the start and end lines: %q", stderr)
				}

				// Found this time: not a word about it.
				code, _, stderr = runCLIOn(t, terminal, args...)
				require.Equal(t, 0, code, stderr)
				require.NotContains(t, stderr, "parent cache", stderr)
			})
		}
	}
}

// runCLIOn is runCLI with stderr taken for a terminal, or not.
func runCLIOn(t *testing.T, terminal bool, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }, stderrIsTerminal: terminal}
	code := run(context.Background(), e, args)
	return code, stdout.String(), stderr.String()
}

// TestVerifyParentCacheOutput: verify, which generates a missing parent
// cache as seal does, says so too.
func TestVerifyParentCacheOutput(t *testing.T) {
	out := t.TempDir()
	code, _, stderr := runCLI(t, nil, "seal", "--proof", "StackedDrg2KiBV1_1", "--out", out, "--cache-dir", t.TempDir())
	require.Equal(t, 0, code, stderr)
	fresh := t.TempDir()
	code, _, stderr = runCLIOn(t, false, "verify", "--out", out, "--cache-dir", fresh)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "pc1-tiered: generating the parent cache for 2KiB sectors at "+fresh)
	require.Contains(t, stderr, "pc1-tiered: generated the parent cache in")
	code, _, stderr = runCLIOn(t, false, "verify", "--out", out, "--cache-dir", fresh)
	require.Equal(t, 0, code, stderr)
	require.NotContains(t, stderr, "parent cache", "found, not generated: nothing to say")
}
