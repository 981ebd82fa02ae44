package labeler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// sealed is a batch of sectors labeled by Run into root/sector-<i>, with
// the parent cache it used in cacheDir.
type sealed struct {
	graph    *sdr.Graph
	root     string
	cacheDir string
	layers   int
	dirs     []string
}

func sealBatch(t *testing.T, g *sdr.Graph, layers, sectors int) *sealed {
	t.Helper()
	s := &sealed{graph: g, root: t.TempDir(), cacheDir: t.TempDir(), layers: layers}
	info, err := blockio.EnsureParentCache(context.Background(), g, s.cacheDir, blockio.ParentCacheOptions{})
	require.NoError(t, err)
	var ss []Sector
	for i := range sectors {
		dir := filepath.Join(s.root, fmt.Sprintf("sector-%d", i))
		require.NoError(t, os.MkdirAll(dir, 0o755))
		ss = append(ss, Sector{ReplicaID: replicaID(i + 7), Dir: dir})
		s.dirs = append(s.dirs, dir)
	}
	_, err = Run(context.Background(), Config{Graph: g, ParentCache: info.Path, Layers: layers, Sectors: ss, Options: Options{Parallel: sectors}})
	require.NoError(t, err)
	return s
}

func (s *sealed) layerPath(sector, layer int) string {
	return filepath.Join(s.dirs[sector], sdr.LayerFileName(layer))
}

// flip inverts one bit of one label and returns a function that restores
// it.
func (s *sealed) flip(t *testing.T, sector, layer int, node uint64, byteInNode, bit int) func() {
	t.Helper()
	path := s.layerPath(sector, layer)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	orig := append([]byte(nil), data...)
	data[node*sdr.NodeSize+uint64(byteInNode)] ^= 1 << bit
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return func() { require.NoError(t, os.WriteFile(path, orig, 0o644)) }
}

func proofGraph(t *testing.T, name string) *sdr.Graph {
	t.Helper()
	p, err := sdr.ProofByName(name)
	require.NoError(t, err)
	g, err := sdr.NewProofGraph(p)
	require.NoError(t, err)
	return g
}

