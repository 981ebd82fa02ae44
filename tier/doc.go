// Package tier owns where a pool block's bytes live: the DRAM arena, the
// spill policy (PlanSpill, PlanBudget: which blocks of a job's two layers
// stay in DRAM), the spill mechanism (JobSpill: placing, demoting and
// promoting blocks; the prefetcher that reads spilled pages ahead of the
// hashing and evicts them once passed; FileMap, the mapping they are read
// through) and the device probe that measures that path (ProbeDevice).
// The labeler decides when a block is needed, written or passed; the tier
// decides where its bytes are. A change to how spilled labels are read
// (O_DIRECT instead of page faults, say) belongs here.
//
// The DRAM tier is one anonymous private mapping (an Arena), 2 MiB aligned
// and advised MADV_HUGEPAGE before it is populated, because expander parents
// are uniform over a whole layer and hugepages cut the cost of each random
// read about threefold (PLATFORM.md). With MAP_HUGETLB the host's reserved
// hugepages are used; when there are none the arena falls back to
// transparent hugepages and says so.
//
// The spill tier is the layer files themselves. A job whose DRAM share
// (the budget over N) is below two layers keeps, by PlanSpill, a window of
// the most recent blocks of the layer being written and as much of the
// previous layer as fits; every other label is read back through a
// read-only mapping of the layer file it was written to. Layer files must
// be written for PC2 anyway, so spilling writes nothing extra: separate
// spill files would write every spilled block twice. The order comes from
// where parents fall (ARCHITECTURE.md): the old part of the layer being
// written is cold (base parents fall off like 1/distance behind the
// head), the previous layer is uniformly hot (each spilled fraction f of
// it costs 8f device reads per node), so the window is filled first, then
// the previous layer, then the rest of the window. When a layer turns over,
// the part of it that stays in DRAM is promoted with sequential reads.
// The prefetcher walks the parent cache ahead of the hashing, asks for
// the spilled pages the next PrefetchAheadNodes nodes need (batched
// MADV_WILLNEED) and drops them from the page cache once passed
// (MADV_PAGEOUT), so spilled labels really live on the device: unmapping
// alone would leave them cached.
//
// # Invariants
//
//   - Block bytes are never Go heap memory and never hold Go pointers; a
//     block is named by its pool index and its slice is valid until the
//     arena is closed.
//   - The tier does not decide who owns a block: the pool does. The tier
//     only maps an index to bytes, and a JobSpill is handed its job's
//     blocks once, at its start (it does not import the pool).
//   - SpillCounters change only inside the transitions they count
//     (PlaceBlock demotes, promote promotes, the prefetcher fetches and
//     drops), so they cannot drift from what happened.
//   - A JobSpill's mappings are read only; the layer file is written by
//     blockio's writer, and a block is demoted to the mapping only after
//     the writer acked it (durable, dropped from the page cache).
package tier
