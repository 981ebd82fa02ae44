package labeler

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// fixture is one graph with its parent cache and the oracle's layers for a
// few replica ids, computed once per test binary run and shared by cases.
type fixture struct {
	graph  *sdr.Graph
	cache  string
	layers int
	// want[replica][layer-1] is the oracle's layer.
	want [][][]byte
}

func replicaID(i int) [32]byte {
	var id [32]byte
	for j := range id {
		id[j] = byte(i*37 + j)
	}
	id[31] &= 0x3f
	return id
}

func newFixture(t *testing.T, sectorSize uint64, layers, replicas int) *fixture {
	t.Helper()
	porep := sdr.Proofs()[5].PorepID() // StackedDrg2KiBV1_1's id, any size
	g, err := sdr.NewGraph(sectorSize, porep, sdr.APIVersion1_1)
	require.NoError(t, err)
	info, err := blockio.EnsureParentCache(context.Background(), g, t.TempDir(), blockio.ParentCacheOptions{})
	require.NoError(t, err)
	f := &fixture{graph: g, cache: info.Path, layers: layers}
	table := sdr.ParentTable(g)
	for r := 0; r < replicas; r++ {
		var layersOut [][]byte
		err := sdr.ReferenceLabels(g, table, replicaID(r), layers, func(layer int, labels []byte) error {
			layersOut = append(layersOut, bytes.Clone(labels))
			return nil
		})
		require.NoError(t, err)
		f.want = append(f.want, layersOut)
	}
	return f
}

func (f *fixture) check(t *testing.T, dirs []string) {
	t.Helper()
	for i, dir := range dirs {
		for layer := 1; layer <= f.layers; layer++ {
			got, err := os.ReadFile(filepath.Join(dir, sdr.LayerFileName(layer)))
			require.NoError(t, err)
			require.True(t, bytes.Equal(f.want[i][layer-1], got), "sector %d layer %d differs from the reference labeler", i, layer)
		}
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Len(t, entries, f.layers+1, "only final layer files and the metadata remain in %s", dir)
		meta, err := blockio.ReadSectorMeta(dir)
		require.NoError(t, err)
		want := blockio.NewSectorMeta(f.graph, replicaID(i), f.layers)
		for layer := 1; layer <= f.layers; layer++ {
			want.LayerChecksums = append(want.LayerChecksums, checksumText(crc32.Checksum(f.want[i][layer-1], crc32.MakeTable(crc32.Castagnoli))))
		}
		require.Equal(t, want, meta)
	}
}

func (f *fixture) sectors(t *testing.T, n int) ([]Sector, []string) {
	var sectors []Sector
	var dirs []string
	for i := 0; i < n; i++ {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("sector-%d", i))
		require.NoError(t, os.MkdirAll(dir, 0o755))
		sectors = append(sectors, Sector{ReplicaID: replicaID(i), Dir: dir})
		dirs = append(dirs, dir)
	}
	return sectors, dirs
}

