package tier

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pc1-tiered/pc1-tiered/blockio"
)

// Engine names how a DeviceReader asks the kernel for its reads.
type Engine int

const (
	// EngineAuto uses io_uring when the host allows it, pread otherwise.
	EngineAuto Engine = iota
	// EngineURing submits and reaps reads in batches through one io_uring
	// (PLATFORM.md: ~2 us of CPU per 4 KiB read on the development VM,
	// against ~29 us for pread from 16 threads).
	EngineURing
	// EnginePread keeps Depth goroutines each doing one pread at a time:
	// the fallback where io_uring is disabled.
	EnginePread
)

func (e Engine) String() string {
	switch e {
	case EngineAuto:
		return "auto"
	case EngineURing:
		return "io_uring"
	case EnginePread:
		return "pread"
	}
	return fmt.Sprintf("Engine(%d)", int(e))
}

// DeviceReader defaults.
const (
	DefaultReadDepth = 64
	DefaultReadReap  = 16
)

// DeviceReaderOptions shape a DeviceReader. Zero fields take defaults.
type DeviceReaderOptions struct {
	// PageSize is the size of one read and one buffer, a multiple of 4096
	// (default 4096).
	PageSize int
	// Buffers is how many page buffers the reader owns (default 2 x
	// Depth): its whole memory is Buffers x PageSize, mapped at creation.
	// Buffers held by callers count against it, so a prefetcher that keeps
	// pages for a look-ahead needs room for the look-ahead plus Depth.
	Buffers int
	// Depth is the most reads handed to the kernel at once (default 64).
	Depth int
	// Reap is how many completions the io_uring engine waits for before it
	// looks at them (default 16, and never more than are in flight):
	// reaping one at a time costs a wake-up each (PLATFORM.md).
	Reap int
	// Engine forces an engine; EngineAuto picks io_uring when available.
	Engine Engine
	// Fault, when set, sees every finished read (bytes read, error) and
	// returns what the caller will see instead: the seam through which
	// tests inject EIO and short reads. It runs with the reader's lock
	// held and must not call the reader.
	Fault func(path string, off int64, n int, err error) (int, error)
	// FullPages makes a read of fewer than PageSize bytes an error, for
	// files read only where they hold whole pages (the spill tier's): the
	// bytes past a short read are a stale buffer's.
	FullPages bool

	// buffered opens files without O_DIRECT, so tests can run on
	// filesystems that refuse it.
	buffered bool
}

func (o DeviceReaderOptions) withDefaults() (DeviceReaderOptions, error) {
	if o.PageSize == 0 {
		o.PageSize = 4096
	}
	if o.Depth <= 0 {
		o.Depth = DefaultReadDepth
	}
	if o.Buffers <= 0 {
		o.Buffers = 2 * o.Depth
	}
	if o.Reap <= 0 {
		o.Reap = DefaultReadReap
	}
	o.Reap = min(o.Reap, o.Depth)
	if o.PageSize < 0 || o.PageSize%4096 != 0 {
		return o, fmt.Errorf("device reader: page size %d is not a multiple of 4096", o.PageSize)
	}
	if o.Engine < EngineAuto || o.Engine > EnginePread {
		return o, fmt.Errorf("device reader: unknown engine %v", o.Engine)
	}
	return o, nil
}

// ErrReaderClosed is returned by ReadBatch once Close has begun.
var ErrReaderClosed = errors.New("device reader closed")

// File names a file opened by a DeviceReader.
type File struct{ id int32 }

// PageRead asks for one page: PageSize bytes of File at Off, a multiple of
// 4096.
type PageRead struct {
	File File
	Off  int64
}

// Page is a handle on one buffer the reader owns, holding one read's
// bytes. It is a value; copies name the same buffer and share its
// references.
type Page struct {
	slot int32
	gen  uint32
}

type slotState uint8

const (
	slotFree    slotState = iota
	slotReading           // handed to an engine, not finished
	slotDone              // finished; bytes (or error) ready
)

// slot is one page buffer's bookkeeping, guarded by DeviceReader.mu except
// where an engine reads fd/off/buf of a slot it was handed (set before the
// hand-off, unchanged until the slot is free again).
type slot struct {
	state slotState
	// awaited is set while a Wait blocks on this slot: waking waiters
	// only for the reads they wait for spares the wake-ups (a futex and
	// usually an IPI each) that dominated the CPU per read otherwise.
	awaited bool
	gen     uint32
	refs    int32
	file    int32
	fd      int
	off     int64
	buf     []byte
	n       int
	err     error
}

