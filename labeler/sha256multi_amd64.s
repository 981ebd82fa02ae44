#include "textflag.h"
#include "sha256state_amd64.h"

// k independent SHA-256 streams on the SHA extensions (SHA-NI), k = 1..4:
// the labels of k sectors at the same node. One stream is bound by the
// latency of SHA256RNDS2 (each pair of rounds waits for the previous
// one); with k streams the round unit has k independent chains to overlap
// and runs at its throughput instead. How far that goes is the CPU's: on
// an Intel development VM about 1.3x the latency-bound rate, reached with
// k = 2; on an AMD EPYC (Zen 4) VM the rounds alone reach 1.9x at k = 2,
// 2.5x at 3 and 3.2x at 4 (BenchmarkMultiKernels, "rounds" shape), and
// whole node messages, with their schedules, 1.7x, 2.0x and 2.3x.
//
// To get that close to the round unit's limit:
//
//   - The message schedule (W[t] + K[t] of the 64 rounds) is computed
//     apart from the rounds, into the stack frame, and the rounds read it
//     back: the round code is then a load into X0 and a SHA256RNDS2 per two
//     rounds and stream, and the state of every stream fits in registers.
//   - A schedule depends only on its block's bytes, so each distinct block
//     of a message is scheduled once and its repetitions reuse it. A node
//     message's 20 blocks have 9 distinct ones in layers >= 2 (header, the
//     pairs P0P1..P12P13, P8 and the padding) and 5 in layer 1 (header,
//     P0P1, P2P3, P4P5, P0 and the padding).
//   - A block's schedule is computed during the rounds of the block before
//     its first use (multiPlan.ready), one stream at a time, a quarter of
//     a schedule after a group of rounds (SCHED_PART0, SCHED_PART), spread
//     evenly over the block, so that the out-of-order window always holds
//     rounds to run alongside the schedule's dependency chain. Only
//     distinct block 0 (block 0) is scheduled before any round.
//
// Data (sha256multi_other.go): *multiStreams holds, per stream s, the
// address of its half table (entry i = address of 32 message bytes) at
// 8*s and of its output at 32+8*s. *multiPlan holds the block count at 0,
// seq (the distinct block hashed j-th) at 16, ready (how many distinct
// blocks are scheduled by the end of block j) at 48, and the two half
// indexes of each distinct block at 80. newMultiPlan guarantees what the
// code relies on: ready[0] <= 2, ready grows by at most 1 per block, and
// ready[j-1] > seq[j].
//
// Registers, in every kernel:
//   X0             W+K of the next two rounds (SHA256RNDS2's implicit operand)
//   X1+2s, X2+2s   stream s's state, in SHA256RNDS2's ABEF / CDGH layout
//   X9-X12         message schedule ring of the block being scheduled
//   X13            scratch (PALIGNR result, state shuffles)
//   X14            W+K on their way to the frame
//   X15            byte-flip mask (message words are big-endian)
//   R8             *multiStreams
//   BX             *multiPlan
//   R13            16-byte aligned frame: saved states at 0 (32 bytes a
//                  stream), schedules at 128
//   CX             block j
//   DX             distinct blocks scheduled so far (or being scheduled)
//   DI             the slot the next schedule goes to
//   R9             1 if block j's rounds carry distinct block DX's schedule
//   R11, R12       that block's half indexes
//   SI             the W+K of block j (its distinct block's slots)
//   AX, R10        scratch, the halves of the block being scheduled
//
// A schedule slot is 256 bytes (16 groups of 4 words). Distinct block u
// of stream s is at 128 + (u*k + s)*256 from R13.

// Constants: sha256consts_amd64.s.

// Two rounds of one stream: X0 = the W+K pair at off(SI), state (a, b).
#define RND(off, a, b) \
	MOVQ off(SI), X0 \
	SHA256RNDS2 X0, a, b

// Four message words from src into m, byte-flipped; their W+K to off(DI).
#define SCHED_LOAD(src, m, koff, off) \
	MOVOU src, m \
	PSHUFB X15, m \
	MOVOU ·sha256K+koff(SB), X14 \
	PADDD m, X14 \
	MOVO X14, off(DI)

