package sealer

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/pc1-tiered/pc1-tiered/measure"
)

// SectorReport is one sector's part of a Report.
type SectorReport struct {
	Index           int     `json:"index"`
	Dir             string  `json:"dir"`
	ReplicaID       string  `json:"replica_id"`
	Layers          int     `json:"layers"`
	PoolWaitSeconds float64 `json:"pool_wait_seconds"`
	CoreWaitSeconds float64 `json:"core_wait_seconds"`
	// StallSeconds is hashing time the job's thread spent off the CPU:
	// waiting for spilled labels, or descheduled.
	StallSeconds    float64 `json:"stall_seconds"`
	SyncWaitSeconds float64 `json:"sync_wait_seconds"`
	HashSeconds     float64 `json:"hash_seconds"`
	// NodesPerSecond is this sector's labels per second of hashing time.
	NodesPerSecond float64 `json:"nodes_per_second"`
	// ResumedLayer and ResumedNode are where this run took over an earlier
	// run's work (0, 0: from scratch); Nodes is what this run labeled.
	ResumedLayer int    `json:"resumed_layer"`
	ResumedNode  uint64 `json:"resumed_node"`
	Nodes        uint64 `json:"nodes"`
}

// SpillReport is what the spill tier did during a seal.
type SpillReport struct {
	// ExpanderBlocks and WindowBlocks are the blocks each job kept in DRAM
	// of the previous layer and of the layer being written.
	ExpanderBlocks int    `json:"expander_blocks"`
	WindowBlocks   int    `json:"window_blocks"`
	Demotions      uint64 `json:"demotions"`
	Promotions     uint64 `json:"promotions"`
	// ColdReads counts parent labels read from spilled parts of layers;
	// ColdReadsPerNode is that per node labeled (ARCHITECTURE.md's table).
	ColdReads        uint64  `json:"cold_reads"`
	ColdReadsPerNode float64 `json:"cold_reads_per_node"`
	// PrefetchedPages counts 4 KiB pages read ahead of the hashing (one
	// read serves every cold parent on its page in the look-ahead);
	// LatePages the times the hashing waited for one, LateWaitSeconds how
	// long in all.
	PrefetchedPages uint64  `json:"prefetched_pages"`
	LatePages       uint64  `json:"late_pages"`
	LateWaitSeconds float64 `json:"late_wait_seconds"`
	// PrefetchedInTime is the share of page reads the hashing did not
	// wait for: 1 - late / prefetched.
	PrefetchedInTime float64 `json:"prefetched_in_time"`
	// Engine is how spilled pages were read: io_uring, or a pool of pread
	// goroutines where the host disables io_uring.
	Engine string `json:"read_engine"`
	// DeviceReads counts the O_DIRECT page reads (each one went to the
	// device); CPUPerDeviceRead is the CPU the read engines spent per read
	// (submitting, reaping, completing: not the hashing's);
	// PeakReadsInFlight the most reads one job had in flight;
	// ReadsPerSyscall is how many reads an io_uring_enter (or pread) call
	// served on average: the engines' per-call cost spreads over them.
	DeviceReads       uint64  `json:"device_reads"`
	CPUPerDeviceRead  float64 `json:"cpu_seconds_per_device_read"`
	PeakReadsInFlight int     `json:"peak_reads_in_flight"`
	ReadsPerSyscall   float64 `json:"device_reads_per_syscall"`
	// PagesPerNode is DeviceReads per node labeled.
	PagesPerNode float64 `json:"device_reads_per_node"`
	// SpillBytesWritten is what left DRAM for the device. A single
	// sector's is layer-file data written anyway, so the spill tier adds
	// no writes; a batch writes every block of every layer once more, to
	// its spill files (SpillFileBytesWritten, pages with their padding).
	SpillBytesWritten     uint64 `json:"spill_bytes_written"`
	SpillFileBytesWritten uint64 `json:"spill_file_bytes_written"`
	// BatchLanes is the sectors per spilling job; DeviceReadsPerNodeGroup
	// is DeviceReads per node of a job (one read serves all its lanes).
	BatchLanes              int     `json:"batch_lanes"`
	DeviceReadsPerNodeGroup float64 `json:"device_reads_per_node_group"`
	// SpillBytesRead is the pages the tier read back, in bytes (compare
	// device_read_bytes, which also counts the parent cache).
	SpillBytesRead uint64 `json:"spill_bytes_read"`
}

