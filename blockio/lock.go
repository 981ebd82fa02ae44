package blockio

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Locks are flock(2) locks: the kernel drops them when the process exits,
// however it exits, so a kill -9 never leaves a stale lock behind. They
// belong to an open file description, not to a process: two opens of one
// file in the same process exclude each other like two processes do. So
// a lock is taken once, where a seal starts, and handed down as a value
// (SectorLocks); nothing takes it a second time underneath.

// SectorLockFile is the lock file in a sector directory. It holds the pid
// of the process sealing the sector, for the message a second seal gives.
const SectorLockFile = ".pc1-tiered.lock"

// LockOptions say what to do when a lock is held by someone else.
type LockOptions struct {
	// Wait waits for the holder to finish instead of failing with a
	// *LockedError.
	Wait bool
	// OnWait, if set, is told once, in one line, what a call waits for
	// before it starts waiting (a sector with Wait, or a parent cache
	// being generated, which is always waited for).
	OnWait func(msg string)
}

// LockedError is the error for a sector directory another seal holds.
type LockedError struct {
	// Dir is the sector directory; Path its lock file.
	Dir, Path string
	// PID is the holder's process id, 0 when it could not be read.
	PID int
}

func (e *LockedError) Error() string {
	holder := "another process"
	if e.PID > 0 {
		holder = fmt.Sprintf("another process (pid %d)", e.PID)
	}
	return fmt.Sprintf("sector directory %s is being sealed by %s: its lock %s is held", e.Dir, holder, e.Path)
}

// lockPoll is how often a waiting lock retries. Waiting polls instead of
// blocking in flock so that the context can cancel it.
const lockPoll = 20 * time.Millisecond

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// tryFlock takes how (LOCK_EX or LOCK_SH) on f without blocking; it
// reports false when someone else holds a conflicting lock.
func tryFlock(f *os.File, how int) (bool, error) {
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		default:
			return false, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
	}
}

// sameFile reports whether f is still the file at its path: a lock file
// may be removed by its holder (Unlock), and a lock taken on a removed
// file excludes nobody.
func sameFile(f *os.File) bool {
	fst, err := f.Stat()
	if err != nil {
		return false
	}
	pst, err := os.Stat(f.Name())
	return err == nil && os.SameFile(fst, pst)
}

// SectorLock is one sector directory's exclusive lock.
type SectorLock struct {
	dir string
	f   *os.File
}

// LockSector takes dir's lock (dir must exist), writing this process's pid
// into it. When another process, or another seal in this one, holds it,
// it fails with a *LockedError, or with opt.Wait waits for it.
func LockSector(ctx context.Context, dir string, opt LockOptions) (*SectorLock, error) {
	dir = filepath.Clean(dir)
	path := filepath.Join(dir, SectorLockFile)
	told := false
	for {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("sector directory %s: lock: %w", dir, err)
		}
		ok, err := tryFlock(f, unix.LOCK_EX)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("sector directory %s: %w", dir, err)
		}
		if ok && sameFile(f) {
			l := &SectorLock{dir: dir, f: f}
			if err := l.writePID(); err != nil {
				l.Unlock()
				return nil, err
			}
			return l, nil
		}
		if ok {
			// Locked a file its holder removed on its way out: try the
			// path again.
			f.Close()
			continue
		}
		locked := &LockedError{Dir: dir, Path: path, PID: readPID(f)}
		f.Close()
		if !opt.Wait {
			return nil, locked
		}
		if !told && opt.OnWait != nil {
			opt.OnWait(locked.Error() + "; waiting for it")
		}
		told = true
		if err := sleepCtx(ctx, lockPoll); err != nil {
			return nil, err
		}
	}
}

func (l *SectorLock) writePID() error {
	pid := strconv.Itoa(os.Getpid()) + "\n"
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("sector directory %s: lock: %w", l.dir, err)
	}
	if _, err := l.f.WriteAt([]byte(pid), 0); err != nil {
		return fmt.Errorf("sector directory %s: lock: %w", l.dir, err)
	}
	return nil
}

// readPID reads the pid a lock's holder wrote, 0 if there is none yet.
func readPID(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Dir is the locked sector directory.
func (l *SectorLock) Dir() string { return l.dir }

// Unlock removes the lock file and releases the lock. The file goes while
// the lock is still held, so a process that opened it meanwhile finds it
// gone once it gets the lock (sameFile) and tries again: nothing is left
// in the directory, and no two processes ever hold the directory at once.
func (l *SectorLock) Unlock() {
	if l == nil || l.f == nil {
		return
	}
	if sameFile(l.f) {
		os.Remove(l.f.Name())
	}
	l.f.Close()
	l.f = nil
}

// SectorLocks are the locks of one seal's sector directories, taken
// together where the seal starts and handed down to whatever writes into
// the directories, so that nothing underneath locks a directory twice.
type SectorLocks struct {
	locks []*SectorLock
}

// LockSectors locks every directory in dirs, or none: on an error the
// locks already taken are released. It locks them in one order (sorted),
// whatever the order of dirs, so that two batches waiting for each
// other's sectors cannot deadlock.
func LockSectors(ctx context.Context, dirs []string, opt LockOptions) (*SectorLocks, error) {
	s := &SectorLocks{}
	sorted := make([]string, len(dirs))
	for i, d := range dirs {
		sorted[i] = filepath.Clean(d)
	}
	slices.Sort(sorted)
	for _, d := range slices.Compact(sorted) {
		l, err := LockSector(ctx, d, opt)
		if err != nil {
			s.Unlock()
			return nil, err
		}
		s.locks = append(s.locks, l)
	}
	return s, nil
}

// Holds reports whether the set holds dir's lock.
func (s *SectorLocks) Holds(dir string) bool {
	if s == nil {
		return false
	}
	dir = filepath.Clean(dir)
	return slices.ContainsFunc(s.locks, func(l *SectorLock) bool { return l.f != nil && l.dir == dir })
}

// Unlock releases every lock of the set. A nil set is fine.
func (s *SectorLocks) Unlock() {
	if s == nil {
		return
	}
	for _, l := range slices.Backward(s.locks) {
		l.Unlock()
	}
	s.locks = nil
}
