// Package metrics makes a running batch observable from outside: Prometheus
// metrics served over HTTP, and structured logs (log/slog) of the batch's
// life. It sits above bench and labeler and only watches them: nothing here
// changes what a seal does.
//
// # Prometheus
//
// A Metrics is one batch's prometheus.Collector. Everything it exports is
// read when Prometheus scrapes: per-sector progress from atomics that
// OnProgress stores (one Swap and one Add per block, no lock), the pool and
// spill counters from a labeler.Live, the process's RssAnon from
// /proc/self/status and the layer files' page cache with mincore. No
// goroutine samples in the background. Handler serves it from a private
// registry (with the Go runtime and process collectors); a program that
// has its own registry (Lotus, Curio) may register the Metrics there
// instead. There is no global registry and no global state.
//
// Exported, all prefixed pc1_:
//
//   - pc1_sector_layer, pc1_sector_layer_progress_ratio and
//     pc1_sector_progress_ratio (label sector): where each sector is. They
//     are 0 until the sector's first block finishes in this process: a
//     sector resumed from an earlier run, or one an earlier run finished,
//     shows nothing before that.
//   - pc1_nodes_labeled_total: labels computed by this process. A nodes per
//     second figure is rate(pc1_nodes_labeled_total[1m]); no gauge is kept.
//   - pc1_pool_size_bytes, pc1_pool_in_use_bytes (with a Live).
//   - pc1_spill_demotions_total, pc1_spill_promotions_total,
//     pc1_spill_cold_reads_total, pc1_spill_late_pages_total,
//     pc1_spill_pages_read_total, pc1_spill_file_bytes_written_total (with a Live;
//     zero without the spill tier).
//   - pc1_rss_anon_bytes and pc1_layer_page_cache_bytes (with Files): the
//     two parts of the DRAM the report's dram_peak_bytes adds up (sampled
//     at the scrape, not peaks), and pc1_dram_budget_bytes when a budget
//     is set.
//
// Stall time (hashing waiting for spilled labels) is not exported: the labeler
// measures it per sector but only reports it in its Result when the batch
// ends, and labeler.Live does not carry it.
//
// Callers: one Metrics per batch; OnProgress must be the labeler's
// callback for the same sectors in the same order. A Metrics's counters
// never go down while it lives, even when the Live it reads goes back to
// zero at the end of the batch.
//
// # Logs
//
// NewLogger builds a text or JSON slog.Logger; a BatchLog logs a batch's
// start, each layer a sector completes (once, never per block), its end
// with the report's key figures, and its error.
package metrics
