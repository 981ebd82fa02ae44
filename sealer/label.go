package sealer

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/measure"
	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// shaMeasureTime is how long the SHA-256 reference rate is measured before
// a measuring run; long enough to be stable, short next to any real seal.
const shaMeasureTime = 300 * time.Millisecond

// memSampleEvery is how often a measuring run samples the process's memory.
const memSampleEvery = 20 * time.Millisecond

// LabelRequest is one labeling run: sectors whose replica ids are known,
// labeled through one pool. It is what every seal comes down to, whether
// it starts from SealBatch, LabelBatch, GenerateSDR or the command line.
type LabelRequest struct {
	// Config is the batch as the labeler takes it. An empty ParentCache
	// means: the graph's cache in ParentCacheDir, generated if missing.
	labeler.Config
	// ParentCacheDir is where the parent cache is looked for (and
	// generated) when Config.ParentCache is empty: "" means
	// $FIL_PROOFS_PARENT_CACHE, else /var/tmp/filecoin-parents.
	ParentCacheDir string
	// Name names the proof or graph in the report. Sector locks and
	// waiting follow Config.Locks and Config.LockOptions.
	Name string
	// Measure asks for the figures that cost something to take: the
	// SHA-256 rate measured before the run (0.3 s of one core), memory
	// sampled every 20 ms during it (and the layer files' page cache,
	// spaced so that it stays under a tenth of a core), and the process's
	// I/O counters. Without it the report's sha_limit_ratio and memory
	// fields are zero: a library caller pays for no measurement it did not
	// ask for.
	Measure bool
	// OnParentCache, if set, follows the parent cache's generation when
	// the run has to generate it first (blockio.ParentCacheOptions.
	// OnGenerate: 0 at the start, then nodes written, total when done).
	OnParentCache func(done, total uint64)
}

