// Package sealer is pc1-tiered as a Go sealing stack (Curio, Lotus, or your
// own orchestrator) embeds it: it takes a batch of sectors as the chain and
// the deal pipeline describe them (miner, sector number, ticket, staged
// data) and runs their whole PreCommit Phase 1 through one shared pool,
// leaving each sector's cache directory as rust-fil-proofs' PC1 leaves it,
// so the orchestrator's PC2 takes over.
//
// # What it owns
//
// For every sector of a Batch, SealBatch
//
//  1. checks the staged file (size, Lotus trailer) before anything is
//     written;
//  2. streams the staged data (or zeros for a committed-capacity sector)
//     through tree_d, writes sc-02-data-tree-d.dat atomically and keeps its
//     root, comm_d;
//  3. derives the replica id, SHA-256(prover id || sector number (u64 BE) ||
//     ticket || comm_d || porep id) trimmed to a field element, from the
//     comm_d of the bytes it actually read;
//  4. labels all sectors in one batch through the pool (Label, the one seal
//     path) into sc-02-data-layer-1.dat .. sc-02-data-layer-L.dat;
//  5. once every layer is committed, writes each sector's PreCommit1
//     output (WritePhase1Output, pc1out.json);
//
// and returns, per sector, comm_d, the replica id and the paths, plus the
// batch's Report.
//
// # How to call it
//
//	proof, _ := sdr.ProofByName("StackedDrg32GiBV1_1")
//	res, err := sealer.SealBatch(ctx, sealer.Batch{
//		Proof: proof,
//		Root:  "/seal", // sectors go to /seal/cache/s-t0<actor>-<number>/
//		Sectors: []sealer.SectorInput{
//			{ProverID: sealer.ActorProverID(1000), SectorNumber: 7, Ticket: ticket,
//				Staged: "/seal/unsealed/s-t01000-7", WantCommD: &commD},
//			{ProverID: sealer.ActorProverID(1000), SectorNumber: 8, Ticket: ticket8}, // CC
//		},
//		OnProgress: func(p sealer.Progress) { ... }, // cheap, concurrent
//	})
//
// One call is one batch: its sectors share one pool sized for them
// (PoolSize, DRAMBudget, Parallel as in labeler.Config), and cancelling ctx
// stops all of them. Results come back in input order.
//
// # Storage layout
//
// A sector's cache directory is ROOT/cache/s-t0<actor>-<number>: the name
// is Lotus' storiface.SectorName ("s-t0%d-%d", t0 whatever the network),
// which Curio shares; the subdirectory is storiface.FTCache's "cache". In
// it, after a batch:
//
//   - sc-02-data-tree-d.dat: tree_d, the full binary SHA-256 tree over the
//     sector's 32-byte nodes, leaves first, then each level up to the root:
//     2 x S - 32 bytes (rust-fil-proofs stores it with rows_to_discard 0;
//     Curio's phase-1 output gives its size as 127 nodes for 2 KiB, and
//     Lotus reserves "D (2 x ssize)" for it). Its first S bytes are the
//     staged data itself.
//   - sc-02-data-layer-<k>.dat for k = 1..L: the labels, byte-identical to
//     rust-fil-proofs'.
//   - pc1out.json: the PreCommit1 output, as rust-fil-proofs returns it
//     through filecoin-ffi (LotusPreCommit1Out gives the form Lotus stores
//     and hands to PC2).
//   - pc1-tiered.json: this program's own record (replica id, graph, layer
//     checksums), which resuming and pc1-tiered verify read. Lotus and
//     Curio do not read it.
//
// # Staged data
//
// The staged file is the sector's Fr32-padded data, the bytes Lotus'
// AddPiece writes to ROOT/unsealed/s-t0<actor>-<number>: exactly the sector
// size S, or S followed by the trailer Lotus appends to unsealed files
// ([padded sector][rle+ of allocated ranges][u32 LE rle+ length],
// storage/sealer/partialfile), which is ignored as the reference's PC1
// ignores it (it copies the file and truncates it to S). Anything else is
// refused, naming the file: a shorter file (the reference would pad it with
// zeros, hiding a truncated file), a file whose tail is not that trailer,
// and data that is not Fr32-padded (a 32-byte node whose last byte has one
// of its top two bits set, which Fr32 padding never produces: raw,
// unpadded piece bytes give that within a few nodes). A sector without a staged file is committed capacity: all zeros,
// no file read, comm_d the zero_commd value for its size.
//
// # Prover ids
//
// A miner's prover id is its actor id as an unsigned LEB128 varint (the
// payload of its id address) zero-padded to 32 bytes, as filecoin-ffi's
// toProverID and go-state-types' MakeProverID build it. ParseProverID reads
// f0<id> and t0<id> addresses and raw 32-byte hex; ActorProverID builds one
// from an abi.ActorID's value.
//
// # Invariants
//
//   - Nothing is labeled, and no cache directory is made, until every
//     sector's input has been checked; a batch refused before labeling (bad input,
//     a pool size out of bounds, a broken parent cache, a comm_d that is
//     not the pieces') removes the cache directories it created.
//   - Files appear complete or not at all: tree_d through
//     blockio.WriteFileAtomic, layers through the labeler's commit. The
//     phase-1 output comes last: a cache directory holding pc1out.json
//     holds that sector's finished PC1. A batch removes a sector's earlier
//     pc1out.json once it has that sector's new comm_d, so a failed batch
//     may leave sectors without one; running it again writes them.
//   - Running the same batch again is safe and cheap: tree_d and comm_d
//     are recomputed (one sequential read of each staged file), committed
//     layers are kept and a layer in progress resumes after its durable
//     prefix (see the labeler). A sector whose inputs changed gets a new
//     replica id, and its layers are labeled again from scratch.
//   - SealBatch keeps no state between calls; concurrent batches are fine
//     as long as they do not share a cache directory.
//
// # Left to the caller
//
//   - The sealed file. PC2 (SealPreCommitPhase2) encodes the replica in
//     place in ROOT/sealed/s-t0<actor>-<number> and expects it to hold the
//     staged data first; the reference's PC1 copies it there, this package
//     does not. Curio does what is needed before its PC2: it copies (or
//     reflinks) the first S bytes of sc-02-data-tree-d.dat, which are the
//     data, to the sealed path.
//   - Handing the phase-1 output to PC2: Lotus keeps PreCommit1Out in its
//     sector state (LotusPreCommit1Out with the sector's ticket), Curio
//     rebuilds it itself.
//   - Storage locks and space reservation: a cache directory needs 2 x S
//     for tree_d plus L x S for layers.
//
// # Memory
//
// Besides the pool, building tree_d streams: sdr.WriteTreeD writes each
// level at its offset as it completes and holds O(log n) nodes, one sector
// at a time, before the pool is allocated. Nothing else of a sector is held
// outside the pool but the labeler's per-job buffers (parent read-ahead,
// lockstep packing).
//
// # Measuring
//
// Every seal goes through Label, the one seal path. Measuring (the SHA-256
// rate behind sha_limit_ratio, memory samples, I/O counters) costs a third
// of a second of one core and a sampler goroutine, so it happens only when
// asked (Measure); the command line always asks, a library caller chooses.
package sealer
