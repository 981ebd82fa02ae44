package labeler

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
	"github.com/stretchr/testify/require"
)

func TestGroupSectors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers []int // start layer of each sector
		k      int
		want   [][]int
	}{
		{name: "off", layers: []int{1, 1, 1}, k: 1, want: [][]int{{0}, {1}, {2}}},
		{name: "pairs", layers: []int{1, 1, 1, 1}, k: 2, want: [][]int{{0, 1}, {2, 3}}},
		{name: "short last group", layers: []int{1, 1, 1, 1, 1}, k: 2, want: [][]int{{0, 1}, {2, 3}, {4}}},
		{name: "fours", layers: []int{2, 2, 2, 2, 2}, k: 4, want: [][]int{{0, 1, 2, 3}, {4}}},
		{name: "layers split groups", layers: []int{1, 2, 2, 2, 1, 1, 4}, k: 2, want: [][]int{{0}, {1, 2}, {3}, {4, 5}, {6}}},
		{name: "threes", layers: []int{3, 3, 1, 1, 1, 1}, k: 3, want: [][]int{{0, 1}, {2, 3, 4}, {5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			starts := make([]sectorStart, len(tc.layers))
			for i, l := range tc.layers {
				starts[i].layer = l
			}
			require.Equal(t, tc.want, groupSectors(starts, tc.k))
		})
	}
}

// TestLockstepChoice checks the automatic group size and the refusals of
// forced ones, for 64 KiB sectors in 4 KiB blocks: with 8 sectors hashing
// at once, single-sector pools span [9S, 16S], pools of pairs [10S, 16S].
func TestLockstepChoice(t *testing.T) {
	const s = 64 << 10
	g, err := sdr.NewGraph(s, sdr.Proofs()[5].PorepID(), sdr.APIVersion1_1)
	require.NoError(t, err)
	cores := runtime.GOMAXPROCS(0)
	for _, tc := range []struct {
		name                string
		lockstep, batch     int
		sectors, parallel   int
		cores               int
		noSHANI             bool
		poolSize, dram      uint64
		want                int
		err                 string
		validateErr, runErr bool
	}{
		{name: "two sectors per core", sectors: 8, parallel: 8, cores: 4, want: 2},
		{name: "three sectors per core", sectors: 6, parallel: 6, cores: 2, want: 3},
		{name: "four sectors per core", sectors: 8, parallel: 8, cores: 2, want: 4},
		{name: "eight sectors per core", sectors: 16, parallel: 16, cores: 2, want: 4},
		{name: "budget fits pairs' pool, not fours'", sectors: 8, parallel: 8, cores: 2, dram: 10 * s, want: 2},
		{name: "more sectors than slots", sectors: 16, parallel: 8, cores: 4, want: 2},
		{name: "fewer than two per core", sectors: 7, parallel: 7, cores: 4, want: 1},
		{name: "slots for one per core", sectors: 16, parallel: 4, cores: 4, want: 1},
		{name: "default parallel is one per core", sectors: 64, cores: cores, want: 1},
		{name: "no SHA extensions", sectors: 8, parallel: 8, cores: 4, noSHANI: true, want: 1},
		{name: "spill: one batch of all", sectors: 8, parallel: 8, cores: 4, dram: s, want: 8},
		{name: "spill: slots bound the batch", sectors: 16, parallel: 6, cores: 2, dram: s, want: 6},
		{name: "budget below pairs' pool", sectors: 8, parallel: 8, cores: 4, dram: 9 * s, want: 1},
		{name: "budget fits pairs' pool", sectors: 8, parallel: 8, cores: 4, dram: 10 * s, want: 2},
		{name: "pool size below pairs' pool", sectors: 8, parallel: 8, cores: 4, poolSize: 9 * s, want: 1},
		{name: "pool size fits pairs' pool", sectors: 8, parallel: 8, cores: 4, poolSize: 10 * s, want: 2},
		{name: "off", lockstep: 1, sectors: 8, parallel: 8, cores: 4, want: 1},
		{name: "forced 3", lockstep: 3, sectors: 8, parallel: 8, cores: 4, want: 3},
		{name: "forced without SHA extensions", lockstep: 2, sectors: 2, parallel: 2, cores: 4, noSHANI: true, want: 2},
		{name: "forced 4 on 2 sectors", lockstep: 4, sectors: 2, parallel: 2, cores: 4, want: 2},
		{name: "forced on 1 sector", lockstep: 2, sectors: 1, cores: 4, want: 1},
		{name: "forced 4, default parallel: a group per core", lockstep: 4, sectors: 4, cores: 2, want: 4},
		{name: "forced 4, parallel below a group", lockstep: 4, sectors: 4, parallel: 2, cores: 2, err: "parallel 2 lets only 2 sectors hash at once"},
		{name: "forced with spill", lockstep: 2, sectors: 8, parallel: 8, cores: 4, dram: s, want: 2},
		{name: "forced below its pool minimum spills", lockstep: 2, sectors: 8, parallel: 8, cores: 4, dram: 9 * s, want: 2},
		{name: "batch 64 of 8 sectors", batch: 64, sectors: 8, cores: 2, want: 8},
		{name: "batch 5, default parallel", batch: 5, sectors: 12, cores: 2, dram: s, want: 5},
		{name: "batch 128", batch: 128, sectors: 128, cores: 2, dram: s, want: 128},
		{name: "batch too large", batch: 129, sectors: 8, err: "batch 129", validateErr: true},
		{name: "batch negative", batch: -2, sectors: 8, err: "batch -2", validateErr: true},
		{name: "batch and lockstep differ", batch: 3, lockstep: 2, sectors: 8, err: "older name", validateErr: true},
		{name: "forced outside pool size", lockstep: 2, sectors: 8, parallel: 8, cores: 4, poolSize: 9 * s, err: "pool size 576 KiB is outside [640 KiB, 1.0 MiB]"},
		{name: "too large", lockstep: 5, sectors: 8, err: "lockstep 5", validateErr: true},
		{name: "negative", lockstep: -1, sectors: 8, err: "lockstep -1", validateErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{
				Graph: g, ParentCache: "unused", Layers: 2, Sectors: make([]Sector, tc.sectors),
				Options: Options{BlockSize: 4 << 10, Parallel: tc.parallel, PoolSize: tc.poolSize, DRAMBudget: tc.dram, Lockstep: tc.lockstep, Batch: tc.batch},
			}
			err := cfg.validate()
			if tc.validateErr {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			k, err := cfg.groupSize(tc.cores, !tc.noSHANI)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, k)
		})
	}
}

