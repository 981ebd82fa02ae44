#include "textflag.h"
#include "sha256state_amd64.h"

// One SHA-256 stream on the SHA extensions (SHA-NI), reading each 64-byte
// block from two 32-byte halves anywhere in memory: a node's message is
// its header and pairs of parent labels, so the labels are hashed where
// they lie, with no gathering copy. The round structure is Intel's
// published SHA-NI flow: four rounds per step, message schedule words
// computed by SHA256MSG1/SHA256MSG2 while earlier rounds run.
//
// Registers: X0 message+constants, X1/X2 state (ABEF/CDGH), X3-X6 the
// message schedule ring, X7 scratch, X8 byte-flip mask, X9/X10 the state
// saved before each block.

// Constants: sha256consts_amd64.s.

// Four rounds with message words m (already loaded) and constants i..i+3.
#define ROUNDS_A(i, m) \
	MOVOU ·sha256K+(i*4)(SB), X0 \
	PADDD m, X0 \
	SHA256RNDS2 X0, X1, X2

#define ROUNDS_B \
	PSHUFD $0x0e, X0, X0 \
	SHA256RNDS2 X0, X2, X1

// m1 += alignr(m0, m3); m1 = msg2(m1, m0): the next four schedule words.
#define SCHED2(m0, m1, m3) \
	MOVO m0, X7 \
	PALIGNR $4, m3, X7 \
	PADDD X7, m1 \
	SHA256MSG2 m0, m1

#define LOAD(off, ptr, m) \
	MOVOU off(ptr), m \
	PSHUFB X8, m

// One block of the message: its halves' addresses from order at BX, the
// state saved in X9/X10 and added back after the 64 rounds.
#define HALVES_BLOCK \
	MOVBQZX 0(BX), AX \
	MOVQ (R8)(AX*8), SI \
	MOVBQZX 1(BX), AX \
	MOVQ (R8)(AX*8), DI \
	MOVO X1, X9 \
	MOVO X2, X10 \
	LOAD(0, SI, X3) \
	ROUNDS_A(0, X3) \
	ROUNDS_B \
	LOAD(16, SI, X4) \
	ROUNDS_A(4, X4) \
	ROUNDS_B \
	SHA256MSG1 X4, X3 \
	LOAD(0, DI, X5) \
	ROUNDS_A(8, X5) \
	ROUNDS_B \
	SHA256MSG1 X5, X4 \
	LOAD(16, DI, X6) \
	ROUNDS_A(12, X6) \
	SCHED2(X6, X3, X5) \
	ROUNDS_B \
	SHA256MSG1 X6, X5 \
	ROUNDS_A(16, X3) \
	SCHED2(X3, X4, X6) \
	ROUNDS_B \
	SHA256MSG1 X3, X6 \
	ROUNDS_A(20, X4) \
	SCHED2(X4, X5, X3) \
	ROUNDS_B \
	SHA256MSG1 X4, X3 \
	ROUNDS_A(24, X5) \
	SCHED2(X5, X6, X4) \
	ROUNDS_B \
	SHA256MSG1 X5, X4 \
	ROUNDS_A(28, X6) \
	SCHED2(X6, X3, X5) \
	ROUNDS_B \
	SHA256MSG1 X6, X5 \
	ROUNDS_A(32, X3) \
	SCHED2(X3, X4, X6) \
	ROUNDS_B \
	SHA256MSG1 X3, X6 \
	ROUNDS_A(36, X4) \
	SCHED2(X4, X5, X3) \
	ROUNDS_B \
	SHA256MSG1 X4, X3 \
	ROUNDS_A(40, X5) \
	SCHED2(X5, X6, X4) \
	ROUNDS_B \
	SHA256MSG1 X5, X4 \
	ROUNDS_A(44, X6) \
	SCHED2(X6, X3, X5) \
	ROUNDS_B \
	SHA256MSG1 X6, X5 \
	ROUNDS_A(48, X3) \
	SCHED2(X3, X4, X6) \
	ROUNDS_B \
	SHA256MSG1 X3, X6 \
	ROUNDS_A(52, X4) \
	SCHED2(X4, X5, X3) \
	ROUNDS_B \
	ROUNDS_A(56, X5) \
	SCHED2(X5, X6, X4) \
	ROUNDS_B \
	ROUNDS_A(60, X6) \
	ROUNDS_B \
	PADDD X9, X1 \
	PADDD X10, X2

// Prefetches the nprefetch addresses at prefetch (the fifth and sixth
// arguments of both kernels).
#define PREFETCH_ARGS \
	MOVQ prefetch+32(FP), SI \
	MOVQ nprefetch+40(FP), CX \
	TESTQ CX, CX \
	JE prefetched \
prefetchloop: \
	MOVQ (SI), AX \
	PREFETCHT0 (AX) \
	ADDQ $8, SI \
	DECQ CX \
	JNE prefetchloop \
prefetched:

// The state back to a..d, e..h, then big-endian bytes to out (DX).
#define STORE_OUT STORE_STATE(X1, X2, X7, X8, DX)

