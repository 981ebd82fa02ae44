package sdr

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

type labelVector struct {
	SectorSize        uint64 `json:"sector_size"`
	Layers            int    `json:"layers"`
	ReplicaID         string `json:"replica_id"`
	PorepID           string `json:"porep_id"`
	APIVersion        string `json:"api_version"`
	ExpectedLastLabel string `json:"expected_last_label"`
}

func loadLabelVectors(t testing.TB) []labelVector {
	raw, err := os.ReadFile("../testdata/vectors/create_labels.json")
	require.NoError(t, err)
	var file struct {
		Cases []labelVector `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(raw, &file))
	require.NotEmpty(t, file.Cases)
	return file.Cases
}

func hex32(t testing.TB, s string) [32]byte {
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	require.Len(t, b, 32)
	return [32]byte(b)
}

// TestReferenceLabelsVectors checks the oracle against rust-fil-proofs'
// own create_labels vectors, with parents computed and from a table.
func TestReferenceLabelsVectors(t *testing.T) {
	for _, v := range loadLabelVectors(t) {
		for _, useTable := range []bool{false, true} {
			t.Run(v.APIVersion+map[bool]string{false: "/computed", true: "/table"}[useTable], func(t *testing.T) {
				api, err := ParseAPIVersion(v.APIVersion)
				require.NoError(t, err)
				g, err := NewGraph(v.SectorSize, hex32(t, v.PorepID), api)
				require.NoError(t, err)
				var table []uint32
				if useTable {
					table = ParentTable(g)
				}
				var last []byte
				layersSeen := 0
				err = ReferenceLabels(g, table, hex32(t, v.ReplicaID), v.Layers, func(layer int, labels []byte) error {
					layersSeen++
					require.Equal(t, layersSeen, layer)
					require.Len(t, labels, int(v.SectorSize))
					last = append(last[:0], labels[len(labels)-NodeSize:]...)
					return nil
				})
				require.NoError(t, err)
				require.Equal(t, v.Layers, layersSeen)
				require.Equal(t, v.ExpectedLastLabel, hex.EncodeToString(last))
			})
		}
	}
}

func TestReferenceLabelsErrors(t *testing.T) {
	g, err := NewGraph(2048, [32]byte{}, APIVersion1_1)
	require.NoError(t, err)
	noop := func(int, []byte) error { return nil }
	require.ErrorContains(t, ReferenceLabels(g, nil, [32]byte{}, 0, noop), "layer count 0")
	require.ErrorContains(t, ReferenceLabels(g, make([]uint32, 3), [32]byte{}, 2, noop), "parent table has 3 entries")
}
