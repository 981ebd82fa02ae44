package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/sealer"
)

func TestNewLogger(t *testing.T) {
	for _, tc := range []struct {
		format string
		want   string // a prefix of the line logged; "" when the format is refused
	}{
		{"text", "time="},
		{"json", `{"time":`},
		{"xml", ""},
		{"", ""},
		{"JSON", ""},
	} {
		t.Run(tc.format, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := NewLogger(&buf, tc.format, slog.LevelInfo)
			if tc.want == "" {
				require.ErrorContains(t, err, fmt.Sprintf("log format %q: want text or json", tc.format))
				return
			}
			require.NoError(t, err)
			l.Debug("hidden")
			l.Info("shown")
			require.True(t, strings.HasPrefix(buf.String(), tc.want), buf.String())
			require.Equal(t, 1, strings.Count(buf.String(), "\n"), "debug is below the level")
		})
	}
}

// runBatchLog logs a whole two-sector, two-layer batch of 2 KiB sectors
// reported in 16-node blocks, then its end and an error.
func runBatchLog(t *testing.T, format string) string {
	t.Helper()
	g, err := sdr.NewGraph(2048, sdr.Proofs()[5].PorepID(), sdr.APIVersion1_1)
	require.NoError(t, err)
	var buf bytes.Buffer
	l, err := NewLogger(&buf, format, slog.LevelDebug)
	require.NoError(t, err)
	cfg := &labeler.Config{Graph: g, Layers: 2, Sectors: []labeler.Sector{{Dir: "out/sector-0"}, {Dir: "out/sector-1"}}, Options: labeler.Options{Parallel: 2, DRAMBudget: 5 << 10}}
	b := NewBatchLog(l, cfg)
	b.Start()
	for layer := 1; layer <= 2; layer++ {
		for done := uint64(16); done <= g.Nodes(); done += 16 {
			b.OnProgress(0, layer, done)
			b.OnProgress(1, layer, done)
		}
		b.OnProgress(1, layer, g.Nodes()) // a repeated report logs nothing
	}
	b.End(&sealer.Report{
		WallSeconds: 2, NodesPerSecond: 128, SHALimitRatio: 0.93, PeakRSSBytes: 1 << 20, PeakDRAMBytes: 6 << 10,
		PoolSizeBytes: 4 << 10, DRAMBudgetBytes: 5 << 10, Spill: &sealer.SpillReport{ColdReadsPerNode: 0.5},
		Warnings: []string{"no hugepages"},
		Sectors:  []sealer.SectorReport{{Index: 0, Dir: "out/sector-0", Nodes: 128}, {Index: 1, Dir: "out/sector-1", Nodes: 128, ResumedLayer: 2}},
	})
	b.Error(errors.New("sector 1: layer 2: no space left on device"))
	return buf.String()
}

func TestBatchLogJSON(t *testing.T) {
	out := runBatchLog(t, "json")
	var records []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), "line %q", sc.Text())
		records = append(records, r)
	}
	byMsg := map[string][]map[string]any{}
	for _, r := range records {
		byMsg[r["msg"].(string)] = append(byMsg[r["msg"].(string)], r)
	}
	keys := func(msg string, n int, want ...string) {
		t.Helper()
		require.Len(t, byMsg[msg], n, "%q records", msg)
		for _, r := range byMsg[msg] {
			for _, k := range append(want, "time", "level") {
				require.Contains(t, r, k, "%q record", msg)
			}
		}
	}
	keys("batch start", 1, "sectors", "layers", "parallel", "pool_size_bytes", "dram_budget_bytes", "sector_size_bytes", "pool_min_bytes", "pool_default_bytes", "pool_max_bytes")
	keys("sector", 2, "sector", "dir", "replica_id")
	keys("layer done", 4, "sector", "dir", "layer", "layers", "seconds")
	keys("batch done", 1, "wall_seconds", "nodes_per_second", "sha_limit_ratio", "peak_rss_bytes", "dram_peak_bytes", "stall_seconds", "cold_reads_per_node")
	keys("batch warning", 1, "warning")
	keys("sector done", 2, "sector", "nodes", "resumed_layer")
	keys("batch failed", 1, "error", "seconds")
	require.Len(t, records, 1+2+4+1+1+2+1, "nothing else is logged: no line per block")

	start := byMsg["batch start"][0]
	require.Equal(t, 2.0, start["sectors"])
	require.Equal(t, float64(5<<10), start["dram_budget_bytes"])
	require.Equal(t, float64(6<<10), start["pool_min_bytes"], "(N+1) x S for N=2 of 2 KiB")
	var done []string
	for _, r := range byMsg["layer done"] {
		done = append(done, fmt.Sprintf("%v/%v", r["sector"], r["layer"]))
	}
	require.ElementsMatch(t, []string{"0/1", "1/1", "0/2", "1/2"}, done)
	end := byMsg["batch done"][0]
	require.Equal(t, 0.93, end["sha_limit_ratio"])
	require.Equal(t, float64(6<<10), end["dram_peak_bytes"])
	failed := byMsg["batch failed"][0]
	require.Equal(t, "ERROR", failed["level"])
	require.Equal(t, "sector 1: layer 2: no space left on device", failed["error"])
	require.Equal(t, "WARN", byMsg["batch warning"][0]["level"])
}

func TestBatchLogText(t *testing.T) {
	out := runBatchLog(t, "text")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 12)
	for _, tc := range []struct {
		msg  string
		n    int
		want []string
	}{
		{`msg="batch start"`, 1, []string{"level=INFO", "sectors=2", "layers=2", "parallel=2", "pool_min_bytes=6144", "dram_budget_bytes=5120"}},
		{`msg="layer done"`, 4, []string{"level=INFO", "dir=out/sector-", "layers=2", "seconds="}},
		{`msg="batch done"`, 1, []string{"wall_seconds=2", "nodes_per_second=128", "sha_limit_ratio=0.93", "dram_peak_bytes=6144", "peak_rss_bytes=1048576"}},
		{`msg="batch failed"`, 1, []string{"level=ERROR", `error="sector 1: layer 2: no space left on device"`}},
	} {
		var got []string
		for _, l := range lines {
			if strings.Contains(l, tc.msg) {
				got = append(got, l)
			}
		}
		require.Len(t, got, tc.n, tc.msg)
		for _, l := range got {
			for _, w := range tc.want {
				require.Contains(t, l, w)
			}
		}
	}
}
