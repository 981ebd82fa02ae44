package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/pc1-tiered/pc1-tiered/bench"
	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/measure"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
)

// benchShape is a sweep's default shape.
type benchShape struct {
	sectorSize      string
	sectors, layers int
	pool, spill     string
}

// benchDefaults: the default run is the one to quote; --quick, a smoke
// test of every kind of point (the batch sweep's too), takes well under a
// minute on two cores: its sectors are tiny, since a batch point with
// everything on the device costs a device read per parent.
func benchDefaults(quick bool) benchShape {
	if quick {
		return benchShape{"2MiB", 2, 2, "", "1.25,1.1"}
	}
	return benchShape{"64MiB", 4, 4, "1.5,1.375", "1.2,1.1"}
}

func runBench(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "bench")
	var gf graphFlags
	gf.register(fs)
	quick := fs.Bool("quick", false, "a short sweep: 2MiB sectors, 2 sectors, 2 layers, two spill points, a batch of 2")
	sectors := fs.Int("sectors", 0, "sectors sealed at each point (default 4; 2 with --quick)")
	parallel := fs.Int("parallel", 0, "sectors hashing at once, the pool's N (default: --sectors)")
	layers := fs.Int("layers", 0, "layers per sector (default 4; 2 with --quick)")
	poolPoints := fs.String("pool", "", "DRAM per sector, in multiples of the sector size, for extra pool sizes between the minimum and the maximum (default 1.5,1.375; none with --quick)")
	lockstepPoints := fs.String("lockstep", "", "group sizes k for extra points at the largest pool with sectors labeled k at a time (lockstep), or none (default: every k from 2 to min(4, --sectors))")
	spill := fs.String("spill", "", "DRAM per sector, in multiples of the sector size, for the spill points below the pool minimum (default 1.2,1.1; 1.25,1.1 with --quick)")
	batch := fs.Int("batch", 0, "B, sectors in the batch sweep: one batch of B sectors (seal --batch B) at DRAM per sector from all-DRAM (2 x S) through 1.2 and 1.1 x S (the expander in DRAM), 0.5 x S (half of it on the device) down to a window only, spilling to spill files; up to 128 (default: --sectors when at least 2; 0 or 1: no batch sweep)")
	var spillDirs dirList
	fs.Var(&spillDirs, "spill-dir", "a directory for the batch sweep's spill files (repeatable, one per drive; default: OUT/spill); must take O_DIRECT")
	out := fs.String("out", "pc1-bench", "directory for bench.csv, bench.json, bench.png, bench.svg and the first point's layer files")
	cacheDir := fs.String("cache-dir", "", "parent cache directory (default $FIL_PROOFS_PARENT_CACHE or /var/tmp/filecoin-parents)")
	blockSize := fs.String("block-size", "", "pool block size (default: the seal's)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	def := benchDefaults(*quick)
	if gf.proof == "" && gf.sectorSize == "" {
		gf.sectorSize = def.sectorSize
	}
	spec, err := gf.resolve()
	if err != nil {
		return err
	}
	if *sectors == 0 {
		*sectors = def.sectors
	}
	if *layers == 0 {
		*layers = def.layers
	}
	if *spill == "" {
		*spill = def.spill
	}
	if *poolPoints == "" {
		*poolPoints = def.pool
	}
	if *sectors < 1 || *layers < 1 || *parallel < 0 {
		return usagef("--sectors %d, --layers %d, --parallel %d: sectors and layers must be at least 1", *sectors, *layers, *parallel)
	}
	if *parallel == 0 {
		*parallel = *sectors
	}
	batchGiven := false
	fs.Visit(func(f *flag.Flag) { batchGiven = batchGiven || f.Name == "batch" })
	if !batchGiven && *sectors >= 2 {
		*batch = *sectors
	}
	if *batch < 0 || *batch > tier.MaxBatchLanes {
		return usagef("--batch %d: want a batch of 2 to %d sectors, or 0 for no batch sweep", *batch, tier.MaxBatchLanes)
	}
	if *batch == 1 {
		*batch = 0
	}
	spillPoints, err := parseMultiples(*spill)
	if err != nil {
		return usagef("--spill: %v", err)
	}
	poolMultiples, err := parseMultiples(*poolPoints)
	if err != nil {
		return usagef("--pool: %v", err)
	}
	// The batch's sectors are the first B of the same sequence: the ones
	// both sweeps seal must come out byte-identical.
	ids, err := sealReplicaIDs(nil, max(*sectors, *batch), 0)
	if err != nil {
		return err
	}
	base := labeler.Config{Graph: spec.graph, Layers: *layers, Options: labeler.Options{Parallel: *parallel}}
	if base.BlockSize, err = sizeFlag("--block-size", *blockSize, "", e.getenv); err != nil {
		return err
	}
	for _, id := range ids[:*sectors] {
		base.Sectors = append(base.Sectors, labeler.Sector{ReplicaID: id})
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	// The batch sweep spills to OUT/spill unless told where; bench made
	// that directory, so it removes it when done (spill files are
	// unlinked as they are made: nothing else is left in it).
	if *batch > 0 && len(spillDirs) == 0 {
		d := filepath.Join(*out, "spill")
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		defer os.Remove(d)
		spillDirs = dirList{d}
	}
	if *batch > 0 {
		for _, d := range spillDirs {
			if err := tier.CheckSpillDir(d); err != nil {
				return usagef("--spill-dir: %v", err)
			}
		}
	}
	// Before the parent cache, which can take hours to generate.
	if err := checkBenchSpace(*out, spillDirs, benchDisk{sectors: *sectors, batch: *batch, layers: *layers, sectorSize: spec.graph.SectorSize()}); err != nil {
		return err
	}
	dir := parentCacheDir(e, *cacheDir)
	cacheProgress := NewProgress(e.stderr, e.stderrIsTerminal, 0, 0, 0)
	parents, err := blockio.AcquireParentCache(ctx, spec.graph, dir, blockio.ParentCacheOptions{
		OnWait:     e.onWait,
		OnGenerate: cacheProgress.ParentCache(spec.String(), filepath.Join(dir, sdr.ParentCacheFileName(spec.graph))),
	})
	cacheProgress.Stop()
	if err != nil {
		return err
	}
	defer parents.Close()
	base.ParentCache = parents.Info.Path

	var ks []int
	if *lockstepPoints == "" {
		for k := 2; k <= min(4, base.Jobs()); k++ {
			ks = append(ks, k)
		}
	}
	for _, f := range strings.Split(*lockstepPoints, ",") {
		if f == "none" {
			break
		}
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		k, err := strconv.Atoi(f)
		if err != nil || k < 2 || k > 4 {
			return usagef("--lockstep: %q is not a group size from 2 to 4", f)
		}
		ks = append(ks, k)
	}
	points := bench.DefaultSweep(spec.graph.SectorSize(), base.Jobs(), poolMultiples, spillPoints)
	points = append(points, bench.LockstepSweep(spec.graph.SectorSize(), base.Jobs(), ks)...)
	sweeps := []bench.SweepConfig{{Base: base, Points: points, OutDir: *out}}
	if *batch > 0 {
		// One batch of B sectors, one pool job: its own sweep, in
		// OUT/batch, whose first point is checked against the same
		// sectors sealed one at a time by the first sweep's.
		bb := base
		bb.Sectors = nil
		for _, id := range ids[:*batch] {
			bb.Sectors = append(bb.Sectors, labeler.Sector{ReplicaID: id})
		}
		bb.Parallel, bb.SpillDirs = *batch, spillDirs
		sweeps = append(sweeps, bench.SweepConfig{Base: bb, Points: bench.BatchSweep(spec.graph.SectorSize(), *batch, base.BlockSize), OutDir: filepath.Join(*out, "batch")})
	}
	// Every point of both sweeps is checked before the first is measured.
	total := 0
	for _, sw := range sweeps {
		if err := sw.Check(); err != nil {
			return err
		}
		total += len(sw.Points)
	}
	fmt.Fprintf(e.stderr, "bench: %d x %s sectors, %d layers, %d hashing at once, %d points into %s\n",
		*sectors, humanize.IBytes(spec.graph.SectorSize()), *layers, base.Jobs(), len(points), *out)
	if *batch > 0 {
		fmt.Fprintf(e.stderr, "bench: then one batch of %d sectors, %d points, spill files in %s\n", *batch, total-len(points), strings.Join(spillDirs, ", "))
	}
	// A bench's per-core figures depend on what a parent read costs, and
	// on a virtual machine huge pages may not cut it (measure.PageWalk).
	if pw, err := measure.MeasurePageWalk(3); err == nil {
		fmt.Fprintf(e.stderr, "bench: memory: %s\n", pw)
	}
	var all []bench.SweepPoint
	done := 0
	for i, sw := range sweeps {
		var progress *Progress
		first := done
		sw.OnPointStart = func(k int, p bench.SweepSpec) {
			fmt.Fprintf(e.stderr, "point %d/%d: %s, DRAM %s\n", first+k+1, total, p.Label, humanize.IBytes(max(p.PoolSize, p.DRAMBudget)))
			progress = NewProgress(e.stderr, e.stderrIsTerminal, len(sw.Base.Sectors), *layers, spec.graph.Nodes())
			progress.Start()
		}
		sw.OnPoint = func(k int, p bench.SweepPoint) {
			progress.Stop()
			r := p.Report
			fmt.Fprintf(e.stderr, "point %d/%d: %s: %.0f nodes/s (%.2f x point %d), sha_limit_ratio %.3f, peak DRAM %s, layer files identical to point %d: %v\n",
				first+k+1, total, p.Spec.Label, r.NodesPerSecond, p.RelativeThroughput, first+1, r.SHALimitRatio, humanize.IBytes(r.PeakDRAMBytes), first+1, p.Identical)
		}
		if i > 0 {
			sw.Want = all[0].LayerSHA256
		}
		pts, err := bench.Sweep(ctx, sw)
		if progress != nil {
			progress.Stop()
		}
		all = append(all, pts...)
		done += len(sw.Points)
		if err != nil {
			// Hours of measurement are not thrown away for one failed
			// point: what the points before it measured is written, and
			// said.
			if len(all) > 0 {
				if werr := writeBenchOutputs(*out, spec, all); werr == nil {
					printSweep(e, all)
					fmt.Fprintf(e.stderr, "bench: wrote the %d points measured before the failure into %s\n", len(all), *out)
				}
			}
			return err
		}
	}
	if err := writeBenchOutputs(*out, spec, all); err != nil {
		return err
	}
	printSweep(e, all)
	fmt.Fprintln(e.stdout, "every point's layer files are byte-identical to the first point's")
	if *batch > 0 {
		fmt.Fprintf(e.stdout, "every batch point's layer files are byte-identical to the batch's first point's, and its %d sectors' to the same sectors sealed one at a time\n", min(*batch, *sectors))
	}
	fmt.Fprintf(e.stdout, "wrote %s\n", strings.Join([]string{"bench.csv", "bench.json", "bench.png", "bench.svg"}, ", "))
	return nil
}

// parseMultiples parses a comma-separated list of positive numbers.
func parseMultiples(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive multiple of the sector size", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func writeBenchOutputs(dir string, spec graphSpec, pts []bench.SweepPoint) error {
	var csv strings.Builder
	if err := bench.WriteSweepCSV(&csv, pts); err != nil {
		return err
	}
	if err := blockio.WriteFileAtomic(filepath.Join(dir, "bench.csv"), []byte(csv.String())); err != nil {
		return err
	}
	js, err := bench.SweepJSON(pts)
	if err != nil {
		return err
	}
	if err := blockio.WriteFileAtomic(filepath.Join(dir, "bench.json"), js); err != nil {
		return err
	}
	plot := make([]bench.SweepPlotPoint, len(pts))
	for i, p := range pts {
		r := p.Report
		var poolWait float64
		for _, s := range r.Sectors {
			poolWait += s.PoolWaitSeconds
		}
		plot[i] = bench.SweepPlotPoint{
			DRAMPerSector:      p.DRAMPerSector,
			Label:              p.Spec.Label,
			NodesPerSecond:     r.NodesPerSecond,
			SHALimitRatio:      r.SHALimitRatio,
			PeakAnonMiB:        float64(r.PeakAnonBytes) / (1 << 20),
			PeakDRAMMiB:        float64(r.PeakDRAMBytes) / (1 << 20),
			PoolWaitSeconds:    poolWait,
			StallSeconds:       r.StallSeconds,
			Lockstep:           r.Lockstep,
			RelativeThroughput: p.RelativeThroughput,
			Batch:              p.Spec.Batch,
		}
	}
	r := pts[0].Report
	title := fmt.Sprintf("pc1-tiered: %d x %s sectors, %d layers, %d hashing at once", len(r.Sectors), sdr.FormatSize(r.SectorSize), r.LayersPerSector, r.Parallel)
	if b := pts[len(pts)-1].Spec.Batch; b > 0 {
		title += fmt.Sprintf("; one batch of %d", b)
	}
	return bench.WriteSweepPlot(filepath.Join(dir, "bench.png"), filepath.Join(dir, "bench.svg"), title, plot)
}

// printSweep prints the per-sector sweep's table, then the batch
// sweep's, if any.
func printSweep(e *env, pts []bench.SweepPoint) {
	var sectors, batch []bench.SweepPoint
	for _, p := range pts {
		if p.Spec.Batch > 0 {
			batch = append(batch, p)
		} else {
			sectors = append(sectors, p)
		}
	}
	if len(sectors) > 0 {
		printSectorSweep(e, sectors)
	}
	if len(batch) > 0 {
		if len(sectors) > 0 {
			fmt.Fprintln(e.stdout)
		}
		printBatchSweep(e, batch)
	}
}

func printSectorSweep(e *env, pts []bench.SweepPoint) {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "point\tDRAM/sector\tkernel\tnodes/s\tvs first\tsha_limit_ratio\tpeak anon\tpeak DRAM\tpool wait\tcold reads/node\tin time\tstalled")
	for _, p := range pts {
		r := p.Report
		var poolWait float64
		for _, s := range r.Sectors {
			poolWait += s.PoolWaitSeconds
		}
		cold, inTime := "-", "-"
		if sp := r.Spill; sp != nil {
			cold = fmt.Sprintf("%.3f", sp.ColdReadsPerNode)
			inTime = fmt.Sprintf("%.0f%%", 100*sp.PrefetchedInTime)
		}
		fmt.Fprintf(tw, "%s\t%.3f S\t%s\t%.0f\t%.2f\t%.3f\t%s\t%s\t%.1fs\t%s\t%s\t%.1fs\n",
			p.Spec.Label, p.DRAMPerSector, r.Kernel, r.NodesPerSecond, p.RelativeThroughput, r.SHALimitRatio,
			humanize.IBytes(r.PeakAnonBytes), humanize.IBytes(r.PeakDRAMBytes), poolWait, cold, inTime, r.StallSeconds)
	}
	tw.Flush()
}

