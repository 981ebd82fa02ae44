package tier

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// hashLoad is what a loaded phase of the probe measured: hashing threads
// running alone, and running while the spill path reads.
type hashLoad struct {
	threads int
	// alone and loaded are the threads' hashes per second without and
	// with the reads; reads the reads per second meanwhile.
	alone, loaded, reads float64
}

// lostPerRead is the hashing the reads took, in core-seconds per read:
// threads x (1 - loaded / alone) / reads. It counts every cost a read puts
// on the hashing cores, whoever pays it: the reader's engine and consumer,
// the kernel's submission and completion paths, interrupts (on a virtual
// machine, the virtio path), the Go scheduler. The process's getrusage
// sees only part of that.
func (h hashLoad) lostPerRead() float64 {
	if h.alone <= 0 || h.reads <= 0 {
		return 0
	}
	return max(0, float64(h.threads)*(1-h.loaded/h.alone)) / h.reads
}

// probeHashLoad hashes on threads locked goroutines for d/4, then for d/2
// while read runs (it returns the reads it made and their wall time), then
// for d/4 again: the two alone phases bracket the loaded one, so a machine
// whose speed drifts over the probe (a shared VM) biases neither side.
func probeHashLoad(ctx context.Context, threads int, d time.Duration, read func(time.Duration) (uint64, time.Duration, error)) (hashLoad, error) {
	h := hashLoad{threads: threads}
	alone1, err := hashFor(ctx, threads, d/4, nil)
	if err != nil {
		return h, err
	}
	var reads uint64
	var wall time.Duration
	loaded, err := hashFor(ctx, threads, d/2, func() error {
		var err error
		reads, wall, err = read(d / 2)
		return err
	})
	if err != nil {
		return h, err
	}
	alone2, err := hashFor(ctx, threads, d/4, nil)
	if err != nil {
		return h, err
	}
	h.alone, h.loaded = (alone1+alone2)/2, loaded
	if wall > 0 {
		h.reads = float64(reads) / wall.Seconds()
	}
	return h, nil
}

// hashFor runs threads hashing goroutines, each locked to its thread as a
// batch's hashers are, for d, or while during runs if it is not nil, and
// returns their SHA-256 compressions per second.
func hashFor(ctx context.Context, threads int, d time.Duration, during func() error) (float64, error) {
	var stop atomic.Bool
	var total atomic.Uint64
	var wg sync.WaitGroup
	for range threads {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var block [sha256.BlockSize - 9]byte // one compression a sum
			var n uint64
			for !stop.Load() {
				for range 64 {
					sum := sha256.Sum256(block[:])
					block[0] ^= sum[0]
				}
				n += 64
			}
			total.Add(n)
		})
	}
	start := time.Now()
	var err error
	if during != nil {
		err = during()
	} else {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	stop.Store(true)
	wg.Wait()
	wall := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("hashing under load: %w", err)
	}
	return float64(total.Load()) / wall.Seconds(), nil
}
