package sealer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// TestLabelBatchMatchesReference labels two sectors given by replica id,
// as a Curio SDR task would, and compares every layer with the oracle.
func TestLabelBatchMatchesReference(t *testing.T) {
	proof, err := sdr.ProofByName("StackedDrg2KiBV1_1")
	require.NoError(t, err)
	g, err := sdr.NewProofGraph(proof)
	require.NoError(t, err)
	root := t.TempDir()
	reps := []Replica{
		{CacheDir: filepath.Join(root, "a"), ReplicaID: [32]byte{1, 2, 3}},
		{CacheDir: filepath.Join(root, "b"), ReplicaID: [32]byte{4, 5, 6}},
	}
	rep, err := LabelBatch(context.Background(), proof, reps, LabelOptions{ParentCacheDir: filepath.Join(root, "parents")})
	require.NoError(t, err)
	require.Len(t, rep.Sectors, 2)
	table := sdr.ParentTable(g)
	for _, r := range reps {
		err := sdr.ReferenceLabels(g, table, r.ReplicaID, proof.Layers, func(layer int, labels []byte) error {
			got, err := os.ReadFile(filepath.Join(r.CacheDir, sdr.LayerFileName(layer)))
			require.NoError(t, err)
			require.True(t, bytes.Equal(labels, got), "%s layer %d", r.CacheDir, layer)
			return nil
		})
		require.NoError(t, err)
	}

	_, err = LabelBatch(context.Background(), sdr.Proof{Name: "made up"}, reps, LabelOptions{})
	require.ErrorContains(t, err, "not a registered seal proof")
	_, err = GenerateSDR(context.Background(), proof, "", [32]byte{}, LabelOptions{ParentCacheDir: filepath.Join(root, "parents")})
	require.ErrorContains(t, err, "no cache directory")
}
