package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// scrape fetches h's /metrics as a Prometheus server would and parses the
// text exposition.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	return parse(t, rec.Body)
}

func parse(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	require.NoError(t, err)
	return fams
}

// value returns the value of metric name with the given sector label ("":
// no label); the metric must be there.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name, sector string) float64 {
	t.Helper()
	f, ok := fams[name]
	require.True(t, ok, "no metric %s", name)
	require.NotEmpty(t, f.GetHelp(), "%s has a help text", name)
	for _, m := range f.GetMetric() {
		got := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "sector" {
				got = l.GetValue()
			}
		}
		if got != sector {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		}
		require.Failf(t, "unexpected type", "%s is a %s", name, f.GetType())
	}
	require.Failf(t, "no series", "%s{sector=%q}", name, sector)
	return 0
}

func TestNewRejects(t *testing.T) {
	ok := Config{Sectors: []string{"a", "b"}, Layers: 2, NodesPerLayer: 64}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no sectors", func(c *Config) { c.Sectors = nil }, "no sectors"},
		{"empty name", func(c *Config) { c.Sectors = []string{"a", ""} }, "sector 1 has no name"},
		{"duplicate name", func(c *Config) { c.Sectors = []string{"a", "a"} }, `name "a" used twice`},
		{"no layers", func(c *Config) { c.Layers = 0 }, "layer count 0"},
		{"no nodes", func(c *Config) { c.NodesPerLayer = 0 }, "0 nodes per layer"},
		{"too many nodes", func(c *Config) { c.NodesPerLayer = 1 << 40 }, "nodes per layer out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			_, err := New(c)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := New(ok)
	require.NoError(t, err)
}

// TestProgress feeds reports as the labeler makes them (after every 4-node
// block of 16-node layers) and checks what a scrape shows.
func TestProgress(t *testing.T) {
	type report struct {
		sector, layer int
		done          uint64
	}
	type sector struct{ layer, layerRatio, ratio float64 }
	const nodes, layers = 16, 3
	for _, tc := range []struct {
		name    string
		reports []report
		nodes   float64
		sectors [2]sector
	}{
		{name: "nothing yet"},
		{
			name:    "one report: the block size is not known yet",
			reports: []report{{0, 1, 4}},
			nodes:   0,
			sectors: [2]sector{{1, 0.25, 4.0 / 48}},
		},
		{
			name:    "two blocks",
			reports: []report{{0, 1, 4}, {0, 1, 8}},
			nodes:   8,
			sectors: [2]sector{{1, 0.5, 8.0 / 48}},
		},
		{
			name:    "into the next layer",
			reports: []report{{0, 1, 4}, {0, 1, 8}, {0, 1, 12}, {0, 1, 16}, {0, 2, 4}},
			nodes:   20,
			sectors: [2]sector{{2, 0.25, 20.0 / 48}},
		},
		{
			name: "a resumed sector's first report counts one block",
			// Sector 1 resumes at layer 2 node 8: its first report says 12.
			reports: []report{{0, 1, 4}, {1, 2, 12}, {0, 1, 8}, {1, 2, 16}, {1, 3, 4}},
			nodes:   4 + 4 + 4 + 4 + 4,
			sectors: [2]sector{{1, 0.5, 8.0 / 48}, {3, 0.25, 36.0 / 48}},
		},
		{
			name:    "repeated and impossible reports add nothing",
			reports: []report{{0, 1, 4}, {0, 1, 8}, {0, 1, 8}, {2, 1, 4}, {-1, 1, 4}, {0, 0, 4}, {0, 4, 4}, {0, 1, 17}},
			nodes:   8,
			sectors: [2]sector{{1, 0.5, 8.0 / 48}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(Config{Sectors: []string{"s0", "s1"}, Layers: layers, NodesPerLayer: nodes})
			require.NoError(t, err)
			for _, r := range tc.reports {
				m.OnProgress(r.sector, r.layer, r.done)
			}
			fams := scrape(t, m.Handler())
			require.Equal(t, tc.nodes, value(t, fams, "pc1_nodes_labeled_total", ""))
			for i, want := range tc.sectors {
				name := fmt.Sprintf("s%d", i)
				require.Equal(t, want.layer, value(t, fams, "pc1_sector_layer", name), "sector %d", i)
				require.InDelta(t, want.layerRatio, value(t, fams, "pc1_sector_layer_progress_ratio", name), 1e-12, "sector %d", i)
				require.InDelta(t, want.ratio, value(t, fams, "pc1_sector_progress_ratio", name), 1e-12, "sector %d", i)
			}
			require.Positive(t, value(t, fams, "pc1_rss_anon_bytes", ""))
			// Without a Live, Files or budget those metrics are absent, not 0.
			for _, name := range []string{"pc1_pool_size_bytes", "pc1_spill_cold_reads_total", "pc1_layer_page_cache_bytes", "pc1_dram_budget_bytes"} {
				require.NotContains(t, fams, name)
			}
			require.Contains(t, fams, "go_goroutines", "the Go runtime's metrics are served too")
		})
	}
}

// TestBatch runs a small spilling batch through the real labeler and
// scrapes from its progress callback, while the pool is in use, and after.
func TestBatch(t *testing.T) {
	const sectorSize, layers, block = 64 << 10, 2, 4 << 10
	g, err := sdr.NewGraph(sectorSize, sdr.Proofs()[5].PorepID(), sdr.APIVersion1_1)
	require.NoError(t, err)
	info, err := blockio.EnsureParentCache(context.Background(), g, t.TempDir(), blockio.ParentCacheOptions{})
	require.NoError(t, err)
	out := t.TempDir()
	var sectors []labeler.Sector
	var dirs []string
	for i := range 2 {
		var id [32]byte
		id[0] = byte(i + 1)
		dir := filepath.Join(out, fmt.Sprintf("sector-%d", i))
		require.NoError(t, os.Mkdir(dir, 0o755))
		sectors = append(sectors, labeler.Sector{ReplicaID: id, Dir: dir})
		dirs = append(dirs, dir)
	}
	const budget = 2 * 3 * block // below the pool minimum: the spill tier is on
	live := &labeler.Live{}
	m, err := New(Config{
		Sectors: dirs, Layers: layers, NodesPerLayer: g.Nodes(),
		Live: live, Files: LayerFiles(dirs, layers), DRAMBudget: budget,
	})
	require.NoError(t, err)

	var mu sync.Mutex
	var poolSize, inUse, coldReads, pageCache float64
	cfg := labeler.Config{
		Graph: g, ParentCache: info.Path, Layers: layers, Sectors: sectors, Live: live,
		Options: labeler.Options{BlockSize: block, Parallel: 2, DRAMBudget: budget},
	}
	cfg.OnProgress = Chain(m.OnProgress, nil, func(int, int, uint64) {
		fams := scrape(t, m.Handler())
		mu.Lock()
		defer mu.Unlock()
		poolSize = value(t, fams, "pc1_pool_size_bytes", "")
		inUse = max(inUse, value(t, fams, "pc1_pool_in_use_bytes", ""))
		coldReads = max(coldReads, value(t, fams, "pc1_spill_cold_reads_total", ""))
		pageCache = max(pageCache, value(t, fams, "pc1_layer_page_cache_bytes", ""))
	})
	res, err := labeler.Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Equal(t, float64(res.PoolSize), poolSize)
	require.Positive(t, inUse)
	require.LessOrEqual(t, inUse, poolSize)
	require.Positive(t, coldReads, "a spilling batch reads cold labels")
	// At most a partial and a committed layer per sector are listed.
	require.LessOrEqual(t, pageCache, float64(2*2*sectorSize))

	fams := scrape(t, m.Handler())
	var labeled uint64
	for _, s := range res.Sectors {
		labeled += s.Nodes
	}
	require.Equal(t, float64(2*layers*g.Nodes()), float64(labeled))
	require.Equal(t, float64(labeled), value(t, fams, "pc1_nodes_labeled_total", ""))
	for _, d := range dirs {
		require.Equal(t, float64(layers), value(t, fams, "pc1_sector_layer", d))
		require.Equal(t, 1.0, value(t, fams, "pc1_sector_progress_ratio", d))
	}
	require.Zero(t, value(t, fams, "pc1_pool_size_bytes", ""), "the pool is gone with the batch")
	require.Equal(t, coldReads, value(t, fams, "pc1_spill_cold_reads_total", ""), "counters keep their value after the batch")
	require.Positive(t, value(t, fams, "pc1_spill_demotions_total", ""))
	require.Equal(t, float64(res.Spill.PrefetchedPages), value(t, fams, "pc1_spill_pages_read_total", ""))
	// The two sectors spill as one batch, through spill files.
	require.Equal(t, 2, res.Spill.Lanes)
	require.Positive(t, res.Spill.SpillWriteBytes)
	require.Equal(t, float64(res.Spill.SpillWriteBytes), value(t, fams, "pc1_spill_file_bytes_written_total", ""))
	require.Equal(t, float64(budget), value(t, fams, "pc1_dram_budget_bytes", ""))
}

func TestLayerFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		want  []string
	}{
		{"nothing yet", nil, nil},
		{"first layer in progress", []string{"sc-02-data-layer-1.dat.partial"}, []string{"sc-02-data-layer-1.dat.partial"}},
		{
			"third layer in progress",
			[]string{"sc-02-data-layer-1.dat", "sc-02-data-layer-2.dat", "sc-02-data-layer-3.dat.partial", "sc-02-data-layer-3.dat.partial.progress"},
			[]string{"sc-02-data-layer-3.dat.partial", "sc-02-data-layer-2.dat"},
		},
		{"all done", []string{"sc-02-data-layer-1.dat", "sc-02-data-layer-2.dat", "sc-02-data-layer-3.dat"}, []string{"sc-02-data-layer-3.dat"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				require.NoError(t, blockio.WriteFileAtomic(filepath.Join(dir, f), nil))
			}
			var want []string
			for _, f := range tc.want {
				want = append(want, filepath.Join(dir, f))
			}
			require.Equal(t, want, LayerFiles([]string{dir}, 3)())
		})
	}
}