// printBatchSweep prints the batch sweep: its speed against its own
// all-DRAM point, what the device did for it, and its DRAM against the
// budget.
func printBatchSweep(e *env, pts []bench.SweepPoint) {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "batch point\tDRAM/sector\tkernel\tlabels/s\tvs all-DRAM\tlayer blocks in DRAM\treads/node-group\tCPU/read\tin time\tbudget\tpool peak\tpeak DRAM\tspill files written\tstalled")
	for _, p := range pts {
		r := p.Report
		budget, split, reads, cpu, inTime, written := "-", "all", "-", "-", "-", "-"
		if r.DRAMBudgetBytes > 0 {
			budget = humanize.IBytes(r.DRAMBudgetBytes)
		}
		if sp := r.Spill; sp != nil {
			// Of a layer's blocks: the previous layer's (the expander
			// parents') kept in DRAM, then the window of the layer being
			// written.
			split = fmt.Sprintf("%d+%d of %d", sp.ExpanderBlocks, sp.WindowBlocks, r.SectorSize/max(r.BlockSizeBytes, 1))
			reads = fmt.Sprintf("%.3f", sp.DeviceReadsPerNodeGroup)
			cpu = fmt.Sprintf("%.1fµs", 1e6*sp.CPUPerDeviceRead)
			inTime = fmt.Sprintf("%.0f%%", 100*sp.PrefetchedInTime)
			written = humanize.IBytes(sp.SpillFileBytesWritten)
		}
		fmt.Fprintf(tw, "%s\t%.3f S\t%s\t%.0f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1fs\n",
			p.Spec.Label, p.DRAMPerSector, r.Kernel, r.NodesPerSecond, p.RelativeThroughput, split, reads, cpu, inTime,
			budget, humanize.IBytes(r.PoolPeakBytes), humanize.IBytes(r.PeakDRAMBytes), written, r.StallSeconds)
	}
	tw.Flush()
}

