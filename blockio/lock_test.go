package blockio

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestSectorLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	first, err := LockSector(ctx, dir, LockOptions{})
	require.NoError(t, err)

	// A second lock, even from this process, is refused, naming the
	// directory and the holder's pid.
	_, err = LockSector(ctx, dir, LockOptions{})
	var locked *LockedError
	require.ErrorAs(t, err, &locked)
	require.Equal(t, os.Getpid(), locked.PID)
	require.Equal(t, dir, locked.Dir)
	require.ErrorContains(t, err, dir)

	// With Wait it waits, says so once, and gets the lock when the first
	// holder lets go.
	waiting := make(chan string, 10)
	got := make(chan *SectorLock)
	go func() {
		l, err := LockSector(ctx, dir, LockOptions{Wait: true, OnWait: func(msg string) { waiting <- msg }})
		assert.NoError(t, err)
		got <- l
	}()
	msg := <-waiting
	require.Contains(t, msg, dir)
	require.Contains(t, msg, "waiting")
	first.Unlock()
	second := <-got
	require.Len(t, waiting, 0, "told once")
	require.FileExists(t, filepath.Join(dir, SectorLockFile))
	second.Unlock()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "the lock file goes with the lock")

	// A waiting lock ends with its context.
	held, err := LockSector(ctx, dir, LockOptions{})
	require.NoError(t, err)
	defer held.Unlock()
	cctx, cancel := context.WithCancel(ctx)
	_, err = LockSector(cctx, dir, LockOptions{Wait: true, OnWait: func(string) { cancel() }})
	require.ErrorIs(t, err, context.Canceled)
}

func TestSectorLocksAllOrNone(t *testing.T) {
	ctx := context.Background()
	a, b := t.TempDir(), t.TempDir()
	held, err := LockSector(ctx, b, LockOptions{})
	require.NoError(t, err)
	_, err = LockSectors(ctx, []string{a, b}, LockOptions{})
	require.ErrorAs(t, err, new(*LockedError))
	// a was released when b was refused.
	la, err := LockSector(ctx, a, LockOptions{})
	require.NoError(t, err)
	la.Unlock()
	held.Unlock()

	s, err := LockSectors(ctx, []string{a, b}, LockOptions{})
	require.NoError(t, err)
	require.True(t, s.Holds(a+"/"))
	require.False(t, s.Holds(t.TempDir()))
	s.Unlock()
	require.False(t, s.Holds(a))
	var none *SectorLocks
	require.False(t, none.Holds(a))
	none.Unlock()
}

// TestSectorLockAfterRemoval: a lock file removed by its holder while
// another opener waits must not let two holders in (the second finds the
// file it locked gone and locks the new one).
func TestSectorLockAfterRemoval(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, SectorLockFile)
	for range 20 {
		var holders, most atomic.Int32
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				l, err := LockSector(ctx, dir, LockOptions{Wait: true})
				if !assert.NoError(t, err) {
					return
				}
				n := holders.Add(1)
				if n > most.Load() {
					most.Store(n)
				}
				holders.Add(-1)
				l.Unlock()
			})
		}
		wg.Wait()
		require.Equal(t, int32(1), most.Load())
		require.NoFileExists(t, path)
	}
}

