package sdr

import (
	"crypto/sha256"
	"fmt"
	"io"
)

// TreeDFileName is tree_d's file in a sector's cache directory.
const TreeDFileName = "sc-02-data-tree-d.dat"

// hashPair is one tree_d node: SHA-256 of its two children, trimmed to a
// field element as the reference's Sha256Domain does.
func hashPair(left, right []byte) [32]byte {
	var buf [64]byte
	copy(buf[:32], left)
	copy(buf[32:], right)
	d := sha256.Sum256(buf[:])
	d[31] &= 0x3f
	return d
}

// TreeDBuilder computes comm_d, the root of tree_d, over staged sector data
// streamed through Write in any chunking. It keeps one pending subtree root
// per level, so memory is O(log n) whatever the sector size.
type TreeDBuilder struct {
	leaves  uint64
	written uint64 // leaves consumed
	partial [32]byte
	npart   int // bytes of a leaf carried between writes
	// stack[h] is a completed subtree root of height h waiting for its
	// right sibling.
	stack [][32]byte
	full  []bool
	// level, if set, receives every node as it is completed, by height.
	level func(height int, node []byte) error
}

// NewTreeDBuilder starts a tree over leaves 32-byte leaves, a power of two
// of at least 2.
func NewTreeDBuilder(leaves uint64) (*TreeDBuilder, error) {
	if leaves < 2 || leaves&(leaves-1) != 0 {
		return nil, fmt.Errorf("tree_d over %d leaves: want a power of two of at least 2", leaves)
	}
	h := 0
	for uint64(1)<<h < leaves {
		h++
	}
	return &TreeDBuilder{leaves: leaves, stack: make([][32]byte, h+1), full: make([]bool, h+1)}, nil
}

// Write adds leaf data.
func (b *TreeDBuilder) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if b.written == b.leaves {
			return n - len(p), fmt.Errorf("tree_d: more than %d leaves of data", b.leaves)
		}
		if b.npart == 0 && len(p) >= NodeSize {
			if err := b.push(p[:NodeSize]); err != nil {
				return n - len(p), err
			}
			p = p[NodeSize:]
			continue
		}
		c := copy(b.partial[b.npart:], p)
		b.npart += c
		p = p[c:]
		if b.npart == NodeSize {
			b.npart = 0
			if err := b.push(b.partial[:]); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (b *TreeDBuilder) push(leaf []byte) error {
	b.written++
	node := *(*[32]byte)(leaf)
	if b.level != nil {
		if err := b.level(0, node[:]); err != nil {
			return err
		}
	}
	for h := 0; ; h++ {
		if !b.full[h] {
			b.stack[h], b.full[h] = node, true
			return nil
		}
		node = hashPair(b.stack[h][:], node[:])
		b.full[h] = false
		if b.level != nil {
			if err := b.level(h+1, node[:]); err != nil {
				return err
			}
		}
	}
}

// Root returns comm_d once every leaf has been written.
func (b *TreeDBuilder) Root() ([32]byte, error) {
	if b.written != b.leaves || b.npart != 0 {
		return [32]byte{}, fmt.Errorf("tree_d: %d of %d leaves written", b.written, b.leaves)
	}
	return b.stack[len(b.stack)-1], nil
}

// CommD computes comm_d of leaves*32 bytes of staged data read from r.
func CommD(r io.Reader, leaves uint64) ([32]byte, error) {
	b, err := NewTreeDBuilder(leaves)
	if err != nil {
		return [32]byte{}, err
	}
	if _, err := io.CopyN(b, r, int64(leaves*NodeSize)); err != nil {
		return [32]byte{}, fmt.Errorf("tree_d: reading staged data: %w", err)
	}
	return b.Root()
}

// WriteTreeD writes the whole tree_d file to w in the reference's layout:
// the leaves, then each level above them, up to the root, (2n-1)*32 bytes
// in all. Every level's nodes are completed in order, so each level is
// written sequentially at its own offset through a small buffer: memory
// stays O(log n) whatever the sector size (a 32 GiB sector's tree is 64
// GiB).
func WriteTreeD(r io.Reader, leaves uint64, w io.WriterAt) ([32]byte, error) {
	b, err := NewTreeDBuilder(leaves)
	if err != nil {
		return [32]byte{}, err
	}
	const bufNodes = 2048 // 64 KiB a level
	levels := make([]treeLevel, len(b.stack))
	var off int64
	for h := range levels {
		levels[h].off = off
		off += int64(leaves>>h) * NodeSize
	}
	b.level = func(height int, node []byte) error {
		l := &levels[height]
		l.buf = append(l.buf, node...)
		if len(l.buf) >= bufNodes*NodeSize {
			return l.flush(w)
		}
		return nil
	}
	if _, err := io.CopyN(b, r, int64(leaves*NodeSize)); err != nil {
		return [32]byte{}, fmt.Errorf("tree_d: %w", err)
	}
	root, err := b.Root()
	if err != nil {
		return root, err
	}
	for h := range levels {
		if err := levels[h].flush(w); err != nil {
			return root, err
		}
	}
	return root, nil
}

// treeLevel is one level of tree_d being written: where its next node goes
// and the completed nodes not yet written.
type treeLevel struct {
	off int64
	buf []byte
}

func (l *treeLevel) flush(w io.WriterAt) error {
	if len(l.buf) == 0 {
		return nil
	}
	if _, err := w.WriteAt(l.buf, l.off); err != nil {
		return fmt.Errorf("tree_d: %w", err)
	}
	l.off += int64(len(l.buf))
	l.buf = l.buf[:0]
	return nil
}

// ZeroCommD is comm_d of an all-zero sector of sectorSize bytes, computed
// from the zero subtree of each height in O(log n).
func ZeroCommD(sectorSize uint64) ([32]byte, error) {
	if err := CheckSectorSize(sectorSize); err != nil {
		return [32]byte{}, err
	}
	var z [32]byte
	for n := sectorSize / NodeSize; n > 1; n /= 2 {
		z = hashPair(z[:], z[:])
	}
	return z, nil
}
