package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPlanCommand runs plan through run() for each regime, in text and
// JSON, with a real (small, short) device probe.
func TestPlanCommand(t *testing.T) {
	nvme := t.TempDir()
	probe := []string{"--nvme", nvme, "--probe-size", "4MiB", "--probe-time", "200ms"}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		regime string
		stdout []string
		stderr string
	}{
		{
			name:   "full speed, text",
			args:   []string{"--sector-size", "2KiB", "--sectors", "2", "--ram", "1GiB", "--reserve", "0", "--cores", "2"},
			regime: "full-speed",
			stdout: []string{"plan: 2 x 2.0 KiB sectors", "answer: 2 x 2.0 KiB sectors fit without spill at full speed", "seal with: --parallel 2 --pool-size 7KiB", "arithmetic:", "pool bounds for N = 2"},
		},
		{
			name:   "pool-limited, text",
			args:   []string{"--sector-size", "2KiB", "--sectors", "4", "--ram", "12KiB", "--reserve", "0"},
			regime: "pool-limited",
			stdout: []string{"below the default pool", "pool-wait factor", "interpolation"},
		},
		{
			name: "the lead's spill case, one sector per job, JSON",
			args: append([]string{"--sector-size", "64MiB", "--sectors", "4", "--ram", "282MiB", "--reserve", "0", "--layers", "4", "--batch", "1", "--json"}, probe...),
			// 70 blocks of 1 MiB per job: the whole expander layer and a
			// six-block window.
			regime: "spill",
			stdout: []string{`"expander_blocks": 64`, `"window_blocks": 6`, `"seal_flags": "--parallel 4 --dram 280MiB --out DIR-ON-NVME"`,
				`"batch_size": 1`, `"batches": 4`, `"records_per_page": 128`},
		},
		{
			name: "the lead's spill case, B chosen, JSON",
			args: append([]string{"--sector-size", "64MiB", "--sectors", "4", "--ram", "282MiB", "--reserve", "0", "--layers", "4", "--json"}, probe...),
			// One batch of 4: its 24 MiB of reader and packer buffers
			// come off the budget, leaving 64 blocks of 4 x 1 MiB: a
			// window of S/16 and 60 of the 64 expander blocks.
			regime: "batch",
			stdout: []string{`"expander_blocks": 60`, `"window_blocks": 4`, `"seal_flags": "--parallel 4 --batch 4 --dram 256MiB --out DIR-ON-NVME"`,
				`"batch_size": 4`, `"batches": 1`, `"records_per_page": 32`, `"batch_candidates"`},
		},
		{
			name:   "64 x 64 MiB in one batch, text",
			args:   append([]string{"--sector-size", "64MiB", "--sectors", "64", "--batch", "64", "--ram", "300MiB", "--reserve", "0", "--layers", "4"}, probe...),
			stdout: []string{"answer: 64 x 64 MiB sectors need spill: 1 batch(es) of 64", "seal with: --parallel 64 --batch 64 --dram 256MiB --out DIR-ON-NVME", "rpp = floor(4096 / (32 x B)) = 2 records per 4 KiB page", "DRAM per sector = jobs 1 x (B 64 x 1.0 MiB x (E 0 + W 4)"},
		},
		{
			name: "hypothetical server, device figure given",
			args: []string{"--sector-size", "32GiB", "--sectors", "64", "--batch", "64", "--ram", "256GiB", "--cores", "32", "--device-reads", "4M", "--cold-read-cpu", "2us"},
			stdout: []string{"device random reads R = 4.00M/s (given, not probed)", "CPU per page read c = 2.0 µs (given)", "seal with: --parallel 64 --batch 64 --dram 196GiB --out DIR-ON-NVME",
				"tier.PlanSpill(1024, 98): keep 34 expander blocks"},
		},
		{
			name:   "cannot fit without a device",
			args:   []string{"--sector-size", "32GiB", "--sectors", "8", "--ram", "256GiB"},
			code:   1,
			regime: "cannot-fit",
			stdout: []string{"answer: cannot seal 8 x 32 GiB sectors", "reserve = OS + Go runtime 2.0 GiB + parent cache 56 GiB"},
			stderr: "at most 5 (3 at full speed, 5 without spill",
		},
		{
			name:   "cannot fit even with spill",
			args:   append([]string{"--sector-size", "32GiB", "--sectors", "8", "--ram", "58GiB"}, probe...),
			code:   1,
			regime: "cannot-fit",
			stderr: "cannot seal 8 x 32 GiB sectors in 58 GiB of RAM",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, append([]string{"plan"}, tc.args...)...)
			require.Equal(t, tc.code, code, stderr)
			for _, s := range tc.stdout {
				require.Contains(t, stdout, s)
			}
			if tc.code == 0 {
				require.Empty(t, stderr)
			} else {
				require.Contains(t, stderr, tc.stderr)
				require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			}
			if strings.Contains(strings.Join(tc.args, " "), "--json") {
				var m map[string]any
				require.NoError(t, json.Unmarshal([]byte(stdout), &m), stdout)
				require.Equal(t, tc.regime, m["regime"])
				require.Greater(t, m["nodes_per_second"].(float64), 0.0)
				devs := m["devices"].([]any)
				require.Len(t, devs, 1)
				require.Equal(t, nvme, devs[0].(map[string]any)["dir"])
			}
			left, err := os.ReadDir(nvme)
			require.NoError(t, err)
			require.Empty(t, left, "the probe must remove its file")
		})
	}
}

