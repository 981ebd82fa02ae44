package tier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/blockio/uring"
)

// randomFile writes size random bytes under a fresh directory and returns
// its path and contents.
func randomFile(t *testing.T, size int, seed uint64) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	path := filepath.Join(t.TempDir(), "pages")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path, data
}

// directOK reports whether files under dir take O_DIRECT; where they do
// not (tmpfs before Linux 6.6, some FUSE) the tests read buffered, which
// exercises the same reader code.
func directOK(t *testing.T, path string) bool {
	t.Helper()
	var sfs unix.Statfs_t
	require.NoError(t, unix.Statfs(filepath.Dir(path), &sfs))
	if uint32(sfs.Type) == unix.TMPFS_MAGIC {
		t.Logf("%s is on tmpfs: reading without O_DIRECT", path)
		return false
	}
	f, err := blockio.OpenDirect(path)
	if err != nil {
		t.Logf("no O_DIRECT for %s (%v): reading buffered", path, err)
		return false
	}
	f.Close()
	return true
}

// engines are the engines every test runs; io_uring is skipped where the
// host forbids it, pread never.
var engines = []Engine{EngineURing, EnginePread}

func newTestReader(t *testing.T, path string, opts DeviceReaderOptions) (*DeviceReader, File) {
	t.Helper()
	opts.buffered = !directOK(t, path)
	r, err := NewDeviceReader(opts)
	if opts.Engine == EngineURing && errors.Is(err, uring.ErrUnavailable) {
		t.Skipf("io_uring unavailable here: %v", err)
	}
	require.NoError(t, err)
	require.Equal(t, opts.Engine, r.Engine())
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	f, err := r.Open(path)
	require.NoError(t, err)
	return r, f
}

// requireAllFree checks that once every page is released each buffer is
// back in the free list exactly once and no read is counted in flight.
func requireAllFree(t *testing.T, r *DeviceReader) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Zero(t, r.reading)
	require.Len(t, r.free, len(r.slots))
	seen := make(map[int32]bool)
	for _, i := range r.free {
		require.False(t, seen[i], "buffer %d free twice", i)
		seen[i] = true
	}
	for i, s := range r.slots {
		require.Equal(t, slotFree, s.state, "buffer %d", i)
		require.Zero(t, s.refs, "buffer %d", i)
	}
}

// TestDeviceReaderMatchesPread reads random pages (the short last page and
// pages past the end included) in batches and compares every one with a
// plain pread of the same offset.
func TestDeviceReaderMatchesPread(t *testing.T) {
	for _, eng := range engines {
		for _, tc := range []struct {
			pageSize, buffers, depth, batch int
		}{
			{pageSize: 4096, buffers: 64, depth: 16, batch: 32},
			{pageSize: 4096, buffers: 8, depth: 4, batch: 8},
			{pageSize: 8192, buffers: 16, depth: 8, batch: 5},
		} {
			t.Run(fmt.Sprintf("%v/page%d/buf%d/depth%d/batch%d", eng, tc.pageSize, tc.buffers, tc.depth, tc.batch), func(t *testing.T) {
				path, data := randomFile(t, 1<<20+100, uint64(tc.pageSize+tc.batch))
				r, f := newTestReader(t, path, DeviceReaderOptions{Engine: eng, PageSize: tc.pageSize, Buffers: tc.buffers, Depth: tc.depth})
				plain, err := os.Open(path)
				require.NoError(t, err)
				defer plain.Close()

				rng := rand.New(rand.NewPCG(3, uint64(tc.batch)))
				pagesInFile := (len(data) + 4095) / 4096
				want := make([]byte, tc.pageSize)
				reads := 0
				for range 20 {
					reqs := make([]PageRead, tc.batch)
					for i := range reqs {
						reqs[i] = PageRead{File: f, Off: int64(rng.IntN(pagesInFile+2)) * 4096}
					}
					pages := make([]Page, len(reqs))
					require.NoError(t, r.ReadBatch(context.Background(), reqs, pages))
					for i, p := range pages {
						got, err := r.Wait(p)
						require.NoError(t, err)
						n, err := unix.Pread(int(plain.Fd()), want, reqs[i].Off)
						require.NoError(t, err)
						require.Len(t, got, n, "read at %d", reqs[i].Off)
						require.True(t, bytes.Equal(want[:n], got), "read at %d differs from pread", reqs[i].Off)
						r.Release(p)
						reads++
					}
				}
				st := r.Stats()
				require.EqualValues(t, reads, st.Reads)
				require.Zero(t, st.Errors)
				require.LessOrEqual(t, st.PeakInFlight, tc.buffers)
				require.Equal(t, eng.String(), st.Engine)
				requireAllFree(t, r)
			})
		}
	}
}

