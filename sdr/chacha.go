package sdr

import "math/bits"

// chacha8Block writes the ChaCha keystream block with 8 rounds of the state
// s: constants in words 0..3, the 256-bit key in 4..11, the 64-bit block
// counter in 12,13 and the stream id in 14,15. With a zero stream id this is
// exactly Rust's rand_chacha ChaCha8Rng::from_seed(key) read word by word;
// its next_u64 takes two consecutive words, low word first.
//
// golang.org/x/crypto/chacha20 only offers 20 rounds, hence this. The state
// lives in sixteen locals rather than an array because the compiler keeps
// only scalars in registers: on a [16]uint32 every step of every quarter
// round was a load and a store, and this is half of a node's parent cost
// once the Feistel rounds are table lookups.
func chacha8Block(s *[16]uint32, out *[16]uint32) {
	x0, x1, x2, x3 := s[0], s[1], s[2], s[3]
	x4, x5, x6, x7 := s[4], s[5], s[6], s[7]
	x8, x9, x10, x11 := s[8], s[9], s[10], s[11]
	x12, x13, x14, x15 := s[12], s[13], s[14], s[15]
	for range 4 {
		x0, x4, x8, x12 = quarterRound(x0, x4, x8, x12)
		x1, x5, x9, x13 = quarterRound(x1, x5, x9, x13)
		x2, x6, x10, x14 = quarterRound(x2, x6, x10, x14)
		x3, x7, x11, x15 = quarterRound(x3, x7, x11, x15)
		x0, x5, x10, x15 = quarterRound(x0, x5, x10, x15)
		x1, x6, x11, x12 = quarterRound(x1, x6, x11, x12)
		x2, x7, x8, x13 = quarterRound(x2, x7, x8, x13)
		x3, x4, x9, x14 = quarterRound(x3, x4, x9, x14)
	}
	out[0], out[1], out[2], out[3] = x0+s[0], x1+s[1], x2+s[2], x3+s[3]
	out[4], out[5], out[6], out[7] = x4+s[4], x5+s[5], x6+s[6], x7+s[7]
	out[8], out[9], out[10], out[11] = x8+s[8], x9+s[9], x10+s[10], x11+s[11]
	out[12], out[13], out[14], out[15] = x12+s[12], x13+s[13], x14+s[14], x15+s[15]
}

func quarterRound(a, b, c, d uint32) (uint32, uint32, uint32, uint32) {
	a += b
	d = bits.RotateLeft32(d^a, 16)
	c += d
	b = bits.RotateLeft32(b^c, 12)
	a += b
	d = bits.RotateLeft32(d^a, 8)
	c += d
	b = bits.RotateLeft32(b^c, 7)
	return a, b, c, d
}
