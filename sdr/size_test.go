package sdr

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  string
	}{
		{in: "2048", want: 2048},
		{in: "2KiB", want: 2048},
		{in: "2K", want: 2048},
		{in: "2kb", want: 2048},
		{in: "8MiB", want: 8 << 20},
		{in: "32G", want: 32 << 30},
		{in: "32GiB", want: 32 << 30},
		{in: "512 MiB", want: 512 << 20},
		{in: " 1TiB ", want: 1 << 40},
		{in: "96GiB", want: 96 << 30},
		{in: "0", want: 0},
		{in: "", err: "want a whole number"},
		{in: "-1", err: "want a whole number"},
		{in: "1.5GiB", err: `unknown unit ".5GiB"`},
		{in: "3XB", err: `unknown unit "XB"`},
		{in: "16384PiB", err: "too large"},
		{in: "99999999999999999999", err: "too large"},
	} {
		got, err := ParseSize(tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, "%q", tc.in)
			continue
		}
		require.NoError(t, err, "%q", tc.in)
		require.Equal(t, tc.want, got, "%q", tc.in)
	}
}

func TestFormatSize(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "0B"}, {1000, "1000B"}, {1536, "1536B"}, {2048, "2KiB"}, {8 << 20, "8MiB"},
		{32 << 30, "32GiB"}, {3 << 39, "1536GiB"}, {1 << 40, "1TiB"},
	} {
		require.Equal(t, tc.want, FormatSize(tc.n))
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"2KiB", "32G", "1000", "7 tb", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		back, err := ParseSize(FormatSize(n))
		require.NoError(t, err)
		require.Equal(t, n, back)
	})
}

func TestParseHex32(t *testing.T) {
	full := "0x" + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	id, err := ParseHex32(full)
	require.NoError(t, err)
	require.Equal(t, byte(0x11), id[1])
	_, err = ParseHex32(full[2:])
	require.NoError(t, err)
	_, err = ParseHex32(full[:len(full)-2])
	require.ErrorContains(t, err, "want 32 bytes (64 hex digits), got 31 bytes")
	_, err = ParseHex32("zz")
	require.ErrorContains(t, err, "invalid byte")
	_, err = ParseHex32("abc")
	require.ErrorContains(t, err, "odd length")
}