func TestServe(t *testing.T) {
	m, err := New(Config{Sectors: []string{"s0"}, Layers: 1, NodesPerLayer: 64})
	require.NoError(t, err)
	m.OnProgress(0, 1, 32)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(url string) (int, string, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}

	s, err := Serve(context.Background(), "127.0.0.1:0", m.Handler())
	require.NoError(t, err)
	base := "http://" + s.Addr()
	code, body, err := get(base + "/metrics")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 0.5, value(t, parse(t, strings.NewReader(body)), "pc1_sector_layer_progress_ratio", "s0"))
	code, _, err = get(base + "/")
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, code, "only /metrics is served")

	_, err = Serve(context.Background(), s.Addr(), m.Handler())
	require.ErrorContains(t, err, "address already in use")

	require.NoError(t, s.Stop())
	require.NoError(t, s.Stop(), "a second Stop is harmless")
	_, _, err = get(base + "/metrics")
	require.Error(t, err, "nothing listens after Stop")

	// The context ending stops the server as well.
	ctx, cancel := context.WithCancel(context.Background())
	s, err = Serve(ctx, "127.0.0.1:0", m.Handler())
	require.NoError(t, err)
	cancel()
	require.NoError(t, s.Stop()) // returns once the shutdown the context began is over
	_, _, err = get("http://" + s.Addr() + "/metrics")
	require.Error(t, err)
}
