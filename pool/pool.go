package pool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/dustin/go-humanize"
)

// ErrClosed is returned by Acquire and Join once the pool is closed.
var ErrClosed = errors.New("pool: closed")

// BlockID names one block of the pool: 0 <= id < NumBlocks.
type BlockID int32

// Config describes a pool.
type Config struct {
	// SectorSize is the size S of one sector, and so of one layer.
	SectorSize uint64
	// BlockSize is the size B of one block; it must divide SectorSize.
	BlockSize uint64
	// Jobs is the number N of jobs that may be joined at once.
	Jobs int
	// Size is the pool size in bytes, rounded down to whole blocks; 0 means
	// the default (3N+1) x S / 2. It must lie within Bounds unless Claim is
	// set.
	Size uint64
	// Claim, when set, is the most blocks any job holds at once, instead of
	// two layers: jobs that keep part of their layers outside the pool (the
	// spill tier) claim less. Size must then hold at least one claim; the
	// admission rule still keeps every job able to finish.
	Claim int
}

// Bounds returns the smallest, default and largest pool sizes in bytes for
// n concurrent jobs on sectors of sectorSize bytes: (N+1) x S, (3N+1) x S / 2
// and 2 x N x S.
func Bounds(sectorSize uint64, n int) (lo, def, hi uint64) {
	N := uint64(n)
	return (N + 1) * sectorSize, (3*N + 1) * sectorSize / 2, 2 * N * sectorSize
}

// Stats are the pool's counters.
type Stats struct {
	// Blocks and BlockSize describe the pool.
	Blocks    int
	BlockSize uint64
	// InUse is the number of blocks held now; PeakInUse the most ever held
	// at once, and PeakInUseBytes the same in bytes.
	InUse, PeakInUse int
	PeakInUseBytes   uint64
	// Grants is the number of blocks handed out; Waits the number of
	// Acquire calls that had to wait at least once.
	Grants, Waits uint64
}

// Pool hands out fixed-size blocks to at most N joined jobs, never granting
// a block that could leave the jobs unable to finish (see the package
// documentation). It is safe for concurrent use.
type Pool struct {
	blockSize uint64
	perLayer  int // K: blocks per layer
	maxJobs   int
	claim     int // Config.Claim

	mu     sync.Mutex
	cond   sync.Cond
	closed bool
	free   []BlockID // stack of free blocks
	owner  []*Job    // owner[id] holds block id, nil when free
	jobs   []*Job    // joined jobs
	stats  Stats
	// order is scratch space for the safety check, reused to keep Acquire
	// from allocating.
	order []*Job
}

// New returns a pool for cfg, or an error that states the valid sizes when
// cfg.Size is out of bounds.
func New(cfg Config) (*Pool, error) {
	s, b := cfg.SectorSize, cfg.BlockSize
	if cfg.Jobs < 1 {
		return nil, fmt.Errorf("pool: %d jobs: need at least 1", cfg.Jobs)
	}
	if b == 0 || s == 0 || s%b != 0 {
		return nil, fmt.Errorf("pool: block size %d must divide the sector size %d", b, s)
	}
	lo, def, hi := Bounds(s, cfg.Jobs)
	size := cfg.Size
	if size == 0 {
		size = def
	}
	k := s / b
	blocks := size / b
	if cfg.Claim > 0 {
		if cfg.Size == 0 || blocks < uint64(cfg.Claim) {
			return nil, fmt.Errorf("pool size %s holds fewer than one job's claim of %d blocks of %s",
				humanize.IBytes(cfg.Size), cfg.Claim, humanize.IBytes(b))
		}
	} else if blocks*b < lo || size > hi {
		return nil, fmt.Errorf("pool size %s is outside [%s, %s] for %d jobs of %s sectors: the pool needs (N+1) x S to always let one job finish and never uses more than 2 x N x S",
			humanize.IBytes(size), humanize.IBytes(lo), humanize.IBytes(hi), cfg.Jobs, humanize.IBytes(s))
	}
	if blocks > 1<<31-1 {
		return nil, fmt.Errorf("pool: %d blocks is too many; use a larger block size", blocks)
	}
	p := &Pool{
		blockSize: b,
		perLayer:  int(k),
		maxJobs:   cfg.Jobs,
		claim:     cfg.Claim,
		free:      make([]BlockID, blocks),
		owner:     make([]*Job, blocks),
		order:     make([]*Job, 0, cfg.Jobs),
		stats:     Stats{Blocks: int(blocks), BlockSize: b},
	}
	p.cond.L = &p.mu
	// Hand out low block ids first: the tier maps them to memory in order.
	for i := range p.free {
		p.free[i] = BlockID(int(blocks) - 1 - i)
	}
	return p, nil
}

