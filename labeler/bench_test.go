package labeler

import (
	"fmt"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
	"github.com/stretchr/testify/require"
)

// benchBlockNodes is the block BenchmarkLabelBlock labels: 2^15 nodes, a
// 1 MiB block, an eighth of an 8 MiB layer.
const benchBlockNodes = 1 << 15

// benchLayers is an 8 MiB graph's parent table and two of its layers in a
// tier arena, as in a seal (hugepage-backed memory changes the cost of
// random parent reads). prev is filled with arbitrary labels; cur is
// scratch the benchmarks overwrite.
type benchLayers struct {
	graph     *sdr.Graph
	parents   []uint32
	cur, prev *layerView
}

func newBenchLayers(b *testing.B) *benchLayers {
	b.Helper()
	p, err := sdr.ProofByName("StackedDrg8MiBV1_1")
	require.NoError(b, err)
	g, err := sdr.NewProofGraph(p)
	require.NoError(b, err)
	const blockSize = benchBlockNodes * sdr.NodeSize
	perLayer := int(g.SectorSize() / blockSize)
	arena, _, err := tier.NewArena(2*perLayer, blockSize, tier.ArenaOptions{Populate: true})
	require.NoError(b, err)
	b.Cleanup(func() { arena.Close() })
	next := 0
	view := func() *layerView {
		v := newLayerView(perLayer, benchBlockNodes)
		for i := range perLayer {
			blk := arena.Block(next)
			for j := range blk {
				blk[j] = byte(next*131 + j*7)
			}
			v.SetBlock(i, blk)
			next++
		}
		return v
	}
	return &benchLayers{graph: g, parents: sdr.ParentTable(g), cur: view(), prev: view()}
}

// benchPaths are the two hashing paths of labelRange.
var benchPaths = []struct {
	name  string
	shaNI bool
}{
	{"sha-ni", true},
	{"portable", false},
}

// BenchmarkNodePath times one node label through each of labelRange's two
// paths with its parents in cache: the SHA-NI path (parent addresses, then
// the kernel hashing them in place) and the portable one (parents copied
// into the message, crypto/sha256). It is the per-node price of each path
// without memory effects; BenchmarkNodeKernels times the bare kernels,
// BenchmarkLabelBlock adds the parent misses.
func BenchmarkNodePath(b *testing.B) {
	ls := newBenchLayers(b)
	// A few nodes from the middle of the layer, cycled so that their
	// parents stay in cache after the first round.
	const first, span = 100_000, 64
	for _, path := range benchPaths {
		for _, layer := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/layer%d", path.name, layer), func(b *testing.B) {
				if path.shaNI && !cpuHasSHANI() {
					b.Skip("no SHA extensions on this CPU")
				}
				l := newNodeLabeler(path.shaNI)
				l.reset(&[32]byte{1}, layer)
				degree := sdr.BaseDegree
				if layer > 1 {
					degree = sdr.Degree
				}
				a := &l.addrs[0]
				i := uint64(0)
				for b.Loop() {
					node := first + i%span
					i++
					ps := ls.parents[node*sdr.Degree : (node+1)*sdr.Degree]
					out := ls.cur.label(uint32(node))
					l.parentAddrs(a, node, ps, degree, ls.cur, ls.prev)
					if path.shaNI {
						l.sumHalves(node, a, out, a, 0)
					} else {
						l.sumCopy(node, a, degree, out)
					}
				}
			})
		}
	}
}

// BenchmarkLabelBlock times labelRange over one 2^15-node block in the
// middle of an 8 MiB layer, parents from the real parent table, through
// each path: ns/node is the hot loop's price per label with its parent
// misses and prefetching, MB/s the rate at which it fills a block.
// BenchmarkLabelRange does a whole layer and states it as sha_limit_ratio.
func BenchmarkLabelBlock(b *testing.B) {
	ls := newBenchLayers(b)
	first := ls.graph.Nodes() / 2
	parents := ls.parents[first*sdr.Degree : (first+benchBlockNodes)*sdr.Degree]
	for _, path := range benchPaths {
		for _, layer := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/layer%d", path.name, layer), func(b *testing.B) {
				if path.shaNI && !cpuHasSHANI() {
					b.Skip("no SHA extensions on this CPU")
				}
				l := newNodeLabeler(path.shaNI)
				l.reset(&[32]byte{1}, layer)
				b.SetBytes(benchBlockNodes * sdr.NodeSize)
				for b.Loop() {
					l.labelRange(first, benchBlockNodes, parents, ls.cur, ls.prev)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(uint64(b.N)*benchBlockNodes), "ns/node")
			})
		}
	}
}