// TestRunMatchesReference runs 1..4 sectors at the pool's minimum, default
// and maximum sizes and checks every layer file against the oracle.
func TestRunMatchesReference(t *testing.T) {
	cases := []struct {
		name       string
		sectorSize uint64
		layers     int
		blockSize  uint64
		sectors    []int
		// portable uses the copy-and-crypto/sha256 path instead of the
		// SHA-NI kernel.
		portable bool
		long     bool
		pc1Long  bool
	}{
		{name: "2KiB/one-block", sectorSize: 2 << 10, layers: 3, sectors: []int{1, 2, 3}},
		{name: "2KiB/tiny-blocks", sectorSize: 2 << 10, layers: 4, blockSize: 256, sectors: []int{1, 4}},
		{name: "2KiB/portable", sectorSize: 2 << 10, layers: 3, blockSize: 512, sectors: []int{2}, portable: true},
		{name: "64KiB/odd-chunking", sectorSize: 64 << 10, layers: 3, blockSize: 4 << 10, sectors: []int{2, 3}},
		{name: "64KiB/portable", sectorSize: 64 << 10, layers: 3, blockSize: 4 << 10, sectors: []int{1, 3}, portable: true},
		{name: "8MiB/4-layers", sectorSize: 8 << 20, layers: 4, blockSize: 512 << 10, sectors: []int{1, 2, 3, 4}, long: true},
		{name: "8MiB/default-blocks", sectorSize: 8 << 20, layers: 4, sectors: []int{2}, long: true},
		{name: "64MiB/PC1_LONG", sectorSize: 64 << 20, layers: 4, sectors: []int{1, 4}, long: true, pc1Long: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.long && testing.Short() {
				t.Skip("8 MiB sectors are skipped in -short runs (the race detector makes them slow)")
			}
			if tc.pc1Long && os.Getenv("PC1_LONG") == "" {
				t.Skip("set PC1_LONG=1 for 64 MiB sectors")
			}
			maxSectors := tc.sectors[len(tc.sectors)-1]
			f := newFixture(t, tc.sectorSize, tc.layers, maxSectors)
			for _, n := range tc.sectors {
				minSize, defSize, maxSize := pool.Bounds(tc.sectorSize, n)
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
							Options:     Options{PoolSize: size.bytes, BlockSize: tc.blockSize, Parallel: n},
						})
						require.NoError(t, err)
						require.LessOrEqual(t, res.PoolPeak, res.PoolSize)
						for _, s := range res.Sectors {
							require.Equal(t, f.graph.Nodes()*uint64(tc.layers), s.Nodes)
						}
						f.check(t, dirs)
					})
				}
			}
		})
	}
}

// TestRunMoreSectorsThanSlots has more sectors than hashing slots: the
// extra sectors wait without holding blocks, so the pool is sized for the
// slots.
func TestRunMoreSectorsThanSlots(t *testing.T) {
	f := newFixture(t, 64<<10, 3, 5)
	sectors, dirs := f.sectors(t, 5)
	res, err := Run(context.Background(), Config{
		Graph: f.graph, ParentCache: f.cache, Layers: 3, Sectors: sectors,
		Options: Options{BlockSize: 8 << 10, Parallel: 2},
	})
	require.NoError(t, err)
	require.Equal(t, 2, res.Jobs)
	minSize, _, maxSize := pool.Bounds(64<<10, 2)
	require.GreaterOrEqual(t, res.PoolSize, minSize)
	require.LessOrEqual(t, res.PoolSize, maxSize)
	f.check(t, dirs)
}

