package interop

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	commcid "github.com/filecoin-project/go-fil-commcid"
	"github.com/filecoin-project/go-state-types/abi"
	curioproof "github.com/filecoin-project/lotus/curiosrc/proof"
	"github.com/stretchr/testify/require"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/sealer"
)

// Curio builds tree_d itself, in Go, before it asks filecoin-ffi for the
// layers: BuildTreeD in lotus' curiosrc/proof (v1.27.0, the last release
// that carried Curio's sources; the Curio module is not served by the
// module proxy here). A sector sealed by pc1-tiered must leave the same
// sc-02-data-tree-d.dat, byte for byte, and the same comm_d, so that a
// Curio PC2 (or its TreeD task's output, where Curio made it) agrees with
// ours. The sectors go through sealer.SealBatch, the library call an
// orchestrator makes, not through sdr directly.
func TestTreeDMatchesCurio(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	tests := []struct {
		name   string
		proof  string
		staged func(size uint64) []byte // nil: a CC sector
	}{
		{"2KiB CC", "StackedDrg2KiBV1_1", nil},
		{"2KiB random", "StackedDrg2KiBV1_1", func(size uint64) []byte { return fr32Pad(randomBytes(rng, size/128*127)) }},
		{"8MiB CC", "StackedDrg8MiBV1_1", nil},
		{"8MiB random", "StackedDrg8MiBV1_1", func(size uint64) []byte { return fr32Pad(randomBytes(rng, size/128*127)) }},
		{"8MiB half data, half zeros", "StackedDrg8MiBV1_1", func(size uint64) []byte {
			return append(fr32Pad(randomBytes(rng, size/2/128*127)), make([]byte, size/2)...)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			proof, err := sdr.ProofByName(tc.proof)
			require.NoError(t, err)
			root := t.TempDir()
			in := sealer.SectorInput{ProverID: sealer.ActorProverID(1000), SectorNumber: 3, Ticket: [32]byte{1, 2, 3}}
			data := make([]byte, proof.SectorSize) // what Curio reads for CC
			if tc.staged != nil {
				data = tc.staged(proof.SectorSize)
				require.Len(t, data, int(proof.SectorSize))
				in.Staged = filepath.Join(root, "staged")
				require.NoError(t, os.WriteFile(in.Staged, data, 0o644))
			}
			res, err := sealer.SealBatch(t.Context(), sealer.Batch{
				Proof:          proof,
				Layers:         1, // tree_d is what is compared; one layer keeps it quick
				Root:           root,
				Sectors:        []sealer.SectorInput{in},
				ParentCacheDir: filepath.Join(root, "parents"),
			})
			require.NoError(t, err)
			ours, err := os.ReadFile(res.Sectors[0].TreeD)
			require.NoError(t, err)

			curioPath := filepath.Join(root, "curio-tree-d.dat")
			unsealed, err := curioproof.BuildTreeD(bytes.NewReader(data), false, curioPath, abi.PaddedPieceSize(proof.SectorSize))
			require.NoError(t, err)
			curio, err := os.ReadFile(curioPath)
			require.NoError(t, err)
			require.Equal(t, len(curio), len(ours), "tree_d size")
			require.True(t, bytes.Equal(curio, ours), "tree_d differs from Curio's BuildTreeD at byte %d", firstDiff(curio, ours))

			commD, err := commcid.CIDToDataCommitmentV1(unsealed)
			require.NoError(t, err)
			require.Equal(t, commD, res.Sectors[0].CommD[:])
		})
	}
}

func randomBytes(rng *rand.Rand, n uint64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