// TestParentCacheGeneratedOnce: goroutines asking for a cache nobody has
// generated yet wait for the one that generates it, and all use its file.
func TestParentCacheGeneratedOnce(t *testing.T) {
	ctx := context.Background()
	g := proofGraph(t, "StackedDrg8MiBV1_1")
	dir := t.TempDir()
	var generated, waited atomic.Int32
	var wg sync.WaitGroup
	caches := make([]*ParentCache, 4)
	for i := range caches {
		wg.Go(func() {
			pc, err := AcquireParentCache(ctx, g, dir, ParentCacheOptions{OnWait: func(string) { waited.Add(1) }})
			if !assert.NoError(t, err) {
				return
			}
			if pc.Info.Generated {
				generated.Add(1)
			}
			assert.True(t, pc.Info.Verified)
			caches[i] = pc
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), generated.Load())
	t.Logf("%d of 3 waited for the generation", waited.Load())
	for _, pc := range caches {
		require.NoError(t, pc.Close())
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "the cache and nothing else")
	info, err := EnsureParentCache(ctx, g, dir, ParentCacheOptions{Verify: VerifyAlways})
	require.NoError(t, err)
	require.True(t, info.Verified)
}

// referenceGenerator plays rust-fil-proofs' parent cache generation
// (cache.rs with parameter_cache.rs' LockedFile::open_exclusive, fs2 on
// Linux): create the final path exclusively, flock it exclusively, set
// its full length, write the parents, unlock. Each step runs when the
// test says, so the reader is caught at each.
type referenceGenerator struct {
	t    *testing.T
	path string
	f    *os.File
}

func (r *referenceGenerator) create() {
	f, err := os.OpenFile(r.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	require.NoError(r.t, err)
	r.f = f
}

func (r *referenceGenerator) lockAndSize(size int64) {
	require.NoError(r.t, unix.Flock(int(r.f.Fd()), unix.LOCK_EX))
	require.NoError(r.t, r.f.Truncate(size))
}

func (r *referenceGenerator) writeAndUnlock(data []byte) {
	_, err := r.f.WriteAt(data, 0)
	require.NoError(r.t, err)
	require.NoError(r.t, r.f.Close()) // fs2 unlocks on drop
}

// TestParentCacheWaitsForReference: a cache rust-fil-proofs is generating
// (locked, full length, parents not written yet; or created and not yet
// locked) is waited for, not read, and its result used; a reader holding
// the cache blocks the reference's own exclusive lock, as its shared lock
// would.
func TestParentCacheWaitsForReference(t *testing.T) {
	ctx := context.Background()
	g := proofGraph(t, "StackedDrg2KiBV1_1")
	want := encodeTable(sdr.ParentTable(g))
	for _, tc := range []struct {
		name string
		// before runs before the reader starts; during, when it says it
		// waits.
		before, during func(r *referenceGenerator)
	}{
		{name: "locked, full length, not written",
			before: func(r *referenceGenerator) { r.create(); r.lockAndSize(int64(len(want))) },
			during: func(r *referenceGenerator) { r.writeAndUnlock(want) }},
		{name: "created, not yet locked",
			before: func(r *referenceGenerator) { r.create() },
			during: func(r *referenceGenerator) { r.lockAndSize(int64(len(want))); r.writeAndUnlock(want) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r := &referenceGenerator{t: t, path: filepath.Join(dir, sdr.ParentCacheFileName(g))}
			tc.before(r)
			var once sync.Once
			pc, err := AcquireParentCache(ctx, g, dir, ParentCacheOptions{OnWait: func(msg string) {
				require.Contains(t, msg, r.path)
				once.Do(func() { tc.during(r) })
			}})
			require.NoError(t, err)
			require.False(t, pc.Info.Generated)
			require.True(t, pc.Info.Verified, "the reference's parents, read once it let go")
			// While pc holds the cache, the reference's exclusive lock
			// (taken to regenerate it) is refused.
			f, err := os.Open(r.path)
			require.NoError(t, err)
			require.ErrorIs(t, unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB), unix.EWOULDBLOCK)
			require.NoError(t, pc.Close())
			require.NoError(t, unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB))
			f.Close()
		})
	}
}

// TestParentCacheInterruptedGeneration: a cache of the right length whose
// generation marker is still there was cut short by a crash; it is
// regenerated, not trusted, even where nothing would hash it.
func TestParentCacheInterruptedGeneration(t *testing.T) {
	ctx := context.Background()
	g, err := sdr.NewGraph(4096, [32]byte{9}, sdr.APIVersion1_1)
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, sdr.ParentCacheFileName(g))
	require.NoError(t, os.WriteFile(path, make([]byte, g.Nodes()*sdr.ParentCacheBytesPerNode), 0o644))
	require.NoError(t, os.WriteFile(path+generatingSuffix, []byte("1\n"), 0o644))
	info, err := EnsureParentCache(ctx, g, dir, ParentCacheOptions{})
	require.NoError(t, err)
	require.True(t, info.Generated)
	require.NoFileExists(t, path+generatingSuffix)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, encodeTable(sdr.ParentTable(g)), got)
}

// TestSectorLocksNoDeadlock: two seals waiting for each other's sectors,
// named in opposite orders, both get through (the locks are taken in one
// order).
func TestSectorLocksNoDeadlock(t *testing.T) {
	ctx := context.Background()
	a, b := t.TempDir(), t.TempDir()
	var wg sync.WaitGroup
	for _, dirs := range [][]string{{a, b}, {b, a}} {
		wg.Go(func() {
			for range 50 {
				s, err := LockSectors(ctx, dirs, LockOptions{Wait: true})
				if !assert.NoError(t, err) {
					return
				}
				assert.True(t, s.Holds(a) && s.Holds(b))
				s.Unlock()
			}
		})
	}
	wg.Wait()
}
