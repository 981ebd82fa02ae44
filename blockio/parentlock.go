package blockio

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"golang.org/x/sys/unix"
)

// Parent caches are shared with rust-fil-proofs (a Lotus or Curio worker
// on the same machine uses the same directory), so they follow its
// locking, storage-proofs-porep's stacked/vanilla/cache.rs and
// storage-proofs-core's parameter_cache.rs: a cache is generated in place
// at its final path, created exclusively (O_EXCL) and held under an
// exclusive flock (fs2's lock_exclusive) while its full length is set and
// its parents are written; it is read under a shared flock
// (lock_shared), held as long as the file is used. A file whose exclusive
// lock is held is being written, whatever its size, and no reader may
// use it until the lock goes. Both programs lock the same inode, the file
// at the cache's path, so each waits for the other's generation.
//
// Two differences, neither visible to rust-fil-proofs: pc1-tiered creates
// and locks the file under a temporary name and hard-links it into place,
// so the cache's name never points at a file nobody has locked yet (the
// reference has a moment between its create and its lock, which readers
// here wait out: an empty file is looked at again); and while it
// generates, a marker file next to the cache (generatingSuffix) says so,
// so that a generation cut short by a crash (the file has its full length
// but not its parents) is regenerated instead of trusted.

// generatingSuffix names the marker of a cache pc1-tiered is generating.
const generatingSuffix = ".generating"

// emptyCacheRetries is how many times an empty cache file is looked at
// again (lockPoll apart) before it is taken for a broken one: the
// reference creates the file before it locks it.
const emptyCacheRetries = 100

// errCacheRaced says another process or goroutine created the cache first.
var errCacheRaced = errors.New("parent cache created concurrently")

// ParentCache is a parent cache file held under a shared lock, so that
// nobody regenerates it while it is read. Close releases it.
type ParentCache struct {
	Info ParentCacheInfo
	f    *os.File
}

// Close releases the shared lock.
func (p *ParentCache) Close() error {
	if p == nil || p.f == nil {
		return nil
	}
	err := p.f.Close()
	p.f = nil
	return err
}

// AcquireParentCache is EnsureParentCache that keeps the cache locked for
// reading until Close: callers hold it for as long as they label from it.
// When another process (pc1-tiered or rust-fil-proofs), or another
// goroutine, is generating the cache, it waits for that generation and
// uses its result, telling opt.OnWait; a generation of its own it tells
// opt.OnGenerate.
func AcquireParentCache(ctx context.Context, g *sdr.Graph, dir string, opt ParentCacheOptions) (*ParentCache, error) {
	name := sdr.ParentCacheName(g)
	entry, inManifest := sdr.ParentCacheManifest(name)
	info := ParentCacheInfo{
		Path:       filepath.Join(dir, sdr.ParentCacheFileName(g)),
		Nodes:      g.Nodes(),
		SectorSize: g.SectorSize(),
		InManifest: inManifest,
	}
	wantSize := int64(g.Nodes() * sdr.ParentCacheBytesPerNode)
	told := false
	wait := func() {
		if !told && opt.OnWait != nil {
			opt.OnWait(fmt.Sprintf("parent cache %s is being generated or replaced by another process; waiting for it", info.Path))
		}
		told = true
	}
	empties := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		f, err := os.Open(info.Path)
		if errors.Is(err, fs.ErrNotExist) {
			pc, err := createParentCache(ctx, g, info, entry, opt)
			if errors.Is(err, errCacheRaced) {
				continue
			}
			return pc, err
		}
		if err != nil {
			return nil, fmt.Errorf("parent cache %s: %w", info.Path, err)
		}
		if err := waitFlock(ctx, f, info.Path, unix.LOCK_SH, wait); err != nil {
			f.Close()
			return nil, err
		}
		if !sameFileAt(f, info.Path) {
			f.Close() // replaced while we waited: look again
			continue
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("parent cache %s: %w", info.Path, err)
		}
		_, markErr := os.Stat(info.Path + generatingSuffix)
		switch {
		case markErr == nil:
			// Locked, so nobody generates it now, yet marked: a generation
			// of ours was cut short. Its length says nothing.
			if err := discardParentCache(ctx, f, info.Path, wait); err != nil {
				return nil, err
			}
			continue
		case st.Size() == 0 && empties < emptyCacheRetries:
			// Possibly rust-fil-proofs between creating and locking it.
			f.Close()
			empties++
			wait()
			if err := sleepCtx(ctx, lockPoll); err != nil {
				return nil, err
			}
			continue
		case st.Size() != wantSize:
			if opt.Regenerate {
				if err := discardParentCache(ctx, f, info.Path, wait); err != nil {
					return nil, err
				}
				continue
			}
			f.Close()
			return nil, fmt.Errorf("parent cache %s is %d bytes, want %d for %d nodes; remove it or regenerate it (pc1-tiered parents --regenerate)",
				info.Path, st.Size(), wantSize, g.Nodes())
		}
		if opt.Verify == VerifyNever || (opt.Verify == VerifyAuto && !inManifest) {
			return &ParentCache{Info: info, f: f}, nil
		}
		got, err := hashOpenFile(ctx, f, info.Path)
		if err != nil {
			f.Close()
			return nil, err
		}
		want := entry.Digest
		if !inManifest {
			if want, err = parentDigest(ctx, g, nil, opt.Workers, nil); err != nil {
				f.Close()
				return nil, err
			}
		}
		if got != want {
			if opt.Regenerate {
				if err := discardParentCache(ctx, f, info.Path, wait); err != nil {
					return nil, err
				}
				continue
			}
			f.Close()
			return nil, fmt.Errorf("parent cache %s has sha256 %x, want %x; remove it or regenerate it (pc1-tiered parents --regenerate)", info.Path, got, want)
		}
		info.SHA256, info.Verified = got, true
		return &ParentCache{Info: info, f: f}, nil
	}
}