type openFile struct {
	path    string
	f       *os.File
	reading int // reads handed to an engine and not finished
}

type finished struct {
	slot int32
	n    int
	err  error
}

// readEngine carries reads to the kernel. submit hands it pages whose
// slots' fd/off/buf are set; it reports each through DeviceReader.finish exactly
// once. stop is called once nothing is in flight.
type readEngine interface {
	submit(pages []Page)
	stop()
}

// DeviceReader reads pages of files with O_DIRECT into buffers it owns,
// batched through io_uring or a pool of pread goroutines. See the package
// doc for the rules a caller follows.
type DeviceReader struct {
	opts    DeviceReaderOptions
	mem     []byte
	engine  readEngine
	kind    Engine
	warning string

	mu   sync.Mutex
	cond sync.Cond // broadcast when a read someone waits for finishes
	// draining is set while Close waits for the last read.
	draining     bool
	space        sync.Cond // broadcast when buffers come free and someone waits
	spaceWaiters int
	free         []int32 // buffers in slotFree
	slots        []slot
	files        []*openFile
	closed       bool

	reading, peak     int
	reads, bytes, bad uint64
	waits             uint64
	waited            time.Duration
	engineCPU         []atomic.Int64 // ns of user+sys CPU per engine thread
	syscalls          atomic.Uint64
}

// NewDeviceReader maps the reader's buffers and starts its engine.
func NewDeviceReader(opts DeviceReaderOptions) (*DeviceReader, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	size := opts.Buffers * opts.PageSize
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("device reader: mapping %d page buffers of %d bytes: %w", opts.Buffers, opts.PageSize, err)
	}
	r := &DeviceReader{
		opts:  opts,
		mem:   mem,
		free:  make([]int32, opts.Buffers),
		slots: make([]slot, opts.Buffers),
	}
	r.cond.L, r.space.L = &r.mu, &r.mu
	for i := range r.slots {
		r.slots[i].buf = mem[i*opts.PageSize : (i+1)*opts.PageSize : (i+1)*opts.PageSize]
		r.slots[i].gen = 1                      // so that a zero Page is never held
		r.free[i] = int32(opts.Buffers - 1 - i) // popped from the end: buffer 0 first
	}
	if opts.Engine != EnginePread {
		e, err := startURing(r)
		switch {
		case err == nil:
			r.engine, r.kind = e, EngineURing
		case opts.Engine == EngineURing:
			_ = unix.Munmap(mem)
			return nil, fmt.Errorf("device reader: %w", err)
		default:
			r.warning = fmt.Sprintf("io_uring unavailable (%v): reading with %d pread goroutines", err, opts.Depth)
		}
	}
	if r.engine == nil {
		r.engine, r.kind = startPread(r), EnginePread
	}
	return r, nil
}

// Engine is the engine the reader runs.
func (r *DeviceReader) Engine() Engine { return r.kind }

// Warning says why the reader runs a slower engine than asked for, if it
// does.
func (r *DeviceReader) Warning() string { return r.warning }

// PageSize is the size of every read and buffer.
func (r *DeviceReader) PageSize() int { return r.opts.PageSize }

// Open opens path for reading through the reader (O_DIRECT).
func (r *DeviceReader) Open(path string) (File, error) {
	var f *os.File
	var err error
	if r.opts.buffered {
		f, err = os.Open(path)
	} else {
		f, err = blockio.OpenDirect(path)
	}
	if err != nil {
		return File{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		f.Close()
		return File{}, ErrReaderClosed
	}
	r.files = append(r.files, &openFile{path: path, f: f})
	return File{id: int32(len(r.files) - 1)}, nil
}

// Adopt reads f, opened with O_DIRECT by the caller, through the reader,
// which closes it in CloseFile (or Close).
func (r *DeviceReader) Adopt(f *os.File) (File, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return File{}, ErrReaderClosed
	}
	r.files = append(r.files, &openFile{path: f.Name(), f: f})
	return File{id: int32(len(r.files) - 1)}, nil
}

// CloseFile closes a file opened by Open. It fails while reads of the file
// are in flight: wait for their pages first.
func (r *DeviceReader) CloseFile(f File) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	of, err := r.file(f)
	if err != nil {
		return err
	}
	if of.reading > 0 {
		return fmt.Errorf("closing %s: %d reads in flight", of.path, of.reading)
	}
	r.files[f.id] = nil
	if err := of.f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", of.path, err)
	}
	return nil
}

