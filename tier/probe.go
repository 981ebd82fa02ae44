package tier

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"golang.org/x/sys/unix"
)

// ProbeOptions bound a device probe. Zero fields take the defaults.
type ProbeOptions struct {
	// FileSize is the size of the probe file (default 1 GiB, rounded down
	// to whole MiB, at least 1 MiB). Random reads land anywhere in it, so a
	// file much larger than the device's cache measures the device.
	FileSize uint64
	// Duration is the time spent measuring, shared by the four phases
	// (default 6 s); writing the file comes on top and is bounded by
	// FileSize.
	Duration time.Duration
	// QueueDepth is the number of random reads kept in flight (default 64).
	QueueDepth int
	// Engine is the spill-path reader's engine (EngineAuto: io_uring where
	// the host allows it).
	Engine Engine
	// Streams is how many readers the spill-path phase runs at once
	// (default 1): a batch's spilling jobs have one each, and the device
	// serves N readers at the tier's depth at another rate than one.
	Streams int
	// LoadThreads, when above 0, adds a phase in which that many threads
	// hash SHA-256 while the spill path reads, as a spilling batch's
	// hashers do (DeviceSpeed.HashCPUSecondsPerRead). It takes half of
	// Duration on top.
	LoadThreads int

	// buffered skips O_DIRECT, so tests reach the fallback on kernels
	// whose tmpfs accepts O_DIRECT (Linux 6.6 and later).
	buffered bool
}

// Probe defaults.
const (
	DefaultProbeFileSize   = 1 << 30
	DefaultProbeDuration   = 6 * time.Second
	DefaultProbeQueueDepth = 64
)

// DeviceSpeed is what ProbeDevice measured for the device under one
// directory.
type DeviceSpeed struct {
	Dir string `json:"dir"`
	// Device is the directory's st_dev: directories with the same value
	// share one device, and its speed must not be counted twice.
	Device uint64 `json:"device"`
	// FSType names the filesystem ("ext4", "xfs", "tmpfs", or the statfs
	// magic in hex).
	FSType string `json:"fs_type"`
	// InMemory is set for tmpfs and ramfs: their files are DRAM, so
	// spilling to them saves none.
	InMemory bool `json:"in_memory"`
	// FreeBytes is the space available to this user before the probe.
	FreeBytes uint64 `json:"free_bytes"`
	// FileBytes is the probe file's size.
	FileBytes uint64 `json:"file_bytes"`
	// Direct is set when the reads used O_DIRECT; otherwise they were
	// buffered, each page dropped from the page cache after its read.
	Direct bool `json:"direct"`
	// SeqReadBytesPerSecond is one reader's sequential rate in 1 MiB reads.
	SeqReadBytesPerSecond float64 `json:"seq_read_bytes_per_second"`
	// RandomReadsPerSecond is the 4 KiB random read rate with QueueDepth
	// reads in flight; RandomReads is how many the figure rests on.
	RandomReadsPerSecond float64 `json:"random_reads_per_second"`
	RandomReads          uint64  `json:"random_reads"`
	QueueDepth           int     `json:"queue_depth"`
	// KernelCPUSecondsPerRead is the system CPU time per random read in the
	// same phase (getrusage of the whole process).
	KernelCPUSecondsPerRead float64 `json:"kernel_cpu_seconds_per_read"`
	// MissReadsPerSecond and the two CPU figures are for buffered 4 KiB
	// random reads of pages not in the page cache, each dropped again with
	// FADV_DONTNEED: the path a spilled label takes (a page-cache miss and
	// an eviction), unlike O_DIRECT.
	MissReadsPerSecond          float64 `json:"miss_reads_per_second"`
	MissKernelCPUSecondsPerRead float64 `json:"miss_kernel_cpu_seconds_per_read"`
	MissUserCPUSecondsPerRead   float64 `json:"miss_user_cpu_seconds_per_read"`
	// SpillReadsPerSecond and SpillCPUSecondsPerRead are for the spill
	// tier's own path: random 4 KiB pages read with O_DIRECT through a
	// DeviceReader as a spilling job's prefetcher reads them (its engine,
	// depth and batch: ProbeDeviceReader), CPU the whole process's kernel
	// plus user time per read. A planner uses these figures.
	SpillReadsPerSecond    float64 `json:"spill_reads_per_second"`
	SpillCPUSecondsPerRead float64 `json:"spill_cpu_seconds_per_read"`
	// SpillEngine is the reader's engine ("io_uring" or "pread"), and
	// SpillStreams how many readers read at once.
	SpillEngine  string `json:"spill_engine"`
	SpillStreams int    `json:"spill_streams"`
	// HashCPUSecondsPerRead is the hashing one spill-path read takes away
	// from LoadThreads threads hashing at full speed, in core-seconds:
	// threads x (1 - hashes with the reads / hashes without) / reads per
	// second. Unlike SpillCPUSecondsPerRead (this process's getrusage) it
	// counts what the kernel spends on the reads outside the process
	// (interrupts, and on a virtual machine the virtio path), which on the
	// development VM is most of it. LoadedSpillReadsPerSecond is the read
	// rate meanwhile; zero fields: no loaded phase (ProbeOptions.LoadThreads).
	LoadThreads               int     `json:"load_threads,omitempty"`
	LoadedSpillReadsPerSecond float64 `json:"loaded_spill_reads_per_second,omitempty"`
	HashCPUSecondsPerRead     float64 `json:"hash_cpu_seconds_per_read,omitempty"`
	// Warnings say what makes the figures less than a device's (tmpfs, no
	// O_DIRECT).
	Warnings []string `json:"warnings,omitempty"`
}

