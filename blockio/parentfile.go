package blockio

import (
	"context"
	"crypto/sha256"
	"io"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// DefaultParentCacheDir is where rust-fil-proofs keeps parent caches:
// $FIL_PROOFS_PARENT_CACHE, else /var/tmp/filecoin-parents. Sharing the
// directory lets either program reuse the other's caches.
func DefaultParentCacheDir(getenv func(string) string) string {
	if d := getenv("FIL_PROOFS_PARENT_CACHE"); d != "" {
		return d
	}
	return "/var/tmp/filecoin-parents"
}

// VerifyMode says when EnsureParentCache hashes an existing cache file.
type VerifyMode int

const (
	// VerifyAuto checks an existing file against the embedded manifest when
	// the manifest knows it, and trusts other (non-production) caches.
	VerifyAuto VerifyMode = iota
	// VerifyAlways also checks caches the manifest does not know, by
	// recomputing the parents and comparing digests.
	VerifyAlways
	// VerifyNever trusts an existing file of the right size.
	VerifyNever
)

// ParentCacheOptions tune EnsureParentCache.
type ParentCacheOptions struct {
	Verify VerifyMode
	// Regenerate replaces a cache file that has the wrong size or digest
	// instead of failing.
	Regenerate bool
	// Workers is how many goroutines generate parents; 0 means GOMAXPROCS.
	Workers int
	// OnWait, if set, is told once, in one line, when the call waits for
	// another process generating (or replacing) the cache.
	OnWait func(msg string)
	// OnGenerate, if set, follows a generation this call does itself, so
	// that a command can say it is generating a cache (hours for a 32 GiB
	// one on a small machine) and how far it is. It is called once with
	// done 0 when the generation starts (the file is created and locked,
	// no parent written yet: the caller's cue for a one-line notice),
	// then after every chunk of 64 Ki nodes written, and last with done
	// == total once the file is complete and durable. done only grows;
	// total is the graph's node count. It is called from one goroutine,
	// never concurrently, and the generation waits for it, so it should
	// return quickly. It is not called when the cache is found, nor while
	// another process generates it (OnWait is told that); a generation
	// that fails or is cancelled stops short of total.
	OnGenerate func(done, total uint64)
	// Faults, if set, sees the generation's writes and syncs (faultfs.go).
	Faults Injector
}

// ParentCacheInfo describes the cache file EnsureParentCache settled on.
type ParentCacheInfo struct {
	Path       string
	SHA256     [32]byte // zero unless the file was hashed
	Nodes      uint64
	SectorSize uint64
	// Verified is true when the file's digest was checked: against the
	// manifest, or against recomputed parents.
	Verified bool
	// InManifest is true for production caches the manifest knows.
	InManifest bool
	// Generated is true when this call wrote the file.
	Generated bool
}

// parentChunkNodes is how many nodes one generation task covers (3.5 MiB).
const parentGenChunkNodes = 64 << 10

// EnsureParentCache returns g's parent cache in dir, generating it when it
// is missing. An existing file of the wrong size, or whose digest does not
// match, is an error naming the file unless opt.Regenerate is set. It
// takes and releases the cache's locks (AcquireParentCache): a caller that
// goes on to read the file should hold them with AcquireParentCache.
func EnsureParentCache(ctx context.Context, g *sdr.Graph, dir string, opt ParentCacheOptions) (ParentCacheInfo, error) {
	pc, err := AcquireParentCache(ctx, g, dir, opt)
	if err != nil {
		return ParentCacheInfo{Path: filepath.Join(dir, sdr.ParentCacheFileName(g))}, err
	}
	defer pc.Close()
	return pc.Info, nil
}

// parentDigest generates g's parents on several goroutines, writes them in
// node order to w (nil: only hash them) and returns their SHA-256. At most
// two chunks per worker are in memory at once, whatever the sector size.
// progress, if set, is told after each chunk is written how many nodes
// are: one call per 64 Ki nodes, from this goroutine, costs nothing next
// to hashing and writing 3.5 MiB.
func parentDigest(ctx context.Context, g *sdr.Graph, w io.Writer, workers int, progress func(done uint64)) ([32]byte, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	type chunk struct {
		first, nodes uint64
		buf          []byte
		done         chan struct{}
	}
	inflight := 2 * workers
	free := make(chan []byte, inflight)
	for range inflight {
		free <- make([]byte, parentGenChunkNodes*sdr.ParentCacheBytesPerNode)
	}
	work := make(chan *chunk)
	ordered := make(chan *chunk, inflight)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c := range work {
				sdr.GenerateParents(g, c.first, c.buf)
				close(c.done)
			}
		})
	}
	// The producer hands chunks out in node order, both to the workers and
	// to the writer below, which consumes them in that same order.
	wg.Go(func() {
		defer close(work)
		defer close(ordered)
		for first := uint64(0); first < g.Nodes(); first += parentGenChunkNodes {
			var buf []byte
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			n := min(parentGenChunkNodes, g.Nodes()-first)
			c := &chunk{first: first, nodes: n, buf: buf[:n*sdr.ParentCacheBytesPerNode], done: make(chan struct{})}
			ordered <- c
			select {
			case work <- c:
			case <-stop:
				close(c.done)
				return
			}
		}
	})
	defer func() {
		close(stop)
		for c := range ordered {
			<-c.done
		}
		wg.Wait()
	}()

	h := sha256.New()
	for c := range ordered {
		<-c.done
		if err := ctx.Err(); err != nil {
			return [32]byte{}, context.Cause(ctx)
		}
		h.Write(c.buf)
		if w != nil {
			if _, err := w.Write(c.buf); err != nil {
				return [32]byte{}, err
			}
		}
		free <- c.buf[:cap(c.buf)]
		if progress != nil {
			progress(c.first + c.nodes)
		}
	}
	var d [32]byte
	h.Sum(d[:0])
	return d, nil
}
