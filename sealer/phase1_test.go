package sealer_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/sealer"
)

// The comm_d values are those of all-zero 2 KiB and 32 GiB sectors
// (shared/spec/vectors/zero_commd.json), so the golden files describe real
// committed-capacity sectors.
const (
	zeroCommD2KiB  = "fc7e928296e516faade986b28f92d44a4f24b935485223376a799027bc18f833"
	zeroCommD32GiB = "077e5fde35c50a9303a55009e3498a4ebedff39c42b710b730d8ec7ac7afa63e"
)

// golden reads a hand-written testdata file and compacts it the way
// serde_json and encoding/json write: json.Compact keeps key order, number
// text and string escapes as written, so the files can be laid out for
// reading and still pin every byte.
func golden(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, json.Compact(&buf, raw))
	return buf.Bytes()
}

func input(t *testing.T, proof, commD, cacheDir string, layers int) sealer.Phase1Input {
	t.Helper()
	p, err := sdr.ProofByName(proof)
	require.NoError(t, err)
	c, err := sdr.ParseHex32(commD)
	require.NoError(t, err)
	return sealer.Phase1Input{Proof: p, CommD: c, CacheDir: cacheDir, Layers: layers}
}

func decode(t *testing.T, data []byte) map[string]interface{} {
	t.Helper()
	var doc map[string]interface{}
	require.NoError(t, json.Unmarshal(data, &doc))
	return doc
}

// The golden files are written from rust-fil-proofs' and
// filecoin-proofs-api's serde derives (see Phase1OutputJSON), not from this
// package's output.
func TestPhase1OutputJSONMatchesReference(t *testing.T) {
	tests := []struct {
		name   string
		in     sealer.Phase1Input
		golden string
	}{
		{"2KiB, default layers", input(t, "StackedDrg2KiBV1_1", zeroCommD2KiB, "/var/tmp/pc1/cache/s-t01000-1", 0), "phase1_2KiB_rust.json"},
		{"2KiB, explicit layers", input(t, "StackedDrg2KiBV1_1", zeroCommD2KiB, "/var/tmp/pc1/cache/s-t01000-1", 2), "phase1_2KiB_rust.json"},
		{"32GiB", input(t, "StackedDrg32GiBV1_1", zeroCommD32GiB, "/var/tmp/pc1/cache/s-t01000-2", 11), "phase1_32GiB_rust.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sealer.Phase1OutputJSON(tc.in)
			require.NoError(t, err)
			require.Equal(t, string(golden(t, tc.golden)), string(got))
		})
	}
}

// Curio builds the same document in Go (lib/ffi/sdr_funcs.go,
// makePhase1Out), with its own key order and "/placeholder" paths; the
// golden files are what it marshals. Decoded, the two must be equal.
func TestPhase1OutputJSONMatchesCurio(t *testing.T) {
	tests := []struct {
		name   string
		in     sealer.Phase1Input
		golden string
	}{
		{"2KiB", input(t, "StackedDrg2KiBV1_1", zeroCommD2KiB, "/placeholder", 0), "phase1_2KiB_curio.json"},
		{"32GiB", input(t, "StackedDrg32GiBV1_1", zeroCommD32GiB, "/placeholder", 0), "phase1_32GiB_curio.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sealer.Phase1OutputJSON(tc.in)
			require.NoError(t, err)
			require.Equal(t, decode(t, golden(t, tc.golden)), decode(t, got))
		})
	}
}

