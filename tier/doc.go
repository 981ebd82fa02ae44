// Package tier owns where a pool block's bytes live: the DRAM arena, the
// spill policy (PlanSpill, PlanBudget: which blocks of a job's two layers
// stay in DRAM), the spill mechanism (JobSpill: placing, demoting and
// promoting blocks; ColdLabels, the prefetcher that reads spilled pages
// ahead of the hashing and hands their labels over in order; the
// DeviceReader that reads them with O_DIRECT through io_uring) and the
// device probe that measures that path (ProbeDevice, ProbeDeviceReader).
// The labeler decides when a block is needed, written or passed; the tier
// decides where its bytes are. A change to how spilled labels are read
// belongs here.
//
// The DRAM tier is one anonymous private mapping (an Arena), 2 MiB aligned
// and advised MADV_HUGEPAGE before it is populated, because expander parents
// are uniform over a whole layer and hugepages cut the cost of each random
// read about threefold (PLATFORM.md). With MAP_HUGETLB the host's reserved
// hugepages are used; when there are none the arena falls back to
// transparent hugepages and says so.
//
// A job whose DRAM share (the budget over N) is below two layers keeps, by
// PlanSpill, a window of the most recent blocks of the layer being written
// and as much of the previous layer as fits; every other label is read
// back from the device with O_DIRECT into the tier's own page buffers
// (nothing in the page cache, nothing faulted in). Where from depends on
// the job (SpillLayout): a single sector's labels from its layer file,
// which PC2 needs anyway, so spilling writes nothing extra; a batch's
// (B sectors, labels node-major) from its spill files, whose pages hold
// whole records, so that one read brings a parent for every sector of the
// batch. Each finished block of a batch is written once to the layer's
// spill files (anonymous, O_DIRECT, striped page by page over the spill
// directories, their space reserved when the layer starts) by the job's
// spill writer, and a block leaves DRAM only once written; the spill
// files of a layer live until the next layer is done with it, and a
// resumed batch rebuilds them from the layer files. The order comes from
// where parents fall (ARCHITECTURE.md): the old part of the layer being
// written is cold (base parents fall off like 1/distance behind the
// head), the previous layer is uniformly hot (each spilled fraction f of
// it costs 8f device reads per node), so the window is filled first, then
// the previous layer, then the rest of the window. When a layer turns over,
// the part of it that stays in DRAM is promoted with sequential reads.
// ColdLabels' prefetcher walks the parent cache ahead of the hashing
// (PrefetchAheadNodes, and at most coldHeldPages pages held), picks the
// parents in spilled blocks by the same rule the hashing's view follows,
// reads each distinct page once for its whole look-ahead in batches, and
// hands the hashing the address of every cold parent's label in the order
// it reads them; the hashing waits only on a page not yet read (counted,
// with the time). A page of the layer being written is read only once its
// block is on the device (its write acked): read earlier, it would hold
// what the device held before. Pages go back to the reader as the hashing
// reports passing the nodes that read them (PassStepNodes).
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
//   - The spill tier reads layer files but never writes them (blockio's
//     writer does); it writes only its own spill files. A block is demoted
//     (its labels read from the device) only after its write was acked:
//     the layer file's (durable, dropped from the page cache) for a single
//     sector, the spill file's for a batch.
//   - A read error is kept, the hashing is handed a zero label in its
//     place, and JobSpill.Hashed returns the error before the labeler
//     writes the block: labels computed from a failed read are never
//     written.
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
