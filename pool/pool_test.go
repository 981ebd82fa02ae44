package pool

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
)

func TestBounds(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		s           uint64
		n           int
		lo, def, hi uint64
	}{
		{s: 8 * mib, n: 1, lo: 16 * mib, def: 16 * mib, hi: 16 * mib},
		{s: 8 * mib, n: 2, lo: 24 * mib, def: 28 * mib, hi: 32 * mib},
		{s: 8 * mib, n: 4, lo: 40 * mib, def: 52 * mib, hi: 64 * mib},
		{s: 32 << 30, n: 3, lo: 128 << 30, def: 160 << 30, hi: 192 << 30},
	} {
		lo, def, hi := Bounds(tc.s, tc.n)
		require.Equal(t, []uint64{tc.lo, tc.def, tc.hi}, []uint64{lo, def, hi}, "S=%d N=%d", tc.s, tc.n)
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		blocks int
		err    string
	}{
		{name: "default", cfg: Config{SectorSize: 1 << 20, BlockSize: 1 << 18, Jobs: 4}, blocks: 26},
		{name: "min", cfg: Config{SectorSize: 1 << 20, BlockSize: 1 << 18, Jobs: 4, Size: 5 << 20}, blocks: 20},
		{name: "max", cfg: Config{SectorSize: 1 << 20, BlockSize: 1 << 18, Jobs: 4, Size: 8 << 20}, blocks: 32},
		{name: "rounded down to blocks", cfg: Config{SectorSize: 1 << 20, BlockSize: 1 << 18, Jobs: 4, Size: 6<<20 + 1000}, blocks: 24},
		{name: "too small", cfg: Config{SectorSize: 1 << 20, BlockSize: 1 << 18, Jobs: 4, Size: 5<<20 - 1}, err: "pool size 5.0 MiB is outside [5.0 MiB, 8.0 MiB] for 4 jobs of 1.0 MiB sectors"},
		{name: "too large", cfg: Config{SectorSize: 1 << 20, BlockSize: 1 << 18, Jobs: 4, Size: 9 << 20}, err: "outside [5.0 MiB, 8.0 MiB]"},
		{name: "no jobs", cfg: Config{SectorSize: 1 << 20, BlockSize: 1 << 18}, err: "0 jobs"},
		{name: "block does not divide", cfg: Config{SectorSize: 1 << 20, BlockSize: 3 << 10, Jobs: 1}, err: "must divide"},
		{name: "claim below the minimum", cfg: Config{SectorSize: 1 << 20, BlockSize: 1 << 18, Jobs: 4, Size: 2 << 20, Claim: 5}, blocks: 8},
		{name: "claim larger than pool", cfg: Config{SectorSize: 1 << 20, BlockSize: 1 << 18, Jobs: 4, Size: 1 << 20, Claim: 5}, err: "fewer than one job's claim of 5 blocks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.blocks, p.NumBlocks())
			require.NoError(t, p.Check())
		})
	}
}

func TestHoldsAll(t *testing.T) {
	const s, b = 1 << 20, 1 << 18 // 4 blocks a layer
	for _, tc := range []struct {
		name   string
		cfg    Config
		layers int
		want   bool
	}{
		{name: "max", cfg: Config{SectorSize: s, BlockSize: b, Jobs: 4, Size: 8 << 20}, layers: 11, want: true},
		{name: "one block short of max", cfg: Config{SectorSize: s, BlockSize: b, Jobs: 4, Size: 8<<20 - b}, layers: 11},
		{name: "default", cfg: Config{SectorSize: s, BlockSize: b, Jobs: 4}, layers: 2},
		{name: "min", cfg: Config{SectorSize: s, BlockSize: b, Jobs: 4, Size: 5 << 20}, layers: 2},
		{name: "default, one layer", cfg: Config{SectorSize: s, BlockSize: b, Jobs: 4}, layers: 1, want: true},
		{name: "min, one layer", cfg: Config{SectorSize: s, BlockSize: b, Jobs: 4, Size: 5 << 20}, layers: 1, want: true},
		{name: "one job, max", cfg: Config{SectorSize: s, BlockSize: b, Jobs: 1}, layers: 2, want: true},
		{name: "claims fit", cfg: Config{SectorSize: s, BlockSize: b, Jobs: 4, Size: 5 << 20, Claim: 5}, layers: 2, want: true},
		{name: "claims do not fit", cfg: Config{SectorSize: s, BlockSize: b, Jobs: 4, Size: 4 << 20, Claim: 5}, layers: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg)
			require.NoError(t, err)
			require.Equal(t, tc.want, p.HoldsAll(tc.layers))
		})
	}
}