// ProbeDevice measures the device under dir with a temporary file of real
// (non-zero, non-repeating) data: sequential read bandwidth, 4 KiB random
// reads per second at a queue depth (QueueDepth goroutines doing pread with
// O_DIRECT into page-aligned buffers), the kernel CPU each read costs, and
// the same for buffered page-cache misses. The file is removed on every
// return path, errors included. dir must exist: probing a mistyped mount
// point would measure the root filesystem instead.
//
// CPU figures come from getrusage over the whole process, so they are
// meaningful only when nothing else in the process is busy; a VM may
// charge interrupt work elsewhere (steal), so they are a lower bound.
func ProbeDevice(ctx context.Context, dir string, opts ProbeOptions) (DeviceSpeed, error) {
	opts = opts.withDefaults()
	ds := DeviceSpeed{Dir: dir, QueueDepth: opts.QueueDepth}
	fail := func(err error) (DeviceSpeed, error) { return DeviceSpeed{}, fmt.Errorf("probing %s: %w", dir, err) }

	st, err := os.Stat(dir)
	if err != nil {
		return fail(err)
	}
	if !st.IsDir() {
		return fail(errors.New("not a directory"))
	}
	space, err := DirSpaceOf(dir)
	if err != nil {
		return fail(err)
	}
	ds.Device, ds.FreeBytes = space.Device, space.FreeBytes
	ds.FSType, ds.InMemory = space.FSType, space.InMemory
	if ds.InMemory {
		ds.Warnings = append(ds.Warnings, fmt.Sprintf("%s is on %s: its files live in DRAM, so spilling there saves no DRAM and these figures are memory speeds", dir, ds.FSType))
	}
	if opts.FileSize > ds.FreeBytes {
		return fail(fmt.Errorf("a %d-byte probe file does not fit in the %d bytes free", opts.FileSize, ds.FreeBytes))
	}
	ds.FileBytes = opts.FileSize

	f, err := os.CreateTemp(dir, ".pc1-tiered-probe-*")
	if err != nil {
		return fail(err)
	}
	path := f.Name()
	defer os.Remove(path)
	defer f.Close()
	if err := blockio.WriteProbeFile(ctx, f, opts.FileSize); err != nil {
		return fail(err)
	}

	// O_DIRECT measures the device, not the page cache. tmpfs (before
	// Linux 6.6) and some FUSE filesystems refuse it with EINVAL.
	rd := f
	df, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
	if opts.buffered && err == nil {
		df.Close()
		err = errors.New("buffered reads asked for")
	}
	if err == nil {
		defer df.Close()
		rd, ds.Direct = df, true
	} else {
		ds.Warnings = append(ds.Warnings, fmt.Sprintf("no O_DIRECT on %s (%v): buffered reads, each page dropped from the page cache after its read", dir, err))
	}

	// The spill path gets two shares: it starts with nothing in flight and
	// its figure is the one a planner uses.
	phase := opts.Duration / 6
	if ds.SeqReadBytesPerSecond, err = probeSequential(ctx, rd, ds.Direct, opts.FileSize, phase); err != nil {
		return fail(err)
	}
	r, err := probeRandom(ctx, rd, !ds.Direct, opts.FileSize, opts.QueueDepth, 2*phase)
	if err != nil {
		return fail(err)
	}
	ds.RandomReads = r.reads
	ds.RandomReadsPerSecond = r.perSecond()
	ds.KernelCPUSecondsPerRead = r.sysPerRead()
	m, err := probeRandom(ctx, f, true, opts.FileSize, opts.QueueDepth, phase)
	if err != nil {
		return fail(err)
	}
	ds.MissReadsPerSecond = m.perSecond()
	ds.MissKernelCPUSecondsPerRead = m.sysPerRead()
	ds.MissUserCPUSecondsPerRead = m.userPerRead()
	if ds.Direct {
		streams := max(1, opts.Streams)
		spillPath := func(d time.Duration) ([]ReaderSpeed, error) {
			speeds := make([]ReaderSpeed, streams)
			errs := make([]error, streams)
			var wg sync.WaitGroup
			for i := range streams {
				wg.Go(func() {
					speeds[i], errs[i] = ProbeDeviceReader(ctx, path, ReaderProbeOptions{
						Reader: DeviceReaderOptions{Engine: opts.Engine, Depth: coldDepth}, Batch: coldSubmit, Duration: d,
					})
				})
			}
			wg.Wait()
			return speeds, errors.Join(errs...)
		}
		speeds, err := spillPath(2 * phase)
		if err != nil {
			return fail(err)
		}
		if opts.LoadThreads > 0 {
			h, err := probeHashLoad(ctx, opts.LoadThreads, opts.Duration/2, func(d time.Duration) (uint64, time.Duration, error) {
				start := time.Now()
				loaded, err := spillPath(d)
				var reads uint64
				for _, rs := range loaded {
					reads += rs.Reads
				}
				return reads, time.Since(start), err
			})
			if err != nil {
				return fail(err)
			}
			ds.LoadThreads, ds.LoadedSpillReadsPerSecond, ds.HashCPUSecondsPerRead = opts.LoadThreads, h.reads, h.lostPerRead()
		}
		// Each stream's CPU figure is the whole process's over its own
		// reads: the process's CPU per read is 1 / sum(1 / figure).
		var invCPU float64
		for _, rs := range speeds {
			ds.SpillReadsPerSecond += rs.ReadsPerSecond
			if rs.CPUPerRead > 0 {
				invCPU += 1 / rs.CPUPerRead.Seconds()
			}
		}
		if invCPU > 0 {
			ds.SpillCPUSecondsPerRead = 1 / invCPU
		}
		ds.SpillStreams = streams
		ds.SpillEngine = speeds[0].Engine
		if speeds[0].Warning != "" {
			ds.Warnings = append(ds.Warnings, speeds[0].Warning)
		}
	} else {
		// Without O_DIRECT the spill tier cannot read this filesystem
		// either; the buffered misses are the nearest figure.
		ds.SpillReadsPerSecond = ds.MissReadsPerSecond
		ds.SpillCPUSecondsPerRead = ds.MissKernelCPUSecondsPerRead + ds.MissUserCPUSecondsPerRead
		ds.SpillEngine = "buffered"
	}
	return ds, nil
}