// Next four schedule words into a, which holds W[t-16..t-13]; b, c, d hold
// W[t-12..], W[t-8..], W[t-4..]:
// a = MSG2(MSG1(a, b) + W[t-7..t-4], d). Their W+K to off(DI).
#define SCHED_STEP(a, b, c, d, koff, off) \
	SHA256MSG1 b, a \
	MOVO d, X13 \
	PALIGNR $4, c, X13 \
	PADDD X13, a \
	SHA256MSG2 d, a \
	MOVOU ·sha256K+koff(SB), X14 \
	PADDD a, X14 \
	MOVO X14, off(DI)

// The 64 W+K of the block whose halves are at p and q, to 0..255(DI).
#define SCHEDULE(p, q) \
	SCHED_LOAD(0(p), X9, 0, 0) \
	SCHED_LOAD(16(p), X10, 16, 16) \
	SCHED_LOAD(0(q), X11, 32, 32) \
	SCHED_LOAD(16(q), X12, 48, 48) \
	SCHED_STEP(X9, X10, X11, X12, 64, 64) \
	SCHED_STEP(X10, X11, X12, X9, 80, 80) \
	SCHED_STEP(X11, X12, X9, X10, 96, 96) \
	SCHED_STEP(X12, X9, X10, X11, 112, 112) \
	SCHED_STEP(X9, X10, X11, X12, 128, 128) \
	SCHED_STEP(X10, X11, X12, X9, 144, 144) \
	SCHED_STEP(X11, X12, X9, X10, 160, 160) \
	SCHED_STEP(X12, X9, X10, X11, 176, 176) \
	SCHED_STEP(X9, X10, X11, X12, 192, 192) \
	SCHED_STEP(X10, X11, X12, X9, 208, 208) \
	SCHED_STEP(X11, X12, X9, X10, 224, 224) \
	SCHED_STEP(X12, X9, X10, X11, 240, 240)

// SCHEDULE in four parts, spread over four groups of rounds: the
// message loads, then the W+K of rounds 16-31, 32-47 and 48-63.
#define SCHED_PART0(p, q) \
	SCHED_LOAD(0(p), X9, 0, 0) \
	SCHED_LOAD(16(p), X10, 16, 16) \
	SCHED_LOAD(0(q), X11, 32, 32) \
	SCHED_LOAD(16(q), X12, 48, 48)

#define SCHED_PART(o) \
	SCHED_STEP(X9, X10, X11, X12, o, o) \
	SCHED_STEP(X10, X11, X12, X9, o+16, o+16) \
	SCHED_STEP(X11, X12, X9, X10, o+32, o+32) \
	SCHED_STEP(X12, X9, X10, X11, o+48, o+48)

// Stream state (ABEF, CDGH) back to a..d, e..h, big-endian, to 0..31(AX).
#define STORE_DIGEST(abef, cdgh) STORE_STATE(abef, cdgh, X13, X15, AX)

// Four rounds of the one stream, W+K from group off of its slot.
#define ROUNDS1(off) \
	RND(off+0, X1, X2) \
	RND(off+8, X2, X1)

// func sha256Multi1(streams *multiStreams, plan *multiPlan)
TEXT ·sha256Multi1(SB), 0, $2704-16
	MOVQ streams+0(FP), R8
	MOVQ plan+8(FP), BX
	LEAQ 15(SP), R13
	ANDQ $~15, R13
	MOVOU ·sha256FlipMask(SB), X15

	// Every stream starts from the initial hash value, shuffled into the
	// ABEF / CDGH layout.
	IV_SHUFFLED(X1, X2, X13)

	// Distinct block 0 (the first block hashed) of every stream, before
	// any round: DI walks the slots, R9 counts the streams.
	LEAQ 128(R13), DI
	MOVBQZX 80(BX), R11
	MOVBQZX 81(BX), R12
	XORQ R9, R9

first1:
	MOVQ (R8)(R9*8), R10
	MOVQ (R10)(R11*8), AX
	MOVQ (R10)(R12*8), R10
	SCHEDULE(AX, R10)
	ADDQ $256, DI
	INCQ R9
	CMPQ R9, $1
	JB first1
	XORQ CX, CX
	MOVQ $1, DX

