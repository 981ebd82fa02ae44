// Package interop checks pc1-tiered's outputs against the Go libraries Lotus
// and Curio are built on. It is a separate module so that these heavy
// dependencies never reach the product's own module graph.
package interop

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	commcid "github.com/filecoin-project/go-fil-commcid"
	"github.com/filecoin-project/go-state-types/abi"
	"github.com/stretchr/testify/require"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/sealer"
)

// The Go type that reads this JSON back is Curio's lib/proof
// PreCommit1OutRaw (filecoin-project/curio lib/proof/porep_vproof_types.go;
// before the split, filecoin-project/lotus curiosrc/proof, never in a lotus
// release). The Curio module cannot be had through the module proxy this
// project uses (it answers 403 for github.com/filecoin-project/curio), and
// no lighter module exports an equivalent: Lotus keeps PreCommit1Out as a
// []byte and decodes it into map[string]interface{}, filecoin-ffi passes it
// through as []byte, go-state-types has no JSON form of a seal proof. So the
// type is restated here, field for field and tag for tag as Curio declares
// it, and the values it carries are checked with the exported types that do
// exist: abi.RegisteredSealProof for the proof and go-fil-commcid for
// comm_d, the conversion Curio's makePhase1Out starts from.
type curioLabel struct {
	ID            string `json:"id"`
	Path          string `json:"path"`
	RowsToDiscard int    `json:"rows_to_discard"`
	Size          int    `json:"size"`
}

type curioLabels struct {
	H      any          `json:"_h"`
	Labels []curioLabel `json:"labels"`
}

type curioPreCommit1OutRaw struct {
	LotusSealRand []byte `json:"_lotus_SealRandomness"`

	CommD           [32]byte               `json:"comm_d"`
	Config          curioLabel             `json:"config"`
	Labels          map[string]curioLabels `json:"labels"`
	RegisteredProof string                 `json:"registered_proof"`
}

// rustProofNames maps the reference's RegisteredSealProof variant names,
// which serde writes into registered_proof
// (filecoin-project/rust-filecoin-proofs-api src/registry.rs), to
// go-state-types' numbers (abi/sector.go). The NI-PoRep variants are spelt
// NonInteractivePoRep in Rust and NiPoRep in Go.
var rustProofNames = map[string]abi.RegisteredSealProof{
	"StackedDrg2KiBV1":   abi.RegisteredSealProof_StackedDrg2KiBV1,
	"StackedDrg8MiBV1":   abi.RegisteredSealProof_StackedDrg8MiBV1,
	"StackedDrg512MiBV1": abi.RegisteredSealProof_StackedDrg512MiBV1,
	"StackedDrg32GiBV1":  abi.RegisteredSealProof_StackedDrg32GiBV1,
	"StackedDrg64GiBV1":  abi.RegisteredSealProof_StackedDrg64GiBV1,

	"StackedDrg2KiBV1_1":   abi.RegisteredSealProof_StackedDrg2KiBV1_1,
	"StackedDrg8MiBV1_1":   abi.RegisteredSealProof_StackedDrg8MiBV1_1,
	"StackedDrg512MiBV1_1": abi.RegisteredSealProof_StackedDrg512MiBV1_1,
	"StackedDrg32GiBV1_1":  abi.RegisteredSealProof_StackedDrg32GiBV1_1,
	"StackedDrg64GiBV1_1":  abi.RegisteredSealProof_StackedDrg64GiBV1_1,

	"StackedDrg2KiBV1_1_Feat_SyntheticPoRep":   abi.RegisteredSealProof_StackedDrg2KiBV1_1_Feat_SyntheticPoRep,
	"StackedDrg8MiBV1_1_Feat_SyntheticPoRep":   abi.RegisteredSealProof_StackedDrg8MiBV1_1_Feat_SyntheticPoRep,
	"StackedDrg512MiBV1_1_Feat_SyntheticPoRep": abi.RegisteredSealProof_StackedDrg512MiBV1_1_Feat_SyntheticPoRep,
	"StackedDrg32GiBV1_1_Feat_SyntheticPoRep":  abi.RegisteredSealProof_StackedDrg32GiBV1_1_Feat_SyntheticPoRep,
	"StackedDrg64GiBV1_1_Feat_SyntheticPoRep":  abi.RegisteredSealProof_StackedDrg64GiBV1_1_Feat_SyntheticPoRep,

	"StackedDrg2KiBV1_2_Feat_NonInteractivePoRep":   abi.RegisteredSealProof_StackedDrg2KiBV1_2_Feat_NiPoRep,
	"StackedDrg8MiBV1_2_Feat_NonInteractivePoRep":   abi.RegisteredSealProof_StackedDrg8MiBV1_2_Feat_NiPoRep,
	"StackedDrg512MiBV1_2_Feat_NonInteractivePoRep": abi.RegisteredSealProof_StackedDrg512MiBV1_2_Feat_NiPoRep,
	"StackedDrg32GiBV1_2_Feat_NonInteractivePoRep":  abi.RegisteredSealProof_StackedDrg32GiBV1_2_Feat_NiPoRep,
	"StackedDrg64GiBV1_2_Feat_NonInteractivePoRep":  abi.RegisteredSealProof_StackedDrg64GiBV1_2_Feat_NiPoRep,
}

