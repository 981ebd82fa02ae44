package pool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// schedule is one randomized run of the model test: M sectors labeled by at
// most N jobs at once through a pool of the given size, each job walking its
// layers block by block exactly as the labeler does, at its own speed, some
// of them cancelled part-way.
type schedule struct {
	jobs, sectors, layers int
	perLayer, blocks      int
	// claim, when set, caps what a job holds (as the spill tier does):
	// jobs then release their oldest block before taking one over it.
	claim int
	// stepTime[i] is how long sector i takes per block; cancelAt[i] is the
	// block (counted over the whole sector) at which it is cancelled, or -1.
	stepTime []time.Duration
	cancelAt []int
}

func randomSchedule(rng *rand.Rand) schedule {
	s := schedule{
		jobs:     1 + rng.IntN(6),
		layers:   1 + rng.IntN(4),
		perLayer: 1 << rng.IntN(4),
	}
	s.sectors = s.jobs + rng.IntN(s.jobs+1)
	lo, def, hi := Bounds(uint64(s.perLayer), s.jobs)
	switch rng.IntN(4) {
	case 0:
		s.blocks = int(lo)
	case 1:
		s.blocks = int(def)
	case 2:
		s.blocks = int(hi)
	default:
		s.blocks = int(lo) + rng.IntN(int(hi-lo)+1)
	}
	if rng.IntN(4) == 0 {
		// A spilling configuration: each job keeps at most claim blocks, in
		// a pool below the no-spill minimum.
		s.claim = 1 + rng.IntN(2*s.perLayer)
		s.blocks = s.claim + rng.IntN(s.jobs*s.claim)
	}
	for range s.sectors {
		s.stepTime = append(s.stepTime, time.Duration(1+rng.IntN(20))*time.Millisecond)
		cancel := -1
		if rng.IntN(8) == 0 {
			cancel = rng.IntN(s.layers*s.perLayer + 1)
		}
		s.cancelAt = append(s.cancelAt, cancel)
	}
	return s
}

func (s schedule) String() string {
	return fmt.Sprintf("N=%d sectors=%d layers=%d K=%d blocks=%d claim=%d", s.jobs, s.sectors, s.layers, s.perLayer, s.blocks, s.claim)
}

// run drives the schedule and checks, after every step, that no block has two
// owners (through a shadow ownership table the pool does not see) and the
// pool's own invariants; it returns when every sector has finished or was
// cancelled. A deadlock leaves every goroutine durably blocked, which
// synctest reports as a failure.
func (s schedule) run(t *testing.T, p *Pool) {
	var shadowMu sync.Mutex
	shadow := make([]int, s.blocks) // sector index + 1, 0 when free
	take := func(sector int, id BlockID) error {
		shadowMu.Lock()
		defer shadowMu.Unlock()
		if shadow[id] != 0 {
			return fmt.Errorf("block %d granted to sector %d while sector %d holds it", id, sector, shadow[id]-1)
		}
		shadow[id] = sector + 1
		return nil
	}
	give := func(ids []BlockID) {
		shadowMu.Lock()
		defer shadowMu.Unlock()
		for _, id := range ids {
			shadow[id] = 0
		}
	}

	slots := make(chan struct{}, s.jobs)
	errs := make([]error, s.sectors)
	finished := make([]bool, s.sectors)
	var wg sync.WaitGroup
	for i := range s.sectors {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			slots <- struct{}{}
			defer func() { <-slots }()
			j, err := p.Join(s.layers)
			if err != nil {
				errs[i] = err
				return
			}
			var prev, cur []BlockID
			defer func() {
				give(append(prev, cur...))
				j.Leave()
			}()
			step := 0
			for range s.layers {
				for range s.perLayer {
					if step == s.cancelAt[i] {
						// Cancel from another goroutine while this one may
						// be waiting, as a signal handler would.
						go cancel()
					}
					step++
					if s.claim > 0 && len(prev)+len(cur) == s.claim {
						// Spill: hand back the oldest block held.
						var old BlockID
						if len(prev) > 0 {
							old, prev = prev[0], prev[1:]
						} else {
							old, cur = cur[0], cur[1:]
						}
						give([]BlockID{old})
						if err := j.Release(old); err != nil {
							errs[i] = err
							return
						}
					}
					id, err := j.Acquire(ctx)
					if err != nil {
						if !errors.Is(err, context.Canceled) {
							errs[i] = err
						}
						return
					}
					cur = append(cur, id)
					if err := take(i, id); err != nil {
						errs[i] = err
						return
					}
					if err := p.Check(); err != nil {
						errs[i] = err
						return
					}
					time.Sleep(s.stepTime[i])
				}
				give(prev)
				if err := j.Release(prev...); err != nil {
					errs[i] = err
					return
				}
				prev, cur = cur, prev[:0]
			}
			finished[i] = true
		})
	}
	wg.Wait()
	for i := range s.sectors {
		require.NoError(t, errs[i], "sector %d", i)
		if s.cancelAt[i] < 0 {
			require.True(t, finished[i], "sector %d did not finish", i)
		}
	}
	require.NoError(t, p.Check())
	st := p.Stats()
	require.Zero(t, st.InUse)
	require.LessOrEqual(t, st.PeakInUse, s.blocks)
}

// TestModel runs thousands of random schedules. Each runs in a synctest
// bubble, so job speeds are virtual time (fast and repeatable) and a
// deadlock fails the test instead of hanging it.
func TestModel(t *testing.T) {
	runs := 2000
	if testing.Short() {
		runs = 300
	}
	if os.Getenv("PC1_LONG") != "" {
		runs = 20000
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x70636531))
	for r := range runs {
		s := randomSchedule(rng)
		ok := t.Run(fmt.Sprintf("%d", r), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, err := New(Config{SectorSize: uint64(s.perLayer), BlockSize: 1, Jobs: s.jobs, Size: uint64(s.blocks), Claim: s.claim})
				require.NoError(t, err, "%v", s)
				s.run(t, p)
			})
		})
		if !ok {
			t.Fatalf("schedule %d failed: %v (seed %d)", r, s, seed)
		}
	}
}

// TestModelRealScheduler runs schedules on real goroutines without virtual
// time, so the race detector sees the pool under true concurrency.
func TestModelRealScheduler(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PC1_MODEL_SEED"); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "PC1_MODEL_SEED")
	}
	t.Logf("seed %d (PC1_MODEL_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for range 50 {
		s := randomSchedule(rng)
		for i := range s.stepTime {
			s.stepTime[i] = time.Duration(rng.IntN(50)) * time.Microsecond
		}
		p, err := New(Config{SectorSize: uint64(s.perLayer), BlockSize: 1, Jobs: s.jobs, Size: uint64(s.blocks), Claim: s.claim})
		require.NoError(t, err)
		s.run(t, p)
	}
}
