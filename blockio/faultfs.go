package blockio

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// The fault seam, in the spirit of pebble's vfs/errorfs: every write,
// sync, space reservation and checked read of a layer file, progress log,
// atomically written file (sector metadata, tree_d, reports) and parent
// cache goes through a fileIO, which asks an Injector, when one is given
// (WithFaults, ParentCacheOptions.Faults), whether and how far the
// operation succeeds. Tests inject EIO, ENOSPC, short writes and torn
// writes at chosen files and offsets, and simulate power loss by undoing
// the writes no sync made durable. Without an Injector the seam is the
// plain system call.

// OpKind is the kind of an I/O operation the seam sees.
type OpKind int

const (
	// OpWrite writes Len bytes at Off.
	OpWrite OpKind = iota + 1
	// OpSync makes the file's data durable (fdatasync or fsync).
	OpSync
	// OpAllocate reserves the file's Len bytes.
	OpAllocate
	// OpRename gives a file (Path) its final name (Target).
	OpRename
)

func (k OpKind) String() string {
	switch k {
	case OpWrite:
		return "write"
	case OpSync:
		return "sync"
	case OpAllocate:
		return "allocate"
	case OpRename:
		return "rename"
	}
	return fmt.Sprintf("OpKind(%d)", int(k))
}

// Op is one I/O operation, before it happens.
type Op struct {
	Kind OpKind
	// Path is the file's name as this process opened it.
	Path string
	// Target is a rename's new name.
	Target string
	Off    int64
	Len    int
}

// Injector decides the fate of each operation. For a write it returns
// how many of its first bytes reach the file (Len for all of them) and
// the error the write returns; a short count with a nil error is a short
// write, and a short count with an error a write torn by the failure.
// For other operations the count is ignored and a non-nil error fails the
// operation without doing it. Injectors are called from several
// goroutines at once.
type Injector interface {
	Inject(op Op) (int, error)
}

// FileOption tunes how a file is written.
type FileOption func(*fileIO)

// WithFaults routes a file's I/O through inj (nil: none).
func WithFaults(inj Injector) FileOption {
	return func(o *fileIO) { o.inj = inj }
}

// fileIO performs a file's I/O, through the Injector when there is one.
type fileIO struct {
	inj Injector
}

func newFileIO(opts []FileOption) fileIO {
	var o fileIO
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

func (o fileIO) writeAt(f *os.File, p []byte, off int64) (int, error) {
	if o.inj == nil {
		return f.WriteAt(p, off)
	}
	n, err := o.inj.Inject(Op{Kind: OpWrite, Path: f.Name(), Off: off, Len: len(p)})
	n = max(0, min(n, len(p)))
	if n < len(p) || err != nil {
		if n > 0 {
			if _, werr := f.WriteAt(p[:n], off); werr != nil {
				return 0, werr
			}
		}
		if err == nil {
			err = io.ErrShortWrite
		}
		return n, err
	}
	return f.WriteAt(p, off)
}

// appendTo writes p at the end of f (opened O_APPEND).
func (o fileIO) appendTo(f *os.File, p []byte) (int, error) {
	if o.inj == nil {
		return f.Write(p)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	n, err := o.inj.Inject(Op{Kind: OpWrite, Path: f.Name(), Off: st.Size(), Len: len(p)})
	n = max(0, min(n, len(p)))
	if n < len(p) || err != nil {
		if n > 0 {
			if _, werr := f.Write(p[:n]); werr != nil {
				return 0, werr
			}
		}
		if err == nil {
			err = io.ErrShortWrite
		}
		return n, err
	}
	return f.Write(p)
}

func (o fileIO) fdatasync(f *os.File) error {
	if o.inj != nil {
		if _, err := o.inj.Inject(Op{Kind: OpSync, Path: f.Name()}); err != nil {
			return err
		}
	}
	return unix.Fdatasync(int(f.Fd()))
}

func (o fileIO) fsync(f *os.File) error {
	if o.inj != nil {
		if _, err := o.inj.Inject(Op{Kind: OpSync, Path: f.Name()}); err != nil {
			return err
		}
	}
	return f.Sync()
}

func (o fileIO) allocate(f *os.File, size int64) error {
	if o.inj != nil {
		if _, err := o.inj.Inject(Op{Kind: OpAllocate, Path: f.Name(), Len: int(size)}); err != nil {
			if errors.Is(err, unix.ENOSPC) {
				return fmt.Errorf("reserving %d bytes for %s: no space left on device: %w", size, f.Name(), err)
			}
			return fmt.Errorf("reserving %d bytes for %s: %w", size, f.Name(), err)
		}
	}
	return Fallocate(f, size)
}

func (o fileIO) rename(from, to string) error {
	if o.inj != nil {
		if _, err := o.inj.Inject(Op{Kind: OpRename, Path: from, Target: to}); err != nil {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
		}
	}
	return os.Rename(from, to)
}
