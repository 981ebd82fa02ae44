package tier

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// hugePageSize is the x86-64 transparent hugepage size; the arena is
// rounded up to it so that MADV_HUGEPAGE can back every block.
const hugePageSize = 2 << 20

// Arena is one anonymous, private memory mapping holding fixed-size blocks
// back to back. Block bytes live outside the Go heap, so the garbage
// collector never scans or moves them; a block is addressed by its index.
type Arena struct {
	mem       []byte
	blockSize uint64
	blocks    int
	hugetlb   bool
}

// ArenaOptions says how to back an arena.
type ArenaOptions struct {
	// HugeTLB asks for MAP_HUGETLB pages the host has reserved. When the
	// reservation is missing the arena falls back to transparent hugepages
	// and Warning says so.
	HugeTLB bool
	// Populate faults the whole arena in at creation (MADV_POPULATE_WRITE),
	// so hashing never takes first-touch faults and the hugepage
	// compaction cost is paid once, up front.
	Populate bool
}

// NewArena maps blocks x blockSize bytes.
func NewArena(blocks int, blockSize uint64, opts ArenaOptions) (*Arena, string, error) {
	if blocks <= 0 || blockSize == 0 {
		return nil, "", fmt.Errorf("arena of %d blocks of %d bytes: both must be positive", blocks, blockSize)
	}
	size := uint64(blocks) * blockSize
	size = (size + hugePageSize - 1) &^ (hugePageSize - 1)
	a := &Arena{blockSize: blockSize, blocks: blocks}
	var warning string
	if opts.HugeTLB {
		mem, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_HUGETLB)
		if err == nil {
			a.mem, a.hugetlb = mem, true
		} else {
			warning = fmt.Sprintf("MAP_HUGETLB for %d bytes failed (%v): no reserved hugepages? falling back to transparent hugepages", size, err)
		}
	}
	if a.mem == nil {
		mem, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return nil, warning, fmt.Errorf("mapping a %d-byte DRAM arena: %w", size, err)
		}
		a.mem = mem
		// Best effort: without THP the arena still works, with ~3x slower
		// random parent reads (PLATFORM.md). Advise before populating, or
		// the pages come in small and stay small.
		_ = unix.Madvise(a.mem, unix.MADV_HUGEPAGE)
	}
	if opts.Populate {
		if err := unix.Madvise(a.mem, unix.MADV_POPULATE_WRITE); err != nil && !errors.Is(err, unix.EINVAL) {
			_ = unix.Munmap(a.mem)
			return nil, warning, fmt.Errorf("populating a %d-byte DRAM arena: %w", size, err)
		}
	}
	return a, warning, nil
}

// Block returns the bytes of block id. The slice aliases the mapping: it is
// valid until Close.
func (a *Arena) Block(id int) []byte {
	off := uint64(id) * a.blockSize
	return a.mem[off : off+a.blockSize : off+a.blockSize]
}

// Blocks is the number of blocks in the arena.
func (a *Arena) Blocks() int { return a.blocks }

// BlockSize is the size of one block in bytes.
func (a *Arena) BlockSize() uint64 { return a.blockSize }

// Bytes is the mapped size, rounded up to the hugepage size.
func (a *Arena) Bytes() uint64 { return uint64(len(a.mem)) }

// HugeTLB reports whether the arena is backed by reserved hugepages.
func (a *Arena) HugeTLB() bool { return a.hugetlb }

// Close unmaps the arena. No block slice may be used afterwards.
func (a *Arena) Close() error {
	if a.mem == nil {
		return nil
	}
	err := unix.Munmap(a.mem)
	a.mem = nil
	if err != nil {
		return fmt.Errorf("unmapping the DRAM arena: %w", err)
	}
	return nil
}
