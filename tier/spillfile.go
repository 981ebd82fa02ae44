package tier

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"golang.org/x/sys/unix"
)

// MaxBatchLanes is the most sectors one batch labels together: a record of
// 128 labels fills one 4 KiB page, and a record must not straddle pages
// (one read serves every lane of a parent).
const MaxBatchLanes = PageSize / sdr.NodeSize

// SpillLayout says where a job's labels of one layer lie on the device.
//
// A single sector's (Lanes 1) lie in its layer file, packed, 128 to a
// page: the layer file is written anyway, so it is the spill copy.
//
// A batch's (Lanes B >= 2) lie in spill files, node-major: record(node) is
// the B lanes' labels of the node, lane s at 32 s, as the batch's DRAM
// blocks hold them, so one page read brings a parent of every lane. A
// page holds RecordsPerPage whole records (the rest of the page is
// padding when B is not a power of two); block b of the layer takes pages
// [b PagesPerBlock, (b+1) PagesPerBlock). Page p lies in stripe p mod
// Stripes (one spill directory each) at offset (p div Stripes) x 4 KiB,
// so pages are spread round-robin over the drives and a block's pages
// in one stripe are contiguous there: a block is written with one large
// sequential write per stripe.
type SpillLayout struct {
	Lanes         int
	NodesPerBlock uint64
	Stripes       int
}

// RecordSize is the bytes of one node's record.
func (l SpillLayout) RecordSize() uint64 { return uint64(l.Lanes) * sdr.NodeSize }

// RecordsPerPage is how many nodes' records a page holds.
func (l SpillLayout) RecordsPerPage() uint64 { return PageSize / l.RecordSize() }

// PagesPerBlock is how many pages one block of the layer takes.
func (l SpillLayout) PagesPerBlock() uint64 {
	rpp := l.RecordsPerPage()
	return (l.NodesPerBlock + rpp - 1) / rpp
}

// packed reports whether a block's pages hold exactly its DRAM bytes: no
// padding, so it is written and read without repacking.
func (l SpillLayout) packed() bool {
	return l.RecordsPerPage()*l.RecordSize() == PageSize && l.NodesPerBlock%l.RecordsPerPage() == 0
}

// Locate is the page (numbered over the layer) holding node's record and
// the record's offset in it.
func (l SpillLayout) Locate(node uint64) (page uint64, off uint32) {
	if l.Lanes == 1 {
		// The layer file: packed labels, whatever the block size.
		const perPage = PageSize / sdr.NodeSize
		return node / perPage, uint32(node%perPage) * sdr.NodeSize
	}
	rpp := l.RecordsPerPage()
	b, i := node/l.NodesPerBlock, node%l.NodesPerBlock
	return b*l.PagesPerBlock() + i/rpp, uint32((i % rpp) * l.RecordSize())
}

// stripe is where page p lies: its stripe and the offset in that stripe's
// file.
func (l SpillLayout) stripe(p uint64) (int, int64) {
	s := uint64(max(l.Stripes, 1))
	return int(p % s), int64(p/s) * PageSize
}

// firstInStripe is the offset, in stripe s's file, of the first page from
// page first on that lies in stripe s: where a run of pages starting at
// first begins in that stripe.
func (l SpillLayout) firstInStripe(first uint64, s int) int64 {
	n := uint64(l.Stripes)
	_, off := l.stripe(first + (uint64(s)+n-first%n)%n)
	return off
}

// CheckSpillDir reports whether dir can hold spill files: it exists, is a
// directory, is writable, and its filesystem takes O_DIRECT reads and
// writes (the spill tier reads and writes nothing through the page cache).
func CheckSpillDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("spill directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("spill directory %s: not a directory", dir)
	}
	f, err := createSpillFile(dir, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	buf, err := unix.Mmap(-1, 0, PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return err
	}
	defer unix.Munmap(buf)
	if _, err := unix.Pwrite(int(f.Fd()), buf, 0); err != nil {
		return fmt.Errorf("spill directory %s: writing with O_DIRECT: %w", dir, err)
	}
	if _, err := unix.Pread(int(f.Fd()), buf, 0); err != nil {
		return fmt.Errorf("spill directory %s: reading with O_DIRECT: %w", dir, err)
	}
	return nil
}

