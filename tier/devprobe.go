package tier

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
)

// ReaderProbeOptions shape ProbeDeviceReader. Zero fields take defaults.
type ReaderProbeOptions struct {
	// Reader configures the reader measured (engine, Depth, Reap, page
	// size). Buffers defaults to 2 x Depth + Batch: the probe keeps all but
	// one batch of them handed over, so Depth reads are at the device and
	// as many again wait in the engine, like a prefetcher's look-ahead,
	// and the consumer rarely waits for a page.
	Reader DeviceReaderOptions
	// Batch is how many reads each ReadBatch carries (default 32).
	Batch int
	// FileSize is the size of the file created when the probe is given a
	// directory (default 1 GiB). Reads land anywhere in it, so it should
	// be much larger than the device's cache.
	FileSize uint64
	// Duration is the time spent reading (default 5 s).
	Duration time.Duration
}

// ReaderSpeed is what ProbeDeviceReader measured.
type ReaderSpeed struct {
	File    string `json:"file"`
	Engine  string `json:"engine"`
	Warning string `json:"warning,omitempty"`
	// PageSize, Depth, Batch and Reap are the reader's settings.
	PageSize int `json:"page_size"`
	Depth    int `json:"depth"`
	Batch    int `json:"batch"`
	Reap     int `json:"reap"`
	// Reads is how many random reads the figures rest on.
	Reads          uint64  `json:"reads"`
	ReadsPerSecond float64 `json:"reads_per_second"`
	// CPUPerRead is the whole process's user+system CPU (getrusage) over
	// the reads: the reader's engine, the probe's own loop standing in for
	// a prefetcher and a hasher, the Go runtime, and whatever interrupt
	// work the kernel charged to this process's threads. fio's usr+sys
	// figure is the same kind of number.
	CPUPerRead time.Duration `json:"cpu_per_read"`
	// EngineCPUPerRead is the engine threads' share of it
	// (DeviceReaderStats.EngineCPU).
	EngineCPUPerRead time.Duration `json:"engine_cpu_per_read"`
	// ReadsPerSyscall is reads over the engine's system calls.
	ReadsPerSyscall float64 `json:"reads_per_syscall"`
	// Waits is how many pages the consumer had to wait for.
	Waits uint64 `json:"waits"`
	// PeakInFlight is the most reads handed to the engine and not finished
	// at once: up to Depth at the kernel, the rest queued in the engine.
	PeakInFlight int `json:"peak_in_flight"`
}

func (s ReaderSpeed) String() string {
	return fmt.Sprintf("%s: %s, %d-byte random reads, depth %d, batch %d, reap >= %d: %.0f reads/s, %.2f us CPU per read (engine %.2f us), %d reads, %.1f reads per syscall, %d waits",
		s.File, s.Engine, s.PageSize, s.Depth, s.Batch, s.Reap, s.ReadsPerSecond,
		float64(s.CPUPerRead)/1e3, float64(s.EngineCPUPerRead)/1e3, s.Reads, s.ReadsPerSyscall, s.Waits)
}

// ProbeDeviceReader measures random page reads through a DeviceReader the
// way a prefetcher uses it: batches of Batch random pages handed over
// while the oldest Depth are waited for and released. path is either a
// file to read (say, the one fio read, to compare like with like) or a
// directory, in which a file of FileSize bytes is written, read and
// removed.
func ProbeDeviceReader(ctx context.Context, path string, opts ReaderProbeOptions) (ReaderSpeed, error) {
	if opts.Batch <= 0 {
		opts.Batch = 32
	}
	if opts.FileSize == 0 {
		opts.FileSize = 1 << 30
	}
	if opts.Duration <= 0 {
		opts.Duration = 5 * time.Second
	}
	ro, err := opts.Reader.withDefaults()
	if err != nil {
		return ReaderSpeed{}, err
	}
	opts.Batch = min(opts.Batch, ro.Depth)
	if opts.Reader.Buffers <= 0 {
		ro.Buffers = 2*ro.Depth + opts.Batch
	}
	if ro.Buffers < 2*opts.Batch {
		return ReaderSpeed{}, fmt.Errorf("probing reads of %s: %d buffers for batches of %d: need two batches' worth", path, ro.Buffers, opts.Batch)
	}
	fail := func(err error) (ReaderSpeed, error) {
		return ReaderSpeed{}, fmt.Errorf("probing reads of %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fail(err)
	}
	if st.IsDir() {
		file, err := blockio.CreateProbeFile(ctx, path, opts.FileSize)
		if err != nil {
			return fail(err)
		}
		defer os.Remove(file)
		if st, err = os.Stat(file); err != nil {
			return fail(err)
		}
		path = file
	}
	pages := st.Size() / int64(ro.PageSize)
	if pages < 1 {
		return fail(errors.New("file smaller than one page"))
	}

	r, err := NewDeviceReader(ro)
	if err != nil {
		return fail(err)
	}
	defer r.Close()
	f, err := r.Open(path)
	if err != nil {
		return fail(err)
	}
	speed := ReaderSpeed{File: path, Engine: r.Engine().String(), Warning: r.Warning(),
		PageSize: ro.PageSize, Depth: ro.Depth, Batch: opts.Batch, Reap: ro.Reap}

	rng := rand.New(rand.NewPCG(uint64(pages), 0x70726f6265))
	reqs := make([]PageRead, opts.Batch)
	// fifo holds the pages handed over, oldest first, as a ring.
	fifo := make([]Page, ro.Buffers)
	head, n := 0, 0
	var reads uint64
	consume := func(keep int) error {
		for n > keep {
			p := fifo[head]
			_, err := r.Wait(p)
			r.Release(p)
			if err != nil {
				return err
			}
			head = (head + 1) % len(fifo)
			n--
			reads++
		}
		return nil
	}

	cpu0, err := processCPUTime()
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	deadline := start.Add(opts.Duration)
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		for i := range reqs {
			reqs[i] = PageRead{File: f, Off: rng.Int64N(pages) * int64(ro.PageSize)}
		}
		tail := (head + n) % len(fifo)
		batch := fifo[tail:min(tail+len(reqs), len(fifo))]
		if err := r.ReadBatch(ctx, reqs[:len(batch)], batch); err != nil {
			return fail(err)
		}
		if rest := len(reqs) - len(batch); rest > 0 { // the ring wrapped
			if err := r.ReadBatch(ctx, reqs[len(batch):], fifo[:rest]); err != nil {
				return fail(err)
			}
		}
		n += len(reqs)
		if err := consume(ro.Buffers - opts.Batch); err != nil {
			return fail(err)
		}
	}
	if err := consume(0); err != nil {
		return fail(err)
	}
	wall := time.Since(start)
	cpu1, err := processCPUTime()
	if err != nil {
		return fail(err)
	}
	rs := r.Stats()
	speed.Reads = reads
	speed.ReadsPerSecond = float64(reads) / wall.Seconds()
	speed.CPUPerRead = (cpu1 - cpu0) / time.Duration(max(reads, 1))
	speed.EngineCPUPerRead = rs.CPUPerRead()
	speed.PeakInFlight = rs.PeakInFlight
	speed.Waits = rs.Waits
	speed.ReadsPerSyscall = float64(rs.Reads+rs.Errors) / float64(max(rs.Syscalls, 1))
	return speed, nil
}
