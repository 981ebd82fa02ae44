#include "textflag.h"

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

// func sha256Halves(out *[32]byte, halves *uintptr, order *uint8, blocks int, prefetch *uintptr, nprefetch int)
//
// Hashes blocks 64-byte blocks, block j being the 32 bytes at
// halves[order[2j]] followed by the 32 bytes at halves[order[2j+1]], from
// the initial hash value, and writes the big-endian digest to out. The
// caller supplies the padding as part of the last block. First it
// prefetches the nprefetch addresses at prefetch (a later node's parents),
// saving a call per node.
TEXT ·sha256Halves(SB), NOSPLIT, $0-48
	MOVQ prefetch+32(FP), SI
	MOVQ nprefetch+40(FP), CX
	TESTQ CX, CX
	JE prefetched
prefetchloop:
	MOVQ (SI), AX
	PREFETCHT0 (AX)
	ADDQ $8, SI
	DECQ CX
	JNE prefetchloop
prefetched:
	MOVQ out+0(FP), DX
	MOVQ halves+8(FP), R8
	MOVQ order+16(FP), BX
	MOVQ blocks+24(FP), CX
	MOVOU ·sha256FlipMask(SB), X8

	// State to the ABEF / CDGH layout SHA256RNDS2 works on.
	MOVOU ·sha256IV+0(SB), X1
	MOVOU ·sha256IV+16(SB), X2
	MOVO X1, X7
	PUNPCKLQDQ X2, X1
	PUNPCKHQDQ X7, X2
	PSHUFD $0x1b, X1, X1
	PSHUFD $0xb1, X2, X2

	TESTQ CX, CX
	JE done

loop:
	MOVBQZX 0(BX), AX
	MOVQ (R8)(AX*8), SI
	MOVBQZX 1(BX), AX
	MOVQ (R8)(AX*8), DI
	MOVO X1, X9
	MOVO X2, X10
	LOAD(0, SI, X3)
	ROUNDS_A(0, X3)
	ROUNDS_B
	LOAD(16, SI, X4)
	ROUNDS_A(4, X4)
	ROUNDS_B
	SHA256MSG1 X4, X3
	LOAD(0, DI, X5)
	ROUNDS_A(8, X5)
	ROUNDS_B
	SHA256MSG1 X5, X4
	LOAD(16, DI, X6)
	ROUNDS_A(12, X6)
	SCHED2(X6, X3, X5)
	ROUNDS_B
	SHA256MSG1 X6, X5
	ROUNDS_A(16, X3)
	SCHED2(X3, X4, X6)
	ROUNDS_B
	SHA256MSG1 X3, X6
	ROUNDS_A(20, X4)
	SCHED2(X4, X5, X3)
	ROUNDS_B
	SHA256MSG1 X4, X3
	ROUNDS_A(24, X5)
	SCHED2(X5, X6, X4)
	ROUNDS_B
	SHA256MSG1 X5, X4
	ROUNDS_A(28, X6)
	SCHED2(X6, X3, X5)
	ROUNDS_B
	SHA256MSG1 X6, X5
	ROUNDS_A(32, X3)
	SCHED2(X3, X4, X6)
	ROUNDS_B
	SHA256MSG1 X3, X6
	ROUNDS_A(36, X4)
	SCHED2(X4, X5, X3)
	ROUNDS_B
	SHA256MSG1 X4, X3
	ROUNDS_A(40, X5)
	SCHED2(X5, X6, X4)
	ROUNDS_B
	SHA256MSG1 X5, X4
	ROUNDS_A(44, X6)
	SCHED2(X6, X3, X5)
	ROUNDS_B
	SHA256MSG1 X6, X5
	ROUNDS_A(48, X3)
	SCHED2(X3, X4, X6)
	ROUNDS_B
	SHA256MSG1 X3, X6
	ROUNDS_A(52, X4)
	SCHED2(X4, X5, X3)
	ROUNDS_B
	ROUNDS_A(56, X5)
	SCHED2(X5, X6, X4)
	ROUNDS_B
	ROUNDS_A(60, X6)
	ROUNDS_B
	PADDD X9, X1
	PADDD X10, X2
	ADDQ $2, BX
	DECQ CX
	JNE loop

done:
	// Back to a..d, e..h, then big-endian bytes.
	MOVO X1, X7
	PUNPCKLQDQ X2, X1
	PUNPCKHQDQ X7, X2
	PSHUFD $0xb1, X1, X1
	PSHUFD $0x1b, X2, X2
	PSHUFB X8, X2
	PSHUFB X8, X1
	MOVOU X2, 0(DX)
	MOVOU X1, 16(DX)
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