// TestDeviceReaderFaults injects EIO and a short read through the fault
// seam: the error names file and offset and keeps the errno; the short
// read comes back short.
func TestDeviceReaderFaults(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.String(), func(t *testing.T) {
			path, data := randomFile(t, 64*4096, 11)
			const eioAt, shortAt, shortLen = 5 * 4096, 9 * 4096, 1000
			r, f := newTestReader(t, path, DeviceReaderOptions{Engine: eng, Depth: 4, Fault: func(_ string, off int64, n int, err error) (int, error) {
				switch off {
				case eioAt:
					return 0, unix.EIO
				case shortAt:
					return shortLen, err
				}
				return n, err
			}})
			reqs := []PageRead{{f, eioAt}, {f, shortAt}, {f, 0}}
			pages := make([]Page, len(reqs))
			require.NoError(t, r.ReadBatch(context.Background(), reqs, pages))

			_, err := r.Wait(pages[0])
			require.ErrorIs(t, err, unix.EIO)
			require.ErrorContains(t, err, fmt.Sprintf("%s at %d", path, eioAt))
			got, err := r.Wait(pages[1])
			require.NoError(t, err)
			require.Equal(t, data[shortAt:shortAt+shortLen], got)
			got, err = r.Wait(pages[2])
			require.NoError(t, err)
			require.Equal(t, data[:4096], got)
			for _, p := range pages {
				r.Release(p)
			}
			st := r.Stats()
			require.EqualValues(t, 1, st.Errors)
			require.EqualValues(t, 2, st.Reads)
			require.EqualValues(t, 4096+shortLen, st.Bytes)
			requireAllFree(t, r)
		})
	}
}

// TestDeviceReaderBackPressure runs more readers than the buffers and ring
// allow at once, some sharing pages: every read must finish, and a batch
// that cannot fit must fail or wait, never hang.
func TestDeviceReaderBackPressure(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.String(), func(t *testing.T) {
			path, data := randomFile(t, 256*4096, 13)
			r, f := newTestReader(t, path, DeviceReaderOptions{Engine: eng, Buffers: 6, Depth: 2, Reap: 2})

			const workers, rounds, batch = 4, 40, 3
			var wg sync.WaitGroup
			errs := make([]error, workers)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					reqs := make([]PageRead, batch)
					pages := make([]Page, batch)
					for range rounds {
						for i := range reqs {
							reqs[i] = PageRead{File: f, Off: int64(rng.IntN(256)) * 4096}
						}
						if errs[w] = r.ReadBatch(context.Background(), reqs, pages); errs[w] != nil {
							return
						}
						// A second user of the first page, as when two
						// nodes share a parent page.
						r.Retain(pages[0])
						for i, p := range pages {
							got, err := r.Wait(p)
							if err == nil && !bytes.Equal(got, data[reqs[i].Off:reqs[i].Off+4096]) {
								err = fmt.Errorf("page at %d differs", reqs[i].Off)
							}
							if err != nil {
								errs[w] = err
								return
							}
							r.Release(p)
						}
						r.Release(pages[0])
					}
				}()
			}
			wg.Wait()
			require.NoError(t, errors.Join(errs...))
			st := r.Stats()
			require.EqualValues(t, workers*rounds*batch, st.Reads)
			require.LessOrEqual(t, st.PeakInFlight, 6)
			requireAllFree(t, r)

			// Asking for more than there are buffers can never succeed.
			require.Error(t, r.ReadBatch(context.Background(), make([]PageRead, 7), make([]Page, 7)))
			// With every buffer held, a further read waits; a cancelled
			// context ends the wait.
			held := make([]Page, 6)
			require.NoError(t, r.ReadBatch(context.Background(), make([]PageRead, 6), held))
			for i := range held {
				_, err := r.Wait(held[i])
				require.NoError(t, err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			require.ErrorIs(t, r.ReadBatch(ctx, []PageRead{{f, 0}}, make([]Page, 1)), context.Canceled)
			for _, p := range held {
				r.Release(p)
			}
		})
	}
}

