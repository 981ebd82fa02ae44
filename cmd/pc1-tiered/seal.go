package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/measure"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/sealer"
	"github.com/pc1-tiered/pc1-tiered/tier"
)

// hexList collects a repeatable hex flag.
type hexList []string

func (h *hexList) String() string     { return strings.Join(*h, ",") }
func (h *hexList) Set(v string) error { *h = append(*h, v); return nil }

func runSeal(ctx context.Context, e *env, args []string) (err error) {
	fs := newFlagSet(e, "seal")
	var gf graphFlags
	gf.register(fs)
	layers := fs.Int("layers", 0, "layer count (default: the proof's, or 2 for non-production sizes)")
	var replicaIDs hexList
	fs.Var(&replicaIDs, "replica-id", "replica id in hex, once per sector (sector i is the i-th flag)")
	sectors := fs.Int("sectors", 0, "number of sectors with replica ids derived from --seed (default 1)")
	seed := fs.Uint64("seed", 0, "seed for derived replica ids")
	out := fs.String("out", "pc1-out", "output directory; sector i is written to OUT/sector-<i>/ (with --prover-id or --jobs: the storage root, sectors go to OUT/cache/s-t0<actor>-<number>/)")
	report := fs.String("report", "", "write the JSON report to this file")
	cacheDir := fs.String("cache-dir", "", "parent cache directory (default $FIL_PROOFS_PARENT_CACHE or /var/tmp/filecoin-parents)")
	poolSize := fs.String("pool-size", "", "pool size, e.g. 96GiB (default $MEM_POOL_SIZE, else (3N+1)/2 x sector size)")
	blockSize := fs.String("block-size", "", "pool block size (default sector size / 16, at most 32MiB)")
	parallel := fs.Int("parallel", 0, "sectors hashing at once, the pool's N (default: the cores, or with SHA-NI, no --batch, --dram or pool size and at least two sectors a core, up to 4 a core as the memory available allows, so that each core hashes a batch)")
	dram := fs.String("dram", "", "DRAM budget for the whole seal, e.g. 200GiB (default $PC1_DRAM; below (N+1) x sector size the spill tier reads cold labels from the layer files, so put --out on NVMe)")
	hugetlb := fs.Bool("hugetlb", false, "use reserved MAP_HUGETLB pages for the DRAM arena (falls back to transparent hugepages)")
	spillEngine := fs.String("spill-engine", "auto", "how the spill tier reads spilled labels with O_DIRECT: auto (io_uring where the host allows it, else pread), io_uring or pread")
	batch := fs.Int("batch", 0, "sectors labeled together by one job (a batch), sharing one parent-cache walk, storing labels node-major so one spilled page read serves them all, hashed by multi-stream SHA-NI kernels: left out, automatic (without spill, the largest B <= 4 with --parallel at least B times the cores; below the pool minimum, one batch of the --parallel sectors), 1 each sector alone, 2 to 128 forced (with no --parallel: one batch per core up to 4, else one batch)")
	lockstep := fs.Int("lockstep", 0, "the older name of --batch, for batches of 2 to 4")
	var spillDirs dirList
	fs.Var(&spillDirs, "spill-dir", "a directory for a spilling batch's spill files, on NVMe (repeatable, one per drive: pages are striped over them; default: the first sector's directory); must take O_DIRECT")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics while sealing, e.g. 127.0.0.1:9464 (default: off)")
	logFormat := fs.String("log-format", "", "log the batch on stderr as text or json lines (default: off; replaces the live progress lines)")
	wait := fs.Bool("wait", false, "wait for another seal holding a sector directory to finish instead of stopping")
	var in sectorFlags
	in.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	spec, err := gf.resolve()
	if err != nil {
		return err
	}
	if *layers == 0 {
		*layers = spec.layers
	}
	if *layers < 1 {
		return usagef("--layers %d: must be at least 1", *layers)
	}
	inputs, err := in.sectors(fs)
	if err != nil {
		return err
	}
	var ids [][32]byte
	if inputs == nil {
		if ids, err = sealReplicaIDs(replicaIDs, *sectors, *seed); err != nil {
			return err
		}
	}
	// Left out, --batch is chosen automatically; given, it is a size (0
	// is not a way to ask for the automatic choice).
	if flagGiven(fs, "batch") && (*batch < 1 || *batch > tier.MaxBatchLanes) {
		return usagef("--batch %d: give a batch size from 1 to %d, or leave --batch out for the automatic choice", *batch, tier.MaxBatchLanes)
	}
	if *batch != 0 && *lockstep != 0 {
		return usagef("--lockstep is the older name of --batch: give one")
	}
	if n := max(len(ids), len(inputs)); *batch > n {
		return usagef("--batch %d: only %d sectors to seal; give --batch %d or fewer", *batch, n, n)
	}
	for _, d := range spillDirs {
		if err := tier.CheckSpillDir(d); err != nil {
			return usagef("--spill-dir: %v", err)
		}
	}
	cfg := labeler.Config{Graph: spec.graph, Layers: *layers, Options: labeler.Options{Parallel: *parallel, HugeTLB: *hugetlb,
		Lockstep: *lockstep, Batch: *batch, SpillDirs: spillDirs}}
	if cfg.SpillEngine, err = tier.ParseEngine(*spillEngine); err != nil {
		return usagef("--spill-engine: %v", err)
	}
	if cfg.PoolSize, err = sizeFlag("--pool-size", *poolSize, "MEM_POOL_SIZE", e.getenv); err != nil {
		return err
	}
	if cfg.DRAMBudget, err = sizeFlag("--dram", *dram, "PC1_DRAM", e.getenv); err != nil {
		return err
	}
	if cfg.BlockSize, err = sizeFlag("--block-size", *blockSize, "", e.getenv); err != nil {
		return err
	}
	cfg.LockOptions = blockio.LockOptions{Wait: *wait, OnWait: e.onWait}
	defer func() { err = lockHint(err) }()
	if inputs != nil {
		return sealInputs(ctx, e, spec, cfg, inputs, *out, *cacheDir, *report, *metricsAddr, *logFormat)
	}
	// A seal refused before labeling starts (a bad pool size or report
	// path, a broken parent cache) leaves no empty directories behind.
	var made []string
	defer func() {
		if err != nil {
			for _, d := range slices.Backward(made) {
				os.Remove(d) // only if still empty
			}
		}
	}()
	for i, id := range ids {
		dir := filepath.Join(*out, fmt.Sprintf("sector-%d", i))
		m, err := blockio.MkdirAll(dir)
		made = append(made, m...)
		if err != nil {
			return fmt.Errorf("output directory %s: %w", dir, err)
		}
		cfg.Sectors = append(cfg.Sectors, labeler.Sector{ReplicaID: id, Dir: dir})
	}
	if *report != "" {
		// Fail before hours of hashing, not after.
		if err := blockio.CheckWritable(*report); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}

	chooseParallel(e, &cfg)
	obs, err := startObservers(ctx, e, &cfg, *metricsAddr, *logFormat)
	if err != nil {
		return err
	}
	defer obs.close()
	cfg.OnProgress = obs.onProgress()
	obs.start()
	parents := parentCacheDir(e, *cacheDir)
	rep, err := sealer.Label(ctx, sealer.LabelRequest{
		Config:         cfg,
		ParentCacheDir: parents,
		Name:           spec.String(),
		Measure:        true,
		OnParentCache:  obs.progress.ParentCache(spec.String(), filepath.Join(parents, sdr.ParentCacheFileName(spec.graph))),
	})
	obs.end(rep, err)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("interrupted (%v): finished blocks are on disk; run the same command again to resume", context.Cause(ctx))
	}
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, rep.String())
	if *report != "" {
		data, err := rep.JSON()
		if err != nil {
			return err
		}
		if err := blockio.WriteFileAtomic(*report, data); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	return nil
}

