package blockio

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// A progress log sits next to a partial layer file and says which of its
// byte ranges reached the disk: one fixed-size record per write, appended
// and synced only after the write itself was synced. A record is the
// range's offset and length (little-endian u64s), the CRC-32C of its bytes
// and the CRC-32C of those 20 bytes, so a torn or garbled record (a power
// cut mid-append) ends the log instead of being believed. Resuming trusts a
// range only if the partial file still holds bytes with its CRC.
const progressRecordSize = 24

type progressLog struct {
	path string
	f    *os.File
	io   fileIO
	rec  [progressRecordSize]byte
}

func crcTable() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

func createProgressLog(path string, io fileIO) (*progressLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating progress log: %w", err)
	}
	return &progressLog{path: path, f: f, io: io}, nil
}

func (p *progressLog) append(off, n int64, sum uint32) error {
	binary.LittleEndian.PutUint64(p.rec[0:], uint64(off))
	binary.LittleEndian.PutUint64(p.rec[8:], uint64(n))
	binary.LittleEndian.PutUint32(p.rec[16:], sum)
	binary.LittleEndian.PutUint32(p.rec[20:], crc32.Checksum(p.rec[:20], crcTable()))
	if _, err := p.io.appendTo(p.f, p.rec[:]); err != nil {
		return fmt.Errorf("logging progress in %s: %w", p.path, err)
	}
	if err := p.io.fdatasync(p.f); err != nil {
		return fmt.Errorf("syncing %s: %w", p.path, err)
	}
	return nil
}

func (p *progressLog) close() error {
	if p.f == nil {
		return nil
	}
	err := p.f.Close()
	p.f = nil
	return err
}

type progressRecord struct {
	off, n int64
	sum    uint32
}

// readProgressLog returns the log's intact records, up to the first torn or
// garbled one.
func readProgressLog(path string, size int64) ([]progressRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var recs []progressRecord
	for len(data) >= progressRecordSize {
		r := data[:progressRecordSize]
		if binary.LittleEndian.Uint32(r[20:]) != crc32.Checksum(r[:20], crcTable()) {
			break
		}
		rec := progressRecord{
			off: int64(binary.LittleEndian.Uint64(r[0:])),
			n:   int64(binary.LittleEndian.Uint64(r[8:])),
			sum: binary.LittleEndian.Uint32(r[16:]),
		}
		if rec.off < 0 || rec.n <= 0 || rec.off > size-rec.n {
			break
		}
		recs = append(recs, rec)
		data = data[progressRecordSize:]
	}
	return recs, nil
}

// ResumeLayerFile reopens layer (from 1) of the sector in dir where an
// earlier run left it: a partial file and its progress log. It returns the
// file, ready for writes after its durable prefix, and that prefix's length
// in bytes: the longest run of logged writes from offset 0 whose bytes
// still match their checksums, rounded down to a multiple of align (the
// caller's block size, which may differ from the earlier run's). With no
// partial file, or one that is not the right size, it starts the layer
// afresh (CreateLayerFile) and returns 0; a committed layer is never
// reopened.
func ResumeLayerFile(dir string, layer int, size uint64, align int64, opts ...FileOption) (*LayerFile, int64, error) {
	d := SectorDir(dir)
	final, tmp := d.Layer(layer), d.PartialLayer(layer)
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		l, err := CreateLayerFile(dir, layer, size, opts...)
		return l, 0, err
	}
	if err != nil {
		return nil, 0, fmt.Errorf("resuming layer file: %w", err)
	}
	st, err := f.Stat()
	if err != nil || st.Size() != int64(size) {
		f.Close()
		l, err := CreateLayerFile(dir, layer, size, opts...)
		return l, 0, err
	}
	logPath := d.ProgressLog(layer)
	recs, err := readProgressLog(logPath, int64(size))
	if err != nil {
		f.Close()
		l, err := CreateLayerFile(dir, layer, size, opts...)
		return l, 0, err
	}
	durable, sum, err := verifiedPrefix(f, recs)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("resuming %s: %w", tmp, err)
	}
	if align > 0 && durable%align != 0 {
		durable -= durable % align
		if sum, err = fileChecksum(f, durable); err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("resuming: %w", err)
		}
	}
	// The log starts over as one record for the durable prefix: what it
	// said beyond that is about to be rewritten.
	log, err := createProgressLog(logPath, newFileIO(opts))
	if err == nil && durable > 0 {
		err = log.append(0, durable, sum)
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("resuming layer file: %w", err)
	}
	l := &LayerFile{final: final, tmp: tmp, f: f, size: int64(size), progress: log, io: newFileIO(opts), sum: sum, sumEnd: durable}
	l.start()
	return l, durable, nil
}

