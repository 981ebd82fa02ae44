// Package tier owns where a pool block's bytes live.
//
// The DRAM tier is one anonymous private mapping (an Arena), 2 MiB aligned
// and advised MADV_HUGEPAGE before it is populated, because expander parents
// are uniform over a whole layer and hugepages cut the cost of each random
// read about threefold (PLATFORM.md). With MAP_HUGETLB the host's reserved
// hugepages are used; when there are none the arena falls back to
// transparent hugepages and says so.
//
// # Invariants
//
//   - Block bytes are never Go heap memory and never hold Go pointers; a
//     block is named by its pool index and its slice is valid until the
//     arena is closed.
//   - The tier does not decide who owns a block: the pool does. The tier
//     only maps an index to bytes.
package tier
