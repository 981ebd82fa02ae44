package sealer

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// padded returns the 32-byte prover id whose first bytes are the given hex.
func padded(t *testing.T, prefix string) ProverID {
	t.Helper()
	b, err := hex.DecodeString(prefix)
	require.NoError(t, err)
	var p ProverID
	copy(p[:], b)
	return p
}

func TestParseProverID(t *testing.T) {
	raw := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in     string
		want   string // hex of the leading bytes; the rest are zero
		actor  uint64
		isAct  bool
		str    string // String() of the result
		errMsg string
	}{
		// LEB128 by hand: 1000 = 0b111_1101000 -> e8 07.
		{in: "f01000", want: "e807", actor: 1000, isAct: true, str: "f01000"},
		{in: "t01000", want: "e807", actor: 1000, isAct: true, str: "f01000"},
		{in: " t01000\n", want: "e807", actor: 1000, isAct: true, str: "f01000"},
		{in: "f00", want: "", actor: 0, isAct: true, str: "f00"},
		{in: "f0127", want: "7f", actor: 127, isAct: true, str: "f0127"},
		{in: "f0128", want: "8001", actor: 128, isAct: true, str: "f0128"},
		{in: "f018446744073709551615", want: "ffffffffffffffffff01", actor: 1<<64 - 1, isAct: true, str: "f018446744073709551615"},
		// Raw hex of an actor's id is that actor.
		{in: "e807" + strings.Repeat("00", 30), want: "e807", actor: 1000, isAct: true, str: "f01000"},
		{in: "0x" + "e807" + strings.Repeat("00", 30), want: "e807", actor: 1000, isAct: true, str: "f01000"},
		{in: strings.Repeat("0", 64), want: "", actor: 0, isAct: true, str: "f00"},
		// Raw ids that are no actor's: not a varint, a non-minimal one,
		// bytes after the varint.
		{in: raw, want: raw, str: raw},
		{in: "8000" + strings.Repeat("00", 30), want: "8000", str: "8000" + strings.Repeat("00", 30)},
		{in: "e80701" + strings.Repeat("00", 29), want: "e80701", str: "e80701" + strings.Repeat("00", 29)},

		{in: "", errMsg: "prover id is empty"},
		{in: "f1abcdefghijklmnopqrstuvwxyz", errMsg: "only id addresses"},
		{in: "t3abc", errMsg: "only id addresses"},
		{in: "f0", errMsg: "followed by the actor id in decimal"},
		{in: "f0x12", errMsg: "followed by the actor id in decimal"},
		{in: "f0-1", errMsg: "followed by the actor id in decimal"},
		{in: "f018446744073709551616", errMsg: "does not fit in 64 bits"},
		{in: "1000", errMsg: "as its id address, f01000"},
		{in: strings.Repeat("ab", 31), errMsg: "want 32 bytes (64 hex digits), got 31 bytes"},
		{in: strings.Repeat("ab", 33), errMsg: "got 33 bytes"},
		{in: strings.Repeat("zz", 32), errMsg: "invalid byte"},
		{in: "abc", errMsg: "odd length"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p, err := ParseProverID(tc.in)
			if tc.errMsg != "" {
				require.ErrorContains(t, err, tc.errMsg)
				require.Equal(t, 1, len(strings.Split(err.Error(), "\n")), "one line")
				return
			}
			require.NoError(t, err)
			require.Equal(t, padded(t, tc.want), p)
			a, ok := p.Actor()
			require.Equal(t, tc.isAct, ok)
			require.Equal(t, tc.actor, a)
			require.Equal(t, tc.str, p.String())
			back, err := ParseProverID(p.String())
			require.NoError(t, err)
			require.Equal(t, p, back, "String reads back")
		})
	}
}

func TestActorProverIDMatchesParse(t *testing.T) {
	for _, a := range []uint64{0, 1, 1000, 1 << 20, 1<<63 + 5} {
		p := ActorProverID(a)
		got, ok := p.Actor()
		require.True(t, ok)
		require.Equal(t, a, got)
		parsed, err := ParseProverID("t0" + strings.TrimPrefix(p.String(), "f0"))
		require.NoError(t, err)
		require.Equal(t, p, parsed)
	}
}

func TestProverIDJSON(t *testing.T) {
	type doc struct {
		P ProverID `json:"p"`
	}
	data, err := json.Marshal(doc{ActorProverID(1000)})
	require.NoError(t, err)
	require.JSONEq(t, `{"p":"f01000"}`, string(data))
	var back doc
	require.NoError(t, json.Unmarshal([]byte(`{"p":"t01000"}`), &back))
	require.Equal(t, ActorProverID(1000), back.P)
	require.ErrorContains(t, json.Unmarshal([]byte(`{"p":"f1xyz"}`), &back), "only id addresses")
}

func TestSectorName(t *testing.T) {
	for _, tc := range []struct {
		actor, number uint64
		want          string
	}{
		{1000, 5, "s-t01000-5"},
		{0, 0, "s-t00-0"},
		{1234567, 1 << 40, "s-t01234567-1099511627776"},
	} {
		require.Equal(t, tc.want, SectorName(tc.actor, tc.number))
	}
	require.Equal(t, "s-t01000-9", SectorInput{ProverID: ActorProverID(1000), SectorNumber: 9}.Name())
	var raw ProverID
	raw[31] = 1
	require.Equal(t, hex.EncodeToString(raw[:])+"-9", SectorInput{ProverID: raw, SectorNumber: 9}.Name())
}