// sealMemoryReserve is the memory chooseParallel leaves to the system and
// the Go runtime besides the parent cache.
const sealMemoryReserve = 2 << 30

// chooseParallel lets a seal told nothing about parallelism, grouping or
// DRAM hash enough sectors at once for the multi-stream kernels (k a
// core, labeler.Config.BatchedParallel) when their default pool fits in
// the memory available now, less the parent cache (it must stay in the
// page cache) and a reserve, and says so; else it leaves one sector a
// core.
func chooseParallel(e *env, cfg *labeler.Config) {
	avail := measure.MemAvailableBytes()
	cache := cfg.Graph.Nodes() * sdr.ParentCacheBytesPerNode
	if avail < cache+sealMemoryReserve {
		return
	}
	mem := avail - cache - sealMemoryReserve
	p := cfg.BatchedParallel(mem)
	if p == 0 {
		return
	}
	cfg.Parallel = p
	k := p / labeler.HashingCores()
	fmt.Fprintf(e.stderr, "pc1-tiered: %d sectors hash at once, a batch of %d on each of %d cores (multi-stream SHA-NI kernels; their pool fits in the %s available less the parent cache and %s); --parallel %d for one sector a core\n",
		p, k, labeler.HashingCores(), humanize.IBytes(avail), humanize.IBytes(sealMemoryReserve), labeler.HashingCores())
}