// Report is what one labeling run measured; its JSON form is the --report
// file. The SHA-256 rate and memory fields are zero unless the run was
// asked to measure them (LabelOptions.Measure).
type Report struct {
	Proof           string  `json:"proof"`
	ParentCache     string  `json:"parent_cache"`
	SectorSize      uint64  `json:"sector_size"`
	Nodes           uint64  `json:"nodes"`
	LayersPerSector int     `json:"layers"`
	WallSeconds     float64 `json:"wall_seconds"`
	// SetupSeconds is the time before the labeling started, not in
	// WallSeconds: locking the sectors, mapping and faulting in the pool,
	// reading their progress.
	SetupSeconds                float64 `json:"setup_seconds"`
	NodesPerSecond              float64 `json:"nodes_per_second"`
	BusyCores                   float64 `json:"busy_cores"`
	NodesPerSecondPerBusyCore   float64 `json:"nodes_per_second_per_busy_core"`
	SHA256CompressionsPerSecond float64 `json:"sha256_compressions_per_second"`
	SHAImplementation           string  `json:"sha_implementation"`
	SHALimitRatio               float64 `json:"sha_limit_ratio"`
	PeakRSSBytes                uint64  `json:"peak_rss_bytes"`
	PeakAnonBytes               uint64  `json:"peak_anon_bytes"`
	PeakFileBytes               uint64  `json:"peak_file_bytes"`
	// PeakDRAMBytes is the largest RssAnon plus layer-file page cache seen
	// in one sample: spilled bytes still cached count as DRAM.
	PeakDRAMBytes       uint64 `json:"dram_peak_bytes"`
	PeakLayerCacheBytes uint64 `json:"peak_layer_cache_bytes"`
	DRAMBudgetBytes     uint64 `json:"dram_budget_bytes"`
	// DeviceReadBytes and DeviceWriteBytes are /proc/self/io's read_bytes
	// and write_bytes over the seal: what really went to the device.
	DeviceReadBytes  uint64 `json:"device_read_bytes"`
	DeviceWriteBytes uint64 `json:"device_write_bytes"`
	MajorFaults      uint64 `json:"major_faults"`
	// StallSeconds sums the sectors' stall_seconds.
	StallSeconds       float64      `json:"stall_seconds"`
	Spill              *SpillReport `json:"spill,omitempty"`
	AnonHugePagesBytes uint64       `json:"anon_huge_pages_bytes"`
	PoolSizeBytes      uint64       `json:"pool_size_bytes"`
	BlockSizeBytes     uint64       `json:"block_size_bytes"`
	PoolPeakBytes      uint64       `json:"pool_peak_bytes"`
	Parallel           int          `json:"parallel"`
	// Lockstep is how many sectors one job labeled together, its batch
	// (1: each alone); pool blocks are then Lockstep x block_size_bytes.
	// The JSON keeps the name reports had before batches grew past 4.
	Lockstep int `json:"lockstep"`
	// Kernel is the hashing kernel: "sha-ni x2", "sha-ni" or "portable".
	Kernel string `json:"kernel"`
	// HashCPUs is where the hashing threads were kept and why, empty when
	// the scheduler placed them.
	HashCPUs string `json:"hash_cpus,omitempty"`
	// Measured says whether the run took the costly figures (the SHA-256
	// rate, memory samples, I/O counters, host): without them those fields
	// are zero.
	Measured bool           `json:"measured"`
	Warnings []string       `json:"warnings,omitempty"`
	Host     measure.Host   `json:"host"`
	Sectors  []SectorReport `json:"sectors"`
}