// func sha256Halves(out *[32]byte, halves *uintptr, order *uint8, blocks int, prefetch *uintptr, nprefetch int)
//
// Hashes blocks 64-byte blocks, block j being the 32 bytes at
// halves[order[2j]] followed by the 32 bytes at halves[order[2j+1]], from
// the initial hash value, and writes the big-endian digest to out. The
// caller supplies the padding as part of the last block. First it
// prefetches the nprefetch addresses at prefetch (a later node's parents),
// saving a call per node.
TEXT ·sha256Halves(SB), NOSPLIT, $0-48
	PREFETCH_ARGS
	MOVQ out+0(FP), DX
	MOVQ halves+8(FP), R8
	MOVQ order+16(FP), BX
	MOVQ blocks+24(FP), CX
	MOVOU ·sha256FlipMask(SB), X8

	IV_SHUFFLED(X1, X2, X7)

	TESTQ CX, CX
	JE done

loop:
	HALVES_BLOCK
	ADDQ $2, BX
	DECQ CX
	JNE loop

done:
	STORE_OUT
	RET

// Groups of four rounds of one stream, for the kernels that interleave
// two: state s1, s2 (ABEF, CDGH), message schedule ring r (m the group's
// words; next and prev the ring's next and previous registers), words
// loaded byte-flipped from src. SCHED2 uses X7; X0 carries W+K. Their
// order within a group is the one sha256Halves's loop body uses.
#define LOAD_AT(src, m) \
	MOVOU src, m \
	PSHUFB X8, m

#define RND_A(i, m, s1, s2) \
	MOVOU ·sha256K+(i*4)(SB), X0 \
	PADDD m, X0 \
	SHA256RNDS2 X0, s1, s2

#define RND_B(s1, s2) \
	PSHUFD $0x0e, X0, X0 \
	SHA256RNDS2 X0, s2, s1

// Rounds 0-3.
#define GRP_FIRST(i, src, m, s1, s2) \
	LOAD_AT(src, m) \
	RND_A(i, m, s1, s2) \
	RND_B(s1, s2)

// Rounds 4-11: load, rounds, first half of a later schedule step.
#define GRP_LOAD(i, src, m, prev, s1, s2) \
	LOAD_AT(src, m) \
	RND_A(i, m, s1, s2) \
	RND_B(s1, s2) \
	SHA256MSG1 m, prev

// Rounds 12-15: the last load, and the first schedule words.
#define GRP_LOAD_SCHED(i, src, m, next, prev, s1, s2) \
	LOAD_AT(src, m) \
	RND_A(i, m, s1, s2) \
	SCHED2(m, next, prev) \
	RND_B(s1, s2) \
	SHA256MSG1 m, prev

// Rounds 16-51.
#define GRP_SCHED(i, m, next, prev, s1, s2) \
	RND_A(i, m, s1, s2) \
	SCHED2(m, next, prev) \
	RND_B(s1, s2) \
	SHA256MSG1 m, prev

// Rounds 52-59: the last schedule words.
#define GRP_SCHED_LAST(i, m, next, prev, s1, s2) \
	RND_A(i, m, s1, s2) \
	SCHED2(m, next, prev) \
	RND_B(s1, s2)

// Rounds 60-63.
#define GRP_LAST(i, m, s1, s2) \
	RND_A(i, m, s1, s2) \
	RND_B(s1, s2)

