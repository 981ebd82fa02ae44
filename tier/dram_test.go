package tier

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

func TestArena(t *testing.T) {
	for _, tc := range []struct {
		name      string
		blocks    int
		blockSize uint64
		opts      ArenaOptions
	}{
		{name: "small blocks", blocks: 5, blockSize: 4 << 10, opts: ArenaOptions{Populate: true}},
		{name: "hugepage blocks", blocks: 3, blockSize: 2 << 20, opts: ArenaOptions{Populate: true}},
		{name: "lazy", blocks: 7, blockSize: 64 << 10},
		{name: "hugetlb or fallback", blocks: 2, blockSize: 2 << 20, opts: ArenaOptions{HugeTLB: true, Populate: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, warning, err := NewArena(tc.blocks, tc.blockSize, tc.opts)
			require.NoError(t, err)
			defer a.Close()
			require.Equal(t, tc.blocks, a.Blocks())
			require.Equal(t, tc.blockSize, a.BlockSize())
			require.Zero(t, a.Bytes()%hugePageSize)
			require.GreaterOrEqual(t, a.Bytes(), uint64(tc.blocks)*tc.blockSize)
			if tc.opts.HugeTLB && !a.HugeTLB() {
				require.Contains(t, warning, "falling back to transparent hugepages")
			} else {
				require.Empty(t, warning)
			}
			// Blocks are disjoint and keep what is written to them.
			for i := range tc.blocks {
				b := a.Block(i)
				require.Len(t, b, int(tc.blockSize))
				require.Equal(t, int(tc.blockSize), cap(b), "a block cannot be appended into its neighbour")
				b[0], b[len(b)-1] = byte(i+1), byte(i+1)
			}
			for i := range tc.blocks {
				b := a.Block(i)
				require.Equal(t, byte(i+1), b[0])
				require.Equal(t, byte(i+1), b[len(b)-1])
			}
			require.Zero(t, uintptr(unsafe.Pointer(&a.Block(0)[0]))%4096, "page aligned")
			require.NoError(t, a.Close())
			require.NoError(t, a.Close())
		})
	}
	_, _, err := NewArena(0, 4096, ArenaOptions{})
	require.ErrorContains(t, err, "must be positive")
}

// TestArenaGetsHugepages checks the kernel's own account: a populated arena
// of whole hugepages shows up as AnonHugePages when THP is available.
func TestArenaGetsHugepages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || strings.Contains(string(mode), "[never]") {
		t.Skip("transparent hugepages are off on this host")
	}
	before := anonHuge(t)
	a, _, err := NewArena(8, 2<<20, ArenaOptions{Populate: true})
	require.NoError(t, err)
	defer a.Close()
	require.GreaterOrEqual(t, anonHuge(t)-before, uint64(8<<20))
}

func anonHuge(t *testing.T) uint64 {
	raw, err := os.ReadFile("/proc/self/smaps_rollup")
	require.NoError(t, err)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "AnonHugePages:"); ok {
			var kb uint64
			_, err := fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no AnonHugePages in smaps_rollup")
	return 0
}