block1:
	// R9 = 1 if distinct block DX is to be scheduled during this block
	// (plan.ready[j] > DX: it is hashed next), with R11, R12 its half
	// indexes; the plan never asks for more than one.
	XORQ R9, R9
	MOVBQZX 48(BX)(CX*1), AX
	CMPQ DX, AX
	JAE noschedule1
	MOVQ $1, R9
	MOVBQZX 80(BX)(DX*2), R11
	MOVBQZX 81(BX)(DX*2), R12

noschedule1:
	// SI = the slots of block j's distinct block, scheduled earlier; save
	// the states for the feed-forward.
	MOVBQZX 16(BX)(CX*1), AX
	IMULQ $256, AX
	LEAQ 128(R13)(AX*1), SI
	MOVO X1, 0(R13)
	MOVO X2, 16(R13)

	// 64 rounds, the streams interleaved four rounds at a time. After
	// some groups of rounds, a quarter of one stream's schedule of the next
	// new block (if R9), the quarters spread evenly over the block: each is
	// a dependency chain longer than a group of rounds takes to issue, and
	// spread this thin the out-of-order window overlaps chains and rounds.
	// (Whole schedules between groups left the round unit idle: layer 2
	// at k = 4 ran at 1.6 x one stream instead of 2.1.)
	ROUNDS1(0)
	TESTQ R9, R9
	JE skip1_0
	MOVQ 0(R8), R10
	MOVQ (R10)(R11*8), AX
	MOVQ (R10)(R12*8), R10
	SCHED_PART0(AX, R10)

skip1_0:
	ROUNDS1(16)
	ROUNDS1(32)
	ROUNDS1(48)
	ROUNDS1(64)
	TESTQ R9, R9
	JE skip1_4
	SCHED_PART(64)

skip1_4:
	ROUNDS1(80)
	ROUNDS1(96)
	ROUNDS1(112)
	ROUNDS1(128)
	TESTQ R9, R9
	JE skip1_8
	SCHED_PART(128)

skip1_8:
	ROUNDS1(144)
	ROUNDS1(160)
	ROUNDS1(176)
	ROUNDS1(192)
	TESTQ R9, R9
	JE skip1_12
	SCHED_PART(192)
	ADDQ $256, DI

skip1_12:
	ROUNDS1(208)
	ROUNDS1(224)
	ROUNDS1(240)

	// Feed-forward, then the next block.
	PADDD 0(R13), X1
	PADDD 16(R13), X2
	ADDQ R9, DX
	INCQ CX
	CMPQ CX, 0(BX)
	JB block1

	// Digests out, big-endian.
	MOVQ 32(R8), AX
	STORE_DIGEST(X1, X2)
	RET

// Four rounds of each of the 2 streams, W+K from group off of their slots.
#define ROUNDS2(off) \
	RND(off+0, X1, X2) \
	RND(off+256, X3, X4) \
	RND(off+8, X2, X1) \
	RND(off+264, X4, X3)

// func sha256Multi2(streams *multiStreams, plan *multiPlan)
TEXT ·sha256Multi2(SB), 0, $5264-16
	MOVQ streams+0(FP), R8
	MOVQ plan+8(FP), BX
	LEAQ 15(SP), R13
	ANDQ $~15, R13
	MOVOU ·sha256FlipMask(SB), X15

	// Every stream starts from the initial hash value, shuffled into the
	// ABEF / CDGH layout.
	IV_SHUFFLED(X1, X2, X13)
	MOVO X1, X3
	MOVO X2, X4

	// Distinct block 0 (the first block hashed) of every stream, before
	// any round: DI walks the slots, R9 counts the streams.
	LEAQ 128(R13), DI
	MOVBQZX 80(BX), R11
	MOVBQZX 81(BX), R12
	XORQ R9, R9