// func sha256HalvesNext(out *[32]byte, halves *uintptr, order *uint8, blocks int, prefetch *uintptr, nprefetch int, state *[32]byte, next *[64]byte)
//
// Hashes the rest of a node's message, like sha256Halves, but from *state,
// the state after its header block (sha256HeaderState's layout), and
// overlaps its first block with the compression of the next node's header
// block, the 64 bytes at next, whose state replaces *state. One stream is
// bound by SHA256RNDS2's latency; the next header depends on no label, so
// its rounds fill the round unit's idle slots instead of taking a block's
// turn on the chain. blocks must be at least 1.
//
// Registers: as sha256Halves's, except that during the first block the
// next header's state is in X9/X10 (this node's saved state is reloaded
// from *state) and its schedule ring in X11-X14; X0 and X7 are shared,
// each use self-contained.
TEXT ·sha256HalvesNext(SB), NOSPLIT, $0-64
	PREFETCH_ARGS
	MOVQ out+0(FP), DX
	MOVQ halves+8(FP), R8
	MOVQ order+16(FP), BX
	MOVQ blocks+24(FP), CX
	MOVQ state+48(FP), R11
	MOVQ next+56(FP), R10
	MOVOU ·sha256FlipMask(SB), X8
	MOVOU 0(R11), X1
	MOVOU 16(R11), X2
	IV_SHUFFLED(X9, X10, X7)

	MOVBQZX 0(BX), AX
	MOVQ (R8)(AX*8), SI
	MOVBQZX 1(BX), AX
	MOVQ (R8)(AX*8), DI
	// Each group: four rounds of this node's block, then of the next
	// header.
	GRP_FIRST(0, 0(SI), X3, X1, X2)
	GRP_FIRST(0, 0(R10), X11, X9, X10)
	GRP_LOAD(4, 16(SI), X4, X3, X1, X2)
	GRP_LOAD(4, 16(R10), X12, X11, X9, X10)
	GRP_LOAD(8, 0(DI), X5, X4, X1, X2)
	GRP_LOAD(8, 32(R10), X13, X12, X9, X10)
	GRP_LOAD_SCHED(12, 16(DI), X6, X3, X5, X1, X2)
	GRP_LOAD_SCHED(12, 48(R10), X14, X11, X13, X9, X10)
	GRP_SCHED(16, X3, X4, X6, X1, X2)
	GRP_SCHED(16, X11, X12, X14, X9, X10)
	GRP_SCHED(20, X4, X5, X3, X1, X2)
	GRP_SCHED(20, X12, X13, X11, X9, X10)
	GRP_SCHED(24, X5, X6, X4, X1, X2)
	GRP_SCHED(24, X13, X14, X12, X9, X10)
	GRP_SCHED(28, X6, X3, X5, X1, X2)
	GRP_SCHED(28, X14, X11, X13, X9, X10)
	GRP_SCHED(32, X3, X4, X6, X1, X2)
	GRP_SCHED(32, X11, X12, X14, X9, X10)
	GRP_SCHED(36, X4, X5, X3, X1, X2)
	GRP_SCHED(36, X12, X13, X11, X9, X10)
	GRP_SCHED(40, X5, X6, X4, X1, X2)
	GRP_SCHED(40, X13, X14, X12, X9, X10)
	GRP_SCHED(44, X6, X3, X5, X1, X2)
	GRP_SCHED(44, X14, X11, X13, X9, X10)
	GRP_SCHED(48, X3, X4, X6, X1, X2)
	GRP_SCHED(48, X11, X12, X14, X9, X10)
	GRP_SCHED_LAST(52, X4, X5, X3, X1, X2)
	GRP_SCHED_LAST(52, X12, X13, X11, X9, X10)
	GRP_SCHED_LAST(56, X5, X6, X4, X1, X2)
	GRP_SCHED_LAST(56, X13, X14, X12, X9, X10)
	GRP_LAST(60, X6, X1, X2)
	GRP_LAST(60, X14, X9, X10)

	MOVOU 0(R11), X7
	PADDD X7, X1
	MOVOU 16(R11), X7
	PADDD X7, X2
	IV_SHUFFLED(X13, X14, X7)
	PADDD X13, X9
	PADDD X14, X10
	MOVOU X9, 0(R11)
	MOVOU X10, 16(R11)
	ADDQ $2, BX
	DECQ CX
	JE nextdone

nextloop:
	HALVES_BLOCK
	ADDQ $2, BX
	DECQ CX
	JNE nextloop

nextdone:
	STORE_OUT
	RET

// func sha256HeaderState(next *[64]byte, state *[32]byte)
//
// Compresses the one block at next from the initial hash value and writes
// the state, in SHA256RNDS2's ABEF / CDGH layout, to *state: what
// sha256HalvesNext starts a node from. Registers as its next header's.
TEXT ·sha256HeaderState(SB), NOSPLIT, $0-16
	MOVQ next+0(FP), R10
	MOVQ state+8(FP), R11
	MOVOU ·sha256FlipMask(SB), X8
	IV_SHUFFLED(X9, X10, X7)
	GRP_FIRST(0, 0(R10), X11, X9, X10)
	GRP_LOAD(4, 16(R10), X12, X11, X9, X10)
	GRP_LOAD(8, 32(R10), X13, X12, X9, X10)
	GRP_LOAD_SCHED(12, 48(R10), X14, X11, X13, X9, X10)
	GRP_SCHED(16, X11, X12, X14, X9, X10)
	GRP_SCHED(20, X12, X13, X11, X9, X10)
	GRP_SCHED(24, X13, X14, X12, X9, X10)
	GRP_SCHED(28, X14, X11, X13, X9, X10)
	GRP_SCHED(32, X11, X12, X14, X9, X10)
	GRP_SCHED(36, X12, X13, X11, X9, X10)
	GRP_SCHED(40, X13, X14, X12, X9, X10)
	GRP_SCHED(44, X14, X11, X13, X9, X10)
	GRP_SCHED(48, X11, X12, X14, X9, X10)
	GRP_SCHED_LAST(52, X12, X13, X11, X9, X10)
	GRP_SCHED_LAST(56, X13, X14, X12, X9, X10)
	GRP_LAST(60, X14, X9, X10)
	IV_SHUFFLED(X13, X14, X7)
	PADDD X13, X9
	PADDD X14, X10
	MOVOU X9, 0(R11)
	MOVOU X10, 16(R11)
	RET

// func cpuHasSHANI() bool
TEXT ·cpuHasSHANI(SB), NOSPLIT, $0-1
	MOVL $7, AX
	MOVL $0, CX
	CPUID
	SHRL $29, BX
	ANDL $1, BX
	MOVB BX, ret+0(FP)
	RET
