package labeler

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The batch fault tests run one batch of two 64 KiB sectors, three layers
// in 4 KiB blocks, with a DRAM budget of two batch blocks: one expander
// block, one window block, so both layers are almost wholly read back from
// the spill files (a layer's: 16 blocks of 2 pages, 128 KiB).
const (
	faultSector, faultBlock = 64 << 10, 4 << 10
	faultLanes              = 2
	faultBlocks             = faultSector / faultBlock
	// faultSpillLayer is one layer's spill files' bytes.
	faultSpillLayer = faultBlocks * faultLanes * faultBlock
)

func batchFaultConfig(f *fixture, sectors []Sector, spillDir string) Config {
	return Config{
		Graph: f.graph, ParentCache: f.cache, Layers: f.layers, Sectors: sectors,
		Options: Options{BlockSize: faultBlock, Parallel: faultLanes, Batch: faultLanes, SpillDirs: []string{spillDir},
			DRAMBudget: 2 * faultLanes * faultBlock},
	}
}

// isSpillFile reports whether path is one of layer's spill files: named
// "(spill file for layer N)" in its directory when O_TMPFILE made it,
// else ".pc1-tiered-spill-layer-N-*" (unlinked at once).
func isSpillFile(path string, layer int) bool {
	base := filepath.Base(path)
	return base == fmt.Sprintf("(spill file for layer %d)", layer) ||
		strings.HasPrefix(base, fmt.Sprintf(".pc1-tiered-spill-layer-%d-", layer))
}

// layerTracker follows the highest layer the batch has reported progress
// in.
type layerTracker struct{ layer atomic.Int32 }

func (lt *layerTracker) onProgress(_, layer int, _ uint64) {
	for {
		cur := lt.layer.Load()
		if int32(layer) <= cur || lt.layer.CompareAndSwap(cur, int32(layer)) {
			return
		}
	}
}

// pathFault fails one operation with err and remembers the path it
// failed.
type pathFault struct {
	mu    sync.Mutex
	fired bool
	path  string
	off   int64
}

func (pf *pathFault) fire(path string, off int64) {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	pf.fired, pf.path, pf.off = true, path, off
}

func (pf *pathFault) get() (bool, string) {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	return pf.fired, pf.path
}

// requireFailedCleanly checks what a batch that failed left behind:
// layers from first on have no final name in any sector, whatever has one
// is the reference's, and the spill directories hold nothing (spill files
// are anonymous).
func requireFailedCleanly(t *testing.T, f *fixture, dirs, spillDirs []string, first int) {
	t.Helper()
	for i, dir := range dirs {
		for layer := first; layer <= f.layers; layer++ {
			require.NoFileExists(t, filepath.Join(dir, sdr.LayerFileName(layer)), "sector %d layer %d must not be committed", i, layer)
		}
	}
	f.requireNothingWrong(t, dirs)
	for _, d := range spillDirs {
		entries, err := os.ReadDir(d)
		require.NoError(t, err)
		require.Empty(t, entries, "no spill file left in %s", d)
	}
}

// cancelInLayer2 runs cfg and cancels it part-way through layer 2 (each
// of the 16 blocks of a layer is reported once per lane).
func cancelInLayer2(t *testing.T, cfg Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int32
	cfg.OnProgress = func(int, int, uint64) {
		if calls.Add(1) == faultLanes*(faultBlocks+6) {
			cancel()
		}
	}
	_, err := Run(ctx, cfg)
	require.ErrorIs(t, err, context.Canceled)
	for _, s := range cfg.Sectors {
		require.FileExists(t, filepath.Join(s.Dir, sdr.LayerFileName(1)))
		require.NoFileExists(t, filepath.Join(s.Dir, sdr.LayerFileName(2)))
	}
}

// requireResumes reruns cfg without faults: it resumes (in layer resumed,
// when not 0) and ends with the reference's layers.
func requireResumes(t *testing.T, f *fixture, cfg Config, dirs []string, resumed int) {
	t.Helper()
	cfg.readFault, cfg.spillWriteFault, cfg.OnProgress = nil, nil, nil
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Empty(t, res.Warnings)
	require.Equal(t, faultLanes, res.Spill.Lanes)
	require.NotZero(t, res.Spill.SpillWrites)
	if resumed > 0 {
		for i, s := range res.Sectors {
			require.Equal(t, resumed, s.ResumedLayer, "sector %d resumes the failed layer", i)
		}
	}
	requireWholeSectors(t, f, res)
	f.check(t, dirs)
}

