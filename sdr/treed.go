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
// in all. The leaves are copied to w as they stream; the upper levels (n-1
// nodes, as much as the data itself) are held in memory until the end,
// which suits the sizes this is used for; a 32 GiB sector would want them
// spooled to disk instead.
func WriteTreeD(r io.Reader, leaves uint64, w io.Writer) ([32]byte, error) {
	b, err := NewTreeDBuilder(leaves)
	if err != nil {
		return [32]byte{}, err
	}
	upper := make([][]byte, len(b.stack))
	b.level = func(height int, node []byte) error {
		if height == 0 {
			_, err := w.Write(node)
			return err
		}
		upper[height] = append(upper[height], node...)
		return nil
	}
	if _, err := io.CopyN(b, r, int64(leaves*NodeSize)); err != nil {
		return [32]byte{}, fmt.Errorf("tree_d: %w", err)
	}
	root, err := b.Root()
	if err != nil {
		return root, err
	}
	for _, lvl := range upper[1:] {
		if _, err := w.Write(lvl); err != nil {
			return root, fmt.Errorf("tree_d: %w", err)
		}
	}
	return root, nil
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
