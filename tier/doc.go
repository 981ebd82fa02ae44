// Package tier owns where a pool block's bytes live.
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
// The labeler prefetches spilled pages ahead of the hashing (the parent
// cache says which) and drops them from the page cache once passed, so
// spilled labels really live on the device: unmapping alone would leave
// them cached.
//
// # Invariants
//
//   - Block bytes are never Go heap memory and never hold Go pointers; a
//     block is named by its pool index and its slice is valid until the
//     arena is closed.
//   - The tier does not decide who owns a block: the pool does. The tier
//     only maps an index to bytes.
//
// # Device reads
//
// A DeviceReader reads pages of files with O_DIRECT into page buffers it
// owns: one anonymous mapping of Buffers x PageSize bytes, so the memory
// is exact, outside the Go heap and never in the page cache. Reads are
// handed over in batches (ReadBatch) and carried either by one io_uring,
// submitted and reaped in batches from one goroutine locked to its thread
// (blockio/uring), or, where io_uring is unavailable or disabled, by Depth
// goroutines doing pread. A buffer moves Free -> Reading -> Done -> Free,
// and only ReadBatch, the engine's completion (finish) and the last
// Release move it, under one mutex, so the counters cannot drift.
//
//   - A Page handle carries one reference from ReadBatch; Retain adds one,
//     Release drops one, and the buffer is reused only when the last is
//     dropped and its read has finished. Bytes from Wait are valid until
//     then. A handle released too often panics: generations make a stale
//     handle detectable instead of silently reading someone else's page.
//   - ReadBatch takes all of a batch's buffers at once or waits (ctx and
//     Close end the wait), so concurrent batches cannot deadlock each
//     other; at most Depth reads are at the kernel, the rest queue.
//   - Close waits for every read handed over, so no read lands in memory
//     after it is unmapped.
//   - Every read error names the file and offset.
package tier