// Label makes sure the graph's parent cache is there, labels every sector
// of req and returns the run's report. A failed run's committed layers
// stay; running the same request again resumes it.
func Label(ctx context.Context, req LabelRequest) (*Report, error) {
	cfg := req.Config
	if cfg.Graph == nil {
		return nil, fmt.Errorf("sealer: no graph")
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.ParentCache == "" {
		parents, err := acquireParentCache(ctx, cfg.Graph, req.ParentCacheDir, cfg.LockOptions.OnWait, req.OnParentCache)
		if err != nil {
			return nil, err
		}
		defer parents.Close()
		cfg.ParentCache = parents.Info.Path
	}
	var m measurement
	if req.Measure {
		m.start(cfg.Sectors)
	}
	res, err := labeler.Run(ctx, cfg)
	m.stop()
	if err != nil {
		return nil, err
	}
	r := newReport(&cfg, res, &m)
	r.Proof, r.ParentCache = req.Name, cfg.ParentCache
	return r, nil
}

// acquireParentCache opens g's parent cache in dir ("": the default
// directory) under a shared lock, generating it first when it is missing
// (or waiting for whoever generates it, telling onWait); the caller holds
// it until the labeling ends. onGenerate follows a generation.
func acquireParentCache(ctx context.Context, g *sdr.Graph, dir string, onWait func(string), onGenerate func(done, total uint64)) (*blockio.ParentCache, error) {
	if dir == "" {
		dir = blockio.DefaultParentCacheDir(os.Getenv)
	}
	return blockio.AcquireParentCache(ctx, g, dir, blockio.ParentCacheOptions{OnWait: onWait, OnGenerate: onGenerate})
}

// measurement is what a measuring run takes around the labeler: nothing
// at all when it was not asked for.
type measurement struct {
	on      bool
	rate    measure.SHARate
	ioStart measure.IOCounters
	io      measure.IOCounters
	sampler *measure.MemSampler
	peaks   measure.MemPeaks
}

func (m *measurement) start(sectors []labeler.Sector) {
	m.on = true
	m.rate = measure.MeasureSHA256Rate(shaMeasureTime)
	measure.ResetPeakRSS()
	m.ioStart, _ = measure.ReadIOCounters()
	m.sampler = measure.StartMemSampler(memSampleEvery, func() []string { return layerFiles(sectors) })
}

func (m *measurement) stop() {
	if !m.on {
		return
	}
	m.peaks = m.sampler.Stop()
	end, _ := measure.ReadIOCounters()
	m.io = end.Sub(m.ioStart)
}

// layerFiles lists the layer files (final and partial) in the sectors'
// directories: their page cache is part of what a seal holds in DRAM.
func layerFiles(sectors []labeler.Sector) []string {
	var files []string
	for _, s := range sectors {
		m, _ := blockio.SectorDir(s.Dir).LayerFiles()
		files = append(files, m...)
	}
	return files
}

func newReport(cfg *labeler.Config, res *labeler.Result, m *measurement) *Report {
	g := cfg.Graph
	r := &Report{
		SectorSize:                  g.SectorSize(),
		Nodes:                       g.Nodes(),
		LayersPerSector:             cfg.Layers,
		WallSeconds:                 res.Wall.Seconds(),
		SetupSeconds:                res.Setup.Seconds(),
		SHA256CompressionsPerSecond: m.rate.CompressionsPerSecond,
		SHAImplementation:           m.rate.Implementation,
		PeakRSSBytes:                m.peaks.VmHWM,
		PeakAnonBytes:               m.peaks.RssAnon,
		PeakFileBytes:               m.peaks.RssFile,
		PeakDRAMBytes:               m.peaks.DRAM,
		PeakLayerCacheBytes:         m.peaks.FileCache,
		AnonHugePagesBytes:          m.peaks.AnonHugePages,
		DeviceReadBytes:             m.io.ReadBytes,
		DeviceWriteBytes:            m.io.WriteBytes,
		MajorFaults:                 m.io.MajorFaults,
		DRAMBudgetBytes:             res.DRAMBudget,
		PoolSizeBytes:               res.PoolSize,
		BlockSizeBytes:              res.BlockSize,
		PoolPeakBytes:               res.PoolPeak,
		Parallel:                    res.Jobs,
		Lockstep:                    res.Lockstep,
		Kernel:                      res.Kernel,
		HashCPUs:                    res.HashCPUs,
		Warnings:                    res.Warnings,
		Measured:                    m.on,
	}
	if m.on {
		r.Host = measure.ReadHost()
	}
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
		r.StallSeconds += s.Stalled.Seconds()
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
			SpillBytesRead:    sp.DeviceReadBytes,
			LateWaitSeconds:   sp.LateWait.Seconds(),
			Engine:            sp.Engine,
			DeviceReads:       sp.DeviceReads,
			PeakReadsInFlight: sp.PeakInFlight,
			BatchLanes:        sp.Lanes,
		}
		if sp.Lanes > 1 {
			r.Spill.SpillBytesWritten = sp.SpillWriteBytes
			r.Spill.SpillFileBytesWritten = sp.SpillWriteBytes
		}
		if sp.DeviceReads > 0 {
			r.Spill.CPUPerDeviceRead = sp.DeviceReadCPU.Seconds() / float64(sp.DeviceReads)
		}
		if sp.DeviceSyscalls > 0 {
			r.Spill.ReadsPerSyscall = float64(sp.DeviceReads) / float64(sp.DeviceSyscalls)
		}
		if nodes := uint64(len(res.Sectors)) * uint64(cfg.Layers) * g.Nodes(); nodes > 0 {
			r.Spill.ColdReadsPerNode = float64(sp.ColdReads) / float64(nodes)
			r.Spill.PagesPerNode = float64(sp.DeviceReads) / float64(nodes)
			r.Spill.DeviceReadsPerNodeGroup = r.Spill.PagesPerNode * float64(max(sp.Lanes, 1))
		}
		if sp.PrefetchedPages > 0 {
			r.Spill.PrefetchedInTime = max(0, 1-float64(sp.LatePages)/float64(sp.PrefetchedPages))
		}
	}
	if res.Wall > 0 {
		r.NodesPerSecond = float64(nodes) / res.Wall.Seconds()
		r.BusyCores = busy.Seconds() / res.Wall.Seconds()
	}
	if busy > 0 {
		r.NodesPerSecondPerBusyCore = float64(nodes) / busy.Seconds()
		r.SHALimitRatio = measure.SHALimitRatio(r.NodesPerSecondPerBusyCore, m.rate)
	}
	return r
}