// TestVerifyPasses seals batches of several graphs (production caches the
// manifest knows, a size it does not, API 1.0 and 1.1) and checks that
// Verify passes them, sampled and whole, and writes the metadata it reads.
func TestVerifyPasses(t *testing.T) {
	g64k, err := sdr.NewGraph(64<<10, sdr.Proofs()[5].PorepID(), sdr.APIVersion1_1)
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		graph   func(t *testing.T) *sdr.Graph
		layers  int
		sectors int
		long    bool
	}{
		{name: "2KiB-V1_1", graph: func(t *testing.T) *sdr.Graph { return proofGraph(t, "StackedDrg2KiBV1_1") }, layers: 3, sectors: 3},
		{name: "2KiB-V1", graph: func(t *testing.T) *sdr.Graph { return proofGraph(t, "StackedDrg2KiBV1") }, layers: 2, sectors: 1},
		{name: "64KiB-not-in-manifest", graph: func(*testing.T) *sdr.Graph { return g64k }, layers: 3, sectors: 2},
		{name: "8MiB-V1_1", graph: func(t *testing.T) *sdr.Graph { return proofGraph(t, "StackedDrg8MiBV1_1") }, layers: 2, sectors: 1, long: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.long && testing.Short() {
				t.Skip("8 MiB sectors are skipped in -short runs")
			}
			s := sealBatch(t, tc.graph(t), tc.layers, tc.sectors)
			for i, dir := range s.dirs {
				meta, err := blockio.ReadSectorMeta(dir)
				require.NoError(t, err)
				require.Len(t, meta.LayerChecksums, tc.layers, "every committed layer has its checksum")
				meta.LayerChecksums = nil
				require.Equal(t, blockio.NewSectorMeta(s.graph, replicaID(i+7), tc.layers), meta)
			}
			nodes := s.graph.Nodes()
			for _, sc := range []struct {
				name    string
				samples int
				cache   string
				perLyr  uint64 // labels checked per layer, 0: at most samples+2
			}{
				{name: "sampled", samples: 16, cache: s.cacheDir},
				{name: "only-ends", samples: 0, cache: s.cacheDir, perLyr: 2},
				{name: "all", samples: AllNodes, cache: s.cacheDir, perLyr: nodes},
				{name: "cache-file", samples: 5, cache: filepath.Join(s.cacheDir, sdr.ParentCacheFileName(s.graph))},
				{name: "cache-generated", samples: 5, cache: t.TempDir()},
			} {
				t.Run(sc.name, func(t *testing.T) {
					var seen []string
					res, err := Verify(context.Background(), VerifyConfig{
						Dir: s.root, ParentCache: sc.cache, Samples: sc.samples, Seed: 42,
						OnSector: func(c SectorCheck) { seen = append(seen, c.Dir) },
					})
					require.NoError(t, err)
					require.Equal(t, s.dirs, seen)
					require.Len(t, res.Sectors, tc.sectors)
					for _, c := range res.Sectors {
						require.Equal(t, tc.layers, c.Meta.Layers)
						if sc.perLyr != 0 {
							require.Equal(t, sc.perLyr*uint64(tc.layers), c.Nodes)
						} else {
							require.LessOrEqual(t, c.Nodes, uint64(sc.samples+2)*uint64(tc.layers))
							require.GreaterOrEqual(t, c.Nodes, 2*uint64(tc.layers))
						}
						_, inManifest := sdr.ParentCacheManifest(sdr.ParentCacheName(s.graph))
						// A manifest cache is always checked against its digest;
						// checking every node, which reads parents from the
						// cache, checks any cache against recomputed parents.
						require.Equal(t, inManifest || sc.samples == AllNodes, c.ParentCache.Verified)
					}
				})
			}
			// One sector's own directory is a batch of one.
			res, err := Verify(context.Background(), VerifyConfig{Dir: s.dirs[0], ParentCache: s.cacheDir, Samples: 8})
			require.NoError(t, err)
			require.Len(t, res.Sectors, 1)
		})
	}
}

// TestVerifyFindsFlippedBit flips one bit of one label, in chosen and in
// random places, and checks that Verify names that sector, layer and node,
// having passed the sectors before it.
func TestVerifyFindsFlippedBit(t *testing.T) {
	const layers, sectors = 3, 3
	for _, g := range []*sdr.Graph{proofGraph(t, "StackedDrg2KiBV1_1"), func() *sdr.Graph {
		g, err := sdr.NewGraph(64<<10, sdr.Proofs()[5].PorepID(), sdr.APIVersion1_1)
		require.NoError(t, err)
		return g
	}()} {
		s := sealBatch(t, g, layers, sectors)
		last := g.Nodes() - 1
		type flipCase struct {
			name          string
			sector, layer int
			node          uint64
			byteInNode    int
			bit           int
			// samples: node 0 and the last node are always checked, so
			// sampling finds flips there; others need every node checked.
			samples int
		}
		cases := []flipCase{
			{name: "layer-1", sector: 1, layer: 1, node: 17, byteInNode: 3, bit: 2, samples: AllNodes},
			{name: "last-layer", sector: 2, layer: layers, node: 40, byteInNode: 31, bit: 5, samples: AllNodes},
			{name: "node-0-sampled", sector: 0, layer: 1, node: 0, byteInNode: 0, bit: 0, samples: 4},
			{name: "node-0-middle-layer", sector: 1, layer: 2, node: 0, byteInNode: 9, bit: 7, samples: 4},
			{name: "last-node-sampled", sector: 2, layer: layers, node: last, byteInNode: 31, bit: 7, samples: 4},
			{name: "last-node-layer-1-all", sector: 0, layer: 1, node: last, byteInNode: 12, bit: 1, samples: AllNodes},
		}
		rng := rand.New(rand.NewPCG(7, uint64(g.Nodes())))
		for i := range 4 {
			cases = append(cases, flipCase{
				name:   fmt.Sprintf("random-%d", i),
				sector: rng.IntN(sectors), layer: 1 + rng.IntN(layers), node: rng.Uint64N(g.Nodes()),
				byteInNode: rng.IntN(sdr.NodeSize), bit: rng.IntN(8), samples: AllNodes,
			})
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%s", sdr.FormatSize(g.SectorSize()), tc.name), func(t *testing.T) {
				restore := s.flip(t, tc.sector, tc.layer, tc.node, tc.byteInNode, tc.bit)
				defer restore()
				res, err := Verify(context.Background(), VerifyConfig{Dir: s.root, ParentCache: s.cacheDir, Samples: tc.samples, Seed: 1})
				require.Error(t, err)
				var mm *LabelMismatchError
				require.True(t, errors.As(err, &mm), "%v", err)
				require.Equal(t, tc.layer, mm.Layer, "%v", err)
				require.Equal(t, tc.node, mm.Node, "%v", err)
				require.Equal(t, s.layerPath(tc.sector, tc.layer), mm.File)
				require.NotEqual(t, mm.Got, mm.Want)
				require.ErrorContains(t, err, fmt.Sprintf("sector %s: layer %d: node %d: ", s.dirs[tc.sector], tc.layer, tc.node))
				require.Len(t, res.Sectors, tc.sector, "the sectors before the damaged one passed")
			})
		}
		// Every flip was undone: the batch passes again.
		_, err := Verify(context.Background(), VerifyConfig{Dir: s.root, ParentCache: s.cacheDir, Samples: AllNodes})
		require.NoError(t, err)
	}
}

