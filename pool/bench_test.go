package pool

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Benchmark pools are 64 blocks a layer: the pool hands out indexes, so
// only the count matters, not the sizes.
const (
	benchSector = 1 << 20
	benchBlock  = 1 << 14
	benchK      = benchSector / benchBlock
)

// layerCycle runs a job the way the labeler does for acquires blocks in
// all: one block at a time through its current layer, releasing the
// previous layer's blocks each time a layer is complete.
func layerCycle(ctx context.Context, j *Job, acquires int) error {
	cur := make([]BlockID, 0, benchK)
	prev := make([]BlockID, 0, benchK)
	for range acquires {
		id, err := j.Acquire(ctx)
		if err != nil {
			return err
		}
		cur = append(cur, id)
		if len(cur) == benchK {
			if err := j.Release(prev...); err != nil {
				return err
			}
			prev, cur = cur, prev[:0]
		}
	}
	return nil
}

// BenchmarkAcquireRelease times the pool's bookkeeping per block, the
// admission check included, from a single goroutine: one block acquired
// and released again, and a job cycling through layers as the labeler
// does, alone or beside idle jobs holding an expander layer each (the
// check sorts every joined job on each acquire).
func BenchmarkAcquireRelease(b *testing.B) {
	ctx := context.Background()
	b.Run("one-block", func(b *testing.B) {
		p, err := New(Config{SectorSize: benchSector, BlockSize: benchBlock, Jobs: 1})
		require.NoError(b, err)
		j, err := p.Join(2)
		require.NoError(b, err)
		for b.Loop() {
			id, err := j.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := j.Release(id); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, idle := range []int{0, 7} {
		b.Run(fmt.Sprintf("layers/%d-idle-jobs", idle), func(b *testing.B) {
			n := idle + 1
			_, _, hi := Bounds(benchSector, n)
			p, err := New(Config{SectorSize: benchSector, BlockSize: benchBlock, Jobs: n, Size: hi})
			require.NoError(b, err)
			for range idle {
				j, err := p.Join(2)
				require.NoError(b, err)
				for range benchK {
					_, err := j.Acquire(ctx)
					require.NoError(b, err)
				}
			}
			j, err := p.Join(2)
			require.NoError(b, err)
			b.ResetTimer()
			require.NoError(b, layerCycle(ctx, j, b.N))
			b.StopTimer()
			j.Leave()
			require.NoError(b, p.Check())
		})
	}
}

// BenchmarkAcquireContended runs a few jobs on their own goroutines,
// cycling through layers at once on a default-sized pool, so they contend
// for its lock and, bunched as they are (no staggered starts), wait for
// blocks. ns/op is per block acquired by any job; waits/op is the share of
// acquires that had to wait.
func BenchmarkAcquireContended(b *testing.B) {
	ctx := context.Background()
	for _, jobs := range []int{2, 4} {
		b.Run(fmt.Sprintf("jobs=%d", jobs), func(b *testing.B) {
			p, err := New(Config{SectorSize: benchSector, BlockSize: benchBlock, Jobs: jobs})
			require.NoError(b, err)
			handles := make([]*Job, jobs)
			for i := range handles {
				handles[i], err = p.Join(2)
				require.NoError(b, err)
			}
			per := (b.N + jobs - 1) / jobs
			errs := make([]error, jobs)
			var wg sync.WaitGroup
			b.ResetTimer()
			for i, j := range handles {
				wg.Go(func() {
					defer j.Leave()
					errs[i] = layerCycle(ctx, j, per)
				})
			}
			wg.Wait()
			b.StopTimer()
			for _, err := range errs {
				require.NoError(b, err)
			}
			require.NoError(b, p.Check())
			st := p.Stats()
			require.EqualValues(b, per*jobs, st.Grants)
			b.ReportMetric(float64(st.Waits)/float64(st.Grants), "waits/op")
		})
	}
}
