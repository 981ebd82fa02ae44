package blockio

import (
	"context"
	"io"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// BenchmarkParentDigest is the parent cache's generation without the file:
// the worker loop, ordering and SHA-256 of a 512 MiB graph's 896 MiB. Run
// it with -benchtime 1x (one op is a whole cache) and -cpuprofile to see
// where generation spends its CPU.
func BenchmarkParentDigest(b *testing.B) {
	for _, name := range []string{"StackedDrg512MiBV1", "StackedDrg512MiBV1_1"} {
		b.Run(name, func(b *testing.B) {
			g := proofGraph(b, name)
			b.SetBytes(int64(g.Nodes() * sdr.ParentCacheBytesPerNode))
			for b.Loop() {
				if _, err := parentDigest(context.Background(), g, io.Discard, 0, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