// verifiedPrefix checks the logged ranges in offset order and returns how
// far from offset 0 they run without a gap or a mismatch, and the CRC-32C
// of that prefix.
func verifiedPrefix(f *os.File, recs []progressRecord) (int64, uint32, error) {
	slices.SortStableFunc(recs, func(a, b progressRecord) int { return cmp.Compare(a.off, b.off) })
	var end int64
	var sum uint32
	var buf []byte
	for _, r := range recs {
		if r.off < end {
			continue // rewritten range: its first write already counted
		}
		if r.off > end {
			break
		}
		if int64(cap(buf)) < r.n {
			buf = make([]byte, r.n)
		}
		b := buf[:r.n]
		if _, err := f.ReadAt(b, r.off); err != nil {
			return 0, 0, fmt.Errorf("reading %d bytes at offset %d: %w", r.n, r.off, err)
		}
		if crc32.Checksum(b, crcTable()) != r.sum {
			break
		}
		sum = crc32.Update(sum, crcTable(), b)
		end += r.n
	}
	// The check read the prefix through the page cache; it is not needed
	// there.
	_ = unix.Fadvise(int(f.Fd()), 0, end, unix.FADV_DONTNEED)
	return end, sum, nil
}

// fileChecksum is the CRC-32C of f's first size bytes, read without
// leaving them in the page cache: with O_DIRECT where the file system
// allows it (directChecksum), else through the page cache, dropping each
// chunk once summed.
func fileChecksum(f *os.File, size int64) (uint32, error) {
	if sum, ok, err := directChecksum(f, size); ok {
		return sum, err
	}
	buf := make([]byte, min(size, dropChunk))
	// Each chunk is dropped once summed; read-ahead past it would stay
	// cached.
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM)
	defer unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_NORMAL)
	var sum uint32
	for off := int64(0); off < size; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), size-off)]
		if _, err := f.ReadAt(b, off); err != nil {
			return 0, fmt.Errorf("checksumming %s at offset %d: %w", f.Name(), off, err)
		}
		sum = crc32.Update(sum, crcTable(), b)
		_ = unix.Fadvise(int(f.Fd()), off, int64(len(b)), unix.FADV_DONTNEED)
	}
	return sum, nil
}

// directChunk is how much directChecksum reads at a time.
const directChunk = 1 << 20

// directChecksum is fileChecksum through a second descriptor of f's file
// opened with O_DIRECT (/proc/self/fd names the open file itself, not
// whatever now has its name). The bytes then come from the device, the
// kernel copies nothing into the page cache and has nothing to drop: a
// commit's read-back of 64 files of 64 MiB, 8 at once, measured 1.0-1.3 s
// of CPU against 2.2-2.6 s through the page cache, in 2.5-3.1 s against
// 3.1-3.3 s. ok is false where the file system refuses O_DIRECT (tmpfs
// before Linux 6.6, some FUSE) or /proc is not mounted: nothing was read.
func directChecksum(f *os.File, size int64) (sum uint32, ok bool, err error) {
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, false, nil
	}
	defer unix.Close(fd)
	// O_DIRECT wants a page-aligned buffer: mmap gives one.
	n := int(min(directChunk, (size+4095)&^4095))
	if n == 0 {
		return 0, true, nil
	}
	buf, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return 0, false, nil
	}
	defer unix.Munmap(buf)
	for off := int64(0); off < size; {
		// Lengths stay aligned; the file's unaligned tail comes back as a
		// short read at its end.
		got, err := unix.Pread(fd, buf, off)
		if err == unix.EINTR {
			continue
		}
		if errors.Is(err, unix.EINVAL) && off == 0 {
			return 0, false, nil // O_DIRECT accepted at open, refused at read
		}
		if err != nil {
			return 0, true, fmt.Errorf("checksumming %s at offset %d: %w", f.Name(), off, err)
		}
		if got == 0 {
			return 0, true, fmt.Errorf("checksumming %s at offset %d: the file ends there, %d bytes short", f.Name(), off, size-off)
		}
		use := min(int64(got), size-off)
		sum = crc32.Update(sum, crcTable(), buf[:use])
		off += use
	}
	return sum, true, nil
}

// LayerChecksum is the CRC-32C of a committed layer file, as Commit
// reported it: resuming checks a committed layer against the one recorded
// when it was committed.
func LayerChecksum(dir string, layer int, size uint64) (uint32, error) {
	path := SectorDir(dir).Layer(layer)
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("layer file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("layer file %s: %w", path, err)
	}
	if st.Size() != int64(size) {
		return 0, fmt.Errorf("layer file %s is %d bytes, want %d", path, st.Size(), size)
	}
	return fileChecksum(f, int64(size))
}

// RemovePartialLayers removes the partial layer files and progress logs
// in dir: a sector restarted from scratch must not resume from them.
func RemovePartialLayers(dir string) error {
	files, err := SectorDir(dir).partialFiles()
	if err != nil {
		return err
	}
	for _, p := range files {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("removing %s: %w", p, err)
		}
	}
	return nil
}

// ReadAt reads back p from off of the partial file (a resumed layer's
// durable prefix), leaving nothing of it in the page cache.
func (l *LayerFile) ReadAt(p []byte, off int64) error {
	if _, err := l.f.ReadAt(p, off); err != nil {
		return fmt.Errorf("reading %d bytes at offset %d of %s: %w", len(p), off, l.tmp, err)
	}
	_ = unix.Fadvise(int(l.f.Fd()), off, int64(len(p)), unix.FADV_DONTNEED)
	return nil
}