// JSON returns the report as indented JSON with a trailing newline.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// String is the report for a person: a few lines on the terminal.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sealed %d x %s sector(s), %d layers (%s)\n", len(r.Sectors), humanize.IBytes(r.SectorSize), r.LayersPerSector, r.Proof)
	if r.Measured {
		fmt.Fprintf(&b, "wall %.2fs (after %.2fs of set-up), %.0f nodes/s, %.2f busy cores, sha_limit_ratio %.3f (%s, %.1fM compressions/s/core); kernel %s, lockstep %d\n",
			r.WallSeconds, r.SetupSeconds, r.NodesPerSecond, r.BusyCores, r.SHALimitRatio, r.SHAImplementation, r.SHA256CompressionsPerSecond/1e6, r.Kernel, r.Lockstep)
		if r.HashCPUs != "" {
			fmt.Fprintf(&b, "hashing on %s\n", r.HashCPUs)
		}
		fmt.Fprintf(&b, "memory: peak RSS %s, peak anon %s, peak file %s; pool %s in %s blocks, peak use %s\n",
			humanize.IBytes(r.PeakRSSBytes), humanize.IBytes(r.PeakAnonBytes), humanize.IBytes(r.PeakFileBytes),
			humanize.IBytes(r.PoolSizeBytes), humanize.IBytes(r.BlockSizeBytes), humanize.IBytes(r.PoolPeakBytes))
	} else {
		fmt.Fprintf(&b, "wall %.2fs (after %.2fs of set-up), %.0f nodes/s, %.2f busy cores; kernel %s, lockstep %d; pool %s in %s blocks, peak use %s\n",
			r.WallSeconds, r.SetupSeconds, r.NodesPerSecond, r.BusyCores, r.Kernel, r.Lockstep,
			humanize.IBytes(r.PoolSizeBytes), humanize.IBytes(r.BlockSizeBytes), humanize.IBytes(r.PoolPeakBytes))
	}
	if sp := r.Spill; sp != nil {
		fmt.Fprintf(&b, "spill: DRAM budget %s, peak DRAM %s (layer-file cache %s); per job %d expander + %d window blocks in DRAM; %d demotions, %d promotions\n",
			humanize.IBytes(r.DRAMBudgetBytes), humanize.IBytes(r.PeakDRAMBytes), humanize.IBytes(r.PeakLayerCacheBytes),
			sp.ExpanderBlocks, sp.WindowBlocks, sp.Demotions, sp.Promotions)
		fmt.Fprintf(&b, "spill reads (%s, O_DIRECT): %.3f cold parents per node, %d pages read (%.3f per node, %.3f per node of a batch of %d), %.1f µs CPU per read, %.1f reads per engine call, up to %d in flight; the hashing waited %d times, %.2fs (%.1f%% in time); %.2fs stalled\n",
			sp.Engine, sp.ColdReadsPerNode, sp.DeviceReads, sp.PagesPerNode, sp.DeviceReadsPerNodeGroup, sp.BatchLanes, sp.CPUPerDeviceRead*1e6, sp.ReadsPerSyscall, sp.PeakReadsInFlight,
			sp.LatePages, sp.LateWaitSeconds, 100*sp.PrefetchedInTime, r.StallSeconds)
		if sp.SpillFileBytesWritten > 0 {
			fmt.Fprintf(&b, "spill files: %s written\n", humanize.IBytes(sp.SpillFileBytesWritten))
		}
	}
	for _, s := range r.Sectors {
		fmt.Fprintf(&b, "  sector %d  %s  hash %.2fs  pool wait %.2fs  core wait %.2fs  stalled %.2fs  sync %.2fs",
			s.Index, s.Dir, s.HashSeconds, s.PoolWaitSeconds, s.CoreWaitSeconds, s.StallSeconds, s.SyncWaitSeconds)
		switch {
		case s.ResumedLayer > 0:
			fmt.Fprintf(&b, "  resumed at layer %d node %d", s.ResumedLayer, s.ResumedNode)
		case s.Nodes == 0:
			fmt.Fprintf(&b, "  already complete")
		}
		b.WriteByte('\n')
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}