func TestPlanBadInput(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no sectors", []string{"--sector-size", "32GiB", "--ram", "1TiB"}, 2, "--sectors 0"},
		{"bad ram", []string{"--sectors", "2", "--ram", "lots"}, 2, "--ram"},
		{"bad reserve", []string{"--sectors", "2", "--ram", "1TiB", "--reserve", "12XB"}, 2, "--reserve"},
		{"bad sector size", []string{"--sector-size", "3KiB", "--sectors", "2"}, 2, "power of two"},
		{"negative layers", []string{"--sectors", "2", "--layers", "-2"}, 2, "--layers -2"},
		{"negative cores", []string{"--sectors", "2", "--cores", "-1"}, 2, "--cores -1"},
		{"zero efficiency", []string{"--sectors", "2", "--efficiency", "0"}, 2, "--efficiency"},
		{"bad block size", []string{"--sectors", "2", "--block-size", "3KiB"}, 2, "--block-size"},
		{"bad duration", []string{"--sectors", "2", "--cold-read-cpu", "fast"}, 2, "cold-read-cpu"},
		{"stray argument", []string{"--sectors", "2", "now"}, 2, `unexpected argument "now"`},
		{"missing nvme dir", []string{"--sectors", "2", "--ram", "1GiB", "--nvme", filepath.Join(file, "nope")}, 1, filepath.Join(file, "nope")},
		{"negative batch", []string{"--sectors", "2", "--batch", "-1"}, 2, "--batch -1: want 0 (choose) or 1 to 128"},
		{"batch over 128", []string{"--sectors", "200", "--batch", "129"}, 2, "--batch 129: want 0 (choose) or 1 to 128"},
		{"batch over N", []string{"--sectors", "4", "--batch", "8"}, 2, "--batch 8 is more than --sectors 4"},
		{"bad device reads", []string{"--sectors", "2", "--device-reads", "fast", "--cold-read-cpu", "2us"}, 2, `--device-reads "fast"`},
		{"zero device reads", []string{"--sectors", "2", "--device-reads", "0", "--cold-read-cpu", "2us"}, 2, `--device-reads "0"`},
		{"device reads without CPU", []string{"--sectors", "2", "--device-reads", "200K"}, 2, "--device-reads needs --cold-read-cpu"},
		{"device reads and nvme", []string{"--sectors", "2", "--device-reads", "1M", "--cold-read-cpu", "2us", "--nvme", file}, 2, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, append([]string{"plan"}, tc.args...)...)
			require.Equal(t, tc.code, code, stderr)
			require.Empty(t, stdout)
			require.Contains(t, stderr, tc.msg)
			require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
		})
	}
}

func TestPlanListedInHelp(t *testing.T) {
	code, _, stderr := runCLI(t, nil, "help")
	require.Equal(t, 0, code)
	require.Contains(t, stderr, "  plan ")
}
