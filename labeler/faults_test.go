package labeler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// errCrashed is what every operation returns once a fault has "killed"
// the process: nothing it does after that reaches the disk.
var errCrashed = errors.New("simulated crash")

// fileKind says which of a sector's files an operation concerns.
func fileKind(op blockio.Op) string {
	base := filepath.Base(op.Path)
	switch {
	case strings.HasSuffix(base, ".dat.partial"):
		return "layer"
	case strings.HasSuffix(base, ".progress"):
		return "progress"
	case strings.HasPrefix(base, "."+blockio.SectorMetaFile+".tmp-"):
		return "meta"
	}
	return "other"
}

// fault is one injected fault: the nth operation of kind on a file of
// file kind of sector `sector` (and layer `layer`, when not 0) gets err,
// with only n of its bytes written (n < 0: none of them; a write only).
// crash makes every later operation fail too, as if the process had died
// right after the fault.
type fault struct {
	sector int
	file   string
	layer  int
	kind   blockio.OpKind
	nth    int
	n      int
	err    error
	crash  bool

	mu      sync.Mutex
	seen    int
	fired   bool
	crashed bool
}

func (f *fault) matches(op blockio.Op) bool {
	if op.Kind != f.kind || fileKind(op) != f.file {
		return false
	}
	if !strings.Contains(op.Path, fmt.Sprintf("%csector-%d%c", filepath.Separator, f.sector, filepath.Separator)) {
		return false
	}
	return f.layer == 0 || strings.Contains(filepath.Base(op.Path), sdr.LayerFileName(f.layer))
}

func (f *fault) Inject(op blockio.Op) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return 0, errCrashed
	}
	if f.fired || !f.matches(op) {
		return op.Len, nil
	}
	if f.seen++; f.seen < f.nth {
		return op.Len, nil
	}
	f.fired, f.crashed = true, f.crash
	return max(f.n, 0), f.err
}

// requireNothingWrong checks what a failed run left behind: every layer
// file with a final name is the reference's, and every checksum the
// metadata records is its layer's.
func (fx *fixture) requireNothingWrong(t *testing.T, dirs []string) {
	t.Helper()
	for i, dir := range dirs {
		meta, err := blockio.ReadSectorMeta(dir)
		if err == nil {
			require.Equal(t, replicaID(i), meta.ReplicaID)
			for k, sum := range meta.LayerChecksums {
				require.Equal(t, checksumText(crc32.Checksum(fx.want[i][k], crc32.MakeTable(crc32.Castagnoli))), sum, "sector %d layer %d: recorded checksum", i, k+1)
			}
		}
		for layer := 1; layer <= fx.layers; layer++ {
			got, err := os.ReadFile(filepath.Join(dir, sdr.LayerFileName(layer)))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			require.NoError(t, err)
			require.True(t, bytes.Equal(fx.want[i][layer-1], got), "sector %d layer %d has its final name but not the reference's labels", i, layer)
		}
	}
}