// TestRunCancelledResumes cancels batches at several points (mid-layer,
// in layer 1 and later layers, with and without the spill tier), checks
// that what they leave never looks complete, and that running the same
// batch again resumes and produces the reference's layers.
func TestRunCancelledResumes(t *testing.T) {
	const sectorSize, block = 64 << 10, 4 << 10
	f := newFixture(t, sectorSize, 3, 2)
	for _, tc := range []struct {
		name     string
		cancelAt int32 // OnProgress call (one per block) that cancels
		dram     uint64
		// resumeBlock is the block size of the resumed run.
		resumeBlock uint64
	}{
		{name: "layer 1", cancelAt: 5},
		{name: "layer 2", cancelAt: 40},
		{name: "last layer", cancelAt: 80},
		{name: "layer 2, resumed with larger blocks", cancelAt: 45, resumeBlock: 16 << 10},
		{name: "spill, layer 2", cancelAt: 40, dram: 2 * 3 * block},
		{name: "spill, last layer", cancelAt: 75, dram: 2 * 5 * block},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sectors, dirs := f.sectors(t, 2)
			ctx, cancel := context.WithCancel(context.Background())
			var calls atomic.Int32
			cfg := Config{Graph: f.graph, ParentCache: f.cache, Layers: 3, Sectors: sectors, Options: Options{BlockSize: block, Parallel: 2, DRAMBudget: tc.dram}}
			cfg.OnProgress = func(int, int, uint64) {
				if calls.Add(1) == tc.cancelAt {
					cancel()
				}
			}
			_, err := Run(ctx, cfg)
			require.ErrorIs(t, err, context.Canceled)
			complete := make([]bool, len(dirs))
			for i, dir := range dirs {
				meta, err := blockio.ReadSectorMeta(dir)
				require.NoError(t, err)
				// A sector can finish before the cancel reaches it.
				complete[i] = len(meta.LayerChecksums) == 3
				for layer := 1; layer <= 3; layer++ {
					_, err := os.Stat(filepath.Join(dir, sdr.LayerFileName(layer)))
					committed := err == nil
					require.Equal(t, committed, layer <= len(meta.LayerChecksums), "sector %d layer %d: a final name only with a recorded checksum", i, layer)
				}
			}

			cfg.OnProgress = nil
			if tc.resumeBlock != 0 {
				cfg.BlockSize = tc.resumeBlock
			}
			res, err := Run(context.Background(), cfg)
			require.NoError(t, err)
			require.Empty(t, res.Warnings)
			var resumed uint64
			for i, s := range res.Sectors {
				if complete[i] {
					require.Zero(t, s.Nodes, "sector %d was complete", i)
					continue
				}
				if s.ResumedLayer > 0 {
					resumed += uint64(s.ResumedLayer-1)*f.graph.Nodes() + s.ResumedNode
				}
				require.Equal(t, 3*f.graph.Nodes(), (uint64(s.ResumedLayer)-min(uint64(s.ResumedLayer), 1))*f.graph.Nodes()+s.ResumedNode+s.Nodes,
					"resumed work plus new work is the whole sector")
			}
			require.NotZero(t, resumed, "the second run resumed work")
			f.check(t, dirs)

			// A third run finds every layer committed and does nothing.
			res, err = Run(context.Background(), cfg)
			require.NoError(t, err)
			for _, s := range res.Sectors {
				require.Zero(t, s.Nodes)
			}
			f.check(t, dirs)
		})
	}
}

