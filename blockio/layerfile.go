package blockio

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// LayerFile is one layer of one sector being written to
// DIR/sc-02-data-layer-<k>.dat. Its blocks are written, in any order, by a
// background goroutine (so the hashing goroutine never stalls in the
// kernel's dirty-page throttling); each write is made durable, dropped
// from the page cache and logged in a progress file before it is acked, so
// a run killed at any point can resume from what reached the disk
// (ResumeLayerFile). Commit makes the file durable and gives it its final
// name.
type LayerFile struct {
	final, tmp string
	f          *os.File
	size       int64
	progress   *progressLog
	io         fileIO

	queue chan layerWrite
	done  chan struct{}

	// sum is the CRC-32C of the file's first sumEnd bytes, kept while the
	// writes come in order (the labeler's case); otherwise Commit reads
	// the file back to compute it.
	sum    uint32
	sumEnd int64

	// logAfter, if set, runs once in the writer before the first progress
	// record (LogAfter).
	logAfter func() error

	mu  sync.Mutex
	err error
}

type layerWrite struct {
	p   []byte
	off int64
	ack func()
}

// CreateLayerFile starts layer (from 1) of a sector whose cache directory is
// dir, preallocating size bytes so that a full disk fails here, cleanly,
// rather than halfway through the layer. A leftover partial file from an
// earlier run is replaced, never appended to.
func CreateLayerFile(dir string, layer int, size uint64, opts ...FileOption) (*LayerFile, error) {
	d := SectorDir(dir)
	l := &LayerFile{final: d.Layer(layer), tmp: d.PartialLayer(layer), size: int64(size), io: newFileIO(opts)}
	f, err := os.OpenFile(l.tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating layer file: %w", err)
	}
	if err := l.io.allocate(f, l.size); err != nil {
		f.Close()
		os.Remove(l.tmp)
		return nil, err
	}
	if l.progress, err = createProgressLog(d.ProgressLog(layer), l.io); err != nil {
		f.Close()
		os.Remove(l.tmp)
		return nil, err
	}
	l.f = f
	l.start()
	return l, nil
}

func (l *LayerFile) start() {
	l.queue = make(chan layerWrite, 16)
	l.done = make(chan struct{})
	go l.writeLoop()
}

// Fallocate reserves size bytes for f. Filesystems without fallocate
// (EOPNOTSUPP) get a plain truncate: no reservation, but still correct.
func Fallocate(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		err = f.Truncate(size)
	}
	if err != nil {
		if errors.Is(err, unix.ENOSPC) {
			return fmt.Errorf("reserving %d bytes for %s: no space left on device: %w", size, f.Name(), err)
		}
		return fmt.Errorf("reserving %d bytes for %s: %w", size, f.Name(), err)
	}
	return nil
}

func (l *LayerFile) writeLoop() {
	defer close(l.done)
	for w := range l.queue {
		if l.Err() == nil {
			l.write(w.p, w.off)
		}
		if w.ack != nil {
			w.ack()
		}
	}
}

// dropChunk is how much of a block the writer writes, pushes to the device
// and drops from the page cache at a time: the second copy a write leaves
// in the page cache is at most this big, not a whole block. Layer files
// are not read back while labeling (the spill tier reads them through the
// device), so caching them would only hold DRAM.
const dropChunk = 1 << 20

// write writes p at off, pushes it to the device and drops it from the
// page cache chunk by chunk, makes it durable and logs it.
func (l *LayerFile) write(p []byte, off int64) {
	for done := 0; done < len(p); {
		n := min(dropChunk, len(p)-done)
		o := off + int64(done)
		if _, err := l.io.writeAt(l.f, p[done:done+n], o); err != nil {
			l.setErr(fmt.Errorf("writing %d bytes at offset %d of %s: %w", n, o, l.tmp, err))
			return
		}
		if err := WriteBackAndDrop(l.f, o, int64(n)); err != nil {
			l.setErr(fmt.Errorf("writing back %d bytes at offset %d of %s: %w", n, o, l.tmp, err))
			return
		}
		done += n
	}
	// The data is on the device; fdatasync makes the extents it converted
	// durable too, before the progress log may say so.
	if err := l.io.fdatasync(l.f); err != nil {
		l.setErr(fmt.Errorf("syncing %s: %w", l.tmp, err))
		return
	}
	if l.logAfter != nil {
		err := l.logAfter()
		l.logAfter = nil
		if err != nil {
			l.setErr(fmt.Errorf("not logging the blocks of %s: %w", l.tmp, ErrPreviousNotCommitted))
			return
		}
	}
	sum := crc32.Checksum(p, crcTable())
	if err := l.progress.append(off, int64(len(p)), sum); err != nil {
		l.setErr(err)
		return
	}
	if off == l.sumEnd {
		l.sum = crc32.Update(l.sum, crcTable(), p)
		l.sumEnd += int64(len(p))
	}
}

