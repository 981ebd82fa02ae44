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

DATA flipmask<>+0(SB)/8, $0x0405060700010203
DATA flipmask<>+8(SB)/8, $0x0c0d0e0f08090a0b
GLOBL flipmask<>(SB), RODATA|NOPTR, $16

// The SHA-256 initial hash value, as two 16-byte words a..d, e..h.
DATA iv<>+0(SB)/4, $0x6a09e667
DATA iv<>+4(SB)/4, $0xbb67ae85
DATA iv<>+8(SB)/4, $0x3c6ef372
DATA iv<>+12(SB)/4, $0xa54ff53a
DATA iv<>+16(SB)/4, $0x510e527f
DATA iv<>+20(SB)/4, $0x9b05688c
DATA iv<>+24(SB)/4, $0x1f83d9ab
DATA iv<>+28(SB)/4, $0x5be0cd19
GLOBL iv<>(SB), RODATA|NOPTR, $32

DATA k256<>+0(SB)/4, $0x428a2f98
DATA k256<>+4(SB)/4, $0x71374491
DATA k256<>+8(SB)/4, $0xb5c0fbcf
DATA k256<>+12(SB)/4, $0xe9b5dba5
DATA k256<>+16(SB)/4, $0x3956c25b
DATA k256<>+20(SB)/4, $0x59f111f1
DATA k256<>+24(SB)/4, $0x923f82a4
DATA k256<>+28(SB)/4, $0xab1c5ed5
DATA k256<>+32(SB)/4, $0xd807aa98
DATA k256<>+36(SB)/4, $0x12835b01
DATA k256<>+40(SB)/4, $0x243185be
DATA k256<>+44(SB)/4, $0x550c7dc3
DATA k256<>+48(SB)/4, $0x72be5d74
DATA k256<>+52(SB)/4, $0x80deb1fe
DATA k256<>+56(SB)/4, $0x9bdc06a7
DATA k256<>+60(SB)/4, $0xc19bf174
DATA k256<>+64(SB)/4, $0xe49b69c1
DATA k256<>+68(SB)/4, $0xefbe4786
DATA k256<>+72(SB)/4, $0x0fc19dc6
DATA k256<>+76(SB)/4, $0x240ca1cc
DATA k256<>+80(SB)/4, $0x2de92c6f
DATA k256<>+84(SB)/4, $0x4a7484aa
DATA k256<>+88(SB)/4, $0x5cb0a9dc
DATA k256<>+92(SB)/4, $0x76f988da
DATA k256<>+96(SB)/4, $0x983e5152
DATA k256<>+100(SB)/4, $0xa831c66d
DATA k256<>+104(SB)/4, $0xb00327c8
DATA k256<>+108(SB)/4, $0xbf597fc7
DATA k256<>+112(SB)/4, $0xc6e00bf3
DATA k256<>+116(SB)/4, $0xd5a79147
DATA k256<>+120(SB)/4, $0x06ca6351
DATA k256<>+124(SB)/4, $0x14292967
DATA k256<>+128(SB)/4, $0x27b70a85
DATA k256<>+132(SB)/4, $0x2e1b2138
DATA k256<>+136(SB)/4, $0x4d2c6dfc
DATA k256<>+140(SB)/4, $0x53380d13
DATA k256<>+144(SB)/4, $0x650a7354
DATA k256<>+148(SB)/4, $0x766a0abb
DATA k256<>+152(SB)/4, $0x81c2c92e
DATA k256<>+156(SB)/4, $0x92722c85
DATA k256<>+160(SB)/4, $0xa2bfe8a1
DATA k256<>+164(SB)/4, $0xa81a664b
DATA k256<>+168(SB)/4, $0xc24b8b70
DATA k256<>+172(SB)/4, $0xc76c51a3
DATA k256<>+176(SB)/4, $0xd192e819
DATA k256<>+180(SB)/4, $0xd6990624
DATA k256<>+184(SB)/4, $0xf40e3585
DATA k256<>+188(SB)/4, $0x106aa070
DATA k256<>+192(SB)/4, $0x19a4c116
DATA k256<>+196(SB)/4, $0x1e376c08
DATA k256<>+200(SB)/4, $0x2748774c
DATA k256<>+204(SB)/4, $0x34b0bcb5
DATA k256<>+208(SB)/4, $0x391c0cb3
DATA k256<>+212(SB)/4, $0x4ed8aa4a
DATA k256<>+216(SB)/4, $0x5b9cca4f
DATA k256<>+220(SB)/4, $0x682e6ff3
DATA k256<>+224(SB)/4, $0x748f82ee
DATA k256<>+228(SB)/4, $0x78a5636f
DATA k256<>+232(SB)/4, $0x84c87814
DATA k256<>+236(SB)/4, $0x8cc70208
DATA k256<>+240(SB)/4, $0x90befffa
DATA k256<>+244(SB)/4, $0xa4506ceb
DATA k256<>+248(SB)/4, $0xbef9a3f7
DATA k256<>+252(SB)/4, $0xc67178f2
GLOBL k256<>(SB), RODATA|NOPTR, $256

// Four rounds with message words m (already loaded) and constants i..i+3.
#define ROUNDS_A(i, m) \
	MOVOU k256<>+(i*4)(SB), X0 \
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
	MOVOU flipmask<>(SB), X8

	// State to the ABEF / CDGH layout SHA256RNDS2 works on.
	MOVOU iv<>+0(SB), X1
	MOVOU iv<>+16(SB), X2
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
