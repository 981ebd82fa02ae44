package sealer

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// TestOnParentCache checks that every entry point tells its OnParentCache
// about the parent cache it generates, from 0 up to the graph's nodes, and
// says nothing when the cache is already there.
func TestOnParentCache(t *testing.T) {
	proof := proofNamed(t, "StackedDrg2KiBV1_1")
	g, err := sdr.NewProofGraph(proof)
	require.NoError(t, err)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func(root, parents string, on func(done, total uint64)) error
	}{
		{name: "Label", run: func(root, parents string, on func(done, total uint64)) error {
			_, err := Label(ctx, LabelRequest{
				Config:         labeler.Config{Graph: g, Layers: 2, Sectors: []labeler.Sector{{ReplicaID: [32]byte{1}, Dir: root}}},
				ParentCacheDir: parents, OnParentCache: on,
			})
			return err
		}},
		{name: "GenerateSDR", run: func(root, parents string, on func(done, total uint64)) error {
			_, err := GenerateSDR(ctx, proof, root, [32]byte{2}, LabelOptions{ParentCacheDir: parents, OnParentCache: on})
			return err
		}},
		{name: "SealBatch", run: func(root, parents string, on func(done, total uint64)) error {
			_, err := SealBatch(ctx, Batch{Proof: proof, Layers: 2, Root: root, ParentCacheDir: parents, OnParentCache: on,
				Sectors: []SectorInput{{ProverID: ActorProverID(1000), SectorNumber: 1, Ticket: ticketOf(1)}}})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, parents := t.TempDir(), filepath.Join(t.TempDir(), "parents")
			for _, want := range [][]uint64{{0, g.Nodes()}, nil} { // generated, then found
				var got []uint64
				require.NoError(t, tc.run(root, parents, func(done, total uint64) {
					require.Equal(t, g.Nodes(), total)
					got = append(got, done)
				}))
				require.Equal(t, want, got)
			}
		})
	}
}