// TestRunBatchSpillReadError fails a read of a batch's spill files with
// EIO: a page read of the current layer's (layers 1 and 2), of the
// previous layer's (layer 2), and the whole-block read that promotes the
// expander's blocks at a layer's end; and cuts a page read short. The run ends with one error naming
// the file, the batch's sectors and the layer; no layer labeled from the
// failed read is committed; the spill directory is left empty; and
// running the same batch again resumes to the reference's bytes.
func TestRunBatchSpillReadError(t *testing.T) {
	f := newFixture(t, faultSector, 3, faultLanes)
	for _, tc := range []struct {
		name string
		// match says whether a read of n bytes of a spill file of
		// spillLayer, while the batch is in layer (the highest it has
		// reported progress in; 0 before its first block), is one the
		// fault counts; the nth such read fails.
		match      func(layer, n int) bool
		nth        int32
		spillLayer int
		// short makes the read return 100 bytes and no error instead of
		// EIO.
		short bool
		// errLayer is the layer the error names; uncommitted the first
		// layer that must have no final name; resumed where the rerun
		// resumes (0: anywhere in layer 1).
		errLayer, uncommitted, resumed int
	}{
		{name: "current layer's spill, layer 1", spillLayer: 1, nth: 5, errLayer: 1, uncommitted: 1,
			match: func(_, n int) bool { return n == tier.PageSize }},
		{name: "previous layer's spill, layer 2", spillLayer: 1, nth: 5, errLayer: 2, uncommitted: 2, resumed: 2,
			match: func(layer, n int) bool { return n == tier.PageSize && layer == 2 }},
		{name: "current layer's spill, layer 2", spillLayer: 2, nth: 5, errLayer: 2, uncommitted: 2, resumed: 2,
			match: func(_, n int) bool { return n == tier.PageSize }},
		{name: "short read of the previous layer's spill, layer 2", spillLayer: 1, nth: 7, short: true, errLayer: 2, uncommitted: 2, resumed: 2,
			match: func(layer, n int) bool { return n == tier.PageSize && layer == 2 }},
		{name: "promoting the expander block, end of layer 1", spillLayer: 1, nth: 1, errLayer: 1, uncommitted: 2, resumed: 2,
			match: func(_, n int) bool { return n > tier.PageSize }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sectors, dirs := f.sectors(t, faultLanes)
			spillDir := t.TempDir()
			cfg := batchFaultConfig(f, sectors, spillDir)
			var lt layerTracker
			cfg.OnProgress = lt.onProgress
			var matched atomic.Int32
			var pf pathFault
			cfg.readFault = func(path string, off int64, n int, err error) (int, error) {
				if err == nil && isSpillFile(path, tc.spillLayer) && tc.match(int(lt.layer.Load()), n) && matched.Add(1) == tc.nth {
					pf.fire(path, off)
					if tc.short {
						return 100, nil
					}
					return 0, syscall.EIO
				}
				return n, err
			}
			_, err := Run(context.Background(), cfg)
			fired, path := pf.get()
			require.True(t, fired, "the fault was reached; the run ended with %v", err)
			t.Logf("error: %v", err)
			want := "input/output error"
			if tc.short {
				// Not a panic, nor labels from a stale buffer's bytes.
				want = "short read: 100 of 4096 bytes"
			} else {
				require.ErrorIs(t, err, syscall.EIO)
			}
			require.Equal(t, 1, strings.Count(err.Error(), want), "one error: %v", err)
			require.ErrorContains(t, err, path, "the file")
			require.ErrorContains(t, err, fmt.Sprintf("sectors 0 to 1: layer %d: ", tc.errLayer), "the batch and the layer")
			requireFailedCleanly(t, f, dirs, []string{spillDir}, tc.uncommitted)
			requireResumes(t, f, cfg, dirs, tc.resumed)
		})
	}
}

