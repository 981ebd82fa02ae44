package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// runCLI runs one command line with a fixed environment and returns the
// exit status and what it printed.
func runCLI(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return vars[k] }}
	code := run(context.Background(), e, args)
	return code, stdout.String(), stderr.String()
}

// TestSealMatchesReferenceVectors seals every create_labels vector of
// rust-fil-proofs through the command line and compares the last label of
// the last layer file, and the report's required keys.
func TestSealMatchesReferenceVectors(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/vectors/create_labels.json")
	require.NoError(t, err)
	var v struct {
		Cases []struct {
			SectorSize uint64 `json:"sector_size"`
			Layers     int    `json:"layers"`
			ReplicaID  string `json:"replica_id"`
			PorepID    string `json:"porep_id"`
			API        string `json:"api_version"`
			LastLabel  string `json:"expected_last_label"`
		} `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(raw, &v))
	require.NotEmpty(t, v.Cases)
	cache := t.TempDir()
	for _, c := range v.Cases {
		t.Run(c.API+"/"+c.PorepID[:8], func(t *testing.T) {
			out := t.TempDir()
			report := filepath.Join(out, "report.json")
			code, stdout, stderr := runCLI(t, nil, "seal",
				"--sector-size", sdr.FormatSize(c.SectorSize), "--layers", "11",
				"--porep-id", c.PorepID, "--api-version", c.API,
				"--replica-id", c.ReplicaID, "--out", out, "--cache-dir", cache, "--report", report)
			require.Equal(t, 0, code, stderr)
			require.Contains(t, stdout, "sha_limit_ratio")
			layer, err := os.ReadFile(filepath.Join(out, "sector-0", sdr.LayerFileName(c.Layers)))
			require.NoError(t, err)
			require.Len(t, layer, int(c.SectorSize))
			require.Equal(t, c.LastLabel, hex.EncodeToString(layer[len(layer)-32:]))

			data, err := os.ReadFile(report)
			require.NoError(t, err)
			var rep map[string]any
			require.NoError(t, json.Unmarshal(data, &rep))
			for _, key := range []string{"sectors", "wall_seconds", "nodes_per_second", "sha_limit_ratio", "peak_rss_bytes",
				"pool_size_bytes", "block_size_bytes", "pool_peak_bytes", "peak_anon_bytes"} {
				require.Contains(t, rep, key)
			}
			sectors := rep["sectors"].([]any)
			require.Len(t, sectors, 1)
			s := sectors[0].(map[string]any)
			require.Equal(t, c.ReplicaID, s["replica_id"])
			require.Equal(t, filepath.Join(out, "sector-0"), s["dir"])
			require.EqualValues(t, 11, s["layers"])
			require.Contains(t, s, "pool_wait_seconds")
			require.Greater(t, rep["sha_limit_ratio"].(float64), 0.0)
		})
	}
}

// TestSealSeveralSectors checks the sector directory naming and that
// derived replica ids differ per sector, through the pool with N = 2.
func TestSealSeveralSectors(t *testing.T) {
	out := t.TempDir()
	code, _, stderr := runCLI(t, map[string]string{"MEM_POOL_SIZE": "6KiB"}, "seal", "--sector-size", "2KiB", "--sectors", "3",
		"--parallel", "2", "--out", out, "--cache-dir", t.TempDir(), "--layers", "3")
	require.Equal(t, 0, code, stderr)
	var last [][]byte
	for i := range 3 {
		b, err := os.ReadFile(filepath.Join(out, "sector-"+string(rune('0'+i)), sdr.LayerFileName(3)))
		require.NoError(t, err)
		for _, prev := range last {
			require.NotEqual(t, prev, b)
		}
		last = append(last, b)
	}
}

func TestParentsCommand(t *testing.T) {
	cache := t.TempDir()
	for _, proof := range []string{"StackedDrg2KiBV1", "StackedDrg2KiBV1_1", "StackedDrg8MiBV1_1"} {
		for _, generated := range []bool{true, false} {
			code, stdout, stderr := runCLI(t, nil, "parents", "--proof", proof, "--cache-dir", cache)
			require.Equal(t, 0, code, stderr)
			require.Equal(t, 1, strings.Count(stdout, "\n"))
			var got struct {
				Path       string `json:"path"`
				SHA256     string `json:"sha256"`
				Nodes      uint64 `json:"nodes"`
				SectorSize uint64 `json:"sector_size"`
				Verified   bool   `json:"verified"`
				Generated  bool   `json:"generated"`
			}
			require.NoError(t, json.Unmarshal([]byte(stdout), &got))
			p, err := sdr.ProofByName(proof)
			require.NoError(t, err)
			g, err := sdr.NewProofGraph(p)
			require.NoError(t, err)
			want, ok := sdr.ParentCacheManifest(sdr.ParentCacheName(g))
			require.True(t, ok)
			require.Equal(t, hex.EncodeToString(want.Digest[:]), got.SHA256)
			require.Equal(t, p.SectorSize, got.SectorSize)
			require.Equal(t, p.SectorSize/32, got.Nodes)
			require.True(t, got.Verified)
			require.Equal(t, generated, got.Generated)
			require.Equal(t, filepath.Join(cache, sdr.ParentCacheFileName(g)), got.Path)
		}
	}
}

// TestBadInput checks that every kind of bad input gets one line on stderr
// and a non-zero status, never a panic.
func TestBadInput(t *testing.T) {
	cache := t.TempDir()
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))

	// A parent cache of the wrong size under the right name.
	badCache := t.TempDir()
	p, err := sdr.ProofByName("StackedDrg2KiBV1_1")
	require.NoError(t, err)
	g, err := sdr.NewProofGraph(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(badCache, sdr.ParentCacheFileName(g)), make([]byte, 1000), 0o644))

	id := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name string
		args []string
		vars map[string]string
		code int
		msg  string
	}{
		{name: "no command", args: nil, code: 2, msg: "usage"},
		{name: "unknown command", args: []string{"frob"}, code: 2, msg: `unknown command "frob"`},
		{name: "unknown flag", args: []string{"seal", "--bogus"}, code: 2, msg: "-bogus"},
		{name: "unknown proof", args: []string{"seal", "--proof", "StackedDrg3KiBV1"}, code: 2, msg: `unknown proof "StackedDrg3KiBV1"`},
		{name: "non-power-of-two size", args: []string{"seal", "--sector-size", "3000"}, code: 2, msg: "power of two"},
		{name: "size with bad unit", args: []string{"seal", "--sector-size", "2XB"}, code: 2, msg: `unknown unit "XB"`},
		{name: "malformed porep id", args: []string{"seal", "--sector-size", "2KiB", "--porep-id", "zz"}, code: 2, msg: "invalid byte"},
		{name: "short porep id", args: []string{"seal", "--sector-size", "2KiB", "--porep-id", "00ff"}, code: 2, msg: "got 2 bytes"},
		{name: "short replica id", args: []string{"seal", "--sector-size", "2KiB", "--replica-id", "0011"}, code: 2, msg: "want 32 bytes"},
		{name: "long replica id", args: []string{"seal", "--sector-size", "2KiB", "--replica-id", id + "00"}, code: 2, msg: "got 33 bytes"},
		{name: "unknown api", args: []string{"seal", "--sector-size", "2KiB", "--api-version", "9"}, code: 2, msg: "unknown API version"},
		{name: "negative layers", args: []string{"seal", "--sector-size", "2KiB", "--layers", "-1"}, code: 2, msg: "at least 1"},
		{name: "ids and count", args: []string{"seal", "--sectors", "2", "--replica-id", id}, code: 2, msg: "both given"},
		{name: "unwritable output dir", args: []string{"seal", "--sector-size", "2KiB", "--out", filepath.Join(file, "out"), "--cache-dir", cache}, code: 1, msg: "a-file"},
		{name: "unwritable report", args: []string{"seal", "--sector-size", "2KiB", "--out", t.TempDir(), "--report", filepath.Join(file, "r.json"), "--cache-dir", cache}, code: 1, msg: "--report"},
		{name: "cache of the wrong size", args: []string{"seal", "--proof", "StackedDrg2KiBV1_1", "--out", t.TempDir(), "--cache-dir", badCache}, code: 1, msg: "is 1000 bytes, want 3584"},
		{name: "parents cache of the wrong size", args: []string{"parents", "--proof", "StackedDrg2KiBV1_1", "--cache-dir", badCache}, code: 1, msg: "--regenerate"},
		{name: "pool too small", args: []string{"seal", "--sector-size", "2KiB", "--out", t.TempDir(), "--cache-dir", cache, "--pool-size", "1KiB"}, code: 1, msg: "outside [4.0 KiB, 4.0 KiB]"},
		{name: "MEM_POOL_SIZE malformed", args: []string{"seal", "--sector-size", "2KiB", "--out", t.TempDir(), "--cache-dir", cache}, vars: map[string]string{"MEM_POOL_SIZE": "lots"}, code: 2, msg: "MEM_POOL_SIZE"},
		{name: "bad block size", args: []string{"seal", "--sector-size", "2KiB", "--out", t.TempDir(), "--cache-dir", cache, "--block-size", "3KiB"}, code: 1, msg: "block size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.vars, tc.args...)
			require.Equal(t, tc.code, code, stderr)
			require.Contains(t, stderr, tc.msg)
			if tc.args != nil {
				require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			}
			requireNoOutput(t, tc.args)
		})
	}
}

// TestSealChoosesBatches: a seal told nothing about parallelism gives each
// core a batch of its sectors when they and the memory allow, says so, and
// writes the same layer files as one sector a core.
func TestSealChoosesBatches(t *testing.T) {
	cache := t.TempDir()
	cores := labeler.HashingCores()
	n := 4 * cores
	seal := func(extra ...string) (string, string, string) {
		out := t.TempDir()
		args := append([]string{"seal", "--sector-size", "2KiB", "--sectors", strconv.Itoa(n), "--layers", "2", "--out", out, "--cache-dir", cache}, extra...)
		code, stdout, stderr := runCLI(t, nil, args...)
		require.Equal(t, 0, code, stderr)
		return out, stdout, stderr
	}
	chosen, stdout, stderr := seal()
	alone, stdoutAlone, stderrAlone := seal("--parallel", strconv.Itoa(cores))
	require.NotContains(t, stderrAlone, "hash at once", "--parallel given: nothing chosen")
	require.Contains(t, stdoutAlone, "lockstep 1")
	if !strings.Contains(stdoutAlone, "sha-ni") {
		require.NotContains(t, stderr, "hash at once", "no SHA extensions: no batches to choose")
		return
	}
	require.Contains(t, stderr, fmt.Sprintf("pc1-tiered: %d sectors hash at once, a batch of 4 on each of %d cores", n, cores))
	require.Contains(t, stderr, fmt.Sprintf("--parallel %d for one sector a core", cores))
	require.Contains(t, stdout, "sha-ni x4")
	for i := range n {
		sector := fmt.Sprintf("sector-%d", i)
		requireSameLayers(t, filepath.Join(chosen, sector), filepath.Join(alone, sector), 2)
	}
}