// TestRunBatchSpillMatchesReference runs batches through the spill tier
// at every split of their DRAM: everything but one block of the window on
// the device, the expander layer partly in DRAM, the expander layer whole
// with a window; batches of every kernel width, split into subgroups
// evenly or not, several batches with a short last one, spill files on one
// directory and striped over two; and checks every layer file against the
// oracle.
func TestRunBatchSpillMatchesReference(t *testing.T) {
	const sectorSize, blockSize = 64 << 10, 4 << 10
	f := newFixture(t, sectorSize, 3, 64)
	for _, tc := range []struct {
		name           string
		batch, sectors int
		dramBlocks     []int // per batch, in batch blocks
		stripes        int
	}{
		{name: "B=2", batch: 2, sectors: 2, dramBlocks: []int{1, 9, 17}, stripes: 1},
		{name: "B=3", batch: 3, sectors: 3, dramBlocks: []int{1, 6, 20}, stripes: 2},
		{name: "B=5", batch: 5, sectors: 5, dramBlocks: []int{2, 18}, stripes: 1},
		{name: "B=8", batch: 8, sectors: 8, dramBlocks: []int{1, 10}, stripes: 2},
		{name: "B=3 of 7", batch: 3, sectors: 7, dramBlocks: []int{4}, stripes: 1},
		// Two records a page, pages striped over three directories.
		{name: "B=64", batch: 64, sectors: 64, dramBlocks: []int{1, 9, 17}, stripes: 3},
	} {
		for _, dram := range tc.dramBlocks {
			t.Run(fmt.Sprintf("%s/dram=%d-blocks", tc.name, dram), func(t *testing.T) {
				sectors, dirs := f.sectors(t, tc.sectors)
				var spillDirs []string
				for range tc.stripes {
					spillDirs = append(spillDirs, t.TempDir())
				}
				batches := (tc.sectors + tc.batch - 1) / tc.batch
				res, err := Run(context.Background(), Config{
					Graph: f.graph, ParentCache: f.cache, Layers: 3, Sectors: sectors,
					Options: Options{BlockSize: blockSize, Parallel: tc.sectors, Batch: tc.batch, SpillDirs: spillDirs,
						DRAMBudget: uint64(dram*batches*tc.batch) * blockSize},
				})
				require.NoError(t, err)
				require.NotNil(t, res.Spill)
				require.Equal(t, tc.batch, res.Spill.Lanes)
				require.NotZero(t, res.Spill.SpillWrites)
				require.NotZero(t, res.Spill.DeviceReads)
				require.LessOrEqual(t, res.PoolSize, res.DRAMBudget)
				f.check(t, dirs)
				// Spill files are anonymous: nothing is left behind.
				for _, d := range spillDirs {
					entries, err := os.ReadDir(d)
					require.NoError(t, err)
					require.Empty(t, entries)
				}
			})
		}
	}
}