// createParentCache creates the cache, exclusively, and generates it in
// place under an exclusive lock; it returns it held under a shared one.
// errCacheRaced means someone else created it first: read theirs.
// opt.OnGenerate follows the generation (ParentCacheOptions).
func createParentCache(ctx context.Context, g *sdr.Graph, info ParentCacheInfo, entry sdr.ManifestEntry, opt ParentCacheOptions) (*ParentCache, error) {
	fio := fileIO{inj: opt.Faults}
	dir := filepath.Dir(info.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("parent cache dir %s: %w", dir, err)
	}
	f, err := createLocked(info.Path, int64(g.Nodes()*sdr.ParentCacheBytesPerNode), fio)
	if err != nil {
		return nil, err
	}
	marker := info.Path + generatingSuffix
	abandon := func(err error) (*ParentCache, error) {
		// Emptied before it goes, so that a reader already waiting on
		// this file finds it broken instead of taking zeros for parents.
		_ = f.Truncate(0)
		if sameFileAt(f, info.Path) {
			os.Remove(info.Path)
		}
		os.Remove(marker)
		f.Close()
		return nil, err
	}
	if err := os.WriteFile(marker, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return abandon(fmt.Errorf("parent cache %s: marking it as being generated: %w", info.Path, err))
	}
	if err := SyncDir(dir); err != nil {
		return abandon(fmt.Errorf("parent cache %s: %w", info.Path, err))
	}
	// Told only now that the file is ours: a raced or refused creation
	// above is not a generation.
	var progress func(uint64)
	if opt.OnGenerate != nil {
		total := g.Nodes()
		opt.OnGenerate(0, total)
		progress = func(done uint64) {
			// The last chunk's call waits until the file is durable
			// (below): done == total means a usable cache.
			if done < total {
				opt.OnGenerate(done, total)
			}
		}
	}
	digest, err := parentDigest(ctx, g, &offsetWriter{f: f, path: info.Path, io: fio}, opt.Workers, progress)
	if err != nil {
		return abandon(fmt.Errorf("parent cache %s: %w", info.Path, err))
	}
	if info.InManifest && digest != entry.Digest {
		return abandon(fmt.Errorf("parent cache %s: generated sha256 %x but the manifest says %x: this is a bug in pc1-tiered", info.Path, digest, entry.Digest))
	}
	if err := fio.fsync(f); err != nil {
		return abandon(fmt.Errorf("parent cache %s: syncing it: %w", info.Path, err))
	}
	// Complete and durable: only now may the marker go.
	if err := os.Remove(marker); err != nil {
		return abandon(fmt.Errorf("parent cache %s: %w", info.Path, err))
	}
	if err := SyncDir(dir); err != nil {
		return abandon(fmt.Errorf("parent cache %s: %w", info.Path, err))
	}
	// Downgrade to the readers' lock: waiting readers may start.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("parent cache %s: %w", info.Path, err)
	}
	if opt.OnGenerate != nil {
		opt.OnGenerate(g.Nodes(), g.Nodes())
	}
	info.SHA256, info.Generated = digest, true
	info.Verified = info.InManifest
	return &ParentCache{Info: info, f: f}, nil
}