first2:
	MOVQ (R8)(R9*8), R10
	MOVQ (R10)(R11*8), AX
	MOVQ (R10)(R12*8), R10
	SCHEDULE(AX, R10)
	ADDQ $256, DI
	INCQ R9
	CMPQ R9, $2
	JB first2
	XORQ CX, CX
	MOVQ $1, DX

block2:
	// R9 = 1 if distinct block DX is to be scheduled during this block
	// (plan.ready[j] > DX: it is hashed next), with R11, R12 its half
	// indexes; the plan never asks for more than one.
	XORQ R9, R9
	MOVBQZX 48(BX)(CX*1), AX
	CMPQ DX, AX
	JAE noschedule2
	MOVQ $1, R9
	MOVBQZX 80(BX)(DX*2), R11
	MOVBQZX 81(BX)(DX*2), R12

noschedule2:
	// SI = the slots of block j's distinct block, scheduled earlier; save
	// the states for the feed-forward.
	MOVBQZX 16(BX)(CX*1), AX
	IMULQ $512, AX
	LEAQ 128(R13)(AX*1), SI
	MOVO X1, 0(R13)
	MOVO X2, 16(R13)
	MOVO X3, 32(R13)
	MOVO X4, 48(R13)

	// 64 rounds, the streams interleaved four rounds at a time. After
	// some groups of rounds, a quarter of one stream's schedule of the next
	// new block (if R9), the quarters spread evenly over the block: each is
	// a dependency chain longer than a group of rounds takes to issue, and
	// spread this thin the out-of-order window overlaps chains and rounds.
	// (Whole schedules between groups left the round unit idle: layer 2
	// at k = 4 ran at 1.6 x one stream instead of 2.1.)
	ROUNDS2(0)
	TESTQ R9, R9
	JE skip2_0
	MOVQ 0(R8), R10
	MOVQ (R10)(R11*8), AX
	MOVQ (R10)(R12*8), R10
	SCHED_PART0(AX, R10)

skip2_0:
	ROUNDS2(16)
	ROUNDS2(32)
	TESTQ R9, R9
	JE skip2_2
	SCHED_PART(64)

skip2_2:
	ROUNDS2(48)
	ROUNDS2(64)
	TESTQ R9, R9
	JE skip2_4
	SCHED_PART(128)

skip2_4:
	ROUNDS2(80)
	ROUNDS2(96)
	TESTQ R9, R9
	JE skip2_6
	SCHED_PART(192)
	ADDQ $256, DI

skip2_6:
	ROUNDS2(112)
	ROUNDS2(128)
	TESTQ R9, R9
	JE skip2_8
	MOVQ 8(R8), R10
	MOVQ (R10)(R11*8), AX
	MOVQ (R10)(R12*8), R10
	SCHED_PART0(AX, R10)

skip2_8:
	ROUNDS2(144)
	ROUNDS2(160)
	TESTQ R9, R9
	JE skip2_10
	SCHED_PART(64)

skip2_10:
	ROUNDS2(176)
	ROUNDS2(192)
	TESTQ R9, R9
	JE skip2_12
	SCHED_PART(128)

skip2_12:
	ROUNDS2(208)
	ROUNDS2(224)
	TESTQ R9, R9
	JE skip2_14
	SCHED_PART(192)
	ADDQ $256, DI

skip2_14:
	ROUNDS2(240)

	// Feed-forward, then the next block.
	PADDD 0(R13), X1
	PADDD 16(R13), X2
	PADDD 32(R13), X3
	PADDD 48(R13), X4
	ADDQ R9, DX
	INCQ CX
	CMPQ CX, 0(BX)
	JB block2

	// Digests out, big-endian.
	MOVQ 32(R8), AX
	STORE_DIGEST(X1, X2)
	MOVQ 40(R8), AX
	STORE_DIGEST(X3, X4)
	RET

// Four rounds of each of the 3 streams, W+K from group off of their slots.
#define ROUNDS3(off) \
	RND(off+0, X1, X2) \
	RND(off+256, X3, X4) \
	RND(off+512, X5, X6) \
	RND(off+8, X2, X1) \
	RND(off+264, X4, X3) \
	RND(off+520, X6, X5)