// Every registered proof of one size shares the size's Labels variant, and
// the sizes are node counts: n per layer, 2n-1 for tree_d.
func TestPhase1OutputJSONEveryProof(t *testing.T) {
	for _, p := range sdr.Proofs() {
		t.Run(p.Name, func(t *testing.T) {
			got, err := sealer.Phase1OutputJSON(sealer.Phase1Input{Proof: p, CacheDir: "/c"})
			require.NoError(t, err)
			var doc struct {
				RegisteredProof string `json:"registered_proof"`
				Labels          map[string]struct {
					Labels []struct {
						ID   string `json:"id"`
						Size uint64 `json:"size"`
					} `json:"labels"`
				} `json:"labels"`
				Config struct {
					Size uint64 `json:"size"`
				} `json:"config"`
			}
			require.NoError(t, json.Unmarshal(got, &doc))
			require.Equal(t, p.Name, doc.RegisteredProof)
			variant := "StackedDrg" + sdr.FormatSize(p.SectorSize) + "V1"
			require.Contains(t, doc.Labels, variant)
			require.Len(t, doc.Labels, 1)
			require.Len(t, doc.Labels[variant].Labels, p.Layers)
			for k, l := range doc.Labels[variant].Labels {
				require.Equal(t, fmt.Sprintf("layer-%d", k+1), l.ID)
				require.Equal(t, p.Nodes(), l.Size)
			}
			require.Equal(t, 2*p.Nodes()-1, doc.Config.Size)
		})
	}
}

func TestLotusPreCommit1Out(t *testing.T) {
	var ones [32]byte
	for i := range ones {
		ones[i] = 1
	}
	t.Run("bytes as Lotus marshals them", func(t *testing.T) {
		got, err := sealer.LotusPreCommit1Out(input(t, "StackedDrg2KiBV1_1", zeroCommD2KiB, "/var/tmp/pc1/cache/s-t01000-1", 0), ones)
		require.NoError(t, err)
		require.Equal(t, string(golden(t, "phase1_2KiB_lotus.json")), string(got))
	})

	tests := []struct {
		name   string
		in     sealer.Phase1Input
		ticket [32]byte
	}{
		{"2KiB", input(t, "StackedDrg2KiBV1_1", zeroCommD2KiB, "/var/tmp/pc1/cache/s-t01000-1", 0), ones},
		{"32GiB", input(t, "StackedDrg32GiBV1_1", zeroCommD32GiB, "/var/tmp/pc1/cache/s-t01000-2", 0), [32]byte{0xff, 0, 0x7f, 31: 0xaa}},
		{"path Go escapes", input(t, "StackedDrg8MiBV1_1_Feat_SyntheticPoRep", zeroCommD2KiB, "/a<b>&c\u2028", 0), ones},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sealer.LotusPreCommit1Out(tc.in, tc.ticket)
			require.NoError(t, err)
			doc := decode(t, got)

			// Lotus' SealPreCommit2 reads the ticket back this way.
			enc, ok := doc["_lotus_SealRandomness"].(string)
			require.True(t, ok, "ticket is not a string: %v", doc["_lotus_SealRandomness"])
			ticket, err := base64.StdEncoding.DecodeString(enc)
			require.NoError(t, err)
			require.Equal(t, tc.ticket[:], ticket)

			delete(doc, "_lotus_SealRandomness")
			raw, err := sealer.Phase1OutputJSON(tc.in)
			require.NoError(t, err)
			require.Equal(t, decode(t, raw), doc)
		})
	}
}

// serde_json escapes less than encoding/json: paths must come out as the
// reference writes them.
func TestPhase1OutputJSONEscapesLikeSerde(t *testing.T) {
	tests := []struct {
		name, dir, literal string
	}{
		{"plain", "/var/tmp/cache", `"/var/tmp/cache"`},
		{"quote and backslash", `/a "b"\c`, `"/a \"b\"\\c"`},
		{"short escapes", "/t\tn\nr\rb\bf\f", `"/t\tn\nr\rb\bf\f"`},
		{"other controls", "/x\x01\x1f\x7f", `"/x\u0001\u001f` + "\x7f\""},
		{"html and line separators raw", "/<&>é\u2028\u2029", "\"/<&>é\u2028\u2029\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := input(t, "StackedDrg2KiBV1_1", zeroCommD2KiB, tc.dir, 0)
			got, err := sealer.Phase1OutputJSON(in)
			require.NoError(t, err)
			require.Contains(t, string(got), `"config":{"path":`+tc.literal+`,"id":"tree-d"`)
			var doc struct {
				Config struct {
					Path string `json:"path"`
				} `json:"config"`
			}
			require.NoError(t, json.Unmarshal(got, &doc))
			require.Equal(t, tc.dir, doc.Config.Path)
		})
	}
}

