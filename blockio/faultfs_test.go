package blockio

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// nthFault fails the nth operation of kind (on any file) with err,
// letting n bytes of a write through.
type nthFault struct {
	kind OpKind
	nth  int
	n    int
	err  error

	mu    sync.Mutex
	seen  int
	fired bool
}

func (f *nthFault) Inject(op Op) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if op.Kind != f.kind || f.fired {
		return op.Len, nil
	}
	if f.seen++; f.seen < f.nth {
		return op.Len, nil
	}
	f.fired = true
	return f.n, f.err
}

// TestParentCacheIOFaults: the parent cache rows of the README's fault
// table. A generation that meets a fault fails naming the cache, leaves
// neither the cache nor its marker behind (a reader waiting on it finds it
// emptied), and the next call generates it whole. (A crash mid-generation
// leaves the file and its marker: TestParentCacheInterruptedGeneration.)
func TestParentCacheIOFaults(t *testing.T) {
	ctx := context.Background()
	g := proofGraph(t, "StackedDrg2KiBV1_1") // one write: its 64 nodes are one chunk
	for _, tc := range []struct {
		name  string
		fault *nthFault
		msg   string
	}{
		{name: "EIO on write", fault: &nthFault{kind: OpWrite, nth: 1, err: unix.EIO}, msg: "input/output error"},
		{name: "short write", fault: &nthFault{kind: OpWrite, nth: 1, n: 1000}, msg: "short write"},
		{name: "torn write", fault: &nthFault{kind: OpWrite, nth: 1, n: 700, err: unix.EIO}, msg: "input/output error"},
		{name: "ENOSPC reserving it", fault: &nthFault{kind: OpAllocate, nth: 1, err: unix.ENOSPC}, msg: "no space left on device"},
		{name: "EIO on fsync", fault: &nthFault{kind: OpSync, nth: 1, err: unix.EIO}, msg: "syncing it: input/output error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := EnsureParentCache(ctx, g, dir, ParentCacheOptions{Faults: tc.fault})
			require.True(t, tc.fault.fired)
			require.ErrorContains(t, err, tc.msg)
			require.ErrorContains(t, err, "parent cache "+dir+"/"+sdr.ParentCacheFileName(g))
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Empty(t, entries, "nothing left that looks like a cache")

			info, err := EnsureParentCache(ctx, g, dir, ParentCacheOptions{})
			require.NoError(t, err)
			require.True(t, info.Generated)
			require.True(t, info.Verified, "the manifest's digest")
		})
	}
}