// curioSizes are the numbers Curio's makePhase1Out writes per sector size
// (filecoin-project/curio lib/ffi/sdr_funcs.go) and its layer counts
// (lib/proofpaths SDRLayers): the label variant, layers, the size of each
// layer's store and of tree_d's, in nodes.
var curioSizes = map[abi.SectorSize]struct {
	variant         string
	layers          int
	labelSize       int
	treeDSize       int
	registeredProof string
}{
	2 << 10:   {"StackedDrg2KiBV1", 2, 64, 127, "StackedDrg2KiBV1_1"},
	8 << 20:   {"StackedDrg8MiBV1", 2, 262144, 524287, "StackedDrg8MiBV1_1"},
	512 << 20: {"StackedDrg512MiBV1", 2, 16777216, 33554431, "StackedDrg512MiBV1_1"},
	32 << 30:  {"StackedDrg32GiBV1", 11, 1073741824, 2147483647, "StackedDrg32GiBV1_1"},
	64 << 30:  {"StackedDrg64GiBV1", 11, 2147483648, 4294967295, "StackedDrg64GiBV1_1"},
}

func decodeStrict(t *testing.T, data []byte) curioPreCommit1OutRaw {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var out curioPreCommit1OutRaw
	require.NoError(t, dec.Decode(&out))
	return out
}

func TestPhase1OutputReadsWithCurioTypes(t *testing.T) {
	zero2KiB, err := sdr.ZeroCommD(2 << 10)
	require.NoError(t, err)
	tests := []struct {
		proof string
		commD [32]byte
		// cid is the unsealed CID Curio would have started from, where a
		// published value exists: the all-zero 2 KiB sector's, as
		// filecoin-project/lotus cmd/lotus-bench/simple.go prints it.
		cid string
	}{
		{"StackedDrg2KiBV1_1", zero2KiB, "baga6ea4seaqpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy"},
		{"StackedDrg2KiBV1", [32]byte{1, 2, 3}, ""},
		{"StackedDrg8MiBV1_1_Feat_SyntheticPoRep", [32]byte{31: 0x3f}, ""},
		{"StackedDrg512MiBV1_1", [32]byte{0: 0xff, 31: 0x01}, ""},
		{"StackedDrg32GiBV1_1", [32]byte{7, 7, 7}, ""},
		{"StackedDrg64GiBV1_2_Feat_NonInteractivePoRep", [32]byte{9: 9}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.proof, func(t *testing.T) {
			p, err := sdr.ProofByName(tc.proof)
			require.NoError(t, err)
			in := sealer.Phase1Input{Proof: p, CommD: tc.commD, CacheDir: "/var/tmp/cache/s-t01000-7"}
			raw, err := sealer.Phase1OutputJSON(in)
			require.NoError(t, err)
			out := decodeStrict(t, raw)

			spt, ok := rustProofNames[out.RegisteredProof]
			require.True(t, ok, "registered_proof %q is not a reference proof name", out.RegisteredProof)
			require.Equal(t, abi.RegisteredSealProof(p.ID), spt, "registered-proof number")
			ssize, err := spt.SectorSize()
			require.NoError(t, err)
			require.Equal(t, abi.SectorSize(p.SectorSize), ssize)

			want, ok := curioSizes[ssize]
			require.True(t, ok)
			require.Len(t, out.Labels, 1)
			labels, ok := out.Labels[want.variant]
			require.True(t, ok, "labels variant: have %v, want %s", out.Labels, want.variant)
			require.Nil(t, labels.H)
			require.Len(t, labels.Labels, want.layers)
			for k, l := range labels.Labels {
				require.Equal(t, curioLabel{ID: "layer-" + strconv.Itoa(k+1), Path: in.CacheDir, Size: want.labelSize}, l)
			}
			require.Equal(t, curioLabel{ID: "tree-d", Path: in.CacheDir, Size: want.treeDSize}, out.Config)

			// Curio's makePhase1Out gets comm_d from the unsealed CID with
			// CIDToDataCommitmentV1; the bytes must survive that trip.
			c, err := commcid.DataCommitmentV1ToCID(out.CommD[:])
			require.NoError(t, err)
			if tc.cid != "" {
				require.Equal(t, tc.cid, c.String())
			}
			back, err := commcid.CIDToDataCommitmentV1(c)
			require.NoError(t, err)
			require.Equal(t, tc.commD[:], back)
			require.Nil(t, out.LotusSealRand)

			// Curio names synthetic-PoRep proofs by their V1_1 base in
			// registered_proof, where the reference writes the full name;
			// the rest of the document is the same.
			if abi.Synthetic[spt] {
				require.Equal(t, want.registeredProof+"_Feat_SyntheticPoRep", out.RegisteredProof)
			}
		})
	}
}

func TestLotusPreCommit1OutReadsWithCurioTypes(t *testing.T) {
	tests := []struct {
		proof  string
		ticket [32]byte
	}{
		{"StackedDrg2KiBV1_1", [32]byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{"StackedDrg32GiBV1_1_Feat_SyntheticPoRep", [32]byte{0: 0xde, 1: 0xad, 31: 0xff}},
	}
	for _, tc := range tests {
		t.Run(tc.proof, func(t *testing.T) {
			p, err := sdr.ProofByName(tc.proof)
			require.NoError(t, err)
			in := sealer.Phase1Input{Proof: p, CommD: [32]byte{5: 5}, CacheDir: "/cache"}
			lotus, err := sealer.LotusPreCommit1Out(in, tc.ticket)
			require.NoError(t, err)
			raw, err := sealer.Phase1OutputJSON(in)
			require.NoError(t, err)

			got := decodeStrict(t, lotus)
			require.Equal(t, abi.SealRandomness(tc.ticket[:]), abi.SealRandomness(got.LotusSealRand))
			got.LotusSealRand = nil
			require.Equal(t, decodeStrict(t, raw), got)
		})
	}
}
