package sdr

import (
	"encoding/binary"
	"math/bits"
)

// chacha8Blocks fills out with the first len(out)/16 64-byte blocks of the
// ChaCha keystream with 8 rounds, a 256-bit key, a 64-bit block counter
// starting at 0 and a zero 64-bit stream id. This is exactly the output of
// Rust's rand_chacha ChaCha8Rng::from_seed(key) read word by word; its
// next_u64 takes two consecutive words, low word first.
//
// golang.org/x/crypto/chacha20 only offers 20 rounds, hence this.
func chacha8Blocks(key *[32]byte, out []uint32) {
	var k [8]uint32
	for i := range k {
		k[i] = binary.LittleEndian.Uint32(key[4*i:])
	}
	for block := 0; block*16 < len(out); block++ {
		// Words 12,13 are the 64-bit block counter; 14,15 the stream id (0).
		s := [16]uint32{
			0x61707865, 0x3320646e, 0x79622d32, 0x6b206574,
			k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7],
			uint32(block), 0, 0, 0,
		}
		x := s
		for round := 0; round < 8; round += 2 {
			quarterRound(&x, 0, 4, 8, 12)
			quarterRound(&x, 1, 5, 9, 13)
			quarterRound(&x, 2, 6, 10, 14)
			quarterRound(&x, 3, 7, 11, 15)
			quarterRound(&x, 0, 5, 10, 15)
			quarterRound(&x, 1, 6, 11, 12)
			quarterRound(&x, 2, 7, 8, 13)
			quarterRound(&x, 3, 4, 9, 14)
		}
		dst := out[block*16:]
		for i := 0; i < 16 && i < len(dst); i++ {
			dst[i] = x[i] + s[i]
		}
	}
}

func quarterRound(x *[16]uint32, a, b, c, d int) {
	x[a] += x[b]
	x[d] = bits.RotateLeft32(x[d]^x[a], 16)
	x[c] += x[d]
	x[b] = bits.RotateLeft32(x[b]^x[c], 12)
	x[a] += x[b]
	x[d] = bits.RotateLeft32(x[d]^x[a], 8)
	x[c] += x[d]
	x[b] = bits.RotateLeft32(x[b]^x[c], 7)
}