func TestPhase1OutputJSONRejects(t *testing.T) {
	good := input(t, "StackedDrg2KiBV1_1", zeroCommD2KiB, "/c", 0)
	badTop := good
	badTop.CommD[31] |= 0x40
	unknown := good
	unknown.Proof.ID = 99
	mismatch := good
	mismatch.Proof.SectorSize = 8 << 20
	renamed := good
	renamed.Proof.Name = "StackedDrg2KiBV1"
	tooFew := good
	tooFew.Layers = 1
	negative := good
	negative.Layers = -2
	noDir := good
	noDir.CacheDir = ""
	badUTF8 := good
	badUTF8.CacheDir = "/c\xff"

	tests := []struct {
		name string
		in   sealer.Phase1Input
		want []string
	}{
		{"unknown proof id", unknown, []string{"unknown registered seal proof 99"}},
		{"size does not match id", mismatch, []string{`proof "StackedDrg2KiBV1_1"`, "is not a registered seal proof", "StackedDrg2KiBV1_1 (2KiB)"}},
		{"name does not match id", renamed, []string{`proof "StackedDrg2KiBV1"`, "id 5 is StackedDrg2KiBV1_1"}},
		{"wrong layer count", tooFew, []string{"StackedDrg2KiBV1_1", "1 label layers", "has 2"}},
		{"negative layer count", negative, []string{"-2 label layers"}},
		{"no cache dir", noDir, []string{"no cache directory"}},
		{"cache dir not UTF-8", badUTF8, []string{"not valid UTF-8"}},
		{"comm_d not a field element", badTop, []string{"comm_d", "not a tree_d root"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sealer.Phase1OutputJSON(tc.in)
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			_, err = sealer.LotusPreCommit1Out(tc.in, [32]byte{})
			require.Error(t, err)
			require.Error(t, sealer.WritePhase1Output(t.TempDir(), tc.in))
		})
	}
}

func TestWritePhase1Output(t *testing.T) {
	in := input(t, "StackedDrg2KiBV1_1", zeroCommD2KiB, "/var/tmp/pc1/cache/s-t01000-1", 0)
	tests := []struct {
		name    string
		dir     func(t *testing.T) string
		wantErr string
	}{
		{"fresh", func(t *testing.T) string { return t.TempDir() }, ""},
		{"replaces an old file", func(t *testing.T) string {
			d := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(d, sealer.Phase1OutputFile), []byte("stale and longer than the new content ..."), 0o644))
			return d
		}, ""},
		{"missing directory", func(t *testing.T) string { return filepath.Join(t.TempDir(), "gone") }, "gone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			err := sealer.WritePhase1Output(dir, in)
			if tc.wantErr != "" {
				require.Error(t, err)
				require.Contains(t, err.Error(), tc.wantErr)
				require.Contains(t, err.Error(), "StackedDrg2KiBV1_1")
				return
			}
			require.NoError(t, err)
			require.Equal(t, "pc1out.json", sealer.Phase1OutputFile)
			got, err := os.ReadFile(filepath.Join(dir, sealer.Phase1OutputFile))
			require.NoError(t, err)
			require.Equal(t, string(golden(t, "phase1_2KiB_rust.json")), string(got))
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "temporary files left behind")
		})
	}
}

func TestGoldenCommDsAreZeroSectors(t *testing.T) {
	tests := []struct {
		size uint64
		hex  string
	}{
		{2 << 10, zeroCommD2KiB},
		{32 << 30, zeroCommD32GiB},
	}
	for _, tc := range tests {
		z, err := sdr.ZeroCommD(tc.size)
		require.NoError(t, err)
		require.Equal(t, tc.hex, hex.EncodeToString(z[:]))
	}
}
