package pool

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzBytes hands out the fuzzer's bytes one at a time, zeros once they
// run out, so every input decodes to some run.
type fuzzBytes []byte

func (b *fuzzBytes) next() int {
	if len(*b) == 0 {
		return 0
	}
	v := (*b)[0]
	*b = (*b)[1:]
	return int(v)
}

// FuzzPoolOps decodes the input into a pool (N jobs, K blocks per layer, a
// block size, a size within the bounds or a spill claim) and a sequence of
// join, acquire, release, leave and close operations from one goroutine.
// Acquire is only asked to wait when the pool itself says it could not
// grant, and then with a context that is already cancelled, so no
// operation blocks. After every operation: no block has two owners, in-use
// never exceeds the pool, the pool's own invariants hold; at the end every
// block is back.
func FuzzPoolOps(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0})
	f.Add([]byte{1, 2, 0, 3, 1, 0, 0, 0, 1, 1, 1, 1, 0, 2, 0, 3, 1, 1, 5})
	f.Add([]byte{3, 3, 2, 255, 0, 0, 1, 0, 2, 1, 0, 1, 1, 1, 2, 2, 0, 3, 0, 1, 3, 4, 1, 0})
	f.Add([]byte{2, 1, 1, 7, 4, 2, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 1, 2, 9, 3, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzBytes(data)
		n := 1 + in.next()%4
		perLayer := 1 << (in.next() % 4)
		blockSize := uint64(1) << (in.next() % 3)
		sectorSize := uint64(perLayer) * blockSize
		cfg := Config{SectorSize: sectorSize, BlockSize: blockSize, Jobs: n}
		lo, _, hi := Bounds(sectorSize, n)
		sizeByte := in.next()
		if mode := in.next(); mode%4 == 0 {
			// A spill configuration: each job holds at most claim blocks.
			cfg.Claim = 1 + mode/4%(2*perLayer)
			cfg.Size = uint64(cfg.Claim+sizeByte%(n*cfg.Claim)) * blockSize
		} else if mode%4 == 1 {
			cfg.Size = 0 // the default
		} else {
			// Anywhere in the bounds, not always a whole number of blocks.
			cfg.Size = lo + uint64(sizeByte)*(hi-lo)/255
		}
		p, err := New(cfg)
		require.NoError(t, err, "%+v", cfg)
		blocks := p.NumBlocks()
		require.LessOrEqual(t, uint64(blocks)*blockSize, max(cfg.Size, hi))

		type job struct {
			j    *Job
			held []BlockID
			left bool
		}
		var jobs []*job
		owner := make([]*job, blocks) // the test's own record of who holds what
		joined := func() []*job {
			var out []*job
			for _, j := range jobs {
				if !j.left {
					out = append(out, j)
				}
			}
			return out
		}
		closed := false
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()

		for steps := 0; len(in) > 0 && steps < 512; steps++ {
			op, arg := in.next()%8, in.next()
			switch op {
			case 0, 1: // join
				j, err := p.Join(1 + arg%3)
				switch {
				case closed:
					require.ErrorIs(t, err, ErrClosed)
				case len(joined()) >= n:
					require.ErrorContains(t, err, "already joined")
				default:
					require.NoError(t, err)
					jobs = append(jobs, &job{j: j})
				}
			case 2, 3, 4: // acquire
				if len(jobs) == 0 {
					continue
				}
				jb := jobs[arg%len(jobs)]
				p.mu.Lock()
				canGrant := !p.closed && !jb.left && jb.j.held < jb.j.claim && p.grantable(jb.j)
				p.mu.Unlock()
				ctx := cancelled
				if canGrant {
					ctx = context.Background()
				}
				id, err := jb.j.Acquire(ctx)
				if !canGrant {
					require.Error(t, err)
					if !jb.left && !closed && jb.j.held < jb.j.claim {
						require.True(t, errors.Is(err, context.Canceled), "%v", err)
					}
					continue
				}
				require.NoError(t, err)
				require.True(t, id >= 0 && int(id) < blocks, "block %d of %d", id, blocks)
				require.Nil(t, owner[id], "block %d granted twice", id)
				owner[id] = jb
				jb.held = append(jb.held, id)
			case 5: // release some of a job's blocks, or one it does not hold
				if len(jobs) == 0 {
					continue
				}
				jb := jobs[arg%len(jobs)]
				if arg&0x80 != 0 || len(jb.held) == 0 {
					bad := BlockID(arg % (blocks + 2))
					if int(bad) < blocks && owner[bad] == jb {
						continue
					}
					before := p.Stats().InUse
					require.Error(t, jb.j.Release(bad))
					require.Equal(t, before, p.Stats().InUse, "a refused release changes nothing")
					continue
				}
				k := 1 + arg%len(jb.held)
				ids := jb.held[:k]
				require.NoError(t, jb.j.Release(ids...))
				for _, id := range ids {
					owner[id] = nil
				}
				jb.held = append([]BlockID(nil), jb.held[k:]...)
			case 6: // leave
				if len(jobs) == 0 {
					continue
				}
				jb := jobs[arg%len(jobs)]
				jb.j.Leave()
				for _, id := range jb.held {
					owner[id] = nil
				}
				jb.held, jb.left = nil, true
			case 7: // close, rarely
				if arg%8 == 0 {
					p.Close()
					closed = true
				}
			}
			st := p.Stats()
			require.LessOrEqual(t, st.InUse, blocks)
			require.LessOrEqual(t, st.PeakInUse, blocks)
			inUse := 0
			for _, jb := range jobs {
				inUse += len(jb.held)
				require.Equal(t, len(jb.held), jb.j.Held())
				require.LessOrEqual(t, jb.j.Held(), jb.j.claim)
			}
			require.Equal(t, inUse, st.InUse)
			require.NoError(t, p.Check())
		}
		for _, jb := range jobs {
			jb.j.Leave()
		}
		require.NoError(t, p.Check())
		require.Zero(t, p.Stats().InUse, "every block is returned")
		require.Len(t, p.free, blocks)
	})
}