// createSpillFile creates an anonymous spill file in dir for layer: it is
// unlinked at once, so whatever ends the process (kill -9 included) frees
// its space, and nothing ever reads one left by an earlier run; resume
// rebuilds spill files from the layer files.
func createSpillFile(dir string, layer int) (*os.File, error) {
	flags := os.O_RDWR | unix.O_DIRECT
	// O_TMPFILE where the filesystem has it; else a named file removed at
	// once.
	fd, err := unix.Open(dir, flags|unix.O_TMPFILE, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, fmt.Sprintf("(spill file for layer %d)", layer))), nil
	}
	f, err := os.CreateTemp(dir, fmt.Sprintf(".pc1-tiered-spill-layer-%d-*", layer))
	if err != nil {
		return nil, fmt.Errorf("spill directory %s: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	defer os.Remove(name)
	fd, err = unix.Open(name, flags, 0)
	if err != nil {
		if errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("spill directory %s: the filesystem refuses O_DIRECT, which the spill tier reads and writes with: put --spill-dir on a disk filesystem (ext4, xfs)", dir)
		}
		return nil, fmt.Errorf("spill directory %s: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// spillFiles are one layer's spill files, one per stripe.
type spillFiles struct {
	layer  int
	files  []*os.File
	ids    []File // in the job's reader
	layout SpillLayout
	faults spillFaults
}

// spillFaults are the fault seams of a job's spill files (tests): each,
// when set, sees every finished write or whole-block read (promotions) of
// them, bytes moved and error, and may change both. Page reads of spilled
// labels go through the job's DeviceReader and its own seam.
type spillFaults struct {
	write, read func(path string, off int64, n int, err error) (int, error)
}

// newSpillFiles creates layer's spill files in dirs, reserving the space
// for blocks blocks first so that a full drive fails the layer's start,
// not a write in its middle, and opens them in r.
func newSpillFiles(r *DeviceReader, dirs []string, layer, blocks int, layout SpillLayout, faults spillFaults) (*spillFiles, error) {
	sf := &spillFiles{layer: layer, layout: layout, faults: faults}
	pages := uint64(blocks) * layout.PagesPerBlock()
	for i, dir := range dirs {
		f, err := createSpillFile(dir, layer)
		if err != nil {
			sf.close(r)
			return nil, err
		}
		sf.files = append(sf.files, f)
		n := (pages + uint64(len(dirs)) - 1 - uint64(i)) / uint64(len(dirs))
		if err := fallocate(f, int64(n*PageSize)); err != nil {
			sf.close(r)
			return nil, fmt.Errorf("spill file for layer %d in %s: reserving %d bytes: %w", layer, dir, n*PageSize, err)
		}
		id, err := r.Adopt(f)
		if err != nil {
			sf.close(r)
			return nil, err
		}
		sf.ids = append(sf.ids, id)
	}
	return sf, nil
}

func fallocate(f *os.File, n int64) error {
	if n == 0 {
		return nil
	}
	err := unix.Fallocate(int(f.Fd()), 0, 0, n)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return f.Truncate(n)
	}
	return err
}

// file is the reader's handle and offset of page p.
func (sf *spillFiles) page(p uint64) (File, int64) {
	s, off := sf.layout.stripe(p)
	return sf.ids[s], off
}

// close closes the files through r (which owns the adopted ones); an
// unlinked file's space goes back to the drive.
func (sf *spillFiles) close(r *DeviceReader) error {
	if sf == nil {
		return nil
	}
	var err error
	for i, f := range sf.files {
		if i < len(sf.ids) {
			err = errors.Join(err, r.CloseFile(sf.ids[i]))
		} else {
			err = errors.Join(err, f.Close())
		}
	}
	sf.files, sf.ids = nil, nil
	return err
}

// spillStagePages is how many pages per stripe one staged write or read
// moves: 256 KiB a stripe, large enough to be sequential on any drive.
const spillStagePages = 64

// blockIO moves whole blocks between DRAM and spill files: directly for a
// packed layout on one stripe, else through a staging buffer that it
// repacks records into (pages padded, stripes split). It is used by one
// goroutine at a time.
type blockIO struct {
	layout SpillLayout
	stage  []byte // spillStagePages x Stripes pages, page aligned
}

func newBlockIO(layout SpillLayout) (*blockIO, error) {
	io := &blockIO{layout: layout}
	if layout.packed() && layout.Stripes == 1 {
		return io, nil
	}
	stage, err := unix.Mmap(-1, 0, spillStagePages*layout.Stripes*PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("spill: mapping a staging buffer: %w", err)
	}
	io.stage = stage
	return io, nil
}

func (io *blockIO) close() {
	if io.stage != nil {
		unix.Munmap(io.stage)
		io.stage = nil
	}
}

// chunks calls fn for each run of pages [p, p+n) of block b that one
// staged transfer moves: spillStagePages pages of every stripe.
func (io *blockIO) chunks(b int, fn func(first, n uint64) error) error {
	ppb := io.layout.PagesPerBlock()
	step := uint64(spillStagePages * io.layout.Stripes)
	first := uint64(b) * ppb
	for p := uint64(0); p < ppb; p += step {
		if err := fn(first+p, min(step, ppb-p)); err != nil {
			return err
		}
	}
	return nil
}

// write writes block b (its DRAM bytes, node-major) to sf.
func (io *blockIO) write(sf *spillFiles, b int, block []byte) error {
	l := io.layout
	if io.stage == nil {
		_, off := l.stripe(uint64(b) * l.PagesPerBlock())
		return sf.pwrite(0, block, off)
	}
	rec, rpp := l.RecordSize(), l.RecordsPerPage()
	return io.chunks(b, func(first, n uint64) error {
		// Page first+j goes to stage slot j; slots of one stripe are
		// consecutive in the stage so each stripe gets one write.
		counts := make([]int, l.Stripes)
		for j := uint64(0); j < n; j++ {
			s, _ := l.stripe(first + j)
			dst := io.stage[(s*spillStagePages+counts[s])*PageSize:][:PageSize]
			counts[s]++
			node := (first + j - uint64(b)*l.PagesPerBlock()) * rpp
			src := block[node*rec : min(node+rpp, l.NodesPerBlock)*rec]
			copy(dst, src)
			clear(dst[len(src):])
		}
		for s := range l.Stripes {
			if counts[s] == 0 {
				continue
			}
			off := l.firstInStripe(first, s)
			buf := io.stage[s*spillStagePages*PageSize:][:counts[s]*PageSize]
			if err := sf.pwrite(s, buf, off); err != nil {
				return err
			}
		}
		return nil
	})
}

// read reads block b from sf into block (its DRAM bytes, node-major).
func (io *blockIO) read(sf *spillFiles, b int, block []byte) error {
	l := io.layout
	if io.stage == nil {
		_, off := l.stripe(uint64(b) * l.PagesPerBlock())
		return sf.pread(0, block, off)
	}
	rec, rpp := l.RecordSize(), l.RecordsPerPage()
	return io.chunks(b, func(first, n uint64) error {
		counts := make([]int, l.Stripes)
		for j := uint64(0); j < n; j++ {
			s, _ := l.stripe(first + j)
			counts[s]++
		}
		for s := range l.Stripes {
			if counts[s] == 0 {
				continue
			}
			off := l.firstInStripe(first, s)
			if err := sf.pread(s, io.stage[s*spillStagePages*PageSize:][:counts[s]*PageSize], off); err != nil {
				return err
			}
		}
		clear(counts)
		for j := uint64(0); j < n; j++ {
			s, _ := l.stripe(first + j)
			src := io.stage[(s*spillStagePages+counts[s])*PageSize:][:PageSize]
			counts[s]++
			node := (first + j - uint64(b)*l.PagesPerBlock()) * rpp
			dst := block[node*rec : min(node+rpp, l.NodesPerBlock)*rec]
			copy(dst, src)
		}
		return nil
	})
}

func (sf *spillFiles) pwrite(s int, buf []byte, off int64) error {
	for len(buf) > 0 {
		n, err := unix.Pwrite(int(sf.files[s].Fd()), buf, off)
		if sf.faults.write != nil {
			n, err = sf.faults.write(sf.files[s].Name(), off, n, err)
		}
		if err == nil && n == 0 {
			err = fmt.Errorf("short write")
		}
		if err != nil {
			return fmt.Errorf("writing %s at %d: %w", sf.files[s].Name(), off, err)
		}
		buf, off = buf[n:], off+int64(n)
	}
	return nil
}

func (sf *spillFiles) pread(s int, buf []byte, off int64) error {
	for len(buf) > 0 {
		n, err := unix.Pread(int(sf.files[s].Fd()), buf, off)
		if sf.faults.read != nil {
			n, err = sf.faults.read(sf.files[s].Name(), off, n, err)
		}
		if err == nil && n == 0 {
			err = fmt.Errorf("short read")
		}
		if err != nil {
			return fmt.Errorf("reading %s at %d: %w", sf.files[s].Name(), off, err)
		}
		buf, off = buf[n:], off+int64(n)
	}
	return nil
}

// spillWriter writes a batch's finished blocks to the layer's spill files
// in order, off the hashing's goroutine, and acks each once it is on the
// device.
type spillWriter struct {
	io   *blockIO
	jobs chan spillWrite
	done chan struct{}
	err  error // set by the writer before done closes, or before an ack
	errc chan error
}

// spillWrite is block b for the spill files sf; a nil block is acked in
// its turn without being written.
type spillWrite struct {
	sf    *spillFiles
	b     int
	block []byte
	ack   func()
}

func newSpillWriter(io *blockIO, queue int) *spillWriter {
	w := &spillWriter{io: io, jobs: make(chan spillWrite, queue), done: make(chan struct{}), errc: make(chan error, 1)}
	go w.run()
	return w
}

func (w *spillWriter) run() {
	defer close(w.done)
	failed := false
	for j := range w.jobs {
		if !failed && j.block != nil {
			if err := w.io.write(j.sf, j.b, j.block); err != nil {
				failed = true
				w.errc <- fmt.Errorf("spill file for layer %d, block %d: %w", j.sf.layer, j.b, err)
			}
		}
		// Acked even after a failure, so that nothing waits forever; the
		// error stops the job before a demoted block is read.
		j.ack()
	}
}

// Err returns the writer's first error, if any (and keeps returning it).
func (w *spillWriter) Err() error {
	if w.err != nil {
		return w.err
	}
	select {
	case w.err = <-w.errc:
	default:
	}
	return w.err
}

func (w *spillWriter) close() {
	close(w.jobs)
	<-w.done
}