// TestVerifyBrokenFiles damages files other than labels: layer files of the
// wrong size or missing, metadata missing or wrong, parent caches of the
// wrong digest or for another graph.
func TestVerifyBrokenFiles(t *testing.T) {
	g := proofGraph(t, "StackedDrg2KiBV1_1")
	g64k, err := sdr.NewGraph(64<<10, sdr.Proofs()[5].PorepID(), sdr.APIVersion1_1)
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		graph   *sdr.Graph
		samples int
		// damage breaks the batch and returns the parent cache to verify
		// with, or "" for the batch's own.
		damage func(t *testing.T, s *sealed) string
		want   []string
	}{
		{
			name: "truncated layer", graph: g, samples: 4,
			damage: func(t *testing.T, s *sealed) string {
				require.NoError(t, os.Truncate(s.layerPath(1, 2), 2048-32))
				return ""
			},
			want: []string{"sector-1: layer 2: layer file ", "sc-02-data-layer-2.dat is 2016 bytes, want 2048"},
		},
		{
			name: "layer too long", graph: g, samples: 4,
			damage: func(t *testing.T, s *sealed) string {
				require.NoError(t, os.Truncate(s.layerPath(0, 1), 4096))
				return ""
			},
			want: []string{"sector-0: layer 1: ", "is 4096 bytes, want 2048"},
		},
		{
			name: "missing layer", graph: g, samples: AllNodes,
			damage: func(t *testing.T, s *sealed) string {
				require.NoError(t, os.Remove(s.layerPath(1, 3)))
				return ""
			},
			want: []string{"sector-1: layer 3: ", "sc-02-data-layer-3.dat: no such file or directory"},
		},
		{
			name: "missing metadata", graph: g, samples: 4,
			damage: func(t *testing.T, s *sealed) string {
				require.NoError(t, os.Remove(blockio.SectorMetaPath(s.dirs[1])))
				return ""
			},
			want: []string{"sector-1: sector metadata: ", "pc1-tiered.json: no such file or directory"},
		},
		{
			name: "metadata with a short replica id", graph: g, samples: 4,
			damage: func(t *testing.T, s *sealed) string {
				require.NoError(t, os.WriteFile(blockio.SectorMetaPath(s.dirs[0]),
					[]byte(`{"version":1,"replica_id":"00ff","sector_size":2048,"porep_id":"`+fmt.Sprintf("%x", g.PorepID())+`","api_version":"1.1.0","layers":3}`), 0o644))
				return ""
			},
			want: []string{"pc1-tiered.json: replica_id: ", "got 2 bytes"},
		},
		{
			name: "wrong digest in a manifest cache", graph: g, samples: 4,
			damage: func(t *testing.T, s *sealed) string {
				dir := t.TempDir()
				require.NoError(t, os.WriteFile(filepath.Join(dir, sdr.ParentCacheFileName(g)), make([]byte, g.Nodes()*sdr.ParentCacheBytesPerNode), 0o644))
				return dir
			},
			want: []string{"sector-0: parent cache ", "has sha256", "want " + func() string {
				e, _ := sdr.ParentCacheManifest(sdr.ParentCacheName(g))
				return fmt.Sprintf("%x", e.Digest)
			}()},
		},
		{
			name: "wrong digest in another cache, all nodes", graph: g64k, samples: AllNodes,
			damage: func(t *testing.T, s *sealed) string {
				dir := t.TempDir()
				require.NoError(t, os.WriteFile(filepath.Join(dir, sdr.ParentCacheFileName(g64k)), make([]byte, g64k.Nodes()*sdr.ParentCacheBytesPerNode), 0o644))
				return dir
			},
			want: []string{"sector-0: parent cache ", "has sha256"},
		},
		{
			name: "cache of the wrong size", graph: g, samples: 4,
			damage: func(t *testing.T, s *sealed) string {
				dir := t.TempDir()
				require.NoError(t, os.WriteFile(filepath.Join(dir, sdr.ParentCacheFileName(g)), make([]byte, 1000), 0o644))
				return dir
			},
			want: []string{"is 1000 bytes, want 3584"},
		},
		{
			name: "cache file of another graph", graph: g, samples: 4,
			damage: func(t *testing.T, s *sealed) string {
				return filepath.Join(s.cacheDir, sdr.ParentCacheFileName(g64k))
			},
			want: []string{"is not this sector's"},
		},
		{
			name: "no sectors", graph: g, samples: 4,
			damage: func(t *testing.T, s *sealed) string {
				for _, d := range s.dirs {
					require.NoError(t, os.RemoveAll(d))
				}
				return ""
			},
			want: []string{"holds no sector"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sealBatch(t, tc.graph, 3, 2)
			cache := tc.damage(t, s)
			if cache == "" {
				cache = s.cacheDir
			}
			_, err := Verify(context.Background(), VerifyConfig{Dir: s.root, ParentCache: cache, Samples: tc.samples})
			require.Error(t, err)
			var mm *LabelMismatchError
			require.False(t, errors.As(err, &mm), "%v", err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestSampleNodes(t *testing.T) {
	for _, tc := range []struct {
		nodes uint64
		k     int
		all   bool
	}{
		{nodes: 64, k: 0},
		{nodes: 64, k: 10},
		{nodes: 64, k: 62, all: true},
		{nodes: 64, k: 1000, all: true},
		{nodes: 1 << 30, k: 100},
	} {
		t.Run(fmt.Sprintf("%d-of-%d", tc.k, tc.nodes), func(t *testing.T) {
			got := sampleNodes(rand.New(rand.NewPCG(3, 4)), tc.nodes, tc.k)
			again := sampleNodes(rand.New(rand.NewPCG(3, 4)), tc.nodes, tc.k)
			require.Equal(t, got, again, "the same seed samples the same nodes")
			require.Equal(t, uint64(0), got[0])
			require.Equal(t, tc.nodes-1, got[len(got)-1])
			for i := 1; i < len(got); i++ {
				require.Less(t, got[i-1], got[i], "ascending, no repeats")
			}
			if tc.all {
				require.Len(t, got, int(tc.nodes))
			} else {
				require.LessOrEqual(t, len(got), tc.k+2)
				require.Greater(t, len(got), tc.k*9/10)
			}
		})
	}
}
