package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/measure"
)

// Config describes the batch a Metrics watches.
type Config struct {
	// Sectors name the batch's sectors, in labeler.Config.Sectors order,
	// for the sector label: their directories, say. Names must be unique.
	Sectors []string
	// Layers is the number of layers per sector; NodesPerLayer the nodes
	// in each (the graph's Nodes()).
	Layers        int
	NodesPerLayer uint64
	// Live, if set, is the batch's labeler.Config.Live: the pool and
	// spill metrics come from it.
	Live *labeler.Live
	// Files, if set, lists the files whose page cache counts as the
	// batch's DRAM (see LayerFiles); it is called at each scrape.
	Files func() []string
	// DRAMBudget, if set, is exported as pc1_dram_budget_bytes.
	DRAMBudget uint64
}

// Packed sector state: layer<<layerShift | nodes done in the layer. Nodes
// per layer reach 2^32 at 128 GiB, so 40 bits leave room.
const layerShift = 40

func (c *Config) validate() error {
	if len(c.Sectors) == 0 {
		return errors.New("metrics: no sectors")
	}
	seen := make(map[string]bool, len(c.Sectors))
	for i, s := range c.Sectors {
		if s == "" {
			return fmt.Errorf("metrics: sector %d has no name", i)
		}
		if seen[s] {
			return fmt.Errorf("metrics: sector %d: name %q used twice", i, s)
		}
		seen[s] = true
	}
	if c.Layers < 1 || c.Layers >= 1<<(64-layerShift) {
		return fmt.Errorf("metrics: layer count %d out of range", c.Layers)
	}
	if c.NodesPerLayer == 0 || c.NodesPerLayer >= 1<<layerShift {
		return fmt.Errorf("metrics: %d nodes per layer out of range", c.NodesPerLayer)
	}
	return nil
}

// Metrics is one batch's Prometheus collector. OnProgress may be called
// from any goroutine; Collect (a scrape) too.
type Metrics struct {
	cfg      Config
	registry *prometheus.Registry

	sectors []sectorState
	// nodes counts labels reported by every report after a sector's
	// first; each sector's first report counts as blockNodes once that is
	// known (see OnProgress).
	nodes      atomic.Uint64
	started    atomic.Uint64 // sectors that reported at least once
	blockNodes atomic.Uint64 // nodes per block, learned from reports

	// mu serializes scrapes: mincore over large layer files is not free,
	// and the spill counters' high-water marks are updated here.
	mu    sync.Mutex
	spill [6]uint64 // demotions, promotions, cold reads, late pages, pages read, spill-file bytes
}

type sectorState struct {
	state atomic.Uint64 // layer<<layerShift | nodes done; 0: no report yet
}

var (
	descLayer = prometheus.NewDesc("pc1_sector_layer",
		"Layer the sector is labeling (from 1); 0 until its first block finishes in this process.", []string{"sector"}, nil)
	descLayerRatio = prometheus.NewDesc("pc1_sector_layer_progress_ratio",
		"Share of the current layer's nodes the sector has labeled.", []string{"sector"}, nil)
	descSectorRatio = prometheus.NewDesc("pc1_sector_progress_ratio",
		"Share of all the sector's layers labeled, counting the layers before the current one as done.", []string{"sector"}, nil)
	descNodes = prometheus.NewDesc("pc1_nodes_labeled_total",
		"Node labels computed by this process (nodes per second: rate() of this).", nil, nil)
	descPoolSize = prometheus.NewDesc("pc1_pool_size_bytes",
		"Size of the shared block pool; 0 when no batch is running.", nil, nil)
	descPoolInUse = prometheus.NewDesc("pc1_pool_in_use_bytes",
		"Pool bytes held by jobs now.", nil, nil)
	descSpill = [6]*prometheus.Desc{
		prometheus.NewDesc("pc1_spill_demotions_total",
			"Blocks dropped from DRAM once written (spill tier).", nil, nil),
		prometheus.NewDesc("pc1_spill_promotions_total",
			"Blocks read back into DRAM when a layer turned over (spill tier).", nil, nil),
		prometheus.NewDesc("pc1_spill_cold_reads_total",
			"Parent labels read from spilled parts of layers (spill tier).", nil, nil),
		prometheus.NewDesc("pc1_spill_late_pages_total",
			"Spilled 4 KiB pages the hashing reached before the prefetcher (spill tier).", nil, nil),
		prometheus.NewDesc("pc1_spill_pages_read_total",
			"4 KiB pages read from the device with O_DIRECT for spilled labels (spill tier; for a batch, one page serves all its sectors).", nil, nil),
		prometheus.NewDesc("pc1_spill_file_bytes_written_total",
			"Bytes batches wrote to their spill files (spill tier; single sectors read their layer files and write none).", nil, nil),
	}
	descRSSAnon = prometheus.NewDesc("pc1_rss_anon_bytes",
		"Anonymous resident memory of the process (RssAnon in /proc/self/status): the pool's DRAM and everything else the process allocated.", nil, nil)
	descPageCache = prometheus.NewDesc("pc1_layer_page_cache_bytes",
		"Page cache held by the batch's layer files (mincore): spilled labels still cached are DRAM too.", nil, nil)
	descBudget = prometheus.NewDesc("pc1_dram_budget_bytes",
		"DRAM budget of the batch (--dram): compare with pc1_rss_anon_bytes + pc1_layer_page_cache_bytes.", nil, nil)
)