// createLocked creates path exclusively with an exclusive lock already
// held and the cache's full length (size) set: under a temporary name,
// locked, then hard-linked to path, which fails if path exists
// (errCacheRaced). Where hard links are not supported it falls back to
// the reference's create-then-lock.
func createLocked(path string, size int64, fio fileIO) (*os.File, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("parent cache %s: creating it: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	fail := func(err error) (*os.File, error) {
		f.Close()
		return nil, fmt.Errorf("parent cache %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if ok, err := tryFlock(f, unix.LOCK_EX); err != nil || !ok {
		return fail(fmt.Errorf("locking a new file: %v", err))
	}
	// Full length first, as the reference does: a full disk fails here,
	// before the cache has its name.
	if err := fio.allocate(f, size); err != nil {
		return fail(err)
	}
	err = os.Link(tmp, path)
	switch {
	case errors.Is(err, fs.ErrExist):
		f.Close()
		return nil, errCacheRaced
	case err != nil:
		f.Close()
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			return nil, errCacheRaced
		}
		if err != nil {
			return nil, fmt.Errorf("parent cache %s: creating it: %w", path, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			return fail(err)
		}
		if err := fio.allocate(f, size); err != nil {
			return fail(err)
		}
	}
	return f, nil
}

// discardParentCache removes a broken cache file (held under a shared
// lock by f, which it closes) once it holds it exclusively: readers still
// using it finish first, and of several processes that found it broken
// only the first removes it; the others find the new one.
func discardParentCache(ctx context.Context, f *os.File, path string, wait func()) error {
	defer f.Close()
	// Converting the lock may drop the shared one first: that is fine,
	// the file is checked again once the exclusive one is held.
	if err := waitFlock(ctx, f, path, unix.LOCK_EX, wait); err != nil {
		return err
	}
	if !sameFileAt(f, path) {
		return nil
	}
	// Emptied before it goes, like an abandoned generation.
	if err := os.Truncate(path, 0); err != nil {
		return fmt.Errorf("parent cache %s: removing it: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("parent cache %s: removing it: %w", path, err)
	}
	if err := os.Remove(path + generatingSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("parent cache %s: %w", path, err)
	}
	return nil
}

// waitFlock takes how on f, calling wait once before it starts waiting.
func waitFlock(ctx context.Context, f *os.File, path string, how int, wait func()) error {
	for {
		ok, err := tryFlock(f, how)
		if err != nil {
			return fmt.Errorf("parent cache %s: %w", path, err)
		}
		if ok {
			return nil
		}
		wait()
		if err := sleepCtx(ctx, lockPoll); err != nil {
			return err
		}
	}
}

// sameFileAt reports whether f is the file at path.
func sameFileAt(f *os.File, path string) bool {
	fst, err := f.Stat()
	if err != nil {
		return false
	}
	pst, err := os.Stat(path)
	return err == nil && os.SameFile(fst, pst)
}

// offsetWriter writes sequentially from offset 0 with WriteAt, whatever
// f's own offset.
type offsetWriter struct {
	f    *os.File
	path string
	io   fileIO
	off  int64
}

func (w *offsetWriter) Write(p []byte) (int, error) {
	off := w.off
	n, err := w.io.writeAt(w.f, p, off)
	w.off += int64(n)
	if err != nil {
		return n, fmt.Errorf("writing %d bytes at offset %d of %s: %w", len(p), off, w.path, err)
	}
	return n, nil
}

// hashOpenFile is the SHA-256 of f, read through the descriptor that holds
// its lock.
func hashOpenFile(ctx context.Context, f *os.File, path string) ([32]byte, error) {
	var d [32]byte
	h := sha256.New()
	buf := make([]byte, 4<<20)
	for off := int64(0); ; {
		if err := ctx.Err(); err != nil {
			return d, context.Cause(ctx)
		}
		n, err := f.ReadAt(buf, off)
		h.Write(buf[:n])
		off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return d, fmt.Errorf("parent cache %s: %w", path, err)
		}
	}
	h.Sum(d[:0])
	return d, nil
}
