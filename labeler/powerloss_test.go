package labeler

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/stretchr/testify/require"
)

var errPowerCut = errors.New("simulated power loss")

// pendingWrite is a write no sync has made durable yet, with what it
// overwrote, so that a power cut can take it back.
type pendingWrite struct {
	off     int64
	n       int
	old     []byte // the bytes it overwrote, up to the file's old size
	oldSize int64
}

// powerCut simulates a power loss at its at-th operation: that operation
// and every later one fail (the machine is off), and lose then takes back
// the writes that were not made durable by an fdatasync or fsync of their
// file, as a page cache lost with the power would. Which of them reached
// the device anyway is drawn at random: each file keeps a random prefix
// of its unsynced writes, the next one torn at a random byte, and a write
// in place past that prefix may still have reached the device on its own.
// Creating, truncating, renaming and removing files are taken to be
// durable at once (the seam sees data, not directory entries).
type powerCut struct {
	at int

	mu      sync.Mutex
	ops     int
	cut     bool
	pending map[string][]pendingWrite
}

func (p *powerCut) Inject(op blockio.Op) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return 0, errPowerCut
	}
	if p.ops++; p.ops == p.at {
		p.cut = true
		return 0, errPowerCut
	}
	switch op.Kind {
	case blockio.OpWrite:
		w := pendingWrite{off: op.Off, n: op.Len}
		if f, err := os.Open(op.Path); err == nil {
			if st, err := f.Stat(); err == nil {
				w.oldSize = st.Size()
				if end := min(op.Off+int64(op.Len), w.oldSize); end > op.Off {
					w.old = make([]byte, end-op.Off)
					if _, err := f.ReadAt(w.old, op.Off); err != nil && err != io.EOF {
						f.Close()
						return 0, err
					}
				}
			}
			f.Close()
		}
		if p.pending == nil {
			p.pending = map[string][]pendingWrite{}
		}
		p.pending[op.Path] = append(p.pending[op.Path], w)
	case blockio.OpSync:
		delete(p.pending, op.Path)
	case blockio.OpRename:
		if ws, ok := p.pending[op.Path]; ok {
			delete(p.pending, op.Path)
			p.pending[op.Target] = ws
		}
	}
	return op.Len, nil
}

// lose takes back, after the run, what the power cut lost.
func (p *powerCut) lose(t *testing.T, rng *rand.Rand) {
	t.Helper()
	for path, ws := range p.pending {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		kept := rng.IntN(len(ws) + 1)
		for i := len(ws) - 1; i >= kept; i-- {
			w := ws[i]
			keep := 0
			switch {
			case i == kept:
				keep = rng.IntN(w.n + 1) // torn
			case w.off+int64(w.n) <= w.oldSize && rng.IntN(2) == 0:
				continue // reached the device on its own
			}
			if int64(keep) < int64(len(w.old)) {
				_, err := f.WriteAt(w.old[keep:], w.off+int64(keep))
				require.NoError(t, err)
			}
			if w.off+int64(w.n) > w.oldSize {
				require.NoError(t, f.Truncate(max(w.oldSize, w.off+int64(keep))))
			}
		}
		require.NoError(t, f.Close())
	}
}

// opCounter counts the operations of a whole run, to draw cut points from.
type opCounter struct {
	mu sync.Mutex
	n  int
}

func (c *opCounter) Inject(op blockio.Op) (int, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return op.Len, nil
}

// TestRunPowerLoss cuts the power at many random points of a seal of two
// small sectors: every write no sync made durable is undone (each kept,
// lost or torn at random), then the same seal runs again. Whatever
// carries a final name must be right after the cut, and the resumed run
// must end with the reference's bytes. PC1_LONG=1 draws ten times as many
// cut points.
func TestRunPowerLoss(t *testing.T) {
	const sectorSize, block = 8 << 10, 1 << 10
	fx := newFixture(t, sectorSize, 3, 2)
	config := func(sectors []Sector, faults blockio.Injector) Config {
		return Config{Graph: fx.graph, ParentCache: fx.cache, Layers: 3, Sectors: sectors, Faults: faults,
			Options: Options{BlockSize: block, Parallel: 2, Lockstep: 1},
		}
	}
	var count opCounter
	sectors, dirs := fx.sectors(t, 2)
	_, err := Run(context.Background(), config(sectors, &count))
	require.NoError(t, err)
	fx.check(t, dirs)
	t.Logf("a whole seal makes %d writes, syncs, reservations and renames", count.n)

	cuts := 50
	if os.Getenv("PC1_LONG") != "" {
		cuts = 500
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("cut points and losses drawn with seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	for range cuts {
		cut := &powerCut{at: 1 + rng.IntN(count.n)}
		sectors, dirs := fx.sectors(t, 2)
		_, err := Run(context.Background(), config(sectors, cut))
		if err == nil {
			// The cut met nothing the run depended on: then its output
			// must be whole.
			fx.check(t, dirs)
		} else {
			require.ErrorIs(t, err, errPowerCut, "cut at operation %d", cut.at)
		}
		cut.lose(t, rng)
		fx.requireNothingWrong(t, dirs)

		_, err = Run(context.Background(), config(sectors, nil))
		require.NoError(t, err, "resuming after a cut at operation %d", cut.at)
		fx.check(t, dirs)
	}
}