// New returns the collector for the batch cfg describes.
func New(cfg Config) (*Metrics, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Sectors = append([]string(nil), cfg.Sectors...)
	m := &Metrics{cfg: cfg, sectors: make([]sectorState, len(cfg.Sectors)), registry: prometheus.NewRegistry()}
	for _, c := range []prometheus.Collector{
		m,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := m.registry.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return m, nil
}

// OnProgress records that sector has labeled nodesDone nodes of layer; it
// has labeler.Config.OnProgress's signature, to be chained into it. Calls
// for one sector must come in order (the labeler makes them from the
// sector's job); reports for an unknown sector or layer are ignored.
//
// The labeler reports after every block, so the nodes a report adds are
// the difference from the sector's previous report. A sector's first
// report in this process has no previous one, and a resumed sector's
// first report also covers what an earlier run labeled: it counts as one
// block, whose size the first difference seen in any sector tells.
func (m *Metrics) OnProgress(sector, layer int, nodesDone uint64) {
	if sector < 0 || sector >= len(m.sectors) || layer < 1 || layer > m.cfg.Layers || nodesDone > m.cfg.NodesPerLayer {
		return
	}
	prev := m.sectors[sector].state.Swap(uint64(layer)<<layerShift | nodesDone)
	if prev == 0 {
		m.started.Add(1)
		return
	}
	prevLayer, prevDone := int(prev>>layerShift), prev&(1<<layerShift-1)
	var d uint64
	switch {
	case layer == prevLayer && nodesDone > prevDone:
		d = nodesDone - prevDone
	case layer > prevLayer:
		d = nodesDone // a new layer starts from its first node
	default:
		return // a repeated report adds nothing
	}
	m.nodes.Add(d)
	if m.blockNodes.Load() == 0 {
		m.blockNodes.CompareAndSwap(0, d)
	}
}

// Chain returns a progress callback (labeler.Config.OnProgress) that calls
// each non-nil fn in turn.
func Chain(fns ...func(sector, layer int, nodesDone uint64)) func(sector, layer int, nodesDone uint64) {
	var live []func(int, int, uint64)
	for _, f := range fns {
		if f != nil {
			live = append(live, f)
		}
	}
	return func(sector, layer int, nodesDone uint64) {
		for _, f := range live {
			f(sector, layer, nodesDone)
		}
	}
}

// Handler serves the metrics (and the Go runtime's and the process's) in
// the Prometheus exposition formats. A metric that cannot be read (no
// /proc) is left out of the scrape rather than failing it.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLayer, descLayerRatio, descSectorRatio, descNodes, descRSSAnon} {
		ch <- d
	}
	if m.cfg.Live != nil {
		ch <- descPoolSize
		ch <- descPoolInUse
		for _, d := range descSpill {
			ch <- d
		}
	}
	if m.cfg.Files != nil {
		ch <- descPageCache
	}
	if m.cfg.DRAMBudget != 0 {
		ch <- descBudget
	}
}

