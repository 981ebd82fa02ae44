package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pc1-tiered/pc1-tiered/bench"
	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/sdr"
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
	out := fs.String("out", "pc1-out", "output directory; sector i is written to OUT/sector-<i>/")
	report := fs.String("report", "", "write the JSON report to this file")
	cacheDir := fs.String("cache-dir", "", "parent cache directory (default $FIL_PROOFS_PARENT_CACHE or /var/tmp/filecoin-parents)")
	poolSize := fs.String("pool-size", "", "pool size, e.g. 96GiB (default $MEM_POOL_SIZE, else (3N+1)/2 x sector size)")
	blockSize := fs.String("block-size", "", "pool block size (default sector size / 16, at most 32MiB)")
	parallel := fs.Int("parallel", 0, "sectors hashing at once, the pool's N (default: number of cores)")
	dram := fs.String("dram", "", "DRAM budget for the whole seal, e.g. 200GiB (default $PC1_DRAM; below (N+1) x sector size the spill tier reads cold labels from the layer files, so put --out on NVMe)")
	hugetlb := fs.Bool("hugetlb", false, "use reserved MAP_HUGETLB pages for the DRAM arena (falls back to transparent hugepages)")
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
	ids, err := sealReplicaIDs(replicaIDs, *sectors, *seed)
	if err != nil {
		return err
	}
	cfg := labeler.Config{Graph: spec.graph, Layers: *layers, Parallel: *parallel, HugeTLB: *hugetlb}
	if cfg.PoolSize, err = sizeFlag("--pool-size", *poolSize, "MEM_POOL_SIZE", e.getenv); err != nil {
		return err
	}
	if cfg.DRAMBudget, err = sizeFlag("--dram", *dram, "PC1_DRAM", e.getenv); err != nil {
		return err
	}
	if cfg.BlockSize, err = sizeFlag("--block-size", *blockSize, "", e.getenv); err != nil {
		return err
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
		m, err := mkdirAll(dir)
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

	dir := *cacheDir
	if dir == "" {
		dir = blockio.DefaultParentCacheDir(e.getenv)
	}
	info, err := blockio.EnsureParentCache(ctx, spec.graph, dir, blockio.ParentCacheOptions{})
	if err != nil {
		return err
	}
	cfg.ParentCache = info.Path

	progress := bench.NewProgress(e.stderr, e.stderrIsTerminal, len(ids), *layers, spec.graph.Nodes())
	cfg.OnProgress = progress.Update
	progress.Start()
	rep, err := bench.Seal(ctx, cfg)
	progress.Stop()
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("interrupted (%v): finished blocks are on disk; run the same command again to resume", context.Cause(ctx))
	}
	if err != nil {
		return err
	}
	rep.Proof = spec.String()
	rep.ParentCache = info.Path
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

// mkdirAll is os.MkdirAll that also returns the directories it created,
// parents first.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	slices.Reverse(missing)
	return missing, os.MkdirAll(dir, 0o755)
}