func (r *DeviceReader) file(f File) (*openFile, error) {
	if f.id < 0 || int(f.id) >= len(r.files) || r.files[f.id] == nil {
		return nil, fmt.Errorf("device reader: file %d is not open", f.id)
	}
	return r.files[f.id], nil
}

// ReadBatch starts reading reqs and fills pages[i] with the handle of
// reqs[i]'s buffer, holding one reference the caller must Release.
//
// Back-pressure: a batch takes all its buffers at once, blocking until
// that many are free, so concurrent callers never deadlock each other by
// each holding part of a batch. It can still wait forever for buffers that
// only its own caller would release after it returns; ctx and Close end
// such a wait with an error, and nothing is read or held then. A batch
// larger than Buffers is refused up front. Reads beyond Depth queue inside
// the engine until reads in flight finish.
func (r *DeviceReader) ReadBatch(ctx context.Context, reqs []PageRead, pages []Page) error {
	if len(pages) < len(reqs) {
		return fmt.Errorf("device reader: %d pages for %d reads", len(pages), len(reqs))
	}
	if len(reqs) > r.opts.Buffers {
		return fmt.Errorf("device reader: a batch of %d reads exceeds the %d buffers", len(reqs), r.opts.Buffers)
	}
	r.mu.Lock()
	if err := r.check(reqs); err != nil {
		r.mu.Unlock()
		return err
	}
	waited := len(r.free) < len(reqs)
	if waited && ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() {
			r.mu.Lock()
			r.space.Broadcast()
			r.mu.Unlock()
		})
		defer stop()
	}
	for len(r.free) < len(reqs) && !r.closed && ctx.Err() == nil {
		r.spaceWaiters++
		r.space.Wait()
		r.spaceWaiters--
	}
	switch {
	case r.closed:
		r.mu.Unlock()
		return ErrReaderClosed
	case len(r.free) < len(reqs):
		r.mu.Unlock()
		return ctx.Err()
	}
	if waited { // a file may have been closed meanwhile
		if err := r.check(reqs); err != nil {
			r.mu.Unlock()
			return err
		}
	}
	for i, q := range reqs {
		id := r.free[len(r.free)-1]
		r.free = r.free[:len(r.free)-1]
		of := r.files[q.File.id]
		s := &r.slots[id]
		s.state, s.refs, s.file, s.fd, s.off, s.n, s.err = slotReading, 1, q.File.id, int(of.f.Fd()), q.Off, 0, nil
		of.reading++
		pages[i] = Page{slot: id, gen: s.gen}
	}
	r.reading += len(reqs)
	r.peak = max(r.peak, r.reading)
	r.mu.Unlock()
	r.engine.submit(pages[:len(reqs)])
	return nil
}

// check validates requests; r.mu is held.
func (r *DeviceReader) check(reqs []PageRead) error {
	for _, q := range reqs {
		of, err := r.file(q.File)
		if err != nil {
			return err
		}
		if q.Off < 0 || q.Off%4096 != 0 {
			return fmt.Errorf("reading %s at %d: offset not a multiple of 4096", of.path, q.Off)
		}
	}
	return nil
}

// finish records reads the engine completed: the one place a slot leaves
// slotReading, so the counters change only here.
func (r *DeviceReader) finish(fs []finished) {
	r.mu.Lock()
	wake := false
	for _, f := range fs {
		s := &r.slots[f.slot]
		wake = wake || s.awaited
		s.awaited = false
		of := r.files[s.file]
		n, err := f.n, f.err
		if r.opts.Fault != nil {
			n, err = r.opts.Fault(of.path, s.off, n, err)
		}
		if err == nil && r.opts.FullPages && n < len(s.buf) {
			err = fmt.Errorf("short read: %d of %d bytes", n, len(s.buf))
		}
		if err != nil {
			s.err = fmt.Errorf("reading %s at %d: %w", of.path, s.off, err)
			r.bad++
		} else {
			s.n = n
			r.reads++
			r.bytes += uint64(n)
		}
		s.state = slotDone
		of.reading--
		r.reading--
		if s.refs == 0 {
			r.freeSlot(f.slot)
		}
	}
	if wake || r.draining && r.reading == 0 {
		r.cond.Broadcast()
	}
	r.mu.Unlock()
}

func (r *DeviceReader) freeSlot(i int32) {
	s := &r.slots[i]
	s.state, s.err = slotFree, nil
	s.gen++ // stale handles no longer match
	r.free = append(r.free, i)
	if r.spaceWaiters > 0 {
		r.space.Broadcast()
	}
}