// TestRunBatchSpillWriteError fails a write to a batch's spill files with
// EIO (the spill writer's fault seam): in layers 1 and 2, in a block the
// layer reads back, in the layer's last block (read back only by the next
// layer: the layer itself is committed, its labels are good), and while a
// resumed batch rebuilds the previous layer's spill files from its layer
// files. Each ends with one error naming the file, the batch's sectors
// and the layer; commits nothing labeled after the failed write; leaves
// the spill directory empty; and resumes to the reference's bytes.
func TestRunBatchSpillWriteError(t *testing.T) {
	f := newFixture(t, faultSector, 3, faultLanes)
	lastBlock := int64(faultSpillLayer - faultLanes*faultBlock)
	for _, tc := range []struct {
		name string
		// spillLayer is the layer whose spill file's write fails, at its
		// nth write (at its last block's, with last).
		spillLayer int
		nth        int32
		last       bool
		// resume cancels a first run in layer 2: the faulty run resumes
		// there and rebuilds layer 1's spill files.
		resume bool
		// errPrefix is what the error says before the file's name;
		// uncommitted the first layer that must have no final name;
		// resumed where the rerun resumes (0: anywhere in layer 1).
		errPrefix            string
		uncommitted, resumed int
	}{
		{name: "layer 1", spillLayer: 1, nth: 3, errPrefix: "sectors 0 to 1: layer 1: block ", uncommitted: 1},
		{name: "layer 2", spillLayer: 2, nth: 4, errPrefix: "sectors 0 to 1: layer 2: block ", uncommitted: 2, resumed: 2},
		{name: "last block of layer 1", spillLayer: 1, last: true, errPrefix: "sectors 0 to 1: layer 1: spill file for layer 1, block 15: writing ",
			uncommitted: 2, resumed: 2},
		{name: "rebuilding layer 1's at resume", spillLayer: 1, nth: 2, resume: true,
			errPrefix: "sectors 0 to 1: resuming at layer 2: spill file for layer 1, block 1: writing ", uncommitted: 2, resumed: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sectors, dirs := f.sectors(t, faultLanes)
			spillDir := t.TempDir()
			cfg := batchFaultConfig(f, sectors, spillDir)
			if tc.resume {
				cancelInLayer2(t, cfg)
			}
			var matched atomic.Int32
			var pf pathFault
			cfg.spillWriteFault = func(path string, off int64, n int, err error) (int, error) {
				if err != nil || !isSpillFile(path, tc.spillLayer) {
					return n, err
				}
				if tc.last && off == lastBlock || !tc.last && matched.Add(1) == tc.nth {
					pf.fire(path, off)
					return 0, syscall.EIO
				}
				return n, err
			}
			_, err := Run(context.Background(), cfg)
			fired, path := pf.get()
			require.True(t, fired, "the fault was reached; the run ended with %v", err)
			t.Logf("error: %v", err)
			require.ErrorIs(t, err, syscall.EIO)
			require.Equal(t, 1, strings.Count(err.Error(), "input/output error"), "one error: %v", err)
			require.ErrorContains(t, err, tc.errPrefix)
			require.ErrorContains(t, err, "writing "+path, "the file")
			requireFailedCleanly(t, f, dirs, []string{spillDir}, tc.uncommitted)
			requireResumes(t, f, cfg, dirs, tc.resumed)
		})
	}
}

// TestRunBatchSpillDirFull gives a batch a spill directory too small for
// its spill files (a size-limited tmpfs, so the test needs root) while
// its sectors are elsewhere: too small for layer 1's, for layer 2's beside
// layer 1's, and for layer 1's rebuilt by a resumed batch. The error names
// the spill directory and the layer and says "no space left on device";
// nothing is committed from that layer on; the directory is left empty;
// and the batch resumes with a larger one to the reference's bytes.
func TestRunBatchSpillDirFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a size-limited tmpfs needs root")
	}
	f := newFixture(t, faultSector, 3, faultLanes)
	for _, tc := range []struct {
		name string
		// size is the tmpfs's size; resume cancels a first run in layer
		// 2 (with a large spill directory).
		size   int
		resume bool
		// errPrefix is what the error says before the directory's name.
		errPrefix            string
		uncommitted, resumed int
	}{
		{name: "layer 1", size: faultSpillLayer / 2, errPrefix: "sectors 0 to 1: layer 1: spill file for layer 1 in ", uncommitted: 1},
		{name: "layer 2", size: faultSpillLayer * 3 / 2, errPrefix: "sectors 0 to 1: layer 2: spill file for layer 2 in ", uncommitted: 2, resumed: 2},
		{name: "rebuilding layer 1's at resume", size: faultSpillLayer / 2, resume: true,
			errPrefix: "sectors 0 to 1: resuming at layer 2: spill file for layer 1 in ", uncommitted: 2, resumed: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sectors, dirs := f.sectors(t, faultLanes)
			if tc.resume {
				cancelInLayer2(t, batchFaultConfig(f, sectors, t.TempDir()))
			}
			small := t.TempDir()
			if err := unix.Mount("tmpfs", small, "tmpfs", 0, fmt.Sprintf("size=%d", tc.size)); err != nil {
				t.Skipf("cannot mount tmpfs: %v", err)
			}
			t.Cleanup(func() { unix.Unmount(small, 0) })
			cfg := batchFaultConfig(f, sectors, small)
			_, err := Run(context.Background(), cfg)
			t.Logf("error: %v", err)
			require.ErrorIs(t, err, syscall.ENOSPC)
			require.Equal(t, 1, strings.Count(err.Error(), "no space left on device"), "one error: %v", err)
			require.ErrorContains(t, err, tc.errPrefix+small+": reserving ")
			requireFailedCleanly(t, f, dirs, []string{small}, tc.uncommitted)
			var st unix.Statfs_t
			require.NoError(t, unix.Statfs(small, &st))
			require.Equal(t, st.Blocks, st.Bfree, "the spill files' space went back to %s", small)

			cfg.SpillDirs = []string{t.TempDir()}
			requireResumes(t, f, cfg, dirs, tc.resumed)
		})
	}
}