// TestDeviceReaderCloseInFlight closes a reader with every buffer being
// read and a caller blocked for a buffer: Close waits for the reads, the
// blocked caller gets ErrReaderClosed.
func TestDeviceReaderCloseInFlight(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.String(), func(t *testing.T) {
			path, _ := randomFile(t, 64*4096, 17)
			opts := DeviceReaderOptions{Engine: eng, Buffers: 16, Depth: 8, buffered: !directOK(t, path)}
			r, err := NewDeviceReader(opts)
			if eng == EngineURing && errors.Is(err, uring.ErrUnavailable) {
				t.Skipf("io_uring unavailable here: %v", err)
			}
			require.NoError(t, err)
			f, err := r.Open(path)
			require.NoError(t, err)
			reqs := make([]PageRead, 16)
			for i := range reqs {
				reqs[i] = PageRead{File: f, Off: int64(i) * 4096}
			}
			require.NoError(t, r.ReadBatch(context.Background(), reqs, make([]Page, 16)))
			blocked := make(chan error)
			go func() { blocked <- r.ReadBatch(context.Background(), reqs[:1], make([]Page, 1)) }()
			require.NoError(t, r.Close())
			require.ErrorIs(t, <-blocked, ErrReaderClosed)
			st := r.Stats()
			require.Zero(t, st.InFlight)
			require.EqualValues(t, 16, st.Reads+st.Errors)
			_, err = r.Open(path)
			require.ErrorIs(t, err, ErrReaderClosed)
		})
	}
}

// TestDeviceReaderMisuse: refcount mistakes panic rather than hand one
// caller another's bytes, and bad requests fail naming what is wrong.
func TestDeviceReaderMisuse(t *testing.T) {
	path, _ := randomFile(t, 8*4096, 19)
	r, f := newTestReader(t, path, DeviceReaderOptions{Engine: EnginePread, Buffers: 2, Depth: 1})
	pages := make([]Page, 1)
	require.NoError(t, r.ReadBatch(context.Background(), []PageRead{{f, 0}}, pages))
	_, err := r.Wait(pages[0])
	require.NoError(t, err)
	r.Release(pages[0])
	for name, use := range map[string]func(){
		"double release":    func() { r.Release(pages[0]) },
		"retain released":   func() { r.Retain(pages[0]) },
		"wait released":     func() { _, _ = r.Wait(pages[0]) },
		"page of no buffer": func() { r.Release(Page{slot: 99}) },
		"zero page":         func() { r.Release(Page{}) },
	} {
		require.Panics(t, use, name)
	}

	err = r.ReadBatch(context.Background(), []PageRead{{f, 100}}, pages)
	require.ErrorContains(t, err, fmt.Sprintf("%s at 100", path))
	require.Error(t, r.ReadBatch(context.Background(), []PageRead{{File{id: 5}, 0}}, pages))
	require.NoError(t, r.CloseFile(f))
	require.Error(t, r.ReadBatch(context.Background(), []PageRead{{f, 0}}, pages))
	requireAllFree(t, r)

	for _, bad := range []DeviceReaderOptions{{PageSize: 1000}, {Engine: Engine(9)}} {
		_, err := NewDeviceReader(bad)
		require.Error(t, err, "%+v", bad)
	}
}

func TestEngineString(t *testing.T) {
	for e, want := range map[Engine]string{EngineAuto: "auto", EngineURing: "io_uring", EnginePread: "pread", Engine(7): "Engine(7)"} {
		require.True(t, strings.EqualFold(want, e.String()), "%d: %s", int(e), e)
	}
}