func (o ProbeOptions) withDefaults() ProbeOptions {
	if o.FileSize == 0 {
		o.FileSize = DefaultProbeFileSize
	}
	o.FileSize = max(o.FileSize&^(1<<20-1), 1<<20)
	if o.Duration <= 0 {
		o.Duration = DefaultProbeDuration
	}
	if o.QueueDepth <= 0 {
		o.QueueDepth = DefaultProbeQueueDepth
	}
	return o
}

// DirSpace is where a directory's files go: its device and the space
// free there.
type DirSpace struct {
	// Device is the directory's st_dev: directories with the same value
	// share one device and its free space.
	Device uint64
	// FreeBytes is the space available to this user.
	FreeBytes uint64
	// FSType names the filesystem; InMemory is set for tmpfs and ramfs.
	FSType   string
	InMemory bool
}

// DirSpaceOf stats dir and its filesystem.
func DirSpaceOf(dir string) (DirSpace, error) {
	var sst unix.Stat_t
	if err := unix.Stat(dir, &sst); err != nil {
		return DirSpace{}, fmt.Errorf("stat: %w", err)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		return DirSpace{}, fmt.Errorf("statfs: %w", err)
	}
	s := DirSpace{Device: uint64(sst.Dev), FreeBytes: sfs.Bavail * uint64(sfs.Bsize)}
	s.FSType, s.InMemory = fsType(sfs.Type)
	return s, nil
}

func fsType(magic int64) (name string, inMemory bool) {
	switch uint32(magic) {
	case unix.TMPFS_MAGIC:
		return "tmpfs", true
	case unix.RAMFS_MAGIC:
		return "ramfs", true
	case unix.EXT4_SUPER_MAGIC:
		return "ext4", false
	case unix.XFS_SUPER_MAGIC:
		return "xfs", false
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs", false
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs", false
	case 0x2fc12fc1:
		return "zfs", false
	}
	return fmt.Sprintf("0x%x", uint32(magic)), false
}

