// SHA-256 state shuffles shared by the SHA-NI kernels (sha256pairs_amd64.s,
// sha256multi_amd64.s): SHA256RNDS2 keeps a state as ABEF / CDGH, a digest
// is a..h big-endian.

// The initial hash value in SHA256RNDS2's ABEF / CDGH layout, into abef
// and cdgh (tmp is scratch).
#define IV_SHUFFLED(abef, cdgh, tmp) \
	MOVOU ·sha256IV+0(SB), abef \
	MOVOU ·sha256IV+16(SB), cdgh \
	MOVO abef, tmp \
	PUNPCKLQDQ cdgh, abef \
	PUNPCKHQDQ tmp, cdgh \
	PSHUFD $0x1b, abef, abef \
	PSHUFD $0xb1, cdgh, cdgh

// A state (abef, cdgh) back to a..d, e..h, byte-flipped by mask to
// big-endian, to 0..31(out) (tmp is scratch; abef and cdgh are clobbered).
#define STORE_STATE(abef, cdgh, tmp, mask, out) \
	MOVO abef, tmp \
	PUNPCKLQDQ cdgh, abef \
	PUNPCKHQDQ tmp, cdgh \
	PSHUFD $0xb1, abef, abef \
	PSHUFD $0x1b, cdgh, cdgh \
	PSHUFB mask, cdgh \
	PSHUFB mask, abef \
	MOVOU cdgh, 0(out) \
	MOVOU abef, 16(out)