// Collect implements prometheus.Collector: it reads everything now.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	npl, layers := float64(m.cfg.NodesPerLayer), float64(m.cfg.Layers)
	for i, name := range m.cfg.Sectors {
		s := m.sectors[i].state.Load()
		layer, done := s>>layerShift, float64(s&(1<<layerShift-1))
		var all float64
		if layer > 0 {
			all = (float64(layer-1)*npl + done) / (layers * npl)
		}
		ch <- prometheus.MustNewConstMetric(descLayer, prometheus.GaugeValue, float64(layer), name)
		ch <- prometheus.MustNewConstMetric(descLayerRatio, prometheus.GaugeValue, done/npl, name)
		ch <- prometheus.MustNewConstMetric(descSectorRatio, prometheus.GaugeValue, all, name)
	}
	// Every part only grows, so the sum never goes back between scrapes,
	// and a started sector has labeled at least the block it is counted.
	first := m.started.Load() * m.blockNodes.Load()
	ch <- prometheus.MustNewConstMetric(descNodes, prometheus.CounterValue, float64(m.nodes.Load()+first))

	m.mu.Lock()
	defer m.mu.Unlock()
	if live := m.cfg.Live; live != nil {
		c := live.Counts()
		ch <- prometheus.MustNewConstMetric(descPoolSize, prometheus.GaugeValue, float64(c.PoolBytes))
		ch <- prometheus.MustNewConstMetric(descPoolInUse, prometheus.GaugeValue, float64(c.PoolInUseBytes))
		// Live reads zero once the batch ends; a counter must not go back.
		for i, v := range [6]uint64{c.Demotions, c.Promotions, c.ColdReads, c.LatePages, c.PagesRead, c.SpillFileBytes} {
			m.spill[i] = max(m.spill[i], v)
			ch <- prometheus.MustNewConstMetric(descSpill[i], prometheus.CounterValue, float64(m.spill[i]))
		}
	}
	if st, err := measure.ReadProcStatus(); err != nil {
		ch <- prometheus.NewInvalidMetric(descRSSAnon, fmt.Errorf("/proc/self/status: %w", err))
	} else {
		ch <- prometheus.MustNewConstMetric(descRSSAnon, prometheus.GaugeValue, float64(st.RssAnon))
	}
	if m.cfg.Files != nil {
		var cached uint64
		for _, f := range m.cfg.Files() {
			n, _ := measure.PageCacheBytes(f) // a partial file may be renamed meanwhile
			cached += n
		}
		ch <- prometheus.MustNewConstMetric(descPageCache, prometheus.GaugeValue, float64(cached))
	}
	if m.cfg.DRAMBudget != 0 {
		ch <- prometheus.MustNewConstMetric(descBudget, prometheus.GaugeValue, float64(m.cfg.DRAMBudget))
	}
}

// LayerFiles returns a Config.Files for sectors written to dirs with the
// given layer count: in each directory the newest layer being written (its
// partial file) and the newest committed layer, the expander layer. Older
// layers are not listed: the labeler drops a layer's pages from the cache
// once they are written and stops reading a layer once it is two behind,
// and mincore costs time in proportion to a file's size (about 60 ms per
// 32 GiB file), so listing every layer of every sector would make each
// scrape cost seconds for nothing.
func LayerFiles(dirs []string, layers int) func() []string {
	dirs = append([]string(nil), dirs...)
	return func() []string {
		var files []string
		for _, d := range dirs {
			for k := layers; k >= 1; k-- {
				sd := blockio.SectorDir(d)
				final := sd.Layer(k)
				if _, err := os.Stat(sd.PartialLayer(k)); err == nil {
					files = append(files, sd.PartialLayer(k))
				}
				if _, err := os.Stat(final); err == nil {
					files = append(files, final)
					break
				}
			}
		}
		return files
	}
}
