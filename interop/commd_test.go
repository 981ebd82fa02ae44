package interop

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	commp "github.com/filecoin-project/go-commp-utils/v2"
	"github.com/filecoin-project/go-commp-utils/v2/zerocomm"
	commcid "github.com/filecoin-project/go-fil-commcid"
	"github.com/filecoin-project/go-state-types/abi"
	"github.com/stretchr/testify/require"

	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// fr32Pad spreads each 127 bytes of raw piece data over four 32-byte leaves
// of 254 bits each, the two top bits of every leaf zero: bit i of the input
// (least significant bit of each byte first) lands at bit
// (i/254)*256 + i%254 of the output. This is the staged-sector layout the
// reference and go-fil-commp-hashhash both pad into; the test needs its own
// copy to build a staged sector from the same raw bytes the piece
// commitment is computed over. If it were wrong, the two commitments below
// could not agree.
func fr32Pad(raw []byte) []byte {
	out := make([]byte, len(raw)/127*128)
	for i := 0; i < len(raw)*8; i++ {
		if raw[i/8]>>(i%8)&1 == 0 {
			continue
		}
		o := i/254*256 + i%254
		out[o/8] |= 1 << (o % 8)
	}
	return out
}

// pieceFromRaw is the piece commitment of raw, a power-of-two piece's worth
// of unpadded bytes, as go-commp-utils computes it (Fr32 padding and the
// SHA-254 tree in go-fil-commp-hashhash).
func pieceFromRaw(t *testing.T, spt abi.RegisteredSealProof, raw []byte) abi.PieceInfo {
	t.Helper()
	size := abi.UnpaddedPieceSize(len(raw))
	require.NoError(t, size.Validate())
	c, err := commp.GeneratePieceCIDFromFile(spt, bytes.NewReader(raw), size)
	require.NoError(t, err)
	return abi.PieceInfo{Size: size.Padded(), PieceCID: c}
}

func TestCommDMatchesPieceCommitments(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randomRaw := func(padded uint64) []byte {
		raw := make([]byte, padded/128*127)
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		return raw
	}
	zeroPiece := func(padded uint64) abi.PieceInfo {
		size := abi.PaddedPieceSize(padded)
		return abi.PieceInfo{Size: size, PieceCID: zerocomm.ZeroPieceCommitment(size.Unpadded())}
	}

	tests := []struct {
		name  string
		spt   abi.RegisteredSealProof
		build func(t *testing.T, spt abi.RegisteredSealProof) (staged []byte, pieces []abi.PieceInfo)
	}{
		{"2KiB, one random piece", abi.RegisteredSealProof_StackedDrg2KiBV1_1, func(t *testing.T, spt abi.RegisteredSealProof) ([]byte, []abi.PieceInfo) {
			raw := randomRaw(2 << 10)
			return fr32Pad(raw), []abi.PieceInfo{pieceFromRaw(t, spt, raw)}
		}},
		{"8MiB, one random piece", abi.RegisteredSealProof_StackedDrg8MiBV1_1, func(t *testing.T, spt abi.RegisteredSealProof) ([]byte, []abi.PieceInfo) {
			raw := randomRaw(8 << 20)
			return fr32Pad(raw), []abi.PieceInfo{pieceFromRaw(t, spt, raw)}
		}},
		{"8MiB, 4MiB random piece then zero filler", abi.RegisteredSealProof_StackedDrg8MiBV1_1, func(t *testing.T, spt abi.RegisteredSealProof) ([]byte, []abi.PieceInfo) {
			raw := randomRaw(4 << 20)
			staged := append(fr32Pad(raw), make([]byte, 4<<20)...)
			return staged, []abi.PieceInfo{pieceFromRaw(t, spt, raw), zeroPiece(4 << 20)}
		}},
		{"8MiB, pieces of 1MiB, 1MiB, 2MiB, 4MiB", abi.RegisteredSealProof_StackedDrg8MiBV1_1, func(t *testing.T, spt abi.RegisteredSealProof) ([]byte, []abi.PieceInfo) {
			var staged []byte
			var pieces []abi.PieceInfo
			for _, padded := range []uint64{1 << 20, 1 << 20, 2 << 20, 4 << 20} {
				raw := randomRaw(padded)
				staged = append(staged, fr32Pad(raw)...)
				pieces = append(pieces, pieceFromRaw(t, spt, raw))
			}
			return staged, pieces
		}},
		{"2KiB, all zero", abi.RegisteredSealProof_StackedDrg2KiBV1_1, func(t *testing.T, spt abi.RegisteredSealProof) ([]byte, []abi.PieceInfo) {
			return make([]byte, 2<<10), []abi.PieceInfo{zeroPiece(2 << 10)}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ssize, err := tc.spt.SectorSize()
			require.NoError(t, err)
			staged, pieces := tc.build(t, tc.spt)
			require.Len(t, staged, int(ssize))
			for off := sdr.NodeSize - 1; off < len(staged); off += sdr.NodeSize {
				require.Zero(t, staged[off]&0xc0, "leaf %d is not a field element", off/sdr.NodeSize)
			}

			unsealed, total, err := commp.PieceAggregateCommP(tc.spt, pieces)
			require.NoError(t, err)
			require.Equal(t, abi.PaddedPieceSize(ssize), total)
			want, err := commcid.CIDToDataCommitmentV1(unsealed)
			require.NoError(t, err)

			got, err := sdr.CommD(bytes.NewReader(staged), uint64(ssize)/sdr.NodeSize)
			require.NoError(t, err)
			require.Equal(t, want, got[:], "comm_d %x, unsealed CID %s", got, unsealed)
		})
	}
}

// The all-zero comm_d the project ships for every production size
// (sdr.ZeroCommD) against go-commp-utils' own zero-piece table.
func TestZeroCommDMatchesZerocomm(t *testing.T) {
	for _, p := range sdr.Proofs() {
		if !strings.HasSuffix(p.Name, "V1_1") {
			continue // one proof per sector size
		}
		t.Run(p.Name, func(t *testing.T) {
			want, err := commcid.CIDToDataCommitmentV1(zerocomm.ZeroPieceCommitment(abi.PaddedPieceSize(p.SectorSize).Unpadded()))
			require.NoError(t, err)
			got, err := sdr.ZeroCommD(p.SectorSize)
			require.NoError(t, err)
			require.Equal(t, want, got[:])
		})
	}
}
