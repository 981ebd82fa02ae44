package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/pc1-tiered/pc1-tiered/measure"
	"github.com/pc1-tiered/pc1-tiered/plan"
	"github.com/pc1-tiered/pc1-tiered/tier"
)

// dirList collects a repeatable directory flag.
type dirList []string

func (d *dirList) String() string     { return strings.Join(*d, ",") }
func (d *dirList) Set(v string) error { *d = append(*d, v); return nil }

// planSHATime is how long plan measures the SHA-256 rate.
const planSHATime = 500 * time.Millisecond

func runPlan(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "plan")
	var gf graphFlags
	gf.register(fs)
	sectors := fs.Int("sectors", 0, "N, the number of sectors to label at once (required)")
	batch := fs.Int("batch", 0, "B, sectors per batch in the batch tier (1 to 128, at most N; one page read serves a parent for all B); 0 chooses: the pool plan when N fits without spill, else the fastest B")
	ram := fs.String("ram", "", "the machine's memory, e.g. 256GiB (default: this machine's MemTotal)")
	reserve := fs.String("reserve", "", "memory to keep out of the pool (default: 2GiB for the OS and Go runtime + the parent cache, 1.75 x sector size + 8MiB per sector)")
	var nvme dirList
	fs.Var(&nvme, "nvme", "a spill directory on NVMe to probe (repeatable); without one, spilling is not an option")
	cores := fs.Int("cores", 0, "cores that may hash (default: this machine's)")
	layers := fs.Int("layers", 0, "layer count (default: the proof's, or 2 for non-production sizes)")
	blockSize := fs.String("block-size", "", "pool block size (default: the seal's, sector size / 16, at most 32MiB)")
	efficiency := fs.Float64("efficiency", plan.DefaultEfficiency, "share of the single-core SHA-256 rate a core labels at with every parent in DRAM")
	spillEff := fs.Float64("spill-efficiency", plan.DefaultSpillPathEfficiency, "share of the probed spill-path page rate the spill tier draws in a real batch (a bench spill point's device page reads per second over the probe's)")
	coldCPU := fs.Duration("cold-read-cpu", 0, "CPU time per cold read, e.g. 20us (default: the kernel CPU per page-cache miss the probe measures)")
	devReads := fs.String("device-reads", "", "random 4 KiB reads/s of the spill devices, all together, e.g. 4M: plan for hardware that is not here instead of probing --nvme (needs --cold-read-cpu)")
	probeSize := fs.String("probe-size", "1GiB", "size of each device probe's temporary file")
	probeTime := fs.Duration("probe-time", tier.DefaultProbeDuration, "time each device probe spends measuring")
	spillEngine := fs.String("spill-engine", "auto", "the engine the spill-path probe reads with: auto, io_uring or pread (as seal --spill-engine)")
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	spec, err := gf.resolve()
	if err != nil {
		return err
	}
	if *sectors < 1 {
		return usagef("--sectors %d: give the number of sectors to label at once (at least 1)", *sectors)
	}
	if *layers == 0 {
		*layers = spec.layers
	}
	if *layers < 1 {
		return usagef("--layers %d: must be at least 1", *layers)
	}
	if *cores == 0 {
		*cores = runtime.NumCPU()
	}
	if *cores < 1 {
		return usagef("--cores %d: must be at least 1", *cores)
	}
	if *spillEff <= 0 || *spillEff > 1 {
		return usagef("--spill-efficiency %g: want a share in (0, 1]", *spillEff)
	}
	if *efficiency <= 0 || *efficiency > 4 {
		return usagef("--efficiency %g: want a factor in (0, 4]", *efficiency)
	}
	if *coldCPU < 0 {
		return usagef("--cold-read-cpu %s: must not be negative", *coldCPU)
	}
	if *probeTime <= 0 {
		return usagef("--probe-time %s: must be positive", *probeTime)
	}
	if *batch < 0 || *batch > plan.MaxBatch {
		return usagef("--batch %d: want 0 (choose) or 1 to %d sectors per batch", *batch, plan.MaxBatch)
	}
	if *batch > *sectors {
		return usagef("--batch %d is more than --sectors %d: a batch holds at most the N sectors planned", *batch, *sectors)
	}
	in := plan.Input{Graph: spec.graph, Layers: *layers, Sectors: *sectors, Cores: *cores, Batch: *batch,
		Efficiency: *efficiency, SpillPathEfficiency: *spillEff, ColdReadCPUSeconds: coldCPU.Seconds()}
	if *devReads != "" {
		// Accept K for kilo as rates are usually written (200K).
		v, unit, err := humanize.ParseSI(strings.Replace(*devReads, "K", "k", 1))
		if err != nil || unit != "" || !(v > 0) || math.IsInf(v, 0) {
			return usagef("--device-reads %q: want a positive rate of 4 KiB reads per second, e.g. 4M", *devReads)
		}
		if len(nvme) > 0 {
			return usagef("--device-reads and --nvme: give the devices' figure or a directory to probe, not both")
		}
		if *coldCPU == 0 {
			return usagef("--device-reads needs --cold-read-cpu, the CPU time per read (e.g. 2us with io_uring)")
		}
		in.DeviceReadsPerSecond = v
	}
	if in.RAM, err = sizeFlag("--ram", *ram, "", e.getenv); err != nil {
		return err
	}
	if in.RAM == 0 {
		if in.RAM = measure.ReadHost().MemTotalBytes; in.RAM == 0 {
			return errors.New("cannot read MemTotal from /proc/meminfo: give --ram")
		}
	}
	if *reserve != "" {
		r, err := sizeFlag("--reserve", *reserve, "", e.getenv)
		if err != nil {
			return err
		}
		in.Reserve = &r
	}
	if in.BlockSize, err = sizeFlag("--block-size", *blockSize, "", e.getenv); err != nil {
		return err
	}
	s := spec.graph.SectorSize()
	if b := in.BlockSize; b != 0 && (b < 32 || b&(b-1) != 0 || b > s) {
		return usagef("--block-size %s: must be a power of two from 32 bytes to the sector size", *blockSize)
	}
	// The spill path is probed as the jobs would read: one reader per
	// job, a sector each unless --batch says how many share one (when
	// plan chooses B, the rate is probed for one sector per job).
	jobs := *sectors
	if *batch > 0 {
		jobs = (*sectors + *batch - 1) / *batch
	}
	// The reads' cost to the hashing is measured with as many threads
	// hashing as the plan's cores would, as far as this machine has them.
	popts := tier.ProbeOptions{Duration: *probeTime, Streams: max(1, jobs), LoadThreads: min(*cores, runtime.NumCPU(), *sectors)}
	if popts.Engine, err = tier.ParseEngine(*spillEngine); err != nil {
		return usagef("--spill-engine: %v", err)
	}
	if popts.FileSize, err = sizeFlag("--probe-size", *probeSize, "", e.getenv); err != nil {
		return err
	}
	if popts.FileSize == 0 {
		return usagef("--probe-size 0: must be positive")
	}

	for _, dir := range nvme {
		if e.stderrIsTerminal {
			fmt.Fprintf(e.stderr, "probing %s (%s file, %s)...\n", dir, humanize.IBytes(popts.FileSize), popts.Duration)
		}
		ds, err := tier.ProbeDevice(ctx, dir, popts)
		if err != nil {
			return fmt.Errorf("--nvme: %w", err)
		}
		in.Devices = append(in.Devices, ds)
	}
	// Measured after the probes, with nothing else running in this
	// process.
	in.SHA = measure.MeasureSHA256Rate(planSHATime)

	res, err := plan.Make(in)
	if err != nil {
		return err
	}
	if *asJSON {
		data, err := res.JSON()
		if err != nil {
			return err
		}
		e.stdout.Write(data)
	} else {
		fmt.Fprint(e.stdout, res.String())
	}
	if !res.Feasible {
		return errors.New(res.Verdict)
	}
	return nil
}
