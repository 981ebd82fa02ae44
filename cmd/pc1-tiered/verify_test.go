package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// TestVerifyCommand seals sectors through the command line, verifies them,
// damages one label and checks that verify names it and exits 1.
func TestVerifyCommand(t *testing.T) {
	out, cache := t.TempDir(), t.TempDir()
	code, _, stderr := runCLI(t, nil, "seal", "--proof", "StackedDrg2KiBV1_1", "--sectors", "3", "--layers", "3",
		"--out", out, "--cache-dir", cache)
	require.Equal(t, 0, code, stderr)
	layer2 := filepath.Join(out, "sector-1", sdr.LayerFileName(2))

	for _, tc := range []struct {
		name string
		args []string
		// flip, when set, inverts one bit of node 9 of sector 1's layer 2
		// for the case.
		flip   bool
		code   int
		stdout []string
		stderr string
	}{
		{name: "sampled", args: []string{"--samples", "5", "--seed", "11"}, stdout: []string{
			"ok " + filepath.Join(out, "sector-0") + ": 2KiB, 3 layers, ",
			"ok " + filepath.Join(out, "sector-2") + ": ",
			"verified 3 sectors, 9 layer files, ", "(5 random nodes per layer plus the first and last, seed 11)", "(digest checked)",
		}},
		{name: "all", args: []string{"--samples", "all"}, stdout: []string{
			"ok " + filepath.Join(out, "sector-1") + ": 2KiB, 3 layers, 192 labels recomputed, replica id ",
			"verified 3 sectors, 9 layer files, 576 labels recomputed (every node)",
		}},
		{name: "default samples cover a 2KiB layer", args: nil, stdout: []string{"576 labels recomputed"}},
		{name: "one sector's directory", args: []string{"--out", filepath.Join(out, "sector-2")}, stdout: []string{"verified 1 sectors, 3 layer files"}},
		{name: "flipped bit", args: []string{"--samples", "all"}, flip: true, code: 1,
			stdout: []string{"ok " + filepath.Join(out, "sector-0") + ": "},
			stderr: fmt.Sprintf("pc1-tiered verify: sector %s: layer 2: node 9: label ", filepath.Join(out, "sector-1"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.flip {
				orig, err := os.ReadFile(layer2)
				require.NoError(t, err)
				bad := append([]byte(nil), orig...)
				bad[9*sdr.NodeSize+4] ^= 0x10
				require.NoError(t, os.WriteFile(layer2, bad, 0o644))
				defer func() { require.NoError(t, os.WriteFile(layer2, orig, 0o644)) }()
			}
			args := append([]string{"verify", "--out", out, "--cache-dir", cache}, tc.args...)
			code, stdout, stderr := runCLI(t, nil, args...)
			require.Equal(t, tc.code, code, stderr)
			for _, s := range tc.stdout {
				require.Contains(t, stdout, s)
			}
			if tc.code == 0 {
				require.Empty(t, stderr)
				lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
				for _, l := range lines[:len(lines)-1] {
					require.True(t, strings.HasPrefix(l, "ok "), "one line per sector: %q", l)
				}
				require.True(t, strings.HasPrefix(lines[len(lines)-1], "verified "), "then a summary: %q", stdout)
				return
			}
			require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			require.Contains(t, stderr, tc.stderr)
			require.NotContains(t, stdout, "verified", "no summary after a failure")
		})
	}
}