// TestRunWideBatchDenseSpill seals a batch of 128 sectors (one record a
// page) with one expander block and a window of four in DRAM, so that
// most parents are read from the device, in sectors large enough that two
// fixed steps of 256 nodes could need more pages than the 4096 the
// prefetcher may hold: with such steps this seal hung in layer 2 (the job
// waiting in ColdLabels.Next for a page, the prefetcher in its wait for
// the job to move on), as did `seal --sector-size 8MiB
// --sectors 128 --batch 128 --dram 100MiB`. Steps now end where their
// cold parents fill their share (tier.BatchStepColdParents). The first two
// sectors are checked against the reference labeler, the last (the far
// end of every record) by recomputing each of its nodes.
func TestRunWideBatchDenseSpill(t *testing.T) {
	if testing.Short() {
		t.Skip("128 sectors of 1 MiB: left out of the -short (race) run")
	}
	const sectorSize, blockSize, batch, layers = 1 << 20, 16 << 10, 128, 2
	f := newFixture(t, sectorSize, layers, 2)
	sectors, dirs := f.sectors(t, batch)
	res, err := Run(context.Background(), Config{
		Graph: f.graph, ParentCache: f.cache, Layers: layers, Sectors: sectors,
		Options: Options{BlockSize: blockSize, Parallel: batch, Batch: batch, SpillDirs: []string{t.TempDir()},
			DRAMBudget: 5 * batch * blockSize},
	})
	require.NoError(t, err)
	require.NotNil(t, res.Spill)
	require.Equal(t, batch, res.Spill.Lanes)
	require.Equal(t, 1, res.Spill.Expander)
	require.Equal(t, 4, res.Spill.Window)
	nodeGroups := f.graph.Nodes() * layers
	require.Greater(t, res.Spill.DeviceReads, 4*nodeGroups, "dense: several page reads a node of the batch")
	f.check(t, dirs[:2])
	v, err := Verify(context.Background(), VerifyConfig{Dir: dirs[batch-1], ParentCache: f.cache, Samples: AllNodes})
	require.NoError(t, err)
	require.Len(t, v.Sectors, 1)
}

// TestRunLockstepMatchesReference runs groups of 2, 3 and 4 sectors, with
// a short last group, at the smallest, default and largest pools for
// their groups, and checks every layer file against the oracle.
func TestRunLockstepMatchesReference(t *testing.T) {
	cases := []struct {
		name       string
		sectorSize uint64
		blockSize  uint64
		layers     int
		k          int
		sectors    []int
		portable   bool
	}{
		{name: "64KiB/k2", sectorSize: 64 << 10, blockSize: 4 << 10, layers: 3, k: 2, sectors: []int{2, 3}},
		{name: "64KiB/k3", sectorSize: 64 << 10, blockSize: 4 << 10, layers: 3, k: 3, sectors: []int{5}},
		{name: "64KiB/k4", sectorSize: 64 << 10, blockSize: 4 << 10, layers: 3, k: 4, sectors: []int{4, 5}},
		{name: "64KiB/k2/portable", sectorSize: 64 << 10, blockSize: 4 << 10, layers: 3, k: 2, sectors: []int{3}, portable: true},
		{name: "2KiB/k2/tiny-blocks", sectorSize: 2 << 10, blockSize: 256, layers: 4, k: 2, sectors: []int{3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.sectorSize, tc.layers, tc.sectors[len(tc.sectors)-1])
			for _, n := range tc.sectors {
				minSize, defSize, maxSize := pool.Bounds(uint64(tc.k)*tc.sectorSize, groupsOf(n, tc.k))
				for _, size := range []struct {
					name  string
					bytes uint64
				}{{"min", minSize}, {"default", defSize}, {"max", maxSize}} {
					t.Run(fmt.Sprintf("N=%d/%s", n, size.name), func(t *testing.T) {
						sectors, dirs := f.sectors(t, n)
						res, err := Run(context.Background(), Config{
							Graph:       f.graph,
							ParentCache: f.cache,
							Layers:      tc.layers,
							Sectors:     sectors,
							portable:    tc.portable,
							Options:     Options{PoolSize: size.bytes, BlockSize: tc.blockSize, Parallel: n, Lockstep: tc.k},
						})
						require.NoError(t, err)
						require.Equal(t, tc.k, res.Lockstep)
						wantKernel := fmt.Sprintf("sha-ni x%d", tc.k)
						if tc.portable || !cpuHasSHANI() {
							wantKernel = "portable"
						}
						require.Equal(t, wantKernel, res.Kernel)
						require.Equal(t, tc.blockSize, res.BlockSize)
						require.LessOrEqual(t, res.PoolPeak, res.PoolSize)
						for _, s := range res.Sectors {
							require.Equal(t, f.graph.Nodes()*uint64(tc.layers), s.Nodes)
							require.NotZero(t, s.Hashing)
						}
						f.check(t, dirs)
					})
				}
			}
		})
	}
}

