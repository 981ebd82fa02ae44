package tier

import (
	"bytes"
	"os"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Spill benchmark geometry: 256 KiB blocks (the spill tier's default block
// size, a 64th of a layer, for a 16 MiB sector) in a 4 MiB layer file.
const (
	spillBenchBlock  = 256 << 10
	spillBenchBlocks = 16
	spillBenchPages  = spillBenchBlock / PageSize
)

// spillBenchDir is where the benchmark's layer file lives: PC1_BENCH_DIR
// when set, so the device under test can be chosen, else a temporary
// directory. On tmpfs nothing reaches a device and the figures are system
// call costs only.
func spillBenchDir(b *testing.B) string {
	if dir := os.Getenv("PC1_BENCH_DIR"); dir != "" {
		dir, err := os.MkdirTemp(dir, "pc1-bench-")
		require.NoError(b, err)
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// residentPages counts the pages of a mapping that are in memory.
func residentPages(b *testing.B, m []byte) int {
	vec := make([]byte, (len(m)+PageSize-1)/PageSize)
	_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptrOf(m), uintptr(len(m)), uintptrOf(vec))
	require.Zero(b, e)
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// BenchmarkSpillRoundTrip times the spill tier's two I/O steps on one
// block: demoting it (a LayerFile write: written, pushed to the device,
// dropped from the page cache and logged before its ack) and
// reading it back (MapFile, AdvisePages WILLNEED on its pages, one label
// read from each page, AdvisePages PAGEOUT). ns/op is per block; ns/page
// divides it by the block's pages. Blocks are cycled through the file, so
// each read finds its block on the device, not in memory.
func BenchmarkSpillRoundTrip(b *testing.B) {
	l, err := blockio.CreateLayerFile(spillBenchDir(b), 1, spillBenchBlock*spillBenchBlocks)
	require.NoError(b, err)
	b.Cleanup(l.Abort)
	// Two source buffers, so a block is never rewritten from the buffer
	// its previous write may still be reading.
	src := [2][]byte{make([]byte, spillBenchBlock), make([]byte, spillBenchBlock)}
	for i := range src {
		for j := range src[i] {
			src[i][j] = byte(i*101 + j*13 + j>>12)
		}
	}
	acked := make(chan struct{}, 1)
	write := func(blk int) error {
		if err := l.WriteAsync(src[blk%2], int64(blk)*spillBenchBlock, func() { acked <- struct{}{} }); err != nil {
			return err
		}
		<-acked
		return l.Err()
	}
	// The whole file is written once, so every block reads back what it
	// holds.
	for blk := range spillBenchBlocks {
		require.NoError(b, write(blk))
	}
	m, err := MapFile(l.TempPath(), spillBenchBlock*spillBenchBlocks)
	require.NoError(b, err)
	b.Cleanup(func() { m.Close() })
	data := m.Bytes()
	pages := make([]int64, spillBenchPages)
	var sink byte
	read := func(blk int) error {
		for i := range pages {
			pages[i] = int64(blk*spillBenchPages + i)
		}
		if err := m.AdvisePages(pages, unix.MADV_WILLNEED); err != nil {
			return err
		}
		for _, pg := range pages {
			// A label at a different place in each page, as parents are.
			off := pg*PageSize + (pg*7%(PageSize/sdr.NodeSize))*sdr.NodeSize
			sink ^= data[off] ^ data[off+sdr.NodeSize-1]
		}
		return m.AdvisePages(pages, unix.MADV_PAGEOUT)
	}
	// What comes back through the mapping is what was written.
	require.NoError(b, read(3))
	require.True(b, bytes.Equal(src[1], data[3*spillBenchBlock:4*spillBenchBlock]), "block 3 reads back as written")
	require.NoError(b, m.AdvisePages(pages, unix.MADV_PAGEOUT))
	if n := residentPages(b, data[3*spillBenchBlock:4*spillBenchBlock]); n > 0 {
		b.Logf("%d of %d pages stayed in memory after MADV_PAGEOUT: reads below may not reach the device", n, spillBenchPages)
	}

	for _, tc := range []struct {
		name        string
		write, read bool
	}{
		{"write", true, false},
		{"read", false, true},
		{"round-trip", true, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(spillBenchBlock)
			blk := 0
			for b.Loop() {
				blk = (blk + 1) % spillBenchBlocks
				if tc.write {
					if err := write(blk); err != nil {
						b.Fatal(err)
					}
				}
				if tc.read {
					if err := read(blk); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spillBenchPages), "ns/page")
		})
	}
	_ = sink
}