// TestRunRestartsInconsistentSectors changes what an earlier run left
// behind in ways resuming must not trust: the sector is labeled again from
// scratch, with a warning that says why.
func TestRunRestartsInconsistentSectors(t *testing.T) {
	f := newFixture(t, 64<<10, 2, 2)
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		other  bool // the second run labels sector 1's replica id instead
		want   string
	}{
		{name: "altered layer", want: "has checksum", damage: func(t *testing.T, dir string) {
			path := filepath.Join(dir, sdr.LayerFileName(1))
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			data[1000] ^= 4
			require.NoError(t, os.WriteFile(path, data, 0o644))
		}},
		{name: "truncated layer", want: "want 65536", damage: func(t *testing.T, dir string) {
			require.NoError(t, os.Truncate(filepath.Join(dir, sdr.LayerFileName(2)), 4096))
		}},
		{name: "missing layer", want: "no such file", damage: func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, sdr.LayerFileName(1))))
		}},
		{name: "garbled metadata", want: "sector metadata", damage: func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(blockio.SectorMetaPath(dir), []byte("{"), 0o644))
		}},
		{name: "other replica id", want: "replica id", other: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sectors, dirs := f.sectors(t, 1)
			cfg := Config{Graph: f.graph, ParentCache: f.cache, Layers: 2, Sectors: sectors, Options: Options{BlockSize: 4 << 10}}
			_, err := Run(context.Background(), cfg)
			require.NoError(t, err)
			if tc.damage != nil {
				tc.damage(t, dirs[0])
			}
			want := [][]byte{f.want[0][0], f.want[0][1]}
			if tc.other {
				cfg.Sectors[0].ReplicaID = replicaID(1)
				want = [][]byte{f.want[1][0], f.want[1][1]}
			}
			res, err := Run(context.Background(), cfg)
			require.NoError(t, err)
			require.Len(t, res.Warnings, 1)
			require.Contains(t, res.Warnings[0], "discarded")
			require.Contains(t, res.Warnings[0], tc.want)
			require.Equal(t, 2*f.graph.Nodes(), res.Sectors[0].Nodes, "labeled from scratch")
			for layer := 1; layer <= 2; layer++ {
				got, err := os.ReadFile(filepath.Join(dirs[0], sdr.LayerFileName(layer)))
				require.NoError(t, err)
				require.True(t, bytes.Equal(want[layer-1], got), "layer %d", layer)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	g, err := sdr.NewGraph(2048, [32]byte{}, sdr.APIVersion1_1)
	require.NoError(t, err)
	one := []Sector{{Dir: t.TempDir()}}
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no graph", Config{Layers: 2, Sectors: one, ParentCache: "x"}, "no graph"},
		{"no layers", Config{Graph: g, Sectors: one, ParentCache: "x"}, "layer count 0"},
		{"no sectors", Config{Graph: g, Layers: 2, ParentCache: "x"}, "no sectors"},
		{"odd block", Config{Graph: g, Layers: 2, Sectors: one, ParentCache: "x", Options: Options{BlockSize: 96}}, "block size 96"},
		{"block above sector", Config{Graph: g, Layers: 2, Sectors: one, ParentCache: "x", Options: Options{BlockSize: 4096}}, "block size 4096"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestRunSpillMatchesReference runs with DRAM budgets below the pool
// minimum, down to one block per job (both layers almost entirely read
// from the layer files), and checks every layer file against the oracle.
func TestRunSpillMatchesReference(t *testing.T) {
	cases := []struct {
		name       string
		sectorSize uint64
		layers     int
		blockSize  uint64
		sectors    int
		// dramBlocks is the budget per job, in blocks.
		dramBlocks []int
		long       bool
	}{
		{name: "64KiB", sectorSize: 64 << 10, layers: 3, blockSize: 4 << 10, sectors: 1, dramBlocks: []int{1, 5, 17, 20}},
		// 12 and 16 blocks: layer 1's ring (expander and window slots) holds
		// part of the layer, then all but its last block, to the layer's end.
		{name: "64KiB/N=3", sectorSize: 64 << 10, layers: 3, blockSize: 4 << 10, sectors: 3, dramBlocks: []int{1, 3, 12, 16, 18}},
		{name: "64KiB/small-blocks", sectorSize: 64 << 10, layers: 2, blockSize: 1 << 10, sectors: 2, dramBlocks: []int{2, 70}},
		{name: "8MiB/N=2", sectorSize: 8 << 20, layers: 3, blockSize: 512 << 10, sectors: 2, dramBlocks: []int{1, 17}, long: true},
	}
	if os.Getenv("PC1_LONG") == "" {
		// Every spilled read of an 8 MiB sector goes to the device: tens
		// of seconds on a slow disk.
		cases = cases[:len(cases)-1]
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.long && testing.Short() {
				t.Skip("8 MiB sectors are skipped in -short runs")
			}
			f := newFixture(t, tc.sectorSize, tc.layers, tc.sectors)
			for _, dram := range tc.dramBlocks {
				for _, engine := range []tier.Engine{tier.EngineURing, tier.EnginePread} {
					t.Run(fmt.Sprintf("dram=%d-blocks/%v", dram, engine), func(t *testing.T) {
						sectors, dirs := f.sectors(t, tc.sectors)
						res, err := Run(context.Background(), Config{
							Graph:       f.graph,
							ParentCache: f.cache,
							Layers:      tc.layers,
							Sectors:     sectors,
							Options: Options{BlockSize: tc.blockSize, Parallel: tc.sectors, DRAMBudget: uint64(dram*tc.sectors) * tc.blockSize,
								SpillEngine: engine},
						})
						if engine == tier.EngineURing && err != nil && strings.Contains(err.Error(), "io_uring") {
							t.Skipf("io_uring unavailable here: %v", err)
						}
						require.NoError(t, err)
						require.Equal(t, engine.String(), res.Spill.Engine)
						require.Positive(t, res.Setup) // the pool was mapped and faulted in before the labeling's clock started
						require.Positive(t, res.Wall)
						require.NotZero(t, res.Spill.DeviceReads)
						// Every read went through an engine call; pread
						// makes one per read.
						require.NotZero(t, res.Spill.DeviceSyscalls)
						if engine == tier.EnginePread {
							require.Equal(t, res.Spill.DeviceReads, res.Spill.DeviceSyscalls)
						}
						require.NotNil(t, res.Spill)
						require.LessOrEqual(t, res.PoolSize, res.DRAMBudget)
						// Spilling sectors form one batch, which writes
						// spill files; a single sector reads its layer
						// files.
						require.Equal(t, tc.sectors, res.Spill.Lanes)
						perLayer := int(tc.sectorSize / tc.blockSize)
						if tc.sectors > 1 {
							// Every block is written to the spill files but
							// those of layer 1 still in their expander slot
							// when it ends: the next layer keeps them there.
							ring, kept := res.Spill.Expander+res.Spill.Window, 0
							for b := range min(res.Spill.Expander, perLayer) {
								if b+ring >= perLayer {
									kept++
								}
							}
							require.Equal(t, uint64(tc.layers*perLayer-kept), res.Spill.SpillWrites)
						}
						if res.Spill.Window < perLayer {
							require.NotZero(t, res.Spill.Demotions)
						}
						f.check(t, dirs)
					})
				}
			}
		})
	}
}

// TestRunSpillReadError fails a spilled read with EIO (through the spill
// reader's fault seam) part-way through each layer kind: the run ends with
// an error naming the file, the sector and the layer, no layer whose
// labels were computed from the missing page is committed, and running the
// same batch again resumes to byte-identical layers.
func TestRunSpillReadError(t *testing.T) {
	f := newFixture(t, 64<<10, 3, 1)
	for _, tc := range []struct {
		name  string
		file  string // the suffix of the file whose read fails
		layer int
		// short makes the read return 100 bytes and no error instead of
		// EIO.
		short bool
	}{
		{name: "current layer", file: "layer-1.dat.partial", layer: 1},
		{name: "previous layer", file: "layer-1.dat", layer: 2},
		{name: "previous layer, short read", file: "layer-1.dat", layer: 2, short: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sectors, dirs := f.sectors(t, 1)
			var reads atomic.Int32
			cfg := Config{
				Graph: f.graph, ParentCache: f.cache, Layers: 3, Sectors: sectors,
				Options: Options{BlockSize: 4 << 10, Parallel: 1, DRAMBudget: 3 * (4 << 10)},
				readFault: func(path string, off int64, n int, err error) (int, error) {
					if strings.HasSuffix(path, tc.file) && reads.Add(1) == 20 {
						if tc.short {
							return 100, nil
						}
						return 0, syscall.EIO
					}
					return n, err
				},
			}
			_, err := Run(context.Background(), cfg)
			t.Log(err)
			if tc.short {
				// Not a panic, nor labels from a stale buffer's bytes.
				require.ErrorContains(t, err, "short read: 100 of 4096 bytes")
			} else {
				require.ErrorIs(t, err, syscall.EIO)
			}
			require.ErrorContains(t, err, "sector 0 ("+dirs[0]+")")
			require.ErrorContains(t, err, fmt.Sprintf("layer %d", tc.layer))
			require.ErrorContains(t, err, tc.file)
			require.NoFileExists(t, blockio.SectorDir(dirs[0]).Layer(tc.layer), "a layer labeled from a failed read is not committed")

			cfg.readFault = nil
			res, err := Run(context.Background(), cfg)
			require.NoError(t, err)
			require.Equal(t, tc.layer, res.Sectors[0].ResumedLayer, "the rerun resumes the failed layer")
			f.check(t, dirs)
		})
	}
}