// TestRunLockstepOff checks that lockstep 1 reports the single-sector
// kernel.
func TestRunLockstepOff(t *testing.T) {
	f := newFixture(t, 64<<10, 2, 2)
	sectors, dirs := f.sectors(t, 2)
	res, err := Run(context.Background(), Config{
		Graph: f.graph, ParentCache: f.cache, Layers: 2, Sectors: sectors,
		Options: Options{BlockSize: 4 << 10, Parallel: 2, Lockstep: 1},
	})
	require.NoError(t, err)
	require.Equal(t, 1, res.Lockstep)
	require.Equal(t, kernelName(1, cpuHasSHANI()), res.Kernel)
	f.check(t, dirs)
}

// requireWholeSectors checks each sector's accounting after a resumed run:
// what it resumed plus what it labeled is the whole sector, unless an
// earlier run had committed all of it.
func requireWholeSectors(t *testing.T, f *fixture, res *Result) uint64 {
	t.Helper()
	var resumed uint64
	for i, s := range res.Sectors {
		if s.Nodes == 0 && s.ResumedLayer == 0 {
			continue // complete before this run
		}
		done := s.Nodes
		if s.ResumedLayer > 0 {
			done += uint64(s.ResumedLayer-1)*f.graph.Nodes() + s.ResumedNode
			resumed += uint64(s.ResumedLayer-1)*f.graph.Nodes() + s.ResumedNode
		}
		require.Equal(t, uint64(f.layers)*f.graph.Nodes(), done, "sector %d: resumed work plus new work is the whole sector", i)
	}
	return resumed
}

// TestRunLockstepCancelledResumes cancels lockstep batches part-way and
// runs them again, with groups of the same size, another size, or none:
// each sector resumes and ends with the reference's layers.
func TestRunLockstepCancelledResumes(t *testing.T) {
	const sectorSize, block = 64 << 10, 4 << 10
	f := newFixture(t, sectorSize, 3, 3)
	for _, tc := range []struct {
		name     string
		cancelAt int32 // OnProgress call (one per sector and block) that cancels
		k        int   // the resumed run's lockstep
	}{
		{name: "layer 1", cancelAt: 7, k: 2},
		{name: "layer 2", cancelAt: 60, k: 2},
		{name: "last layer", cancelAt: 110, k: 2},
		{name: "layer 2, resumed alone", cancelAt: 55, k: 1},
		{name: "layer 2, resumed in threes", cancelAt: 65, k: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sectors, dirs := f.sectors(t, 3)
			ctx, cancel := context.WithCancel(context.Background())
			var calls atomic.Int32
			cfg := Config{Graph: f.graph, ParentCache: f.cache, Layers: 3, Sectors: sectors, Options: Options{BlockSize: block, Parallel: 3, Lockstep: 2}}
			cfg.OnProgress = func(int, int, uint64) {
				if calls.Add(1) == tc.cancelAt {
					cancel()
				}
			}
			_, err := Run(ctx, cfg)
			require.ErrorIs(t, err, context.Canceled)

			cfg.OnProgress = nil
			cfg.Lockstep = tc.k
			res, err := Run(context.Background(), cfg)
			require.NoError(t, err)
			require.Empty(t, res.Warnings)
			require.Equal(t, tc.k, res.Lockstep)
			require.NotZero(t, requireWholeSectors(t, f, res), "the second run resumed work")
			f.check(t, dirs)
		})
	}
}