// func sha256Multi3(streams *multiStreams, plan *multiPlan)
TEXT ·sha256Multi3(SB), 0, $7824-16
	MOVQ streams+0(FP), R8
	MOVQ plan+8(FP), BX
	LEAQ 15(SP), R13
	ANDQ $~15, R13
	MOVOU ·sha256FlipMask(SB), X15

	// Every stream starts from the initial hash value, shuffled into the
	// ABEF / CDGH layout.
	IV_SHUFFLED(X1, X2, X13)
	MOVO X1, X3
	MOVO X2, X4
	MOVO X1, X5
	MOVO X2, X6

	// Distinct block 0 (the first block hashed) of every stream, before
	// any round: DI walks the slots, R9 counts the streams.
	LEAQ 128(R13), DI
	MOVBQZX 80(BX), R11
	MOVBQZX 81(BX), R12
	XORQ R9, R9

first3:
	MOVQ (R8)(R9*8), R10
	MOVQ (R10)(R11*8), AX
	MOVQ (R10)(R12*8), R10
	SCHEDULE(AX, R10)
	ADDQ $256, DI
	INCQ R9
	CMPQ R9, $3
	JB first3
	XORQ CX, CX
	MOVQ $1, DX

block3:
	// R9 = 1 if distinct block DX is to be scheduled during this block
	// (plan.ready[j] > DX: it is hashed next), with R11, R12 its half
	// indexes; the plan never asks for more than one.
	XORQ R9, R9
	MOVBQZX 48(BX)(CX*1), AX
	CMPQ DX, AX
	JAE noschedule3
	MOVQ $1, R9
	MOVBQZX 80(BX)(DX*2), R11
	MOVBQZX 81(BX)(DX*2), R12

noschedule3:
	// SI = the slots of block j's distinct block, scheduled earlier; save
	// the states for the feed-forward.
	MOVBQZX 16(BX)(CX*1), AX
	IMULQ $768, AX
	LEAQ 128(R13)(AX*1), SI
	MOVO X1, 0(R13)
	MOVO X2, 16(R13)
	MOVO X3, 32(R13)
	MOVO X4, 48(R13)
	MOVO X5, 64(R13)
	MOVO X6, 80(R13)

	// 64 rounds, the streams interleaved four rounds at a time. After
	// some groups of rounds, a quarter of one stream's schedule of the next
	// new block (if R9), the quarters spread evenly over the block: each is
	// a dependency chain longer than a group of rounds takes to issue, and
	// spread this thin the out-of-order window overlaps chains and rounds.
	// (Whole schedules between groups left the round unit idle: layer 2
	// at k = 4 ran at 1.6 x one stream instead of 2.1.)
	ROUNDS3(0)
	TESTQ R9, R9
	JE skip3_0
	MOVQ 0(R8), R10
	MOVQ (R10)(R11*8), AX
	MOVQ (R10)(R12*8), R10
	SCHED_PART0(AX, R10)

skip3_0:
	ROUNDS3(16)
	TESTQ R9, R9
	JE skip3_1
	SCHED_PART(64)

skip3_1:
	ROUNDS3(32)
	TESTQ R9, R9
	JE skip3_2
	SCHED_PART(128)

skip3_2:
	ROUNDS3(48)
	ROUNDS3(64)
	TESTQ R9, R9
	JE skip3_4
	SCHED_PART(192)
	ADDQ $256, DI

skip3_4:
	ROUNDS3(80)
	TESTQ R9, R9
	JE skip3_5
	MOVQ 8(R8), R10
	MOVQ (R10)(R11*8), AX
	MOVQ (R10)(R12*8), R10
	SCHED_PART0(AX, R10)

skip3_5:
	ROUNDS3(96)
	TESTQ R9, R9
	JE skip3_6
	SCHED_PART(64)

skip3_6:
	ROUNDS3(112)
	ROUNDS3(128)
	TESTQ R9, R9
	JE skip3_8
	SCHED_PART(128)

skip3_8:
	ROUNDS3(144)
	TESTQ R9, R9
	JE skip3_9
	SCHED_PART(192)
	ADDQ $256, DI