// TestRunFullDisk fills the sectors' directory (a size-limited tmpfs, so
// the test needs root) part-way through a seal, with and without the spill
// tier: the error names the problem, the layers written before are
// complete and correct, and nothing partial is left that could pass for a
// layer file.
func TestRunFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a size-limited tmpfs needs root")
	}
	f := newFixture(t, 64<<10, 3, 1)
	for _, dram := range []uint64{0, 2 * (4 << 10)} {
		t.Run(fmt.Sprintf("dram=%d", dram), func(t *testing.T) {
			dir := t.TempDir()
			// Room for two 64 KiB layers and some slack, not three.
			if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=160k"); err != nil {
				t.Skipf("cannot mount tmpfs: %v", err)
			}
			t.Cleanup(func() { unix.Unmount(dir, 0) })
			_, err := Run(context.Background(), Config{
				Graph: f.graph, ParentCache: f.cache, Layers: 3,
				Sectors: []Sector{{ReplicaID: replicaID(0), Dir: dir}},
				Options: Options{BlockSize: 4 << 10, DRAMBudget: dram},
			})
			require.ErrorContains(t, err, "no space left on device")
			require.ErrorContains(t, err, "layer 3")
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			require.ElementsMatch(t, []string{blockio.SectorMetaFile, sdr.LayerFileName(1), sdr.LayerFileName(2)}, names)
			for layer := 1; layer <= 2; layer++ {
				got, err := os.ReadFile(filepath.Join(dir, sdr.LayerFileName(layer)))
				require.NoError(t, err)
				require.True(t, bytes.Equal(f.want[0][layer-1], got), "layer %d", layer)
			}
		})
	}
}

