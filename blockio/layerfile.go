package blockio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"golang.org/x/sys/unix"
)

// partialSuffix marks a layer file still being written. PC2 and our own
// resume logic look only at final names, so a crash never leaves a short
// file that looks complete.
const partialSuffix = ".partial"

// LayerFile is one layer of one sector being written to
// DIR/sc-02-data-layer-<k>.dat. Its blocks are written, in any order, by a
// background goroutine (so the hashing goroutine never stalls in the
// kernel's dirty-page throttling); Commit makes it durable and gives it its
// final name.
type LayerFile struct {
	final, tmp string
	f          *os.File
	size       int64

	queue chan layerWrite
	done  chan struct{}

	// dropAfterWrite makes each write durable and drops it from the page
	// cache as soon as it is written (SetDropAfterWrite).
	dropAfterWrite bool

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
func CreateLayerFile(dir string, layer int, size uint64) (*LayerFile, error) {
	final := filepath.Join(dir, sdr.LayerFileName(layer))
	l := &LayerFile{final: final, tmp: final + partialSuffix, size: int64(size)}
	f, err := os.OpenFile(l.tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating layer file: %w", err)
	}
	if err := fallocate(f, l.size); err != nil {
		f.Close()
		os.Remove(l.tmp)
		return nil, err
	}
	l.f = f
	l.queue = make(chan layerWrite, 16)
	l.done = make(chan struct{})
	go l.writeLoop()
	return l, nil
}

// fallocate reserves size bytes for f. Filesystems without fallocate
// (EOPNOTSUPP) get a plain truncate: no reservation, but still correct.
func fallocate(f *os.File, size int64) error {
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

// SetDropAfterWrite makes the writer push each block to the device and
// drop it from the page cache right after writing it, before its ack: the
// spill tier then frees the block's DRAM knowing the bytes are on the
// device and nowhere in memory. Call it before the first WriteAsync.
func (l *LayerFile) SetDropAfterWrite() { l.dropAfterWrite = true }

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
// and drops from the page cache at a time with SetDropAfterWrite: the
// second copy a write leaves in the page cache is at most this big, not a
// whole block.
const dropChunk = 1 << 20

func (l *LayerFile) write(p []byte, off int64) {
	chunk := len(p)
	if l.dropAfterWrite {
		chunk = min(chunk, dropChunk)
	}
	for len(p) > 0 {
		n := min(chunk, len(p))
		if _, err := l.f.WriteAt(p[:n], off); err != nil {
			l.setErr(fmt.Errorf("writing %d bytes at offset %d of %s: %w", n, off, l.tmp, err))
			return
		}
		if l.dropAfterWrite {
			if err := writeBackAndDrop(l.f, off, int64(n)); err != nil {
				l.setErr(fmt.Errorf("writing back %d bytes at offset %d of %s: %w", n, off, l.tmp, err))
				return
			}
		}
		p, off = p[n:], off+int64(n)
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
// ack is called (ack may be nil) or the file is committed or aborted. It
// returns the first error a previous write met, so a failing disk stops the
// caller early.
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

// TempPath is the name the file has until Commit.
func (l *LayerFile) TempPath() string { return l.tmp }

// Path is the final name of the layer file.
func (l *LayerFile) Path() string { return l.final }

// Commit waits for queued writes, syncs the data, renames the file to its
// final name and syncs the directory so the name survives a power cut.
func (l *LayerFile) Commit() error {
	l.drain()
	if err := l.Err(); err != nil {
		l.abortFile()
		return err
	}
	if err := l.f.Sync(); err != nil {
		l.abortFile()
		return fmt.Errorf("syncing %s: %w", l.tmp, err)
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		os.Remove(l.tmp)
		return fmt.Errorf("closing %s: %w", l.tmp, err)
	}
	if err := os.Rename(l.tmp, l.final); err != nil {
		os.Remove(l.tmp)
		return fmt.Errorf("renaming %s to its final name: %w", l.tmp, err)
	}
	return SyncDir(filepath.Dir(l.final))
}

// Abort drops the partial file. It is safe after a failed Commit.
func (l *LayerFile) Abort() {
	l.drain()
	l.abortFile()
}

func (l *LayerFile) drain() {
	if l.queue != nil {
		close(l.queue)
		<-l.done
		l.queue = nil
	}
}

func (l *LayerFile) abortFile() {
	if l.f != nil {
		l.f.Close()
		os.Remove(l.tmp)
		l.f = nil
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