skip3_9:
	ROUNDS3(160)
	TESTQ R9, R9
	JE skip3_10
	MOVQ 16(R8), R10
	MOVQ (R10)(R11*8), AX
	MOVQ (R10)(R12*8), R10
	SCHED_PART0(AX, R10)

skip3_10:
	ROUNDS3(176)
	ROUNDS3(192)
	TESTQ R9, R9
	JE skip3_12
	SCHED_PART(64)

skip3_12:
	ROUNDS3(208)
	TESTQ R9, R9
	JE skip3_13
	SCHED_PART(128)

skip3_13:
	ROUNDS3(224)
	TESTQ R9, R9
	JE skip3_14
	SCHED_PART(192)
	ADDQ $256, DI

skip3_14:
	ROUNDS3(240)

	// Feed-forward, then the next block.
	PADDD 0(R13), X1
	PADDD 16(R13), X2
	PADDD 32(R13), X3
	PADDD 48(R13), X4
	PADDD 64(R13), X5
	PADDD 80(R13), X6
	ADDQ R9, DX
	INCQ CX
	CMPQ CX, 0(BX)
	JB block3

	// Digests out, big-endian.
	MOVQ 32(R8), AX
	STORE_DIGEST(X1, X2)
	MOVQ 40(R8), AX
	STORE_DIGEST(X3, X4)
	MOVQ 48(R8), AX
	STORE_DIGEST(X5, X6)
	RET

// Four rounds of each of the 4 streams, W+K from group off of their slots.
#define ROUNDS4(off) \
	RND(off+0, X1, X2) \
	RND(off+256, X3, X4) \
	RND(off+512, X5, X6) \
	RND(off+768, X7, X8) \
	RND(off+8, X2, X1) \
	RND(off+264, X4, X3) \
	RND(off+520, X6, X5) \
	RND(off+776, X8, X7)

// func sha256Multi4(streams *multiStreams, plan *multiPlan)
TEXT ·sha256Multi4(SB), 0, $10384-16
	MOVQ streams+0(FP), R8
	MOVQ plan+8(FP), BX
	LEAQ 15(SP), R13
	ANDQ $~15, R13
	MOVOU ·sha256FlipMask(SB), X15

	// Every stream starts from the initial hash value, shuffled into the
	// ABEF / CDGH layout.
	IV_SHUFFLED(X1, X2, X13)
	MOVO X1, X3
	MOVO X2, X4
	MOVO X1, X5
	MOVO X2, X6
	MOVO X1, X7
	MOVO X2, X8

	// Distinct block 0 (the first block hashed) of every stream, before
	// any round: DI walks the slots, R9 counts the streams.
	LEAQ 128(R13), DI
	MOVBQZX 80(BX), R11
	MOVBQZX 81(BX), R12
	XORQ R9, R9

first4:
	MOVQ (R8)(R9*8), R10
	MOVQ (R10)(R11*8), AX
	MOVQ (R10)(R12*8), R10
	SCHEDULE(AX, R10)
	ADDQ $256, DI
	INCQ R9
	CMPQ R9, $4
	JB first4
	XORQ CX, CX
	MOVQ $1, DX

block4:
	// R9 = 1 if distinct block DX is to be scheduled during this block
	// (plan.ready[j] > DX: it is hashed next), with R11, R12 its half
	// indexes; the plan never asks for more than one.
	XORQ R9, R9
	MOVBQZX 48(BX)(CX*1), AX
	CMPQ DX, AX
	JAE noschedule4
	MOVQ $1, R9
	MOVBQZX 80(BX)(DX*2), R11
	MOVBQZX 81(BX)(DX*2), R12

