package labeler

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
	"github.com/stretchr/testify/require"
)

// BenchmarkLabelRange measures the hot loop on one in-memory 8 MiB layer
// (layer 2: base parents from the current layer, expander parents from the
// previous one) and reports it against this machine's SHA-256 rate, so the
// figure is comparable across runs: sha_limit_ratio 1.0 means the loop
// costs nothing beyond its 20 compressions per node.
func BenchmarkLabelRange(b *testing.B) {
	p, err := sdr.ProofByName("StackedDrg8MiBV1_1")
	require.NoError(b, err)
	g, err := sdr.NewProofGraph(p)
	require.NoError(b, err)
	parents := sdr.ParentTable(g)
	const blockSize = 512 << 10
	// Layers live in a tier arena, as in a seal: hugepage-backed memory
	// changes the cost of random parent reads.
	perLayer := int(g.SectorSize() / blockSize)
	arena, _, err := tier.NewArena(2*perLayer, blockSize, tier.ArenaOptions{Populate: true})
	require.NoError(b, err)
	defer arena.Close()
	next := 0
	view := func() *layerView {
		nodesPerBlock := uint64(blockSize / sdr.NodeSize)
		v := newLayerView(perLayer, nodesPerBlock)
		for i := range perLayer {
			v.SetBlock(i, arena.Block(next))
			next++
		}
		return v
	}
	cur, prev := view(), view()
	for i, blk := range prev.blocks {
		for j := range blk {
			blk[j] = byte(i*31 + j)
		}
	}
	nodes := g.Nodes()
	for _, layer := range []int{1, 2} {
		b.Run(fmt.Sprintf("layer%d", layer), func(b *testing.B) {
			benchmarkLayer(b, layer, nodes, parents, cur, prev)
		})
	}
}

func benchmarkLayer(b *testing.B, layer int, nodes uint64, parents []uint32, cur, prev *layerView) {
	l := newNodeLabeler(cpuHasSHANI())
	l.reset(&[32]byte{1}, layer)

	// One core's SHA-256 rate over 64-byte blocks, measured the same way
	// bench.MeasureSHA256Rate does, to express the loop as a ratio.
	shaBuf := make([]byte, 64<<10)
	sh := sha256.New()
	for b.Loop() {
		l.labelRange(0, nodes, parents, cur, prev)
	}
	perNode := b.Elapsed().Seconds() / float64(uint64(b.N)*nodes)
	b.StopTimer()
	start := time.Now()
	var blocks int
	for time.Since(start) < 200*time.Millisecond {
		sh.Write(shaBuf)
		blocks += len(shaBuf) / 64
	}
	compressionsPerSec := float64(blocks) / time.Since(start).Seconds()
	b.ReportMetric(perNode*1e9, "ns/node")
	b.ReportMetric(sdr.CompressionsPerNode/perNode/compressionsPerSec, "sha_limit_ratio")
}

// BenchmarkRun8MiB runs the whole labeler on one 8 MiB sector with two
// layers, files and pool included: the reference workload.
func BenchmarkRun8MiB(b *testing.B) {
	p, err := sdr.ProofByName("StackedDrg8MiBV1_1")
	require.NoError(b, err)
	g, err := sdr.NewProofGraph(p)
	require.NoError(b, err)
	info, err := blockio.EnsureParentCache(context.Background(), g, b.TempDir(), blockio.ParentCacheOptions{})
	require.NoError(b, err)
	dir := b.TempDir()
	for b.Loop() {
		_, err := Run(context.Background(), Config{Graph: g, ParentCache: info.Path, Layers: 2, Sectors: []Sector{{Dir: dir}}})
		require.NoError(b, err)
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(uint64(b.N)*2*g.Nodes()), "ns/node")
}
