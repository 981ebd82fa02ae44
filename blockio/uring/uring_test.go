package uring

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func newRing(t *testing.T, opts Options) *Ring {
	t.Helper()
	r, err := New(opts)
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("io_uring is not available here: %v", err)
	}
	require.NoError(t, err)
	return r
}

// TestRingReadsMatchPread reads random pages of a random file through the
// ring, with and without registered buffers and with more reads than ring
// entries (so Prepare must refuse some), and compares each with pread.
func TestRingReadsMatchPread(t *testing.T) {
	const page, pages = 4096, 64
	data := make([]byte, page*pages+100) // a short last page
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()

	for _, tc := range []struct {
		name    string
		entries int
		fixed   bool
		reads   int
	}{
		{"plain", 8, false, 8},
		{"fixed buffers", 8, true, 8},
		{"more reads than entries", 4, true, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			mem, err := unix.Mmap(-1, 0, tc.reads*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			require.NoError(t, err)
			defer unix.Munmap(mem)
			opts := Options{Entries: tc.entries}
			if tc.fixed {
				opts.Buffers = [][]byte{mem}
			}
			r := newRing(t, opts)
			defer func() { require.NoError(t, r.Close()) }()
			if tc.fixed {
				ok, err := r.FixedBuffers()
				require.True(t, ok, "registering buffers: %v", err)
			}

			reads := make([]Read, tc.reads)
			for i := range reads {
				pg := rng.IntN(pages + 1) // the last is the short page
				reads[i] = Read{Fd: int(f.Fd()), Buf: mem[i*page : (i+1)*page], Off: int64(pg * page), UserData: uint64(i)}
			}
			res := make([]int32, tc.reads)
			done := make([]bool, tc.reads)
			queued, reaped := 0, 0
			cs := make([]Completion, 16)
			for reaped < tc.reads {
				queued += r.Prepare(reads[queued:])
				_, err := r.Enter(1)
				require.NoError(t, err)
				n := r.Reap(cs)
				for _, c := range cs[:n] {
					require.False(t, done[c.UserData], "completion %d reaped twice", c.UserData)
					done[c.UserData], res[c.UserData] = true, c.Res
				}
				reaped += n
			}
			for i, rd := range reads {
				want := data[rd.Off:min(int(rd.Off)+page, len(data))]
				require.EqualValues(t, len(want), res[i], "read %d at %d", i, rd.Off)
				require.True(t, bytes.Equal(want, rd.Buf[:len(want)]), "read %d at %d differs", i, rd.Off)
			}
		})
	}
}

func TestRingReportsErrno(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(t, err)
	defer unix.Munmap(mem)
	r := newRing(t, Options{Entries: 2})
	defer r.Close()
	require.Equal(t, 1, r.Prepare([]Read{{Fd: 1 << 20, Buf: mem, UserData: 7}})) // no such descriptor
	_, err = r.Enter(1)
	require.NoError(t, err)
	cs := make([]Completion, 1)
	for r.Reap(cs) == 0 {
		_, err = r.Enter(1)
		require.NoError(t, err)
	}
	require.Equal(t, Completion{UserData: 7, Res: -int32(unix.EBADF)}, cs[0])
}