noschedule4:
	// SI = the slots of block j's distinct block, scheduled earlier; save
	// the states for the feed-forward.
	MOVBQZX 16(BX)(CX*1), AX
	IMULQ $1024, AX
	LEAQ 128(R13)(AX*1), SI
	MOVO X1, 0(R13)
	MOVO X2, 16(R13)
	MOVO X3, 32(R13)
	MOVO X4, 48(R13)
	MOVO X5, 64(R13)
	MOVO X6, 80(R13)
	MOVO X7, 96(R13)
	MOVO X8, 112(R13)

	// 64 rounds, the streams interleaved four rounds at a time. After
	// some groups of rounds, a quarter of one stream's schedule of the next
	// new block (if R9), the quarters spread evenly over the block: each is
	// a dependency chain longer than a group of rounds takes to issue, and
	// spread this thin the out-of-order window overlaps chains and rounds.
	// (Whole schedules between groups left the round unit idle: layer 2
	// at k = 4 ran at 1.6 x one stream instead of 2.1.)
	ROUNDS4(0)
	TESTQ R9, R9
	JE skip4_0
	MOVQ 0(R8), R10
	MOVQ (R10)(R11*8), AX
	MOVQ (R10)(R12*8), R10
	SCHED_PART0(AX, R10)

skip4_0:
	ROUNDS4(16)
	TESTQ R9, R9
	JE skip4_1
	SCHED_PART(64)

skip4_1:
	ROUNDS4(32)
	TESTQ R9, R9
	JE skip4_2
	SCHED_PART(128)

skip4_2:
	ROUNDS4(48)
	TESTQ R9, R9
	JE skip4_3
	SCHED_PART(192)
	ADDQ $256, DI

skip4_3:
	ROUNDS4(64)
	TESTQ R9, R9
	JE skip4_4
	MOVQ 8(R8), R10
	MOVQ (R10)(R11*8), AX
	MOVQ (R10)(R12*8), R10
	SCHED_PART0(AX, R10)

skip4_4:
	ROUNDS4(80)
	TESTQ R9, R9
	JE skip4_5
	SCHED_PART(64)

skip4_5:
	ROUNDS4(96)
	TESTQ R9, R9
	JE skip4_6
	SCHED_PART(128)

skip4_6:
	ROUNDS4(112)
	TESTQ R9, R9
	JE skip4_7
	SCHED_PART(192)
	ADDQ $256, DI

skip4_7:
	ROUNDS4(128)
	TESTQ R9, R9
	JE skip4_8
	MOVQ 16(R8), R10
	MOVQ (R10)(R11*8), AX
	MOVQ (R10)(R12*8), R10
	SCHED_PART0(AX, R10)

skip4_8:
	ROUNDS4(144)
	TESTQ R9, R9
	JE skip4_9
	SCHED_PART(64)

skip4_9:
	ROUNDS4(160)
	TESTQ R9, R9
	JE skip4_10
	SCHED_PART(128)

skip4_10:
	ROUNDS4(176)
	TESTQ R9, R9
	JE skip4_11
	SCHED_PART(192)
	ADDQ $256, DI

skip4_11:
	ROUNDS4(192)
	TESTQ R9, R9
	JE skip4_12
	MOVQ 24(R8), R10
	MOVQ (R10)(R11*8), AX
	MOVQ (R10)(R12*8), R10
	SCHED_PART0(AX, R10)

skip4_12:
	ROUNDS4(208)
	TESTQ R9, R9
	JE skip4_13
	SCHED_PART(64)

skip4_13:
	ROUNDS4(224)
	TESTQ R9, R9
	JE skip4_14
	SCHED_PART(128)

skip4_14:
	ROUNDS4(240)
	TESTQ R9, R9
	JE skip4_15
	SCHED_PART(192)
	ADDQ $256, DI

skip4_15:

	// Feed-forward, then the next block.
	PADDD 0(R13), X1
	PADDD 16(R13), X2
	PADDD 32(R13), X3
	PADDD 48(R13), X4
	PADDD 64(R13), X5
	PADDD 80(R13), X6
	PADDD 96(R13), X7
	PADDD 112(R13), X8
	ADDQ R9, DX
	INCQ CX
	CMPQ CX, 0(BX)
	JB block4

	// Digests out, big-endian.
	MOVQ 32(R8), AX
	STORE_DIGEST(X1, X2)
	MOVQ 40(R8), AX
	STORE_DIGEST(X3, X4)
	MOVQ 48(R8), AX
	STORE_DIGEST(X5, X6)
	MOVQ 56(R8), AX
	STORE_DIGEST(X7, X8)
	RET
