package bench

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/sealer"
)

// SweepSpec is one point of a DRAM sweep: how much DRAM the batch may use.
type SweepSpec struct {
	// Label names the point ("max", "default", "min", "spill 1.1",
	// "lockstep 2"; a batch sweep's "batch DRAM", "batch 1.1", "batch
	// device").
	Label string `json:"label"`
	// PoolSize, when set, is the pool size (no spill).
	PoolSize uint64 `json:"pool_size_bytes,omitempty"`
	// DRAMBudget, when set, is the whole batch's DRAM budget; below the
	// pool minimum it turns the spill tier on.
	DRAMBudget uint64 `json:"dram_budget_bytes,omitempty"`
	// Lockstep is the group size (labeler.Config.Lockstep); 0 means 1:
	// DRAM points compare pool sizes with one kernel.
	Lockstep int `json:"lockstep,omitempty"`
	// Batch, when set, labels the sweep's sectors in batches of Batch
	// (labeler.Options.Batch): a batch sweep's points (BatchSweep), whose
	// sweep is one batch of all its sectors. Lockstep is then ignored.
	Batch int `json:"batch,omitempty"`
}

// dram is the DRAM the point allows the whole batch.
func (s SweepSpec) dram() uint64 { return max(s.PoolSize, s.DRAMBudget) }

// DefaultSweep lists the points of a sweep for n sectors of sectorSize
// hashing at once, from the most DRAM to the least: the pool's maximum
// (2 x S per sector, no sharing) and default, pool sizes of poolPerSector
// x S per sector between them and the minimum, the minimum, then DRAM
// budgets of spillPerSector x S per sector below the minimum, which spill.
// Multiples outside those ranges are left out.
func DefaultSweep(sectorSize uint64, n int, poolPerSector, spillPerSector []float64) []SweepSpec {
	lo, def, hi := pool.Bounds(sectorSize, n)
	perSector := func(x float64) uint64 { return uint64(x * float64(sectorSize) * float64(n)) }
	name := func(prefix string, x float64) string { return prefix + " " + strconv.FormatFloat(x, 'f', -1, 64) }
	pts := []SweepSpec{{Label: "max", PoolSize: hi}, {Label: "default", PoolSize: def}}
	for _, x := range poolPerSector {
		if size := perSector(x); size > lo && size < hi && size != def {
			pts = append(pts, SweepSpec{Label: name("pool", x), PoolSize: size})
		}
	}
	pts = append(pts, SweepSpec{Label: "min", PoolSize: lo})
	for _, x := range spillPerSector {
		if budget := perSector(x); budget < lo {
			pts = append(pts, SweepSpec{Label: name("spill", x), DRAMBudget: budget})
		}
	}
	slices.SortStableFunc(pts[1:], func(a, b SweepSpec) int { return cmp.Compare(b.dram(), a.dram()) })
	return pts
}

// LockstepSweep lists points at the largest pool with sectors labeled k
// at a time (lockstep groups), one per k: what interleaved hashing buys
// against the first point's one-sector jobs.
func LockstepSweep(sectorSize uint64, n int, ks []int) []SweepSpec {
	var pts []SweepSpec
	for _, k := range ks {
		if k >= 2 && k <= n {
			// The pool counts a group as one job on a sector k times as
			// large, a short last group included: its largest pool is
			// 2 x groups x k x S, more than n sectors' when k does not
			// divide n.
			_, _, hi := pool.Bounds(uint64(k)*sectorSize, (n+k-1)/k)
			pts = append(pts, SweepSpec{Label: "lockstep " + strconv.Itoa(k), PoolSize: hi, Lockstep: k})
		}
	}
	return pts
}

// BatchMultiples are the DRAM per sector, in multiples of the sector size
// S, of BatchSweep's points between all-DRAM and all-on-device: the whole
// expander layer in DRAM with a window of about 0.2 and 0.1 x S of the
// layer being written, then about half the expander on the device.
var BatchMultiples = []float64{1.2, 1.1, 0.5}