// held returns p's slot, panicking when p no longer names a held buffer:
// a refcount bug would otherwise hand one caller another's bytes.
func (r *DeviceReader) held(p Page, what string) *slot {
	if p.slot < 0 || int(p.slot) >= len(r.slots) {
		panic(fmt.Sprintf("tier: DeviceReader.%s of page %d: no such buffer", what, p.slot))
	}
	s := &r.slots[p.slot]
	if s.gen != p.gen || s.refs <= 0 {
		panic(fmt.Sprintf("tier: DeviceReader.%s of page %d (generation %d) that is no longer held (released twice?)", what, p.slot, p.gen))
	}
	return s
}

// Wait blocks until p's read has finished and returns its bytes: PageSize
// of them, fewer at the end of the file (as pread), or the read's error,
// which names the file and offset. The slice is valid until p's last
// reference is released. Only waits that block are counted.
func (r *DeviceReader) Wait(p Page) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.held(p, "Wait")
	if s.state != slotDone {
		start := time.Now()
		for s.state != slotDone {
			s.awaited = true
			r.cond.Wait()
		}
		r.waits++
		r.waited += time.Since(start)
	}
	if s.err != nil {
		return nil, s.err
	}
	return s.buf[:s.n], nil
}

// Retain adds a reference to p, for a page several users share.
func (r *DeviceReader) Retain(p Page) {
	r.mu.Lock()
	defer r.mu.Unlock() // also when held panics
	r.held(p, "Retain").refs++
}

// Release drops a reference to p; the last one returns the buffer to the
// reader (once its read has finished, if it has not yet). Releasing a page
// not held panics.
func (r *DeviceReader) Release(p Page) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.held(p, "Release")
	s.refs--
	if s.refs == 0 && s.state == slotDone {
		r.freeSlot(p.slot)
	}
}

// DeviceReaderStats are a reader's counters since it was created.
type DeviceReaderStats struct {
	Engine string
	// Reads and Bytes count reads finished without error; Errors the rest.
	Reads, Bytes, Errors uint64
	// InFlight is reads handed to the engine and not finished; PeakInFlight
	// its highest value.
	InFlight, PeakInFlight int
	// Waits counts Wait calls that had to block, WaitTime their total.
	Waits    uint64
	WaitTime time.Duration
	// EngineCPU is the user+system CPU time (getrusage RUSAGE_THREAD) of
	// the io_uring engine's thread, sampled as it runs, or of the pread
	// workers' threads over each pread call. It includes submitting and
	// reaping, and for io_uring the completion work the kernel defers to
	// that thread; it does not include the callers' own CPU, the Go
	// runtime's (sysmon, waking threads), interrupt handling charged to
	// other threads, or io_uring worker threads (O_DIRECT reads on ext4
	// and xfs do not need them). ProbeDeviceReader reports the whole
	// process's figure beside it.
	EngineCPU time.Duration
	// Syscalls counts the engine's io_uring_enter or pread calls: reads per
	// call is how well submission and completion are batched.
	Syscalls uint64
}

// CPUPerRead is EngineCPU over the reads finished.
func (s DeviceReaderStats) CPUPerRead() time.Duration {
	if n := s.Reads + s.Errors; n > 0 {
		return s.EngineCPU / time.Duration(n)
	}
	return 0
}

// Stats returns the reader's counters.
func (r *DeviceReader) Stats() DeviceReaderStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := DeviceReaderStats{
		Engine: r.kind.String(), Reads: r.reads, Bytes: r.bytes, Errors: r.bad,
		InFlight: r.reading, PeakInFlight: r.peak, Waits: r.waits, WaitTime: r.waited,
	}
	st.Syscalls = r.syscalls.Load()
	for i := range r.engineCPU {
		st.EngineCPU += time.Duration(r.engineCPU[i].Load())
	}
	return st
}

// Close waits for the reads in flight to finish, stops the engine, closes
// the files and unmaps the buffers. ReadBatch calls waiting for buffers
// return ErrReaderClosed. No page's bytes may be used after Close.
func (r *DeviceReader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.space.Broadcast()
	r.draining = true
	for r.reading > 0 {
		r.cond.Wait()
	}
	r.mu.Unlock()
	r.engine.stop()
	var errs []error
	for _, of := range r.files {
		if of != nil {
			if err := of.f.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing %s: %w", of.path, err))
			}
		}
	}
	if err := unix.Munmap(r.mem); err != nil {
		errs = append(errs, fmt.Errorf("device reader: unmapping buffers: %w", err))
	}
	return errors.Join(errs...)
}

// threadCPU is the calling thread's user+system CPU time; the caller must
// be locked to its thread for successive values to mean anything.
func threadCPU() int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