// TestRunIOFaults is the fault table of the README's "Reliability"
// section: each fault at each kind of file a seal writes ends the run with
// an error naming the file, the sector and (for a layer's files) the
// layer; leaves nothing under a final name that is wrong; and a rerun
// without the fault resumes to the reference's bytes.
func TestRunIOFaults(t *testing.T) {
	const sectorSize, block = 16 << 10, 2 << 10
	fx := newFixture(t, sectorSize, 3, 2)
	eio, enospc := unix.EIO, unix.ENOSPC
	for _, tc := range []struct {
		name  string
		fault *fault
		// names are what the error must say besides the fault's own error.
		names []string
		// batch seals the two sectors as one batch (lockstep 2).
		batch bool
	}{
		{name: "layer file/EIO on write", fault: &fault{sector: 1, file: "layer", layer: 2, kind: blockio.OpWrite, nth: 3, n: -1, err: eio},
			names: []string{"sector 1", "layer 2", "sc-02-data-layer-2.dat.partial", "at offset 4096"}},
		{name: "layer file/ENOSPC on write", fault: &fault{sector: 0, file: "layer", layer: 1, kind: blockio.OpWrite, nth: 5, n: -1, err: enospc},
			names: []string{"sector 0", "layer 1", "sc-02-data-layer-1.dat.partial"}},
		{name: "layer file/ENOSPC reserving it", fault: &fault{sector: 1, file: "layer", layer: 3, kind: blockio.OpAllocate, nth: 1, err: enospc},
			names: []string{"sector 1", "layer 3", "reserving 16384 bytes for", "sc-02-data-layer-3.dat.partial"}},
		{name: "layer file/short write", fault: &fault{sector: 0, file: "layer", layer: 2, kind: blockio.OpWrite, nth: 2, n: 1000},
			names: []string{"sector 0", "layer 2", "sc-02-data-layer-2.dat.partial", "short write"}},
		{name: "layer file/torn write, then crash", fault: &fault{sector: 1, file: "layer", layer: 3, kind: blockio.OpWrite, nth: 4, n: 700, err: errCrashed, crash: true},
			names: nil},
		{name: "layer file/EIO on fdatasync", fault: &fault{sector: 0, file: "layer", layer: 1, kind: blockio.OpSync, nth: 2, err: eio},
			names: []string{"sector 0", "layer 1", "syncing", "sc-02-data-layer-1.dat.partial"}},
		{name: "layer file/EIO on rename at commit", fault: &fault{sector: 1, file: "layer", layer: 2, kind: blockio.OpRename, nth: 1, err: eio},
			names: []string{"sector 1", "layer 2", "renaming", "sc-02-data-layer-2.dat.partial"}},
		// A layer's commit runs while the next layer is labeled: its
		// failure still ends the run, naming that layer, before the next
		// layer's commit can start.
		{name: "layer file/EIO on rename at commit, while the next layer is labeled", fault: &fault{sector: 0, file: "layer", layer: 1, kind: blockio.OpRename, nth: 1, err: eio},
			names: []string{"sector 0", "layer 1", "renaming", "sc-02-data-layer-1.dat.partial"}},
		{name: "layer file/EIO on rename at commit, batch", fault: &fault{sector: 1, file: "layer", layer: 1, kind: blockio.OpRename, nth: 1, err: eio},
			names: []string{"sector 1", "layer 1", "renaming", "sc-02-data-layer-1.dat.partial"}, batch: true},
		{name: "layer file/EIO on fdatasync, batch", fault: &fault{sector: 0, file: "layer", layer: 2, kind: blockio.OpSync, nth: 1, err: eio},
			names: []string{"sector 0", "layer 2", "syncing", "sc-02-data-layer-2.dat.partial"}, batch: true},
		{name: "progress log/EIO on write", fault: &fault{sector: 0, file: "progress", layer: 2, kind: blockio.OpWrite, nth: 3, n: -1, err: eio},
			names: []string{"sector 0", "layer 2", "logging progress in", "sc-02-data-layer-2.dat.partial.progress"}},
		{name: "progress log/ENOSPC on write", fault: &fault{sector: 1, file: "progress", layer: 3, kind: blockio.OpWrite, nth: 2, n: -1, err: enospc},
			names: []string{"sector 1", "layer 3", "logging progress in", "sc-02-data-layer-3.dat.partial.progress"}},
		{name: "progress log/short write", fault: &fault{sector: 0, file: "progress", layer: 1, kind: blockio.OpWrite, nth: 4, n: 12},
			names: []string{"sector 0", "layer 1", "logging progress in", "sc-02-data-layer-1.dat.partial.progress"}},
		{name: "progress log/torn record, then crash", fault: &fault{sector: 1, file: "progress", layer: 1, kind: blockio.OpWrite, nth: 5, n: 10, err: errCrashed, crash: true},
			names: nil},
		{name: "progress log/EIO on fdatasync", fault: &fault{sector: 0, file: "progress", layer: 3, kind: blockio.OpSync, nth: 1, err: eio},
			names: []string{"sector 0", "layer 3", "syncing", "sc-02-data-layer-3.dat.partial.progress"}},
		{name: "metadata/EIO on write at start", fault: &fault{sector: 1, file: "meta", kind: blockio.OpWrite, nth: 1, n: -1, err: eio},
			names: []string{"sector 1", blockio.SectorMetaFile}},
		{name: "metadata/EIO on write at a commit", fault: &fault{sector: 0, file: "meta", kind: blockio.OpWrite, nth: 3, n: -1, err: eio},
			names: []string{"sector 0", "layer 2", blockio.SectorMetaFile}},
		{name: "metadata/ENOSPC on write at a commit", fault: &fault{sector: 1, file: "meta", kind: blockio.OpWrite, nth: 4, n: -1, err: enospc},
			names: []string{"sector 1", "layer 3", blockio.SectorMetaFile}},
		{name: "metadata/short write", fault: &fault{sector: 0, file: "meta", kind: blockio.OpWrite, nth: 2, n: 30},
			names: []string{"sector 0", "layer 1", blockio.SectorMetaFile}},
		{name: "metadata/torn write, then crash", fault: &fault{sector: 1, file: "meta", kind: blockio.OpWrite, nth: 2, n: 40, err: errCrashed, crash: true},
			names: nil},
		{name: "metadata/EIO on fsync", fault: &fault{sector: 0, file: "meta", kind: blockio.OpSync, nth: 4, err: eio},
			names: []string{"sector 0", "layer 3", "syncing", blockio.SectorMetaFile}},
		{name: "metadata/EIO on rename", fault: &fault{sector: 1, file: "meta", kind: blockio.OpRename, nth: 2, err: eio},
			names: []string{"sector 1", "layer 1", "renaming", blockio.SectorMetaFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sectors, dirs := fx.sectors(t, 2)
			lockstep := 1
			if tc.batch {
				lockstep = 2
			}
			cfg := Config{Graph: fx.graph, ParentCache: fx.cache, Layers: 3, Sectors: sectors, Faults: tc.fault, Options: Options{BlockSize: block, Parallel: 2, Lockstep: lockstep}}
			_, err := Run(context.Background(), cfg)
			require.True(t, tc.fault.fired, "the fault was reached; the run ended with %v", err)
			require.Error(t, err)
			t.Logf("error: %v", err)
			want := "short write"
			if tc.fault.err != nil {
				want = tc.fault.err.Error()
			}
			require.ErrorContains(t, err, want)
			// After a crash the process would be dead: which of its
			// operations met the crash first says nothing.
			if !tc.fault.crash {
				for _, n := range tc.names {
					require.ErrorContains(t, err, n)
				}
				require.ErrorContains(t, err, dirs[tc.fault.sector], "the sector's directory")
			}
			fx.requireNothingWrong(t, dirs)

			cfg.Faults = nil
			_, err = Run(context.Background(), cfg)
			require.NoError(t, err)
			fx.check(t, dirs)
		})
	}
}