func (l *LayerFile) setErr(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
}

// Err is the first write error, if any.
func (l *LayerFile) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// WriteAsync queues p to be written at off. p must stay unchanged until
// ack is called (ack may be nil) or the file is committed or aborted. By
// the ack, p is durable, logged and out of the page cache. It returns the
// first error a previous write met, so a failing disk stops the caller
// early.
func (l *LayerFile) WriteAsync(p []byte, off int64, ack func()) error {
	if err := l.Err(); err != nil {
		return err
	}
	if off < 0 || off+int64(len(p)) > l.size {
		return fmt.Errorf("write of %d bytes at offset %d is outside %s (%d bytes)", len(p), off, l.tmp, l.size)
	}
	l.queue <- layerWrite{p: p, off: off, ack: ack}
	return nil
}

// ErrPreviousNotCommitted is the error of a layer file whose LogAfter
// wait failed; the caller has the failure itself.
var ErrPreviousNotCommitted = errors.New("the layer before it was not committed")

// LogAfter makes the file's first progress record wait for wait, which
// the labeler passes the previous layer's commit: the blocks are written
// meanwhile, but none is logged as durable, and so none resumed from,
// until the layer before is committed. A run killed in between resumes at
// that commit, never in a layer whose predecessor has no final name. If
// wait fails, nothing is logged and the file fails. Call it before the
// first write.
func (l *LayerFile) LogAfter(wait func() error) { l.logAfter = wait }

// TempPath is the name the file has until Commit.
func (l *LayerFile) TempPath() string { return l.tmp }

// Path is the final name of the layer file.
func (l *LayerFile) Path() string { return l.final }

// Commit waits for queued writes, syncs the data, calls beforeRename (if
// not nil) with the CRC-32C of the whole file, then renames the file to
// its final name, removes its progress log and syncs the directory so the
// name survives a power cut. A crash before the rename leaves a partial
// file whose log says it is complete: resuming commits it.
func (l *LayerFile) Commit(beforeRename func(crc uint32) error) error {
	l.drain()
	if err := l.Err(); err != nil {
		l.Close()
		return err
	}
	if err := l.io.fsync(l.f); err != nil {
		l.Close()
		return fmt.Errorf("syncing %s: %w", l.tmp, err)
	}
	readBack := l.sumEnd != l.size
	if readBack {
		sum, err := fileChecksum(l.f, l.size)
		if err != nil {
			l.Close()
			return err
		}
		l.sum, l.sumEnd = sum, l.size
	}
	own, err := l.checkOwnFile(!readBack)
	if err != nil {
		l.Close()
		return err
	}
	if beforeRename != nil {
		if err := beforeRename(l.sum); err != nil {
			l.Close()
			return err
		}
	}
	err = errors.Join(l.f.Close(), l.progress.close())
	l.f = nil
	if err != nil {
		return fmt.Errorf("closing %s: %w", l.tmp, err)
	}
	if err := l.io.rename(l.tmp, l.final); err != nil {
		return fmt.Errorf("renaming %s to its final name: %w", l.tmp, err)
	}
	if err := checkCommitted(l.final, own); err != nil {
		return err
	}
	if err := os.Remove(l.progress.path); err != nil {
		return fmt.Errorf("removing %s: %w", l.progress.path, err)
	}
	return SyncDir(filepath.Dir(l.final))
}

// Close stops writing and closes the partial file, keeping it and its
// progress log so that a later run can resume from what reached the disk.
// It is safe after a failed Commit.
func (l *LayerFile) Close() {
	l.drain()
	if l.f != nil {
		l.f.Close()
		l.progress.close()
		l.f = nil
	}
}

// Abort stops writing and removes the partial file and its progress log.
func (l *LayerFile) Abort() {
	l.Close()
	os.Remove(l.tmp)
	os.Remove(l.progress.path)
}

func (l *LayerFile) drain() {
	if l.queue != nil {
		close(l.queue)
		<-l.done
		l.queue = nil
	}
}

// SyncDir fsyncs a directory so renames and creations in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory %s to sync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// WriteBackAndDrop makes [off, off+n) of f durable and drops it from the
// page cache: what leaves DRAM for the device really leaves it.
func WriteBackAndDrop(f *os.File, off, n int64) error {
	const flags = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	if err := unix.SyncFileRange(int(f.Fd()), off, n, flags); err != nil {
		return err
	}
	return unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}
