package metrics

import (
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/sealer"
)

// NewLogger returns a logger that writes records at level and above to w,
// as key=value lines (format "text") or one JSON object per line ("json").
func NewLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

// BatchLog logs one batch's life: Start before labeler.Run (or
// sealer.Label), OnProgress chained into the batch's progress callback, then
// End with the report or Error. Records carry stable keys (sector, dir,
// layer, ..._seconds, ..._bytes) for machines to read.
type BatchLog struct {
	log           *slog.Logger
	cfg           *labeler.Config
	nodesPerLayer uint64
	start         atomic.Int64 // unix nanoseconds of Start

	// Per sector, written by its job only: the last layer logged as done
	// and when it finished.
	layerDone []atomic.Int32
	layerEnd  []atomic.Int64
}

// NewBatchLog returns the log of the batch cfg describes; cfg must not
// change until the batch ends.
func NewBatchLog(l *slog.Logger, cfg *labeler.Config) *BatchLog {
	b := &BatchLog{
		log:       l,
		cfg:       cfg,
		layerDone: make([]atomic.Int32, len(cfg.Sectors)),
		layerEnd:  make([]atomic.Int64, len(cfg.Sectors)),
	}
	if cfg.Graph != nil {
		b.nodesPerLayer = cfg.Graph.Nodes()
	}
	b.start.Store(time.Now().UnixNano())
	return b
}

// Start logs the batch as asked for: the pool size is the requested one
// (0: the labeler picks the default, or sizes it from the DRAM budget when
// that is below the minimum), with the bounds for the batch's N; End logs
// the size used.
func (b *BatchLog) Start() {
	b.start.Store(time.Now().UnixNano())
	c := b.cfg
	attrs := []any{
		"sectors", len(c.Sectors),
		"layers", c.Layers,
		"parallel", c.Jobs(),
		"pool_size_bytes", c.PoolSize,
		"block_size_bytes", c.BlockSize,
		"dram_budget_bytes", c.DRAMBudget,
	}
	if c.Graph != nil {
		s := c.Graph.SectorSize()
		lo, def, hi := pool.Bounds(s, c.Jobs())
		attrs = append(attrs, "sector_size_bytes", s, "pool_min_bytes", lo, "pool_default_bytes", def, "pool_max_bytes", hi)
	}
	b.log.Info("batch start", attrs...)
	for i, s := range c.Sectors {
		b.log.Debug("sector", "sector", i, "dir", s.Dir, "replica_id", fmt.Sprintf("%x", s.ReplicaID))
	}
}

// OnProgress logs "layer done" once when a sector's report says it has
// labeled the last node of a layer; other reports log nothing. seconds is
// the time since the sector's previous layer finished, or since Start for
// its first layer in this process (which then includes waiting for its
// turn, and covers only the rest of a resumed layer).
func (b *BatchLog) OnProgress(sector, layer int, nodesDone uint64) {
	if sector < 0 || sector >= len(b.layerDone) || nodesDone != b.nodesPerLayer || b.nodesPerLayer == 0 {
		return
	}
	if int(b.layerDone[sector].Swap(int32(layer))) >= layer {
		return // already logged
	}
	now := time.Now().UnixNano()
	since := b.layerEnd[sector].Swap(now)
	if since == 0 {
		since = b.start.Load()
	}
	b.log.Info("layer done",
		"sector", sector,
		"dir", b.cfg.Sectors[sector].Dir,
		"layer", layer,
		"layers", b.cfg.Layers,
		"seconds", time.Duration(now-since).Seconds())
}

// End logs the report's key figures, its warnings, and each sector's
// figures at debug level.
func (b *BatchLog) End(r *sealer.Report) {
	attrs := []any{
		"sectors", len(r.Sectors),
		"wall_seconds", r.WallSeconds,
		"nodes_per_second", r.NodesPerSecond,
		"sha_limit_ratio", r.SHALimitRatio,
		"busy_cores", r.BusyCores,
		"peak_rss_bytes", r.PeakRSSBytes,
		"dram_peak_bytes", r.PeakDRAMBytes,
		"pool_size_bytes", r.PoolSizeBytes,
		"pool_peak_bytes", r.PoolPeakBytes,
		"stall_seconds", r.StallSeconds,
	}
	if sp := r.Spill; sp != nil {
		attrs = append(attrs,
			"dram_budget_bytes", r.DRAMBudgetBytes,
			"cold_reads_per_node", sp.ColdReadsPerNode,
			"prefetched_in_time", sp.PrefetchedInTime,
			"device_read_bytes", r.DeviceReadBytes)
	}
	b.log.Info("batch done", attrs...)
	for _, w := range r.Warnings {
		b.log.Warn("batch warning", "warning", w)
	}
	for _, s := range r.Sectors {
		b.log.Debug("sector done",
			"sector", s.Index,
			"dir", s.Dir,
			"nodes", s.Nodes,
			"hash_seconds", s.HashSeconds,
			"pool_wait_seconds", s.PoolWaitSeconds,
			"core_wait_seconds", s.CoreWaitSeconds,
			"stall_seconds", s.StallSeconds,
			"sync_wait_seconds", s.SyncWaitSeconds,
			"resumed_layer", s.ResumedLayer,
			"resumed_node", s.ResumedNode)
	}
}

// Error logs the batch's failure.
func (b *BatchLog) Error(err error) {
	b.log.Error("batch failed", "error", err, "seconds", time.Since(time.Unix(0, b.start.Load())).Seconds())
}