// alignedBuffer maps n bytes of anonymous memory: page-aligned, as
// O_DIRECT needs, and outside the Go heap.
func alignedBuffer(n int) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("mapping a %d-byte read buffer: %w", n, err)
	}
	return b, nil
}

func probeSequential(ctx context.Context, f *os.File, direct bool, size uint64, d time.Duration) (float64, error) {
	buf, err := alignedBuffer(1 << 20)
	if err != nil {
		return 0, err
	}
	defer unix.Munmap(buf)
	if !direct {
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			return 0, fmt.Errorf("dropping %s from the page cache: %w", f.Name(), err)
		}
	}
	start := time.Now()
	deadline := start.Add(d)
	var n uint64
	for n < size && time.Now().Before(deadline) && ctx.Err() == nil {
		if _, err := f.ReadAt(buf, int64(n)); err != nil {
			return 0, fmt.Errorf("reading %s at %d: %w", f.Name(), n, err)
		}
		n += uint64(len(buf))
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

type randomResult struct {
	reads     uint64
	wall      time.Duration
	sys, user time.Duration
}

func (r randomResult) perSecond() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.reads) / r.wall.Seconds()
}

func (r randomResult) sysPerRead() float64 {
	if r.reads == 0 {
		return 0
	}
	return r.sys.Seconds() / float64(r.reads)
}

func (r randomResult) userPerRead() float64 {
	if r.reads == 0 {
		return 0
	}
	return r.user.Seconds() / float64(r.reads)
}

// probeRandom reads random 4 KiB pages of f from depth goroutines for d.
// With drop, each page is read through the page cache and dropped after:
// every read is a miss, as for a spilled label.
func probeRandom(ctx context.Context, f *os.File, drop bool, size uint64, depth int, d time.Duration) (randomResult, error) {
	bufs, err := alignedBuffer(depth * PageSize)
	if err != nil {
		return randomResult{}, err
	}
	defer unix.Munmap(bufs)
	pages := size / PageSize
	fd := int(f.Fd())
	return runStreams(ctx, depth, d, func(g int, deadline time.Time) (uint64, error) {
		buf := bufs[g*PageSize : (g+1)*PageSize]
		rng := rand.New(rand.NewPCG(uint64(g), 0x9e3779b97f4a7c15))
		var n uint64
		for ctx.Err() == nil && time.Now().Before(deadline) {
			off := int64(rng.Uint64N(pages)) * PageSize
			if _, err := unix.Pread(fd, buf, off); err != nil {
				return n, fmt.Errorf("reading %s at %d: %w", f.Name(), off, err)
			}
			if drop {
				if err := unix.Fadvise(fd, off, PageSize, unix.FADV_DONTNEED); err != nil {
					return n, fmt.Errorf("dropping %s at %d from the page cache: %w", f.Name(), off, err)
				}
			}
			n++
		}
		return n, nil
	})
}

// runStreams runs read until the deadline d from now in n goroutines
// (stream g is read(g, deadline), returning how many pages it read) and
// sums their reads, with the wall time and the process's CPU time they
// took.
func runStreams(ctx context.Context, n int, d time.Duration, read func(g int, deadline time.Time) (uint64, error)) (randomResult, error) {
	counts := make([]uint64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	ru0, err := rusage()
	if err != nil {
		return randomResult{}, err
	}
	start := time.Now()
	deadline := start.Add(d)
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[g], errs[g] = read(g, deadline)
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	ru1, err := rusage()
	if err != nil {
		return randomResult{}, err
	}
	if err := errors.Join(errs...); err != nil {
		return randomResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return randomResult{}, err
	}
	r := randomResult{wall: wall, sys: ru1.sys - ru0.sys, user: ru1.user - ru0.user}
	for _, c := range counts {
		r.reads += c
	}
	return r, nil
}

type cpuTimes struct{ sys, user time.Duration }

// processCPUTime is the user+system CPU time of the whole process.
func processCPUTime() (time.Duration, error) {
	c, err := rusage()
	return c.sys + c.user, err
}

func rusage() (cpuTimes, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return cpuTimes{}, fmt.Errorf("getrusage: %w", err)
	}
	return cpuTimes{sys: time.Duration(ru.Stime.Nano()), user: time.Duration(ru.Utime.Nano())}, nil
}