// BatchSweep lists the points of a batch sweep: one batch of batch sectors
// of sectorSize (one pool job of batch x S), from the most DRAM to the
// least. blockSize is the block size, per sector, that its spilling points
// use (0: labeler.DefaultSpillBlockSize, what a seal below its pool minimum
// takes).
//
// The points: all-DRAM, the batch's pool default (2 x S per sector: one
// job's pool has no sharing); DRAM budgets of BatchMultiples x S per
// sector, below the pool minimum, which spill to spill files (tier.PlanSpill
// keeps a window of S/16 and then the expander layer, after the batch's
// reader and packer buffers: with the default spill block, 64 a layer,
// 1.2 holds all the expander, 1.1 all of it for a batch of 64 and 60 of
// 64 blocks for a batch of 4 (24 MiB of buffers weigh more per sector),
// 0.5 about 7/16 of it); then all on the device, a
// window only, the smallest budget that gives the batch a couple of
// blocks (two, or one when S/16 is a single block; left out when that is
// more than 0.1 x S per sector) besides its reader and packer buffers. A budget below one block of the batch is
// left out (tiny sectors of a block or two). Fewer than two sectors is no
// batch: no points.
func BatchSweep(sectorSize uint64, batch int, blockSize uint64) []SweepSpec {
	if batch < 2 {
		return nil
	}
	if blockSize == 0 {
		blockSize = labeler.DefaultSpillBlockSize(sectorSize)
	}
	b := uint64(batch)
	_, def, _ := pool.Bounds(b*sectorSize, 1)
	pts := []SweepSpec{{Label: "batch DRAM", PoolSize: def, Batch: batch}}
	for _, x := range BatchMultiples {
		// A budget below one of the batch's blocks cannot be run.
		if budget := uint64(x * float64(sectorSize) * float64(batch)); budget >= b*blockSize {
			pts = append(pts, SweepSpec{Label: "batch " + strconv.FormatFloat(x, 'f', -1, 64), DRAMBudget: budget, Batch: batch})
		}
	}
	// A window only: at most max(1, S/16) blocks (tier.PlanSpill gives
	// the window those first).
	blocks := min(2, max(1, sectorSize/blockSize/16))
	if 10*blocks*blockSize <= sectorSize {
		pts = append(pts, SweepSpec{Label: "batch device", DRAMBudget: windowBudget(blocks*b*blockSize, batch, blockSize), Batch: batch})
	}
	return pts
}

// windowBudget is the DRAM budget that leaves a spilling batch blocks
// bytes for its blocks (labeler.BudgetForBlocks): the blocks and the
// batch's reader and packer buffers, when the labeler takes those off
// such a budget; else the blocks alone.
func windowBudget(blocks uint64, batch int, blockSize uint64) uint64 {
	if b := blocks + labeler.SpillOverheadBytes(batch, blockSize); labeler.BudgetForBlocks(b, 1, batch, blockSize) == blocks {
		return b
	}
	return blocks
}

// config is base with the point's DRAM setting and group size.
func (spec SweepSpec) config(base labeler.Config) labeler.Config {
	base.PoolSize, base.DRAMBudget = spec.PoolSize, spec.DRAMBudget
	if spec.Batch > 0 {
		base.Batch, base.Lockstep = spec.Batch, 0
	} else {
		base.Batch, base.Lockstep = 0, max(spec.Lockstep, 1)
	}
	return base
}

// SweepConfig is one sweep: the same batch sealed once per point.
type SweepConfig struct {
	// Base is the batch; its sectors' directories are replaced by
	// OutDir/point-<k>/sector-<i>, and its PoolSize and DRAMBudget by
	// each point's.
	Base labeler.Config
	// Points are the DRAM settings to measure, in order; the first point's
	// layer files are the ones every other point is checked against.
	Points []SweepSpec
	// OutDir holds the points' sector directories. Only the first point's
	// are kept: the others are removed once checked.
	OutDir string
	// Want, if set, is another sweep's first point's LayerSHA256: the
	// first len(Want) sectors of this sweep's first point (and so of every
	// point) must match them too. A batch sweep checks its sectors against
	// the same sectors sealed one at a time.
	Want [][]string
	// OnPointStart and OnPoint, if set, are called before and after each
	// point.
	OnPointStart func(k int, spec SweepSpec)
	OnPoint      func(k int, pt SweepPoint)
}