// sealReplicaIDs returns the replica ids given on the command line, or n
// ids derived from seed: SHA-256("pc1-tiered replica" || seed || i), masked
// to a field element like a real replica id.
func sealReplicaIDs(given hexList, n int, seed uint64) ([][32]byte, error) {
	if len(given) > 0 && n > 0 {
		return nil, usagef("--replica-id and --sectors both given: use one")
	}
	var ids [][32]byte
	for i, s := range given {
		id, err := sdr.ParseHex32(s)
		if err != nil {
			return nil, usagef("--replica-id #%d: %v", i+1, err)
		}
		ids = append(ids, id)
	}
	if len(given) > 0 {
		return ids, nil
	}
	if n < 0 {
		return nil, usagef("--sectors %d: must be at least 1", n)
	}
	if n == 0 {
		n = 1
	}
	for i := 0; i < n; i++ {
		h := sha256.New()
		h.Write([]byte("pc1-tiered replica"))
		h.Write(binary.BigEndian.AppendUint64(nil, seed))
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(i)))
		var id [32]byte
		h.Sum(id[:0])
		id[31] &= 0x3f
		ids = append(ids, id)
	}
	return ids, nil
}

// sizeFlag parses a size from a flag, falling back to an environment
// variable when the flag is empty; 0 means neither was given.
func sizeFlag(name, value, envName string, getenv func(string) string) (uint64, error) {
	if value == "" && envName != "" {
		value = getenv(envName)
		name = "$" + envName
	}
	if value == "" {
		return 0, nil
	}
	n, err := sdr.ParseSize(value)
	if err != nil {
		return 0, usagef("%s: %v", name, err)
	}
	return n, nil
}

// sectorFlags are the flags that seal sectors from their real inputs
// instead of given replica ids: one sector on the command line, or many
// in a jobs file.
type sectorFlags struct {
	proverID, ticket, staged, commD, jobs string
	number                                uint64
}

// singleSectorFlags are the flags of one sector given on the command line.
var singleSectorFlags = []string{"prover-id", "sector-number", "ticket", "staged", "comm-d"}

func (s *sectorFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.proverID, "prover-id", "", "seal one sector from its inputs: the miner, as an id address (f01000, t01000) or 32 bytes in hex")
	fs.Uint64Var(&s.number, "sector-number", 0, "the sector's number (with --prover-id)")
	fs.StringVar(&s.ticket, "ticket", "", "the sector's ticket (sealing randomness), 32 bytes in hex (with --prover-id)")
	fs.StringVar(&s.staged, "staged", "", "the sector's staged data, Lotus' unsealed file: the Fr32-padded sector, optionally with Lotus' trailer (default: a committed-capacity, all-zero sector)")
	fs.StringVar(&s.commD, "comm-d", "", "the comm_d the sector's pieces add up to, 32 bytes in hex; the seal stops if the staged data gives another (with --prover-id)")
	fs.StringVar(&s.jobs, "jobs", "", "seal many sectors from their inputs: a JSON list of {prover_id, sector_number, ticket[, staged][, comm_d][, cache_dir]}; relative paths are from the file's directory")
}

// flagGiven reports whether name was set on the command line.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// firstGiven returns the first of names set on the command line, or "".
func firstGiven(fs *flag.FlagSet, names ...string) string {
	for _, n := range names {
		if flagGiven(fs, n) {
			return n
		}
	}
	return ""
}