// TestRunLockstepResumesUnevenLanes prepares sectors cancelled at
// different points, each on its own, then labels them in lockstep groups:
// sectors resuming in the same layer share a group, which restarts at its
// lanes' shortest durable prefix; the others label apart.
func TestRunLockstepResumesUnevenLanes(t *testing.T) {
	const sectorSize, block = 64 << 10, 4 << 10
	const perLayer = sectorSize / block
	f := newFixture(t, sectorSize, 3, 3)
	nodesPerBlock := uint64(block / sdr.NodeSize)
	for _, tc := range []struct {
		name string
		// cancelAt[i] is the OnProgress call (one per block) that cancels
		// sector i's own run; 0 lets it finish.
		cancelAt []int32
		// wantLayer and wantBlock are where each sector resumes in the
		// lockstep run (0, 0: it was complete).
		wantLayer, wantBlock []int
	}{
		{name: "same layer 1", cancelAt: []int32{3, 9, 6}, wantLayer: []int{1, 1, 1}, wantBlock: []int{3, 3, 6}},
		{name: "same layer 2", cancelAt: []int32{perLayer + 11, perLayer + 2, perLayer + 5}, wantLayer: []int{2, 2, 2}, wantBlock: []int{2, 2, 5}},
		{name: "layers differ", cancelAt: []int32{5, perLayer + 4, perLayer + 8}, wantLayer: []int{1, 2, 2}, wantBlock: []int{5, 4, 4}},
		{name: "one complete", cancelAt: []int32{0, 2*perLayer + 1, 2*perLayer + 9}, wantLayer: []int{0, 3, 3}, wantBlock: []int{0, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sectors, dirs := f.sectors(t, 3)
			for i, at := range tc.cancelAt {
				ctx, cancel := context.WithCancel(context.Background())
				var calls atomic.Int32
				_, err := Run(ctx, Config{
					Graph: f.graph, ParentCache: f.cache, Layers: 3, Sectors: sectors[i : i+1],
					OnProgress: func(int, int, uint64) {
						if calls.Add(1) == at {
							cancel()
						}
					},
					Options: Options{BlockSize: block, Lockstep: 1},
				})
				cancel()
				if at == 0 {
					require.NoError(t, err)
				} else {
					require.ErrorIs(t, err, context.Canceled)
				}
			}
			res, err := Run(context.Background(), Config{
				Graph: f.graph, ParentCache: f.cache, Layers: 3, Sectors: sectors,
				Options: Options{BlockSize: block, Parallel: 3, Lockstep: 2},
			})
			require.NoError(t, err)
			require.Empty(t, res.Warnings)
			require.Equal(t, 2, res.Lockstep)
			for i, s := range res.Sectors {
				require.Equal(t, tc.wantLayer[i], s.ResumedLayer, "sector %d", i)
				require.Equal(t, uint64(tc.wantBlock[i])*nodesPerBlock, s.ResumedNode, "sector %d", i)
			}
			requireWholeSectors(t, f, res)
			f.check(t, dirs)
		})
	}
}

// laneFixture is a lockstep group's layers in Go memory, with the parent
// table of a 64 KiB graph, to drive groupLabeler directly.
type laneFixture struct {
	g       *sdr.Graph
	parents []uint32
	lanes   []*lane
}

func newLaneFixture(t testing.TB, k int, useSHANI bool, rng *rand.Rand) *laneFixture {
	g, err := sdr.NewGraph(64<<10, sdr.Proofs()[5].PorepID(), sdr.APIVersion1_1)
	require.NoError(t, err)
	const nodesPerBlock = 128 // 4 KiB blocks
	blocks := int(g.Nodes() / nodesPerBlock)
	lf := &laneFixture{g: g, parents: sdr.ParentTable(g)}
	// The batch's blocks, node-major: lane s's label of node i at
	// 32 (k i + s) of its block.
	layer := func(random bool) [][]byte {
		var blks [][]byte
		for range blocks {
			blk := make([]byte, k*nodesPerBlock*sdr.NodeSize)
			if random {
				for i := range blk {
					blk[i] = byte(rng.Uint32())
				}
			}
			blks = append(blks, blk)
		}
		return blks
	}
	curBlocks, prevBlocks := layer(false), layer(true)
	view := func(blks [][]byte, s int) *layerView {
		v := newLaneView(blocks, nodesPerBlock, k, s)
		for b, blk := range blks {
			v.SetBlock(b, blk)
		}
		return v
	}
	for s := range k {
		id := replicaID(s)
		id[0] = byte(rng.Uint32())
		lf.lanes = append(lf.lanes, &lane{
			idx:    s,
			sector: Sector{ReplicaID: id},
			nl:     newNodeLabeler(useSHANI),
			cur:    view(curBlocks, s),
			prev:   view(prevBlocks, s),
		})
	}
	return lf
}

// batchSizes are the batch sizes the labeler tests run: each kernel width
// alone, and batches split into subgroups, evenly or not.
var batchSizes = []int{2, 3, 4, 5, 8, 13}