func TestDefaultBlockSizes(t *testing.T) {
	for _, tc := range []struct {
		sector, pool, spill uint64
	}{
		{sector: 2 << 10, pool: 2 << 10, spill: 2 << 10},
		{sector: 64 << 10, pool: 4 << 10, spill: 4 << 10},
		{sector: 64 << 20, pool: 4 << 20, spill: 1 << 20},
		{sector: 512 << 20, pool: 32 << 20, spill: 8 << 20},
		{sector: 32 << 30, pool: 32 << 20, spill: 32 << 20},
	} {
		require.Equal(t, tc.pool, DefaultBlockSize(tc.sector), "pool blocks for %d", tc.sector)
		require.Equal(t, tc.spill, DefaultSpillBlockSize(tc.sector), "spill blocks for %d", tc.sector)
	}
}

// TestLive watches a batch's counters from its progress callback: the pool
// is in use while it runs and released after.
func TestLive(t *testing.T) {
	f := newFixture(t, 64<<10, 2, 0)
	for _, dram := range []uint64{0, 2 * 3 * (4 << 10)} {
		sectors, _ := f.sectors(t, 2)
		live := &Live{}
		var seen LiveCounts
		var mu sync.Mutex
		res, err := Run(context.Background(), Config{
			Graph: f.graph, ParentCache: f.cache, Layers: 2, Sectors: sectors, Live: live,
			OnProgress: func(int, int, uint64) {
				c := live.Counts()
				mu.Lock()
				seen.PoolInUseBytes = max(seen.PoolInUseBytes, c.PoolInUseBytes)
				seen.PoolBytes = c.PoolBytes
				seen.ColdReads = max(seen.ColdReads, c.ColdReads)
				mu.Unlock()
			},
			Options: Options{BlockSize: 4 << 10, Parallel: 2, DRAMBudget: dram},
		})
		require.NoError(t, err)
		require.Equal(t, res.PoolSize, seen.PoolBytes)
		require.NotZero(t, seen.PoolInUseBytes)
		require.LessOrEqual(t, seen.PoolInUseBytes, seen.PoolBytes)
		if dram != 0 {
			require.NotZero(t, seen.ColdReads, "a spilling batch reads cold labels")
		}
		require.Equal(t, LiveCounts{}, live.Counts(), "nothing after the batch")
	}
}
