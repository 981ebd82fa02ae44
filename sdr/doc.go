// Package sdr is the pure mathematics of Filecoin's Stacked DRG PreCommit
// Phase 1, bit-exact with filecoin-project/rust-fil-proofs: registered seal
// proofs and their porep ids, the bucket graph (DRG) base parents with their
// ChaCha8 stream, the Feistel expander parents, the parent cache's name and
// content, the node label function, the replica id, tree_d / comm_d, and a
// deliberately simple whole-layer reference labeler that every faster
// labeler is tested against.
//
// # Invariants
//
//   - Nothing here opens a file, spawns long-lived goroutines or keeps state
//     between calls other than what a value (a Graph, a NodeHasher) holds.
//     Callers decide where bytes live; functions take readers, writers and
//     slices.
//   - A label is 32 bytes in file order, its last byte masked with 0x3f so
//     that it is a valid BLS12-381 field element, exactly as the reference
//     stores it.
//   - Parent order is the reference's: slots 0..5 base parents (placed as the
//     graph's API version says), slots 6..13 expander parents.
//
// # Performance
//
// The label function is the hot loop of the whole product: 20 SHA-256
// compressions per node and nothing else. NodeHasher keeps the 1248-byte
// message in place so that a caller copies each parent label into its slot
// once and the repetitions are filled by a few bulk copies; it allocates
// nothing.
//
// The parent cache is computed once per sector size and machine, but it is
// 2^35 Feistel round hashes for 32 GiB. A round only ever hashes a
// half-width value, so a Graph tabulates each round's function on first use
// (3 x 2^halfBits entries, with a BLAKE2b specialised for the one 16-byte
// block) and the expander parents become table lookups; the base parents'
// ChaCha8 keeps its state in registers. Neither allocates per node.
package sdr