// TestBatchLabelerMatchesSingle labels whole layers with batchLabeler, in
// ranges of awkward lengths (shorter than the prefetch distance, crossing
// blocks), and checks each lane against nodeLabeler.labelRange on the same
// inputs, on both paths and in layers 1 and 2.
func TestBatchLabelerMatchesSingle(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, k := range batchSizes {
		for _, useSHANI := range multiPaths() {
			for _, layer := range []int{1, 2} {
				hashers := 1 + k%3 // one core, or several
				t.Run(fmt.Sprintf("k%d/%s/layer%d/hashers%d", k, pathName(useSHANI), layer, hashers), func(t *testing.T) {
					lf := newLaneFixture(t, k, useSHANI, rng)
					g, err := newBatchLabeler(lf.lanes, useSHANI, hashers, hashAffinity{})
					require.NoError(t, err)
					defer g.close()
					for _, ln := range lf.lanes {
						ln.nl.reset(&ln.sector.ReplicaID, layer)
					}
					g.reset(lf.lanes, layer)
					nodes := lf.g.Nodes()
					for first, i := uint64(0), 0; first < nodes; i++ {
						n := min(nodes-first, []uint64{1, 3, 4, 5, 700, 129}[i%6])
						g.labelRange(first, n, lf.parents[first*sdr.Degree:])
						first += n
					}
					for s, ln := range lf.lanes {
						single := newNodeLabeler(useSHANI && cpuHasSHANI())
						single.reset(&ln.sector.ReplicaID, layer)
						want := newLayerView(len(ln.cur.blocks), 128)
						for b := range want.blocks {
							want.SetBlock(b, make([]byte, len(ln.cur.blocks[b])))
						}
						single.labelRange(0, nodes, lf.parents, want, ln.prev)
						for i := range uint32(nodes) {
							require.Equal(t, *want.label(i), *ln.cur.label(i), "lane %d node %d", s, i)
						}
					}
				})
			}
		}
	}
}

// TestBatchLabelerAllocs checks that the batch's hot loop allocates
// nothing.
func TestBatchLabelerAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, k := range batchSizes {
		for _, useSHANI := range multiPaths() {
			lf := newLaneFixture(t, k, useSHANI, rng)
			g, err := newBatchLabeler(lf.lanes, useSHANI, 2, hashAffinity{})
			require.NoError(t, err)
			defer g.close()
			for _, ln := range lf.lanes {
				ln.nl.reset(&ln.sector.ReplicaID, 2)
			}
			g.reset(lf.lanes, 2)
			allocs := testing.AllocsPerRun(3, func() { g.labelRange(0, 512, lf.parents) })
			require.Zero(t, allocs, "k=%d %s", k, pathName(useSHANI))
		}
	}
}

// BenchmarkRunLockstep runs the whole labeler on four 8 MiB sectors with
// two layers, four hashing at once, alone (k1) and in pairs (k2), each
// iteration into fresh directories (the same ones would resume as
// complete). It reports ns/node, the batch's wall time per label;
// busy_cores, hashing time over wall time; and sha_limit_ratio per busy
// core: labels per second of hashing time (summed over sectors, so core
// time) times 20 compressions, over one crypto/sha256 stream's compression
// rate measured right after. cpu_sha_limit_ratio is the same with both
// rates per second of the threads' CPU time (for the labeler, hashing
// minus stalled time), which holds up better on a shared machine: time a
// thread was descheduled is not counted. Above 1, the pairs beat one
// stream.
func BenchmarkRunLockstep(b *testing.B) {
	p, err := sdr.ProofByName("StackedDrg8MiBV1_1")
	require.NoError(b, err)
	g, err := sdr.NewProofGraph(p)
	require.NoError(b, err)
	info, err := blockio.EnsureParentCache(context.Background(), g, b.TempDir(), blockio.ParentCacheOptions{})
	require.NoError(b, err)
	const n, layers = 4, 2
	for _, k := range []int{1, 2} {
		b.Run(fmt.Sprintf("k%d", k), func(b *testing.B) {
			var wall, busy, cpu time.Duration
			var nodes uint64
			var res *Result
			for b.Loop() {
				root := b.TempDir()
				var sectors []Sector
				for i := range n {
					dir := filepath.Join(root, fmt.Sprint(i))
					require.NoError(b, os.Mkdir(dir, 0o755))
					sectors = append(sectors, Sector{ReplicaID: replicaID(i), Dir: dir})
				}
				res, err = Run(context.Background(), Config{
					Graph: g, ParentCache: info.Path, Layers: layers, Sectors: sectors,
					Options: Options{Parallel: n, Lockstep: k},
				})
				require.NoError(b, err)
				wall += res.Wall
				for _, s := range res.Sectors {
					busy += s.Hashing
					cpu += s.Hashing - s.Stalled
					nodes += s.Nodes
				}
				require.NoError(b, os.RemoveAll(root))
			}
			b.StopTimer()
			require.Equal(b, k, res.Lockstep)
			require.Equal(b, uint64(b.N*n*layers)*g.Nodes(), nodes)
			rate, cpuRate := sha256CompressionRate()
			b.ReportMetric(wall.Seconds()*1e9/float64(nodes), "ns/node")
			b.ReportMetric(busy.Seconds()/wall.Seconds(), "busy_cores")
			b.ReportMetric(float64(sdr.CompressionsPerNode)*float64(nodes)/busy.Seconds()/rate, "sha_limit_ratio")
			b.ReportMetric(float64(sdr.CompressionsPerNode)*float64(nodes)/cpu.Seconds()/cpuRate, "cpu_sha_limit_ratio")
		})
	}
}