// SweepPoint is what one point measured.
type SweepPoint struct {
	Spec SweepSpec `json:"spec"`
	// DRAMPerSector is the point's DRAM in multiples of the sector size,
	// per sector hashing at once.
	DRAMPerSector float64 `json:"dram_per_sector"`
	// Identical is true when every layer file matched the first point's
	// (always true for the first point).
	Identical bool `json:"identical"`
	// RelativeThroughput is nodes/s against the first point's.
	RelativeThroughput float64        `json:"relative_throughput"`
	Report             *sealer.Report `json:"report"`
	// LayerSHA256 is, on a sweep's first point only, the SHA-256 of every
	// layer file, [sector][layer-1], in hex: the digests every other point
	// was checked against.
	LayerSHA256 [][]string `json:"layer_sha256,omitempty"`
}

// Check reports whether the labeler would accept every point of the
// sweep, without measuring any: a sweep takes long, and a point the
// labeler refuses should not wait until the end to say so.
func (cfg SweepConfig) Check() error {
	if len(cfg.Points) == 0 {
		return fmt.Errorf("sweep: no points")
	}
	for k, spec := range cfg.Points {
		if err := spec.config(cfg.Base).Check(); err != nil {
			return fmt.Errorf("sweep point %d (%s): %w", k, spec.Label, err)
		}
	}
	return nil
}

// Sweep seals cfg.Base once per point and checks that every point wrote
// byte-identical layer files. A point that differs is an error: a
// different DRAM setting must never change a label.
func Sweep(ctx context.Context, cfg SweepConfig) ([]SweepPoint, error) {
	// Every point's configuration is checked before the first is
	// measured.
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	var want [][]string // want[sector][layer-1]: digest of the first point's file
	var pts []SweepPoint
	s := cfg.Base.Graph.SectorSize()
	for k, spec := range cfg.Points {
		if cfg.OnPointStart != nil {
			cfg.OnPointStart(k, spec)
		}
		// Each point's memory peaks are its own: hand the heap the previous
		// point grew back to the kernel first.
		debug.FreeOSMemory()
		c := spec.config(cfg.Base)
		c.Sectors = make([]labeler.Sector, len(cfg.Base.Sectors))
		pointDir := filepath.Join(cfg.OutDir, fmt.Sprintf("point-%d", k))
		for i, sec := range cfg.Base.Sectors {
			sec.Dir = filepath.Join(pointDir, fmt.Sprintf("sector-%d", i))
			if err := os.MkdirAll(sec.Dir, 0o755); err != nil {
				return pts, fmt.Errorf("sweep point %d (%s): %w", k, spec.Label, err)
			}
			c.Sectors[i] = sec
		}
		rep, err := sealer.Label(ctx, sealer.LabelRequest{Config: c, Measure: true})
		if err != nil {
			return pts, fmt.Errorf("sweep point %d (%s): %w", k, spec.Label, err)
		}
		digests, err := layerDigests(c.Sectors, c.Layers)
		if err != nil {
			return pts, fmt.Errorf("sweep point %d (%s): %w", k, spec.Label, err)
		}
		pt := SweepPoint{
			Spec:          spec,
			DRAMPerSector: float64(spec.dram()) / float64(s) / float64(rep.Parallel),
			Identical:     true,
			Report:        rep,
		}
		if k == 0 {
			n := min(len(cfg.Want), len(digests))
			if i, l, differs := firstDifference(cfg.Want[:n], digests[:n]); differs {
				return pts, fmt.Errorf("sweep point %d (%s): sector %d layer %d differs from the reference sweep's (sha256 %s, not %s)",
					k, spec.Label, i, l, digests[i][l-1], cfg.Want[i][l-1])
			}
			want = digests
			pt.LayerSHA256 = digests
		} else {
			if i, l, differs := firstDifference(want, digests); differs {
				return pts, fmt.Errorf("sweep point %d (%s): sector %d layer %d differs from point 0's (sha256 %s, not %s)",
					k, spec.Label, i, l, digests[i][l-1], want[i][l-1])
			}
			if err := os.RemoveAll(pointDir); err != nil {
				return pts, fmt.Errorf("sweep point %d: removing its output: %w", k, err)
			}
		}
		if len(pts) > 0 && pts[0].Report.NodesPerSecond > 0 {
			pt.RelativeThroughput = rep.NodesPerSecond / pts[0].Report.NodesPerSecond
		} else {
			pt.RelativeThroughput = 1
		}
		pts = append(pts, pt)
		if cfg.OnPoint != nil {
			cfg.OnPoint(k, pt)
		}
		if err := ctx.Err(); err != nil {
			return pts, err
		}
	}
	return pts, nil
}

