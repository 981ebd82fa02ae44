package bench

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/labeler"
)

// shaMeasureTime is how long the SHA-256 reference rate is measured before
// a seal; long enough to be stable, short next to any real seal.
const shaMeasureTime = 300 * time.Millisecond

// Seal measures this machine's SHA-256 compression rate, runs one batch
// through the labeler while sampling the process's memory, and returns the
// report.
func Seal(ctx context.Context, cfg labeler.Config) (*SealReport, error) {
	rate := MeasureSHA256Rate(shaMeasureTime)
	resetPeakRSS()
	ioStart, _ := ReadIOCounters()
	sampler := StartMemSampler(20*time.Millisecond, func() []string { return layerFiles(cfg.Sectors) })
	res, err := labeler.Run(ctx, cfg)
	peaks := sampler.Stop()
	ioEnd, _ := ReadIOCounters()
	if err != nil {
		return nil, err
	}
	r := newSealReport(&cfg, res, rate, peaks)
	io := ioEnd.Sub(ioStart)
	r.DeviceReadBytes = io.ReadBytes
	r.DeviceWriteBytes = io.WriteBytes
	r.MajorFaults = io.MajorFaults
	if sp := r.Spill; sp != nil {
		if pages := sp.PrefetchedPages + sp.LatePages; pages > 0 {
			sp.PrefetchedInTime = max(0, 1-float64(io.MajorFaults)/float64(pages))
		}
	}
	return r, nil
}

// layerFiles lists the layer files (final and partial) in the sectors'
// directories: their page cache is part of what a seal holds in DRAM.
func layerFiles(sectors []labeler.Sector) []string {
	var files []string
	for _, s := range sectors {
		m, _ := filepath.Glob(filepath.Join(s.Dir, "sc-02-data-layer-*.dat*"))
		files = append(files, m...)
	}
	return files
}

func newSealReport(cfg *labeler.Config, res *labeler.Result, rate SHARate, peaks MemPeaks) *SealReport {
	g := cfg.Graph
	r := &SealReport{
		SectorSize:                  g.SectorSize(),
		Nodes:                       g.Nodes(),
		LayersPerSector:             cfg.Layers,
		WallSeconds:                 res.Wall.Seconds(),
		SHA256CompressionsPerSecond: rate.CompressionsPerSecond,
		SHAImplementation:           rate.Implementation,
		PeakRSSBytes:                peaks.VmHWM,
		PeakAnonBytes:               peaks.RssAnon,
		PeakFileBytes:               peaks.RssFile,
		PeakDRAMBytes:               peaks.DRAM,
		PeakLayerCacheBytes:         peaks.FileCache,
		AnonHugePagesBytes:          peaks.AnonHugePages,
		DRAMBudgetBytes:             res.DRAMBudget,
		PoolSizeBytes:               res.PoolSize,
		BlockSizeBytes:              res.BlockSize,
		PoolPeakBytes:               res.PoolPeak,
		Parallel:                    res.Jobs,
		Lockstep:                    res.Lockstep,
		Kernel:                      res.Kernel,
		Warnings:                    res.Warnings,
	}
	r.Host = ReadHost()
	var nodes uint64
	var busy time.Duration
	for i, s := range res.Sectors {
		nodes += s.Nodes
		busy += s.Hashing
		sr := SectorReport{
			Index:           i,
			Dir:             cfg.Sectors[i].Dir,
			ReplicaID:       hex.EncodeToString(cfg.Sectors[i].ReplicaID[:]),
			Layers:          cfg.Layers,
			PoolWaitSeconds: s.PoolWait.Seconds(),
			CoreWaitSeconds: s.CoreWait.Seconds(),
			SyncWaitSeconds: s.SyncWait.Seconds(),
			StallSeconds:    s.Stalled.Seconds(),
			HashSeconds:     s.Hashing.Seconds(),
			ResumedLayer:    s.ResumedLayer,
			ResumedNode:     s.ResumedNode,
			Nodes:           s.Nodes,
		}
		if s.Hashing > 0 {
			sr.NodesPerSecond = float64(s.Nodes) / s.Hashing.Seconds()
		}
		r.Sectors = append(r.Sectors, sr)
	}
	if sp := res.Spill; sp != nil {
		r.Spill = &SpillReport{
			ExpanderBlocks:    sp.Expander,
			WindowBlocks:      sp.Window,
			Demotions:         sp.Demotions,
			Promotions:        sp.Promotions,
			ColdReads:         sp.ColdReads,
			PrefetchedPages:   sp.PrefetchedPages,
			LatePages:         sp.LatePages,
			SpillBytesWritten: sp.Demotions * res.BlockSize,
			SpillBytesRead:    (sp.PrefetchedPages + sp.LatePages) * blockio.PageSize,
		}
		if nodes := uint64(len(res.Sectors)) * uint64(cfg.Layers) * g.Nodes(); nodes > 0 {
			r.Spill.ColdReadsPerNode = float64(sp.ColdReads) / float64(nodes)
		}
	}
	for _, s := range res.Sectors {
		r.StallSeconds += s.Stalled.Seconds()
	}
	if res.Wall > 0 {
		r.NodesPerSecond = float64(nodes) / res.Wall.Seconds()
		r.BusyCores = busy.Seconds() / res.Wall.Seconds()
	}
	if busy > 0 {
		r.NodesPerSecondPerBusyCore = float64(nodes) / busy.Seconds()
		r.SHALimitRatio = SHALimitRatio(r.NodesPerSecondPerBusyCore, rate)
	}
	return r
}

// resetPeakRSS resets the kernel's VmHWM for this process (clear_refs 5,
// Linux 4.0+), so that a seal's peak is its own and not an earlier seal's
// in the same process (a bench sweep). Best effort: an old kernel keeps
// the process-wide peak.
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