func TestJoinAndRelease(t *testing.T) {
	p, err := New(Config{SectorSize: 4, BlockSize: 2, Jobs: 2})
	require.NoError(t, err)
	a, err := p.Join(3)
	require.NoError(t, err)
	b, err := p.Join(1)
	require.NoError(t, err)
	_, err = p.Join(1)
	require.ErrorContains(t, err, "2 jobs already joined")

	ctx := context.Background()
	x, err := a.Acquire(ctx)
	require.NoError(t, err)
	y, err := b.Acquire(ctx)
	require.NoError(t, err)
	require.NotEqual(t, x, y)
	require.ErrorContains(t, b.Release(x), "does not hold")
	require.ErrorContains(t, a.Release(x, x), "does not hold")
	require.ErrorContains(t, a.Release(BlockID(99)), "does not hold")
	require.NoError(t, p.Check())
	require.NoError(t, a.Release(x))
	require.Equal(t, 0, a.Held())

	// A one-layer job's claim is one layer.
	_, err = b.Acquire(ctx)
	require.NoError(t, err)
	_, err = b.Acquire(ctx)
	require.ErrorContains(t, err, "claim of 2 blocks")
	b.Leave()
	b.Leave()
	_, err = b.Acquire(ctx)
	require.ErrorContains(t, err, "after leave")
	require.Equal(t, 0, p.Stats().InUse)
	require.Equal(t, 2, p.Stats().PeakInUse)
	require.NoError(t, p.Check())
}

// TestReserveForClosestToDone walks the minimum pool for two jobs by hand:
// the job behind must wait while the block it asks for is the reserve the
// job ahead needs to finish its layer, and gets it when that job releases its
// expander layer.
func TestReserveForClosestToDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// K = 2 blocks per layer, N = 2, minimum pool = 6 blocks.
		p, err := New(Config{SectorSize: 2, BlockSize: 1, Jobs: 2, Size: 6})
		require.NoError(t, err)
		ctx := context.Background()
		a, _ := p.Join(4)
		b, _ := p.Join(4)
		acquire := func(j *Job, n int) []BlockID {
			var ids []BlockID
			for range n {
				id, err := j.Acquire(ctx)
				require.NoError(t, err)
				ids = append(ids, id)
			}
			return ids
		}
		aPrev := acquire(a, 2) // a finished layer 1
		acquire(b, 2)          // b finished layer 1
		acquire(a, 1)          // a is half-way through layer 2; 1 block free

		got := make(chan BlockID)
		go func() {
			id, err := b.Acquire(ctx)
			require.NoError(t, err)
			got <- id
		}()
		synctest.Wait()
		select {
		case <-got:
			t.Fatal("b was granted the block a needs to finish its layer")
		default:
		}
		acquire(a, 1) // a completes layer 2 with the reserved block
		synctest.Wait()
		select {
		case <-got:
			t.Fatal("b was granted a block while none was free")
		default:
		}
		require.NoError(t, a.Release(aPrev...))
		<-got
		require.NoError(t, p.Check())
		require.Equal(t, uint64(1), p.Stats().Waits)
	})
}

func TestWaiterWakesOnCancelAndClose(t *testing.T) {
	for _, tc := range []struct {
		name string
		wake func(p *Pool, cancel context.CancelFunc)
		want error
	}{
		{name: "cancel", wake: func(_ *Pool, cancel context.CancelFunc) { cancel() }, want: context.Canceled},
		{name: "close", wake: func(p *Pool, _ context.CancelFunc) { p.Close() }, want: ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// N = 2, K = 1: the minimum pool has 3 blocks; a holds its
				// claim of 2 and b one, so b's next Acquire must wait.
				p, err := New(Config{SectorSize: 1, BlockSize: 1, Jobs: 2, Size: 3})
				require.NoError(t, err)
				a, _ := p.Join(2)
				b, _ := p.Join(2)
				for _, j := range []*Job{a, a, b} {
					_, err := j.Acquire(context.Background())
					require.NoError(t, err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan error)
				go func() {
					_, err := b.Acquire(ctx)
					done <- err
				}()
				synctest.Wait()
				tc.wake(p, cancel)
				require.ErrorIs(t, <-done, tc.want)
				require.NoError(t, p.Check())
				b.Leave()
				a.Leave()
				require.Equal(t, 0, p.Stats().InUse)
			})
		})
	}
}