// sectors returns the sectors to seal from their inputs, or nil when the
// command line gives none (the --replica-id and --sectors modes).
func (s *sectorFlags) sectors(fs *flag.FlagSet) ([]sealer.SectorInput, error) {
	single := firstGiven(fs, singleSectorFlags...)
	jobs := flagGiven(fs, "jobs")
	if single == "" && !jobs {
		return nil, nil
	}
	mode := "--jobs"
	if single != "" {
		mode = "--" + single
	}
	if legacy := firstGiven(fs, "replica-id", "sectors", "seed"); legacy != "" {
		return nil, usagef("%s and --%s both given: a sector's replica id comes from its inputs; use one", mode, legacy)
	}
	if jobs {
		if single != "" {
			return nil, usagef("--jobs and --%s both given: put every sector in the jobs file", single)
		}
		if s.jobs == "" {
			return nil, usagef("--jobs is empty: give the jobs file's path")
		}
		data, err := os.ReadFile(s.jobs)
		if err != nil {
			return nil, fmt.Errorf("--jobs: %w", err)
		}
		in, err := sealer.ParseJobs(data, filepath.Dir(s.jobs))
		if err != nil {
			return nil, usagef("--jobs %s: %v", s.jobs, err)
		}
		return in, nil
	}
	for _, need := range []string{"prover-id", "sector-number", "ticket"} {
		if !flagGiven(fs, need) {
			return nil, usagef("%s without --%s: a sector needs --prover-id, --sector-number and --ticket", mode, need)
		}
	}
	in := sealer.SectorInput{SectorNumber: s.number, Staged: s.staged}
	var err error
	if in.ProverID, err = sealer.ParseProverID(s.proverID); err != nil {
		return nil, usagef("--prover-id: %v", err)
	}
	if in.Ticket, err = sdr.ParseHex32(s.ticket); err != nil {
		return nil, usagef("--ticket: %v", err)
	}
	if s.commD != "" {
		c, err := sdr.ParseHex32(s.commD)
		if err != nil {
			return nil, usagef("--comm-d: %v", err)
		}
		in.WantCommD = &c
	}
	if flagGiven(fs, "staged") && s.staged == "" {
		return nil, usagef("--staged is empty: leave it out for a committed-capacity sector")
	}
	return []sealer.SectorInput{in}, nil
}

// sealInputs seals sectors from their inputs into the storage root, laid
// out as Lotus and Curio expect, and prints the report and each sector's
// comm_d, replica id and cache directory.
func sealInputs(ctx context.Context, e *env, spec graphSpec, cfg labeler.Config, inputs []sealer.SectorInput, root, cacheDir, report, metricsAddr, logFormat string) error {
	if spec.proof == "" {
		return usagef("sealing sectors from their inputs needs a registered proof (--proof, or a --sector-size that has one), not a raw --porep-id or size")
	}
	proof, err := sdr.ProofByName(spec.proof)
	if err != nil {
		return err
	}
	if report != "" {
		if err := blockio.CheckWritable(report); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	cacheDir = parentCacheDir(e, cacheDir)
	// The observers see the sectors by their cache directories.
	for _, in := range inputs {
		dir := in.CacheDir
		if dir == "" {
			dir = filepath.Join(root, sealer.CacheDirName, in.Name())
		}
		cfg.Sectors = append(cfg.Sectors, labeler.Sector{Dir: dir})
	}
	chooseParallel(e, &cfg)
	obs, err := startObservers(ctx, e, &cfg, metricsAddr, logFormat)
	if err != nil {
		return err
	}
	defer obs.close()
	onLabel := obs.onProgress()
	batch := sealer.Batch{
		Proof:          proof,
		Layers:         cfg.Layers,
		Root:           root,
		Sectors:        inputs,
		ParentCacheDir: cacheDir,
		Options:        cfg.Options,
		Live:           cfg.Live,
		Measure:        true,
		OnProgress: func(p sealer.Progress) {
			if p.Stage == sealer.StageLabel {
				onLabel(p.Sector, p.Layer, p.Done)
			}
		},
		OnParentCache: obs.progress.ParentCache(spec.String(), filepath.Join(cacheDir, sdr.ParentCacheFileName(spec.graph))),
	}
	obs.start()
	res, err := sealer.SealBatch(ctx, batch)
	var rep *sealer.Report
	if res != nil {
		rep = res.Report
	}
	obs.end(rep, err)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("interrupted (%v): finished blocks are on disk; run the same command again to resume", context.Cause(ctx))
	}
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, res.Report.String())
	for _, s := range res.Sectors {
		fmt.Fprintf(e.stdout, "  %s  comm_d %x  replica_id %x  %s\n", s.Name, s.CommD, s.ReplicaID, s.CacheDir)
	}
	if res.Sectors[0].Phase1Output == "" {
		fmt.Fprintf(e.stdout, "note: %d layers is not %s's %d: no phase-1 output (pc1out.json) written, PC2 would not take these layers\n", cfg.Layers, proof.Name, proof.Layers)
	}
	if report != "" {
		data, err := res.Report.JSON()
		if err != nil {
			return err
		}
		if err := blockio.WriteFileAtomic(report, data); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	return nil
}
