package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// defaultVerifySamples is how many random nodes per layer verify
// recomputes by default: a few thousand small reads per sector, so it takes
// well under a second even for 32 GiB sectors, and any damage covering more
// than a fraction of a percent of a layer is found.
const defaultVerifySamples = 1000

func runVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "verify")
	out := fs.String("out", "pc1-out", "directory seal wrote to (OUT/sector-<i>/), or one sector's directory")
	samples := fs.String("samples", strconv.Itoa(defaultVerifySamples), "random nodes recomputed per layer of each sector, besides node 0 and the last; all recomputes every node (holding two layers in memory)")
	seed := fs.Uint64("seed", 0, "seed choosing the sampled nodes (default: from the clock; the summary prints it)")
	cacheDir := fs.String("cache-dir", "", "parent cache directory, or cache file (default $FIL_PROOFS_PARENT_CACHE or /var/tmp/filecoin-parents)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	k, err := parseSamples(*samples)
	if err != nil {
		return err
	}
	seedGiven := false
	fs.Visit(func(f *flag.Flag) { seedGiven = seedGiven || f.Name == "seed" })
	if !seedGiven {
		*seed = uint64(time.Now().UnixNano())
	}
	dir := parentCacheDir(e, *cacheDir)
	var sectors, layers, labels uint64
	caches := map[string]bool{}
	var cacheOrder []string
	// No sectors: only a parent cache's lines, if one is generated.
	progress := NewProgress(e.stderr, e.stderrIsTerminal, 0, 0, 0)
	defer progress.Stop()
	_, err = labeler.Verify(ctx, labeler.VerifyConfig{
		Dir: *out, ParentCache: dir, Samples: k, Seed: *seed, OnWait: e.onWait,
		OnParentCache: func(g *sdr.Graph, path string) func(done, total uint64) {
			return progress.ParentCache(sdr.FormatSize(g.SectorSize())+" sectors", path)
		},
		OnSector: func(c labeler.SectorCheck) {
			fmt.Fprintf(e.stdout, "ok %s: %s, %d layers, %d labels recomputed, replica id %x\n",
				c.Dir, sdr.FormatSize(c.Meta.SectorSize), c.Meta.Layers, c.Nodes, c.Meta.ReplicaID[:])
			sectors++
			layers += uint64(c.Meta.Layers)
			labels += c.Nodes
			if _, ok := caches[c.ParentCache.Path]; !ok {
				cacheOrder = append(cacheOrder, c.ParentCache.Path)
			}
			caches[c.ParentCache.Path] = c.ParentCache.Verified
		},
	})
	if err != nil {
		return err
	}
	how := fmt.Sprintf("%d random nodes per layer plus the first and last, seed %d", k, *seed)
	if k == labeler.AllNodes {
		how = "every node"
	}
	var cs []string
	for _, p := range cacheOrder {
		state := "digest checked"
		if !caches[p] {
			state = "not in the manifest, digest not checked"
		}
		cs = append(cs, fmt.Sprintf("%s (%s)", p, state))
	}
	fmt.Fprintf(e.stdout, "verified %d sectors, %d layer files, %d labels recomputed (%s); parent cache %s\n",
		sectors, layers, labels, how, strings.Join(cs, ", "))
	return nil
}

// parseSamples reads --samples: a count of nodes, or all.
func parseSamples(s string) (int, error) {
	if strings.EqualFold(strings.TrimSpace(s), "all") {
		return labeler.AllNodes, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, usagef("--samples %q: want a number of nodes (0 or more) or all", s)
	}
	return n, nil
}