// NumBlocks returns the number of blocks in the pool.
func (p *Pool) NumBlocks() int { return len(p.owner) }

// BlockSize returns the size of one block in bytes.
func (p *Pool) BlockSize() uint64 { return p.blockSize }

// Jobs returns N, the most jobs that may be joined at once.
func (p *Pool) Jobs() int { return p.maxJobs }

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.PeakInUseBytes = uint64(s.PeakInUse) * p.blockSize
	return s
}

// Close wakes every waiting job with ErrClosed and refuses further Acquire
// and Join calls. Blocks still held may be released afterwards.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cond.Broadcast()
}

// Job is one job's handle on the pool. A Job is used by one goroutine.
type Job struct {
	pool  *Pool
	claim int // most blocks the job may hold at once
	held  int
	left  bool
}

// Join registers a job that will compute the given number of layers: its
// claim is two layers' blocks (one when it computes a single layer), or
// Config.Claim when set. At most Jobs() jobs may be joined at once.
func (p *Pool) Join(layers int) (*Job, error) {
	if layers < 1 {
		return nil, fmt.Errorf("pool: join with %d layers", layers)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if len(p.jobs) >= p.maxJobs {
		return nil, fmt.Errorf("pool: %d jobs already joined, the most this pool was sized for", len(p.jobs))
	}
	j := &Job{pool: p, claim: p.claimFor(layers)}
	p.jobs = append(p.jobs, j)
	return j, nil
}

// claimFor is the claim of a job computing layers layers: two layers'
// blocks, one layer's for a single layer, or the fixed claim of a spilling
// pool.
func (p *Pool) claimFor(layers int) int {
	switch {
	case p.claim > 0:
		return p.claim
	case layers == 1:
		return p.perLayer
	}
	return 2 * p.perLayer
}

// HoldsAll reports whether the pool holds the claims of all N jobs of
// layers layers at once (2 x N x S, the maximum, for more than one layer):
// then no job ever waits for another's blocks, and starting them staggered
// would only leave cores idle.
func (p *Pool) HoldsAll(layers int) bool {
	return len(p.owner) >= p.maxJobs*p.claimFor(layers)
}

// Acquire returns a free block for the job, waiting while granting one would
// leave the pool unsafe. It fails when ctx is done, the pool is closed, or
// the job already holds its claim.
func (j *Job) Acquire(ctx context.Context) (BlockID, error) {
	p := j.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if j.left {
		return 0, errors.New("pool: acquire after leave")
	}
	if j.held >= j.claim {
		return 0, fmt.Errorf("pool: job already holds its claim of %d blocks", j.claim)
	}
	waited := false
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for {
		if p.closed {
			return 0, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return 0, context.Cause(ctx)
		}
		if p.grantable(j) {
			break
		}
		if !waited {
			waited = true
			p.stats.Waits++
			// Wake this waiter when ctx ends; Broadcast under the lock so
			// the wake-up cannot fall between the check and Wait.
			stop = context.AfterFunc(ctx, func() {
				p.mu.Lock()
				p.cond.Broadcast()
				p.mu.Unlock()
			})
		}
		p.cond.Wait()
	}
	id := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	p.owner[id] = j
	j.held++
	p.stats.Grants++
	p.stats.InUse++
	p.stats.PeakInUse = max(p.stats.PeakInUse, p.stats.InUse)
	return id, nil
}

// Release returns blocks the job holds to the pool and wakes waiting jobs.
// Releasing a block the job does not hold is an error and changes nothing.
func (j *Job) Release(ids ...BlockID) error {
	if len(ids) == 0 {
		return nil
	}
	p := j.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, id := range ids {
		if id < 0 || int(id) >= len(p.owner) || p.owner[id] != j || slices.Contains(ids[:i], id) {
			return fmt.Errorf("pool: release of block %d the job does not hold", id)
		}
	}
	for _, id := range ids {
		p.owner[id] = nil
		p.free = append(p.free, id)
	}
	j.held -= len(ids)
	p.stats.InUse -= len(ids)
	p.cond.Broadcast()
	return nil
}

// Leave returns every block the job still holds and unregisters it. It is
// idempotent, so it can be deferred next to error paths.
func (j *Job) Leave() {
	p := j.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if j.left {
		return
	}
	j.left = true
	if j.held > 0 {
		for id, o := range p.owner {
			if o == j {
				p.owner[id] = nil
				p.free = append(p.free, BlockID(id))
			}
		}
		p.stats.InUse -= j.held
		j.held = 0
	}
	p.jobs = slices.DeleteFunc(p.jobs, func(o *Job) bool { return o == j })
	p.cond.Broadcast()
}

// Held returns the number of blocks the job holds.
func (j *Job) Held() int {
	j.pool.mu.Lock()
	defer j.pool.mu.Unlock()
	return j.held
}

// grantable reports whether giving j one more block leaves the pool in a
// safe state. It is called with p.mu held.
func (p *Pool) grantable(j *Job) bool {
	if len(p.free) == 0 {
		return false
	}
	j.held++
	ok := p.safe(len(p.free) - 1)
	j.held--
	return ok
}

// safe reports whether, with free blocks available, the joined jobs can all
// finish in some order: by ascending remaining need, each must fit in what
// is free plus what the jobs before it hold.
func (p *Pool) safe(free int) bool {
	order := append(p.order[:0], p.jobs...)
	slices.SortFunc(order, func(a, b *Job) int { return (a.claim - a.held) - (b.claim - b.held) })
	for _, o := range order {
		if o.claim-o.held > free {
			return false
		}
		free += o.held
	}
	return true
}

// Check verifies the pool's invariants: every block is either free or owned
// by exactly one joined job, counts agree, and the state is safe. Tests call
// it between operations.
func (p *Pool) Check() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := make([]bool, len(p.owner))
	for _, id := range p.free {
		if seen[id] {
			return fmt.Errorf("pool: block %d is free twice", id)
		}
		if p.owner[id] != nil {
			return fmt.Errorf("pool: block %d is free and owned", id)
		}
		seen[id] = true
	}
	held := make(map[*Job]int, len(p.jobs))
	inUse := 0
	for id, o := range p.owner {
		if o == nil {
			if !seen[id] {
				return fmt.Errorf("pool: block %d is neither free nor owned", id)
			}
			continue
		}
		if !slices.Contains(p.jobs, o) {
			return fmt.Errorf("pool: block %d is owned by a job that left", id)
		}
		held[o]++
		inUse++
	}
	for _, j := range p.jobs {
		if held[j] != j.held {
			return fmt.Errorf("pool: job holds %d blocks but counts %d", held[j], j.held)
		}
		if j.held > j.claim {
			return fmt.Errorf("pool: job holds %d blocks over its claim of %d", j.held, j.claim)
		}
	}
	if inUse != p.stats.InUse || inUse+len(p.free) != len(p.owner) {
		return fmt.Errorf("pool: %d blocks in use, %d free, %d counted in use, %d in all", inUse, len(p.free), p.stats.InUse, len(p.owner))
	}
	if p.stats.PeakInUse > len(p.owner) {
		return fmt.Errorf("pool: peak %d over %d blocks", p.stats.PeakInUse, len(p.owner))
	}
	if !p.safe(len(p.free)) {
		return errors.New("pool: unsafe state")
	}
	return nil
}