// sha256CompressionRate is one crypto/sha256 stream's compressions per
// second over 64 KiB writes, the best of five 40 ms runs, as
// bench.MeasureSHA256Rate measures it: per second of wall time and per
// second of the thread's CPU time.
func sha256CompressionRate() (wall, cpu float64) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, 64<<10)
	h := sha256.New()
	for range 5 {
		start, cpuStart := time.Now(), threadCPU()
		var blocks int
		for time.Since(start) < 40*time.Millisecond {
			h.Write(buf)
			blocks += len(buf) / 64
		}
		wall = max(wall, float64(blocks)/time.Since(start).Seconds())
		cpu = max(cpu, float64(blocks)/(threadCPU()-cpuStart).Seconds())
	}
	return wall, cpu
}

// BenchmarkGroupLabelRange times the hot loop alone on a whole in-memory
// 8 MiB layer 2 (as BenchmarkLabelRange), for one sector (labelRange) and
// for groups of 2 to 4 (groupLabeler), the lanes' labels interleaved in
// the blocks as the pool places them (laneIO). ns/node is per label, thread CPU time;
// cpu_sha_limit_ratio is the label rate times 20 compressions over one
// crypto/sha256 stream's rate, both per second of CPU time.
func BenchmarkGroupLabelRange(b *testing.B) {
	if !multiSHANI() {
		b.Skip("no SHA extensions")
	}
	p, err := sdr.ProofByName("StackedDrg8MiBV1_1")
	require.NoError(b, err)
	g, err := sdr.NewProofGraph(p)
	require.NoError(b, err)
	parents := sdr.ParentTable(g)
	const blockSize = 512 << 10
	const nodesPerBlock = blockSize / sdr.NodeSize
	perLayer := int(g.SectorSize() / blockSize)
	nodes := g.Nodes()
	if v, err := strconv.Atoi(os.Getenv("PC1_BATCH_PREFETCH_BYTES")); err == nil {
		batchPrefetchBytes = v
	}
	for _, bc := range []struct{ k, hashers int }{{1, 1}, {2, 1}, {3, 1}, {4, 1}, {8, 1}, {8, 2}, {16, 2}, {64, 1}, {64, 2}} {
		k := bc.k
		b.Run(fmt.Sprintf("k%d/hashers%d", k, bc.hashers), func(b *testing.B) {
			arena, _, err := tier.NewArena(2*perLayer, uint64(k)*blockSize, tier.ArenaOptions{Populate: true})
			require.NoError(b, err)
			defer arena.Close()
			var lanes []*lane
			for s := range k {
				ln := &lane{nl: newNodeLabeler(true), cur: newLaneView(perLayer, nodesPerBlock, k, s), prev: newLaneView(perLayer, nodesPerBlock, k, s)}
				ln.sector.ReplicaID = replicaID(s)
				for i := range perLayer {
					ln.cur.SetBlock(i, arena.Block(i))
					prev := arena.Block(perLayer + i)
					if s == 0 {
						for j := range prev {
							prev[j] = byte(i*31 + j)
						}
					}
					ln.prev.SetBlock(i, prev)
				}
				ln.nl.reset(&ln.sector.ReplicaID, 2)
				lanes = append(lanes, ln)
			}
			var gl *batchLabeler
			if k > 1 {
				gl, err = newBatchLabeler(lanes, true, bc.hashers, hashAffinity{})
				require.NoError(b, err)
				defer gl.close()
				gl.reset(lanes, 2)
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpuStart := threadCPU()
			wallStart := time.Now()
			for b.Loop() {
				if gl != nil {
					gl.labelRange(0, nodes, parents)
				} else {
					lanes[0].nl.labelRange(0, nodes, parents, lanes[0].cur, lanes[0].prev)
				}
			}
			cpu := threadCPU() - cpuStart
			wall := time.Since(wallStart)
			if gl != nil {
				cpu += time.Duration(gl.helperCPU.Load())
			}
			b.StopTimer()
			labels := float64(uint64(b.N*k) * nodes)
			_, cpuRate := sha256CompressionRate()
			b.ReportMetric(labels/wall.Seconds(), "labels/s")
			b.ReportMetric(cpu.Seconds()*1e9/labels, "ns/node")
			b.ReportMetric(sdr.CompressionsPerNode*labels/cpu.Seconds()/cpuRate, "cpu_sha_limit_ratio")
		})
	}
}

// TestBatchedParallel: a seal told nothing takes k sectors a core for the
// widest k <= 4 its sectors allow and whose default pool fits the memory,
// and nothing when it was told anything about parallelism, grouping or
// DRAM, or when there is no multi-stream kernel.
func TestBatchedParallel(t *testing.T) {
	const s = 64 << 10
	g, err := sdr.NewGraph(s, sdr.Proofs()[5].PorepID(), sdr.APIVersion1_1)
	require.NoError(t, err)
	cores := HashingCores()
	// The default pool of n batches of k sectors: (3n+1)/2 x k x S.
	pool := func(k int) uint64 { n := uint64(cores); return (3*n + 1) * uint64(k) * s / 2 }
	plenty := uint64(1) << 40
	for _, tc := range []struct {
		name    string
		sectors int
		opts    Options
		mem     uint64
		want    int // sectors a core; 0: no change
	}{
		{name: "four a core", sectors: 4*cores + 1, mem: plenty, want: 4},
		{name: "three a core: the sectors allow no more", sectors: 3 * cores, mem: plenty, want: 3},
		{name: "two a core", sectors: 2 * cores, mem: plenty, want: 2},
		{name: "fewer than two a core", sectors: 2*cores - 1, mem: plenty},
		{name: "memory fits threes' pool, not fours'", sectors: 8 * cores, mem: pool(3), want: 3},
		{name: "memory fits no batch", sectors: 8 * cores, mem: pool(2) - 1},
		{name: "parallel given", sectors: 8 * cores, opts: Options{Parallel: cores}, mem: plenty},
		{name: "batch given", sectors: 8 * cores, opts: Options{Batch: 2}, mem: plenty},
		{name: "lockstep given", sectors: 8 * cores, opts: Options{Lockstep: 2}, mem: plenty},
		{name: "DRAM given", sectors: 8 * cores, opts: Options{DRAMBudget: 1 << 30}, mem: plenty},
		{name: "pool size given", sectors: 8 * cores, opts: Options{PoolSize: 1 << 30}, mem: plenty},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Graph: g, Layers: 2, Options: tc.opts}
			for i := range tc.sectors {
				c.Sectors = append(c.Sectors, Sector{ReplicaID: replicaID(i)})
			}
			got := c.BatchedParallel(tc.mem)
			if !multiSHANI() {
				require.Zero(t, got, "no multi-stream kernels: nothing to batch for")
				return
			}
			require.Equal(t, tc.want*cores, got)
			if got > 0 {
				// The labeler then picks that grouping by itself.
				c.Parallel = got
				require.NoError(t, c.validate())
				k, err := c.groupSize(cores, true)
				require.NoError(t, err)
				require.Equal(t, tc.want, k)
			}
		})
	}
}

