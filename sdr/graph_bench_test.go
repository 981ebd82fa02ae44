package sdr

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func benchGraph(b *testing.B, name string) *Graph {
	b.Helper()
	p, err := ProofByName(name)
	require.NoError(b, err)
	g, err := NewProofGraph(p)
	require.NoError(b, err)
	return g
}

// benchNode walks a few thousand nodes spread over the whole layer, so that
// cycle walking happens as often as it does over a full cache.
func benchNode(g *Graph, i int) uint64 {
	return (uint64(i%4096)*0x9e3779b97f4a7c15 + 2) % g.Nodes()
}

// BenchmarkParents is the parent cache's cost per node: ns/op is ns per node.
func BenchmarkParents(b *testing.B) {
	for _, name := range []string{"StackedDrg512MiBV1", "StackedDrg512MiBV1_1", "StackedDrg32GiBV1_1"} {
		b.Run(name, func(b *testing.B) {
			g := benchGraph(b, name)
			var ps [Degree]uint32
			g.Parents(2, &ps) // builds the round table outside the measurement
			b.ReportAllocs()
			defer reportCPU(b)()
			for i := 0; b.Loop(); i++ {
				g.Parents(benchNode(g, i), &ps)
			}
		})
	}
}

func BenchmarkBaseParents(b *testing.B) {
	g := benchGraph(b, "StackedDrg512MiBV1_1")
	var ps [BaseDegree]uint32
	b.ReportAllocs()
	defer reportCPU(b)()
	for i := 0; b.Loop(); i++ {
		g.BaseParents(benchNode(g, i), &ps)
	}
}

func BenchmarkExpanderParents(b *testing.B) {
	for _, name := range []string{"StackedDrg512MiBV1_1", "StackedDrg32GiBV1_1"} {
		b.Run(name, func(b *testing.B) {
			g := benchGraph(b, name)
			var ps [ExpanderDegree]uint32
			g.ExpanderParents(2, &ps)
			b.ReportAllocs()
			defer reportCPU(b)()
			for i := 0; b.Loop(); i++ {
				g.ExpanderParents(benchNode(g, i), &ps)
			}
		})
	}
}

// BenchmarkFeistelRound is one blake2b call of the Feistel network.
func BenchmarkFeistelRound(b *testing.B) {
	g := benchGraph(b, "StackedDrg512MiBV1_1")
	var acc uint64
	b.ReportAllocs()
	defer reportCPU(b)()
	for i := 0; b.Loop(); i++ {
		acc ^= g.feistelRound(uint64(i)&g.rightMask^acc&1, g.feistelKeyWords[i%feistelRounds])
	}
	sink = acc
}

var sink uint64

// processCPU is the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ns/op to a benchmark: on a machine shared with other
// work, wall-clock ns/op measures the contention as much as the code, while
// the CPU time the benchmark itself was given does not.
func reportCPU(b *testing.B) func() {
	start := processCPU(b)
	return func() {
		b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkBuildRoundTable is what a graph's first expander parents wait
// for: 3 x 2^halfBits specialised BLAKE2b calls.
func BenchmarkBuildRoundTable(b *testing.B) {
	for _, name := range []string{"StackedDrg512MiBV1_1", "StackedDrg32GiBV1_1"} {
		b.Run(name, func(b *testing.B) {
			g := benchGraph(b, name)
			defer reportCPU(b)()
			for b.Loop() {
				g.buildRoundTable()
			}
		})
	}
}
