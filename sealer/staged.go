package sealer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// lotusTrailerLenBytes is the little-endian length that ends a Lotus
// unsealed file, after its rle+ trailer (storage/sealer/partialfile).
const lotusTrailerLenBytes = 4

// treeDProgressStep is how many staged bytes pass between two tree_d
// progress reports.
const treeDProgressStep = 4 << 20

// checkStaged makes sure path holds a sector of sectorSize bytes that PC1
// may read: exactly the sector, or the sector followed by the trailer Lotus
// appends to unsealed files ([padded sector][rle+][u32 LE rle+ length]).
// The reference's PC1 copies the staged file and truncates it to the sector
// size, which drops that trailer; a shorter file it would pad with zeros,
// which hides a truncated staged file, so it is refused here.
func checkStaged(path string, sectorSize uint64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("staged file %s: %w", path, pathErr(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("staged file %s: %w", path, pathErr(err))
	}
	if st.IsDir() {
		return fmt.Errorf("staged file %s is a directory", path)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("staged file %s is not a regular file; for a committed-capacity (all-zero) sector give no staged file", path)
	}
	size := uint64(st.Size())
	want := fmt.Sprintf("want %d bytes (the %s sector, Fr32-padded as Lotus' unsealed file holds it)", sectorSize, sdr.FormatSize(sectorSize))
	switch {
	case size == sectorSize:
		return nil
	case size < sectorSize:
		return fmt.Errorf("staged file %s is %d bytes, %s", path, size, want)
	case size < sectorSize+lotusTrailerLenBytes:
		return fmt.Errorf("staged file %s is %d bytes, %s, optionally followed by Lotus' unsealed-file trailer", path, size, want)
	}
	var n [lotusTrailerLenBytes]byte
	if _, err := f.ReadAt(n[:], int64(size-lotusTrailerLenBytes)); err != nil {
		return fmt.Errorf("staged file %s: reading its trailer length: %w", path, err)
	}
	if trailer := uint64(binary.LittleEndian.Uint32(n[:])); sectorSize+trailer+lotusTrailerLenBytes != size {
		return fmt.Errorf("staged file %s is %d bytes, %s; the %d bytes after the sector are not Lotus' unsealed-file trailer (its last 4 bytes say %d trailer bytes)",
			path, size, want, size-sectorSize, trailer)
	}
	return nil
}

// pathErr drops the operation and path an *fs.PathError repeats, since the
// caller's message already names the file.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// writeTreeD streams the sector's data, from the staged file at path or
// zeros when path is "", into tree_d, and returns comm_d, tree_d's root.
// Unless want is set and the root is not *want, it then calls before (if
// set) and gives tree_d's file, written in place under a temporary name,
// its final name in dir. Memory stays O(log S): each level of the tree is
// written at its offset as it completes.
func writeTreeD(ctx context.Context, path string, sectorSize uint64, dir string, want *[32]byte, before func() error, progress func(done uint64)) ([32]byte, error) {
	var src io.Reader = zeros{}
	name := "zeros (committed capacity)"
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return [32]byte{}, fmt.Errorf("staged file %s: %w", path, pathErr(err))
		}
		defer f.Close()
		src, name = f, path
	}
	r := &stagedReader{ctx: ctx, r: io.LimitReader(src, int64(sectorSize)), path: name, progress: progress, checkFr32: path != ""}
	// Streamed into place level by level: tree_d is 2 x S, never held in
	// memory; it gets its name only once complete and checked.
	tree, err := blockio.CreateAtomic(filepath.Join(dir, sdr.TreeDFileName))
	if err != nil {
		return [32]byte{}, fmt.Errorf("tree_d: %w", err)
	}
	root, err := sdr.WriteTreeD(r, sectorSize/sdr.NodeSize, tree)
	if r.err != nil {
		tree.Abort()
		return root, r.err // the reader's own error says more than WriteTreeD's wrapping
	}
	if err != nil {
		tree.Abort()
		return root, fmt.Errorf("tree_d over %s: %w", name, err)
	}
	if want != nil && *want != root {
		tree.Abort()
		return root, fmt.Errorf("comm_d of the staged data is %x, want %x (the pieces'): %s does not hold these pieces", root, *want, name)
	}
	if before != nil {
		if err := before(); err != nil {
			tree.Abort()
			return root, err
		}
	}
	if err := tree.Commit(); err != nil {
		return root, fmt.Errorf("tree_d: %w", err)
	}
	if progress != nil {
		progress(sectorSize)
	}
	return root, nil
}

// zeros reads as an endless run of zero bytes: a committed-capacity
// sector's data.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// stagedReader passes staged data through, stopping when ctx is done,
// reporting progress, and refusing data that is not Fr32-padded: Fr32
// padding leaves the top two bits of every 32-byte node's last byte clear.
// Raw (unpadded) piece bytes fail this within a few nodes.
type stagedReader struct {
	ctx       context.Context
	r         io.Reader
	path      string
	off       uint64
	reported  uint64
	progress  func(done uint64)
	checkFr32 bool
	err       error
}

func (s *stagedReader) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		s.err = fmt.Errorf("tree_d over %s: %w", s.path, context.Cause(s.ctx))
		return 0, s.err
	}
	n, err := s.r.Read(p)
	if s.checkFr32 {
		// The first byte of p at a node's last position.
		first := (sdr.NodeSize - 1 - s.off%sdr.NodeSize) % sdr.NodeSize
		for i := first; i < uint64(n); i += sdr.NodeSize {
			if b := p[i]; b&0xc0 != 0 {
				node := (s.off + i) / sdr.NodeSize
				s.err = fmt.Errorf("staged file %s: node %d (bytes %d..%d) is not Fr32-padded: its last byte is %#02x, but padding clears the top two bits; PC1 takes the padded sector, as Lotus' unsealed file holds it, not raw piece bytes",
					s.path, node, node*sdr.NodeSize, node*sdr.NodeSize+sdr.NodeSize-1, b)
				return 0, s.err
			}
		}
	}
	s.off += uint64(n)
	if s.progress != nil && s.off-s.reported >= treeDProgressStep {
		s.reported = s.off
		s.progress(s.off)
	}
	if err != nil && err != io.EOF {
		s.err = fmt.Errorf("staged file %s: reading at byte %d: %w", s.path, s.off, err)
		return n, s.err
	}
	return n, err
}