// firstDifference finds the first sector and layer (from 1) whose digest
// differs.
func firstDifference(want, got [][]string) (sector, layer int, differs bool) {
	for i := range got {
		for l := range got[i] {
			if got[i][l] != want[i][l] {
				return i, l + 1, true
			}
		}
	}
	return 0, 0, false
}

// layerDigests hashes every layer file of every sector.
func layerDigests(sectors []labeler.Sector, layers int) ([][]string, error) {
	out := make([][]string, len(sectors))
	for i, sec := range sectors {
		for l := 1; l <= layers; l++ {
			path := blockio.SectorDir(sec.Dir).Layer(l)
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("hashing %s: %w", path, err)
			}
			out[i] = append(out[i], hex.EncodeToString(h.Sum(nil)))
		}
	}
	return out, nil
}

// sweepColumns are the CSV columns, one row per point.
var sweepColumns = []string{
	"label", "dram_per_sector", "dram_bytes", "pool_size_bytes", "identical",
	"nodes_per_second", "relative_throughput", "nodes_per_second_per_busy_core", "busy_cores",
	"sha256_compressions_per_second", "sha_limit_ratio",
	"peak_anon_bytes", "peak_file_bytes", "dram_peak_bytes", "peak_layer_cache_bytes",
	"pool_wait_seconds", "stall_seconds", "device_read_bytes", "device_write_bytes", "major_faults",
	"lockstep", "kernel",
	"spill_bytes_written", "spill_bytes_read", "promotions", "demotions", "prefetched_pages", "late_pages", "prefetched_in_time", "cold_reads_per_node",
	"wall_seconds",
	"batch", "dram_budget_bytes", "pool_peak_bytes", "batch_lanes", "device_reads", "device_reads_per_node_group", "cpu_seconds_per_device_read", "spill_file_bytes_written",
}

// WriteSweepCSV writes one row per point.
func WriteSweepCSV(w io.Writer, pts []SweepPoint) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(sweepColumns); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	for _, p := range pts {
		r := p.Report
		var poolWait float64
		for _, s := range r.Sectors {
			poolWait += s.PoolWaitSeconds
		}
		var sp sealer.SpillReport
		if r.Spill != nil {
			sp = *r.Spill
		}
		row := []string{
			p.Spec.Label, f(p.DRAMPerSector), u(p.Spec.dram()), u(r.PoolSizeBytes), strconv.FormatBool(p.Identical),
			f(r.NodesPerSecond), f(p.RelativeThroughput), f(r.NodesPerSecondPerBusyCore), f(r.BusyCores),
			f(r.SHA256CompressionsPerSecond), f(r.SHALimitRatio),
			u(r.PeakAnonBytes), u(r.PeakFileBytes), u(r.PeakDRAMBytes), u(r.PeakLayerCacheBytes),
			f(poolWait), f(r.StallSeconds), u(r.DeviceReadBytes), u(r.DeviceWriteBytes), u(r.MajorFaults),
			strconv.Itoa(r.Lockstep), r.Kernel,
			u(sp.SpillBytesWritten), u(sp.SpillBytesRead), u(sp.Promotions), u(sp.Demotions), u(sp.PrefetchedPages), u(sp.LatePages), f(sp.PrefetchedInTime), f(sp.ColdReadsPerNode),
			f(r.WallSeconds),
			strconv.Itoa(p.Spec.Batch), u(r.DRAMBudgetBytes), u(r.PoolPeakBytes), strconv.Itoa(sp.BatchLanes), u(sp.DeviceReads), f(sp.DeviceReadsPerNodeGroup), f(sp.CPUPerDeviceRead), u(sp.SpillFileBytesWritten),
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// SweepJSON is the sweep as indented JSON.
func SweepJSON(pts []SweepPoint) ([]byte, error) {
	b, err := json.MarshalIndent(pts, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
