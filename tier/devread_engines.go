package tier

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/pc1-tiered/pc1-tiered/blockio/uring"
)

// uringEngine owns one ring from one goroutine locked to its thread (the
// ring is bound to the thread that creates it). Callers queue slots; the
// goroutine submits them in batches and reaps completions in batches of at
// least Reap, so a wake-up serves many reads.
//
// Measured on the development VM (2 vCPUs shared with other work, 4 KiB
// O_DIRECT random reads, depth 64, reap >= 16): the ring driven by one
// locked goroutine alone costs about what fio does (3.7-3.9 us of CPU per
// read against fio's 3-4 us at that load); through the reader, with the
// consumer on another goroutine, 6-7 us. The difference is the Go
// runtime, not the kernel's read path: while this goroutine sleeps in
// io_uring_enter with the other P busy, sysmon keeps retaking its P
// (sysmon alone took ~14% of the process's CPU in perf), and every wake of
// a waiting consumer is a futex wake and an IPI, which a VM pays dearly.
// Deeper queues with bigger reaps amortize both (depth 128, reap >= 32:
// 3.8-6 us).
type uringEngine struct {
	r     *DeviceReader
	mu    sync.Mutex
	queue []int32
	kick  chan struct{} // wakes an idle loop; capacity 1
	quit  chan struct{}
	done  chan struct{}
}

func startURing(r *DeviceReader) (*uringEngine, error) {
	e := &uringEngine{r: r, kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	r.engineCPU = make([]atomic.Int64, 1)
	ready := make(chan error)
	go e.loop(ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return e, nil
}

func (e *uringEngine) submit(pages []Page) {
	e.mu.Lock()
	for _, p := range pages {
		e.queue = append(e.queue, p.slot)
	}
	e.mu.Unlock()
	select {
	case e.kick <- struct{}{}:
	default: // a wake-up is already pending
	}
}

func (e *uringEngine) stop() {
	close(e.quit)
	<-e.done
}

func (e *uringEngine) loop(ready chan<- error) {
	defer close(e.done)
	// Never unlocked: the thread exits with this goroutine, and no other
	// goroutine may ever run on a thread a ring is bound to.
	runtime.LockOSThread()
	r := e.r
	// Registered buffers spare each read pinning its page; the kernel
	// takes at most 1 GiB per buffer.
	var bufs [][]byte
	for off := 0; off < len(r.mem); off += 1 << 30 {
		bufs = append(bufs, r.mem[off:min(off+1<<30, len(r.mem))])
	}
	ring, err := uring.New(uring.Options{Entries: r.opts.Depth, Buffers: bufs})
	ready <- err
	if err != nil {
		return
	}
	defer ring.Close()
	cpu0 := threadCPU()
	depth := min(r.opts.Depth, ring.Entries())
	reads := make([]uring.Read, depth)
	cs := make([]uring.Completion, 2*depth)
	fs := make([]finished, 0, 2*depth)
	var pending []int32
	inflight := 0
	for iter := 1; ; iter++ {
		e.mu.Lock()
		pending = append(pending, e.queue...)
		e.queue = e.queue[:0]
		e.mu.Unlock()
		if len(pending) == 0 && inflight == 0 {
			r.engineCPU[0].Store(threadCPU() - cpu0)
			select {
			case <-e.kick:
				continue
			case <-e.quit:
				return
			}
		}
		n := min(len(pending), depth-inflight)
		for i, s := range pending[:n] {
			sl := &r.slots[s] // fd, off, buf are fixed while the slot is reading
			reads[i] = uring.Read{Fd: sl.fd, Buf: sl.buf, Off: sl.off, UserData: uint64(s)}
		}
		took := ring.Prepare(reads[:n])
		pending = append(pending[:0], pending[took:]...)
		inflight += took
		r.syscalls.Add(1)
		if _, err := ring.Enter(min(r.opts.Reap, inflight)); err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EBUSY) {
			// Only a broken ring or a bug gets here, and the reads in
			// flight could never be reaped: failing loudly beats hanging.
			panic(fmt.Sprintf("tier: device reader: %v", err))
		}
		k := ring.Reap(cs)
		if k > 0 {
			inflight -= k
			fs = fs[:0]
			for _, c := range cs[:k] {
				f := finished{slot: int32(c.UserData)}
				if c.Res < 0 {
					f.err = unix.Errno(-c.Res)
				} else {
					f.n = int(c.Res)
				}
				fs = append(fs, f)
			}
			r.finish(fs)
		}
		if iter%16 == 0 { // getrusage costs about one read's CPU
			r.engineCPU[0].Store(threadCPU() - cpu0)
		}
	}
}

// preadEngine keeps Depth goroutines, each doing one blocking pread at a
// time.
type preadEngine struct {
	r    *DeviceReader
	work chan int32 // capacity Buffers, so submit never blocks
	wg   sync.WaitGroup
}

func startPread(r *DeviceReader) *preadEngine {
	e := &preadEngine{r: r, work: make(chan int32, r.opts.Buffers)}
	r.engineCPU = make([]atomic.Int64, r.opts.Depth)
	for g := range r.opts.Depth {
		e.wg.Add(1)
		go e.worker(g)
	}
	return e
}

func (e *preadEngine) submit(pages []Page) {
	for _, p := range pages {
		e.work <- p.slot
	}
}

func (e *preadEngine) stop() {
	close(e.work)
	e.wg.Wait()
}

func (e *preadEngine) worker(g int) {
	defer e.wg.Done()
	var fs [1]finished
	for s := range e.work {
		sl := &e.r.slots[s]
		// Locked only around the read so that the two RUSAGE_THREAD
		// samples are of the thread that did it; a worker locked for good
		// would cost a thread hand-off at every channel receive (measured:
		// ~80 us of CPU per read instead of ~30).
		runtime.LockOSThread()
		cpu0 := threadCPU()
		e.r.syscalls.Add(1)
		n, err := unix.Pread(sl.fd, sl.buf, sl.off)
		for err == unix.EINTR {
			n, err = unix.Pread(sl.fd, sl.buf, sl.off)
		}
		e.r.engineCPU[g].Add(max(threadCPU()-cpu0, 0))
		runtime.UnlockOSThread()
		fs[0] = finished{slot: s, n: max(n, 0), err: err}
		e.r.finish(fs[:])
	}
}
