package labeler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// AllNodes as VerifyConfig.Samples recomputes every node of every layer.
const AllNodes = -1

// VerifyConfig says what Verify checks.
type VerifyConfig struct {
	// Dir holds sector-<i> directories as seal writes them, or is one
	// sector's directory. Each sector needs its metadata file
	// (blockio.SectorMetaFile).
	Dir string
	// ParentCache is the directory holding parent caches or, ending in
	// .cache, one cache file, which must carry its graph's cache name. A
	// missing cache is generated, as seal does; one whose digest disagrees
	// with the embedded manifest is an error.
	ParentCache string
	// Samples is how many random nodes of each layer are recomputed, on top
	// of node 0 and the last node; AllNodes recomputes them all, which holds
	// two layers in memory (2 x sector size). Sampled nodes are read with
	// one small read per parent, so sampling needs almost no memory.
	Samples int
	// Seed seeds the choice of sampled nodes; the same seed checks the same
	// nodes.
	Seed uint64
	// OnSector, if set, is called after each sector that passed.
	OnSector func(SectorCheck)
	// OnParentCache, if set, is asked for a progress callback when the
	// missing parent cache of graph g (its file named path) is generated,
	// and OnWait
	// is told, in one line, what Verify waits for (a cache another process
	// generates): blockio.ParentCacheOptions' OnGenerate and OnWait.
	OnParentCache func(g *sdr.Graph, path string) func(done, total uint64)
	OnWait        func(msg string)
}

// SectorCheck is what Verify found for one sector that passed.
type SectorCheck struct {
	Dir  string
	Meta blockio.SectorMeta
	// ParentCache is the cache the sector's graph uses, as
	// blockio.EnsureParentCache found it.
	ParentCache blockio.ParentCacheInfo
	// Nodes is the number of labels recomputed and found equal to the
	// layer files', over all layers.
	Nodes uint64
}

// VerifyResult lists the sectors that passed, in order. When Verify fails,
// it holds those checked before the failure.
type VerifyResult struct {
	Sectors []SectorCheck
}

// LabelMismatchError is a label in a layer file that differs from the one
// recomputed from its parents.
type LabelMismatchError struct {
	Layer int
	Node  uint64
	// File is the layer file; Got its label, Want the recomputed one.
	File      string
	Got, Want [sdr.NodeSize]byte
}

func (e *LabelMismatchError) Error() string {
	return fmt.Sprintf("layer %d: node %d: label %x in %s, recomputed %x", e.Layer, e.Node, e.Got, e.File, e.Want)
}

// Verify checks the layer files of every sector under cfg.Dir: each file
// exists with exactly the sector size, and the sampled (or all) labels
// equal the labels recomputed from their parents in the files themselves.
// Sectors are checked in order, layers from 1 and nodes in ascending order;
// the first problem is an error naming the sector directory and, for a
// wrong label, a *LabelMismatchError naming the layer and node.
func Verify(ctx context.Context, cfg VerifyConfig) (*VerifyResult, error) {
	if cfg.ParentCache == "" {
		return nil, errors.New("verify: no parent cache directory")
	}
	dirs, err := blockio.SectorDirs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	v := &verifier{cfg: &cfg, caches: make(map[graphKey]blockio.ParentCacheInfo)}
	defer func() {
		for _, pc := range v.held {
			pc.Close()
		}
	}()
	res := &VerifyResult{}
	for i, dir := range dirs {
		c, err := v.sector(ctx, i, dir)
		if err != nil {
			return res, fmt.Errorf("sector %s: %w", dir, err)
		}
		res.Sectors = append(res.Sectors, c)
		if cfg.OnSector != nil {
			cfg.OnSector(c)
		}
	}
	return res, nil
}

type graphKey struct {
	size    uint64
	porepID [32]byte
	api     sdr.APIVersion
}

