package bench

import (
	"context"
	"encoding/hex"
	"time"

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
	sampler := StartMemSampler(20 * time.Millisecond)
	res, err := labeler.Run(ctx, cfg)
	peaks := sampler.Stop()
	huge, _ := AnonHugePages()
	if err != nil {
		return nil, err
	}
	r := newSealReport(&cfg, res, rate, peaks)
	r.AnonHugePagesBytes = huge
	return r, nil
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
		PoolSizeBytes:               res.PoolSize,
		BlockSizeBytes:              res.BlockSize,
		PoolPeakBytes:               res.PoolPeak,
		Parallel:                    res.Jobs,
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
			HashSeconds:     s.Hashing.Seconds(),
		}
		if s.Hashing > 0 {
			sr.NodesPerSecond = float64(s.Nodes) / s.Hashing.Seconds()
		}
		r.Sectors = append(r.Sectors, sr)
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
