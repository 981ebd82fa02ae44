package sdr

import (
	"encoding/hex"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// sizeUnits are the unit suffixes ParseSize accepts, all binary: storage
// providers write 32G and mean 32 GiB, and Lotus and Curio read it so.
var sizeUnits = []struct {
	names []string
	shift uint
}{
	{[]string{"", "b"}, 0},
	{[]string{"k", "kb", "kib"}, 10},
	{[]string{"m", "mb", "mib"}, 20},
	{[]string{"g", "gb", "gib"}, 30},
	{[]string{"t", "tb", "tib"}, 40},
	{[]string{"p", "pb", "pib"}, 50},
}

// ParseSize reads a size in bytes: plain bytes ("2048") or a whole number
// with a binary unit ("2KiB", "8MiB", "32G", "1 TiB"). K, M, G and T without
// the i are binary too: a sector size is never meant in SI units.
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: want a whole number of bytes, optionally with a unit such as KiB, MiB, GiB", s)
	}
	n, err := strconv.ParseUint(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	unit := strings.ToLower(strings.TrimSpace(t[i:]))
	for _, u := range sizeUnits {
		for _, name := range u.names {
			if unit != name {
				continue
			}
			if hi, lo := bits.Mul64(n, 1<<u.shift); hi != 0 || lo>>u.shift != n {
				return 0, fmt.Errorf("size %q: too large", s)
			}
			return n << u.shift, nil
		}
	}
	return 0, fmt.Errorf("size %q: unknown unit %q (use B, KiB, MiB, GiB, TiB)", s, t[i:])
}

// FormatSize writes n in the largest binary unit that divides it exactly,
// so that ParseSize(FormatSize(n)) == n: 2KiB, 32GiB, 1536B.
func FormatSize(n uint64) string {
	names := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	u := 0
	for u+1 < len(names) && n != 0 && n%(1<<(10*(u+1))) == 0 {
		u++
	}
	return strconv.FormatUint(n>>(10*u), 10) + names[u]
}

// ParseHex32 reads a 32-byte id (replica id, porep id, ticket) written as 64
// hex digits, with or without a 0x prefix.
func ParseHex32(s string) ([32]byte, error) {
	var id [32]byte
	h := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	b, err := hex.DecodeString(h)
	if err != nil {
		return id, fmt.Errorf("hex id %q: %w", s, err)
	}
	if len(b) != len(id) {
		return id, fmt.Errorf("hex id %q: want 32 bytes (64 hex digits), got %d bytes", s, len(b))
	}
	copy(id[:], b)
	return id, nil
}
