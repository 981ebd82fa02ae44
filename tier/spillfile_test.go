package tier

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestSpillLayout writes a layer's blocks of node-major records through
// blockIO, for batch sizes that fill pages exactly and that pad them, on
// one stripe and on several, then checks that every node's record is
// where Locate and the stripes say (one page read brings all its lanes)
// and that blocks read back whole.
func TestSpillLayout(t *testing.T) {
	for _, tc := range []struct {
		lanes, stripes int
		npb            uint64
	}{
		{lanes: 2, stripes: 1, npb: 128},
		{lanes: 3, stripes: 1, npb: 128},
		{lanes: 3, stripes: 3, npb: 256},
		{lanes: 5, stripes: 2, npb: 64},
		{lanes: 64, stripes: 1, npb: 32},
		{lanes: 64, stripes: 2, npb: 512},
		{lanes: 100, stripes: 2, npb: 16},
		{lanes: 128, stripes: 3, npb: 8},
		{lanes: 8, stripes: 2, npb: 8}, // a block smaller than a page
	} {
		t.Run(fmt.Sprintf("B%d/stripes%d/npb%d", tc.lanes, tc.stripes, tc.npb), func(t *testing.T) {
			l := SpillLayout{Lanes: tc.lanes, NodesPerBlock: tc.npb, Stripes: tc.stripes}
			rec := l.RecordSize()
			require.LessOrEqual(t, l.RecordsPerPage()*rec, uint64(PageSize))
			const blocks = 5
			r, err := NewDeviceReader(DeviceReaderOptions{PageSize: PageSize, Buffers: 4, Engine: EnginePread})
			require.NoError(t, err)
			defer r.Close()
			var dirs []string
			for range tc.stripes {
				dirs = append(dirs, t.TempDir())
			}
			sf, err := newSpillFiles(r, dirs, 2, blocks, l, spillFaults{})
			require.NoError(t, err)
			defer sf.close(r)
			bio, err := newBlockIO(l)
			require.NoError(t, err)
			defer bio.close()
			require.Equal(t, l.packed() && tc.stripes == 1, bio.stage == nil)

			rng := rand.New(rand.NewPCG(uint64(tc.lanes), tc.npb))
			size := int(tc.npb * rec)
			want := make([][]byte, blocks)
			for b := range blocks {
				// Blocks live in page-aligned memory (the arena).
				blk, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
				require.NoError(t, err)
				defer unix.Munmap(blk)
				for i := range blk {
					blk[i] = byte(rng.Uint32())
				}
				want[b] = blk
				require.NoError(t, bio.write(sf, b, blk))
			}
			page := make([]byte, PageSize)
			for node := range uint64(blocks) * tc.npb {
				p, off := l.Locate(node)
				s, foff := l.stripe(p)
				n, err := unix.Pread(int(sf.files[s].Fd()), page, foff)
				require.NoError(t, err)
				require.Equal(t, PageSize, n)
				b, i := node/tc.npb, node%tc.npb
				require.Equal(t, want[b][i*rec:(i+1)*rec], page[off:uint64(off)+rec], "node %d", node)
			}
			got, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			require.NoError(t, err)
			defer unix.Munmap(got)
			for b := range blocks {
				clear(got)
				require.NoError(t, bio.read(sf, b, got))
				require.Equal(t, want[b], got, "block %d", b)
			}
		})
	}
}

// TestSpillLayoutSingleSector checks that a single sector's labels are
// located in its layer file, packed, whatever the block size.
func TestSpillLayoutSingleSector(t *testing.T) {
	for _, npb := range []uint64{8, 128, 4096} {
		l := SpillLayout{Lanes: 1, NodesPerBlock: npb, Stripes: 1}
		for _, node := range []uint64{0, 1, 127, 128, 1000, 1 << 20} {
			p, off := l.Locate(node)
			require.Equal(t, node*sdr.NodeSize, p*PageSize+uint64(off), "npb %d node %d", npb, node)
		}
	}
}