type verifier struct {
	cfg *VerifyConfig
	// caches remembers each graph's checked parent cache: sectors of a
	// batch share one, and hashing it once is enough.
	caches map[graphKey]blockio.ParentCacheInfo
	// held keeps those caches under their shared locks until Verify
	// returns, so none is regenerated while it is read.
	held []*blockio.ParentCache
}

func (v *verifier) sector(ctx context.Context, idx int, dir string) (SectorCheck, error) {
	meta, err := blockio.ReadSectorMeta(dir)
	if err != nil {
		return SectorCheck{}, err
	}
	g, err := meta.Graph()
	if err != nil {
		return SectorCheck{}, err
	}
	info, err := v.parentCache(ctx, g)
	if err != nil {
		return SectorCheck{}, err
	}
	layers := make([]*blockio.LayerReader, meta.Layers)
	defer func() {
		for _, l := range layers {
			if l != nil {
				l.Close()
			}
		}
	}()
	for k := range layers {
		if layers[k], err = blockio.OpenLayer(dir, k+1, g.SectorSize()); err != nil {
			return SectorCheck{}, fmt.Errorf("layer %d: %w", k+1, err)
		}
	}
	c := SectorCheck{Dir: dir, Meta: meta, ParentCache: info}
	if v.cfg.Samples < 0 {
		c.Nodes, err = verifyAll(ctx, g, &meta.ReplicaID, layers, info.Path)
	} else {
		rng := rand.New(rand.NewPCG(v.cfg.Seed, uint64(idx)))
		c.Nodes, err = verifySampled(ctx, g, &meta.ReplicaID, layers, rng, v.cfg.Samples)
	}
	return c, err
}

// parentCache finds, generates if missing, and checks g's parent cache.
// Checking all nodes reads parents from the cache, so a cache the manifest
// does not know is then checked against recomputed parents too; sampling
// computes parents from the graph and needs only the manifest's check.
func (v *verifier) parentCache(ctx context.Context, g *sdr.Graph) (blockio.ParentCacheInfo, error) {
	key := graphKey{g.SectorSize(), g.PorepID(), g.API()}
	if info, ok := v.caches[key]; ok {
		return info, nil
	}
	dir := v.cfg.ParentCache
	if filepath.Ext(dir) == ".cache" {
		want := sdr.ParentCacheFileName(g)
		if filepath.Base(dir) != want {
			return blockio.ParentCacheInfo{}, fmt.Errorf("parent cache %s is not this sector's: its graph's cache is %s", dir, want)
		}
		dir = filepath.Dir(dir)
	}
	mode := blockio.VerifyAuto
	if v.cfg.Samples < 0 {
		mode = blockio.VerifyAlways
	}
	opts := blockio.ParentCacheOptions{Verify: mode, OnWait: v.cfg.OnWait}
	if v.cfg.OnParentCache != nil {
		opts.OnGenerate = v.cfg.OnParentCache(g, filepath.Join(dir, sdr.ParentCacheFileName(g)))
	}
	pc, err := blockio.AcquireParentCache(ctx, g, dir, opts)
	if err != nil {
		return blockio.ParentCacheInfo{}, err
	}
	v.held = append(v.held, pc)
	v.caches[key] = pc.Info
	return pc.Info, nil
}