// TestChunkSyncWaitFor checks that the job's wait for its helpers returns
// once they have finished, whether they finish while it spins or after it
// has gone to sleep (helpers late by more than spinBeforePark), with no
// wake-up lost between its last look and its sleep.
func TestChunkSyncWaitFor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		helpers int
		late    time.Duration // the most a helper's chunk ends after it starts
	}{
		{name: "one helper, while the job spins", helpers: 1, late: spinBeforePark / 4},
		{name: "one helper, around the sleep", helpers: 1, late: 3 * spinBeforePark},
		{name: "three helpers, around the sleep", helpers: 3, late: 3 * spinBeforePark},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := newChunkSync(tc.helpers)
			rng := rand.New(rand.NewPCG(5, uint64(tc.helpers)))
			const chunks = 200
			for c := uint64(1); c <= chunks; c++ {
				require.False(t, cs.finished(c), "chunk %d before its helpers ran", c)
				var wg sync.WaitGroup
				for range tc.helpers {
					d := time.Duration(rng.Int64N(int64(tc.late)))
					wg.Go(func() {
						time.Sleep(d)
						cs.finishChunk()
					})
				}
				returned := make(chan struct{})
				go func() {
					cs.waitFor(c)
					close(returned)
				}()
				select {
				case <-returned:
				case <-time.After(10 * time.Second):
					t.Fatalf("chunk %d: waitFor did not return with every helper done", c)
				}
				require.True(t, cs.finished(c))
				wg.Wait()
			}
		})
	}
}
