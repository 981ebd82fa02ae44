package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/metrics"
	"github.com/pc1-tiered/pc1-tiered/sealer"
)

// observers are what watches a seal besides its report: the live progress
// lines, a Prometheus endpoint (--metrics-addr) and structured logs
// (--log-format).
type observers struct {
	progress *Progress
	metrics  func(sector, layer int, nodesDone uint64)
	log      *metrics.BatchLog
	server   *metrics.Server
}

// startObservers sets up what the flags ask for around the batch cfg
// describes (its sectors' directories must be set). It listens before any
// hashing, so a taken address fails the command at once.
func startObservers(ctx context.Context, e *env, cfg *labeler.Config, metricsAddr, logFormat string) (*observers, error) {
	o := &observers{}
	var logger *slog.Logger
	if logFormat != "" {
		var err error
		if logger, err = metrics.NewLogger(e.stderr, logFormat, slog.LevelInfo); err != nil {
			return nil, usagef("--log-format: %v", err)
		}
		o.log = metrics.NewBatchLog(logger, cfg)
	}
	if metricsAddr != "" {
		dirs := make([]string, len(cfg.Sectors))
		for i, s := range cfg.Sectors {
			dirs[i] = s.Dir
		}
		cfg.Live = &labeler.Live{}
		m, err := metrics.New(metrics.Config{
			Sectors: dirs, Layers: cfg.Layers, NodesPerLayer: cfg.Graph.Nodes(),
			Live: cfg.Live, Files: metrics.LayerFiles(dirs, cfg.Layers), DRAMBudget: cfg.DRAMBudget,
		})
		if err != nil {
			return nil, err
		}
		if o.server, err = metrics.Serve(ctx, metricsAddr, m.Handler()); err != nil {
			return nil, fmt.Errorf("--metrics-addr: %w", err)
		}
		o.metrics = m.OnProgress
	}
	// Log lines and the redrawn progress lines would garble each other.
	o.progress = NewProgress(e.stderr, e.stderrIsTerminal && logger == nil, len(cfg.Sectors), cfg.Layers, cfg.Graph.Nodes())
	return o, nil
}

// onProgress is the labeler's progress callback feeding every observer.
func (o *observers) onProgress() func(sector, layer int, nodesDone uint64) {
	var onLog func(int, int, uint64)
	if o.log != nil {
		onLog = o.log.OnProgress
	}
	return metrics.Chain(o.progress.Update, o.metrics, onLog)
}

func (o *observers) start() {
	if o.log != nil {
		o.log.Start()
	}
	o.progress.Start()
}

// end stops the progress lines and logs how the batch ended.
func (o *observers) end(rep *sealer.Report, err error) {
	o.progress.Stop()
	switch {
	case o.log == nil:
	case err != nil:
		o.log.Error(err)
	case rep != nil:
		o.log.End(rep)
	}
}

// close stops the metrics server.
func (o *observers) close() {
	if o.server != nil {
		o.server.Stop()
	}
}