// sampleNodes returns node 0, the last node and k random nodes between
// them, ascending and without repeats; every node when k leaves none out.
func sampleNodes(rng *rand.Rand, nodes uint64, k int) []uint64 {
	if uint64(k)+2 >= nodes {
		all := make([]uint64, nodes)
		for i := range all {
			all[i] = uint64(i)
		}
		return all
	}
	out := make([]uint64, 0, k+2)
	out = append(out, 0, nodes-1)
	for range k {
		out = append(out, 1+rng.Uint64N(nodes-2))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// verifySampled recomputes k random nodes of each layer (new ones per
// layer), reading each parent label from the layer files with one small
// read: parents come from the graph, not the cache, so the check does not
// trust the cache the labels were made with.
func verifySampled(ctx context.Context, g *sdr.Graph, replicaID *[32]byte, layers []*blockio.LayerReader, rng *rand.Rand, k int) (uint64, error) {
	var (
		h         sdr.NodeHasher
		ps        [sdr.Degree]uint32
		got, want [sdr.NodeSize]byte
		checked   uint64
	)
	for k0 := range layers {
		layer := k0 + 1
		cur := layers[k0]
		h.Reset(replicaID, layer)
		for n, node := range sampleNodes(rng, g.Nodes(), k) {
			if n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return checked, context.Cause(ctx)
				}
			}
			if node > 0 {
				g.Parents(node, &ps)
				for i, p := range ps[:sdr.BaseDegree] {
					if err := cur.ReadAt(h.Parent(i), int64(p)*sdr.NodeSize); err != nil {
						return checked, fmt.Errorf("layer %d: node %d: %w", layer, node, err)
					}
				}
				if layer > 1 {
					prev := layers[k0-1]
					for i, p := range ps[sdr.BaseDegree:] {
						if err := prev.ReadAt(h.Parent(sdr.BaseDegree+i), int64(p)*sdr.NodeSize); err != nil {
							return checked, fmt.Errorf("layer %d: node %d: %w", layer, node, err)
						}
					}
				}
			}
			h.Sum(node, want[:])
			if err := cur.ReadAt(got[:], int64(node)*sdr.NodeSize); err != nil {
				return checked, fmt.Errorf("layer %d: node %d: %w", layer, node, err)
			}
			if got != want {
				return checked, &LabelMismatchError{Layer: layer, Node: node, File: cur.Path(), Got: got, Want: want}
			}
			checked++
		}
	}
	return checked, nil
}

// verifyAll recomputes every node of every layer with parents streamed
// from the cache, holding the layer being checked and the one before it.
// Base parents are taken from the file itself: every node before the one
// being checked already matched, so they are the recomputed labels.
func verifyAll(ctx context.Context, g *sdr.Graph, replicaID *[32]byte, layers []*blockio.LayerReader, cachePath string) (uint64, error) {
	stream, err := blockio.OpenParentStream(cachePath, g.Nodes(), parentChunkNodes, 2)
	if err != nil {
		return 0, err
	}
	defer stream.Close()
	size := g.SectorSize()
	cur, prev := make([]byte, size), make([]byte, size)
	var (
		h       sdr.NodeHasher
		want    [sdr.NodeSize]byte
		checked uint64
	)
	for k0, file := range layers {
		layer := k0 + 1
		if err := file.ReadAt(cur, 0); err != nil {
			return checked, fmt.Errorf("layer %d: %w", layer, err)
		}
		if err := stream.Rewind(); err != nil {
			return checked, err
		}
		h.Reset(replicaID, layer)
		for {
			if err := ctx.Err(); err != nil {
				return checked, context.Cause(ctx)
			}
			first, parents, err := stream.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return checked, fmt.Errorf("layer %d: %w", layer, err)
			}
			n := uint64(len(parents)) / sdr.Degree
			for node := first; node < first+n; node++ {
				if node > 0 {
					ps := parents[(node-first)*sdr.Degree : (node-first+1)*sdr.Degree]
					for i, p := range ps[:sdr.BaseDegree] {
						copy(h.Parent(i), cur[uint64(p)*sdr.NodeSize:])
					}
					if layer > 1 {
						for i, p := range ps[sdr.BaseDegree:] {
							copy(h.Parent(sdr.BaseDegree+i), prev[uint64(p)*sdr.NodeSize:])
						}
					}
				}
				h.Sum(node, want[:])
				got := cur[node*sdr.NodeSize : (node+1)*sdr.NodeSize]
				if !bytes.Equal(got, want[:]) {
					return checked, &LabelMismatchError{Layer: layer, Node: node, File: file.Path(), Got: [sdr.NodeSize]byte(got), Want: want}
				}
				checked++
			}
		}
		prev, cur = cur, prev
	}
	return checked, nil
}