// benchDisk is the shape of a bench run, for the space it needs.
type benchDisk struct {
	sectors, batch, layers int
	sectorSize             uint64
}

// need is the most the run holds on its devices at once: in OUT, the
// sector sweep's first point (kept, to check every later point against)
// and, during the batch sweep, the batch's first point and the point
// being measured; in the spill directories, two layers of the batch's
// spill files (the one being written and the one it reads).
func (d benchDisk) need() (out, spill uint64) {
	layer := d.sectorSize * uint64(d.layers)
	out = uint64(d.sectors) * layer
	if d.batch > 0 {
		out += 2 * uint64(d.batch) * layer
		spill = 2 * uint64(d.batch) * d.sectorSize
	}
	return out, spill
}

// why says what need counts.
func (d benchDisk) why() string {
	s := humanize.IBytes(d.sectorSize)
	why := fmt.Sprintf("the sector sweep's first point, kept to check the others against: %d x %d layers x %s", d.sectors, d.layers, s)
	if d.batch > 0 {
		why += fmt.Sprintf("; the batch sweep's first point and the point being measured: 2 x %d x %d layers x %s; two layers of the batch's spill files: 2 x %d x %s", d.batch, d.layers, s, d.batch, s)
	}
	return why
}

// checkBenchSpace refuses a bench whose files cannot fit where they go,
// before it runs for half an hour and stops at a full disk. Spill
// directories on OUT's filesystem share its free space.
func checkBenchSpace(out string, spillDirs []string, d benchDisk) error {
	needOut, needSpill := d.need()
	type device struct {
		dirs       []string
		need, free uint64
	}
	var order []uint64
	devices := map[uint64]*device{}
	add := func(dir string, need uint64) error {
		space, err := tier.DirSpaceOf(dir)
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		dev, ok := devices[space.Device]
		if !ok {
			dev = &device{free: space.FreeBytes}
			devices[space.Device] = dev
			order = append(order, space.Device)
		}
		dev.dirs, dev.need = append(dev.dirs, dir), dev.need+need
		return nil
	}
	if err := add(out, needOut); err != nil {
		return err
	}
	for _, dir := range spillDirs {
		// Pages are striped over the spill directories evenly.
		if err := add(dir, needSpill/uint64(len(spillDirs))); err != nil {
			return err
		}
	}
	for _, k := range order {
		if dev := devices[k]; dev.need > dev.free {
			return fmt.Errorf("%s need %s free at once (%s), %s is free: free some, or sweep fewer or smaller sectors (--sectors, --batch, --layers, --sector-size)",
				strings.Join(dev.dirs, " and "), humanize.IBytes(dev.need), d.why(), humanize.IBytes(dev.free))
		}
	}
	return nil
}
