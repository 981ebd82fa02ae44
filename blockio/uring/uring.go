// Package uring owns one Linux io_uring instance, built on
// golang.org/x/sys/unix alone: setup, the ring mappings, io_uring_enter and
// registered (fixed) buffers, which spare each O_DIRECT read the pinning of
// its destination page. Registered files are left out: they would save one
// atomic reference count per read, tens of nanoseconds against the
// microseconds a read costs. It does only reads, because that is all the tier asks
// of it; the device reader above it decides what to read and when.
//
// # Ownership and concurrency
//
//   - A Ring is not safe for concurrent use: exactly one goroutine may call
//     its methods, from New to Close, and it must stay on one OS thread
//     (runtime.LockOSThread) all that time: the ring is set up with
//     SINGLE_ISSUER and DEFER_TASKRUN where the kernel has them (6.1 and
//     later), which bind it to the thread that created it. Completions are
//     then posted only while that thread is inside Enter, so a batch of
//     completions costs one wake-up instead of one each.
//   - The kernel reads the submission queue and writes the completion
//     queue through shared memory. The ring's tails and heads are published
//     with atomic stores and read with atomic loads (sync/atomic, which is
//     sequentially consistent on every platform Go supports), so an SQE is
//     fully written before the kernel can see the tail that covers it, and
//     a CQE is fully read before the head that frees it is stored.
//   - No Go pointer is ever stored in kernel-visible memory: a request's
//     user data is an integer the caller chooses (an index), and buffers
//     handed to the kernel must be memory the caller mapped outside the Go
//     heap (mmap), valid until the read completes.
//   - The caller keeps at most Entries reads in flight; the completion
//     queue is twice that size, so it cannot overflow.
package uring

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kernel ABI constants (include/uapi/linux/io_uring.h).
const (
	opRead      = 22 // IORING_OP_READ
	opReadFixed = 4  // IORING_OP_READ_FIXED

	setupCQSize       = 1 << 3
	setupSubmitAll    = 1 << 7
	setupCoopTaskrun  = 1 << 8
	setupSingleIssuer = 1 << 12
	setupDeferTaskrun = 1 << 13
	featSingleMmap    = 1 << 0
	enterGetEvents    = 1 << 0
	offSQRing         = 0
	offCQRing         = 0x8000000
	offSQEs           = 0x10000000
	registerBuffers   = 0
)

type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

// sqe is struct io_uring_sqe for the fields a read uses.
type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	rwFlags     uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	pad         uint64
}

type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

func init() {
	// The layouts are the kernel's; a mistake here corrupts requests.
	if unsafe.Sizeof(params{}) != 120 || unsafe.Sizeof(sqe{}) != 64 || unsafe.Sizeof(cqe{}) != 16 {
		panic("uring: kernel struct layout mismatch")
	}
}

// ErrUnavailable is wrapped by New's error when this host cannot run
// io_uring at all (no syscall, forbidden by seccomp or by
// /proc/sys/kernel/io_uring_disabled), as opposed to a failure of this
// particular setup.
var ErrUnavailable = errors.New("io_uring unavailable")

// Options shape a ring. Zero fields take defaults.
type Options struct {
	// Entries is the submission queue size, the most reads in flight
	// (rounded up to a power of two by the kernel; default 64).
	Entries int
	// Buffers, when set, are registered for READ_FIXED: reads whose
	// destination lies inside one of them skip pinning pages per read.
	// Each must be mmap'd memory, at most 1 GiB, valid until Close.
	Buffers [][]byte
}

// Ring is one io_uring instance. See the package doc for who may call it.
type Ring struct {
	fd              int
	sqMem, cqMem    []byte
	sqesMem         []byte
	sqHead, sqTail  *uint32
	sqMask          uint32
	sqArray         []uint32
	sqes            []sqe
	cqHead, cqTail  *uint32
	cqMask          uint32
	cqes            []cqe
	entries         uint32
	pendingTail     uint32 // local tail: SQEs prepared but not yet published
	toSubmit        uint32
	buffers         [][]byte
	flags           uint32
	fixedBufsFailed error
}

// Disabled reports whether /proc/sys/kernel/io_uring_disabled forbids
// io_uring for this process (2: for everyone; 1: for all but members of
// kernel.io_uring_group, which New finds out by trying).
func Disabled() (bool, error) {
	b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled")
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // older kernels have no switch
	}
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(b)) == "2", nil
}

// New sets up a ring. Its error wraps ErrUnavailable when io_uring cannot
// be used on this host at all.
func New(opts Options) (*Ring, error) {
	if opts.Entries <= 0 {
		opts.Entries = 64
	}
	if off, err := Disabled(); err == nil && off {
		return nil, fmt.Errorf("%w: kernel.io_uring_disabled = 2", ErrUnavailable)
	}
	// Newer flags first: DEFER_TASKRUN (6.1) lets completions be posted
	// only when this thread asks, in batches; older kernels refuse unknown
	// flags with EINVAL, so fall back step by step.
	var fd int
	var p params
	var err error
	for _, flags := range []uint32{
		setupCQSize | setupSubmitAll | setupCoopTaskrun | setupSingleIssuer | setupDeferTaskrun,
		setupCQSize | setupSubmitAll | setupCoopTaskrun,
		setupCQSize,
	} {
		p = params{flags: flags, cqEntries: uint32(2 * opts.Entries)}
		fd, err = setup(uint32(opts.Entries), &p)
		if err != unix.EINVAL {
			break
		}
	}
	switch {
	case err == unix.ENOSYS || err == unix.EPERM || err == unix.EACCES:
		return nil, fmt.Errorf("%w: io_uring_setup: %v", ErrUnavailable, err)
	case err != nil:
		return nil, fmt.Errorf("io_uring_setup(%d entries): %w", opts.Entries, err)
	}
	r := &Ring{fd: fd, entries: p.sqEntries, flags: p.flags}
	if err := r.mapRings(&p); err != nil {
		r.Close()
		return nil, err
	}
	if len(opts.Buffers) > 0 {
		iov := make([]unix.Iovec, len(opts.Buffers))
		for i, b := range opts.Buffers {
			iov[i].Base = &b[0]
			iov[i].SetLen(len(b))
		}
		// Pinning can fail under RLIMIT_MEMLOCK; plain READ still works,
		// at the cost of pinning each buffer per read.
		if err := r.register(registerBuffers, unsafe.Pointer(&iov[0]), uint32(len(iov))); err != nil {
			r.fixedBufsFailed = fmt.Errorf("registering %d buffers: %w", len(iov), err)
		} else {
			r.buffers = opts.Buffers
		}
	}
	return r, nil
}

func setup(entries uint32, p *params) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

func (r *Ring) register(op uint32, arg unsafe.Pointer, n uint32) error {
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), uintptr(op), uintptr(arg), uintptr(n), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func (r *Ring) mapRings(p *params) error {
	sqSize := int(p.sqOff.array + p.sqEntries*4)
	cqSize := int(p.cqOff.cqes + p.cqEntries*uint32(unsafe.Sizeof(cqe{})))
	single := p.features&featSingleMmap != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	var err error
	r.sqMem, err = unix.Mmap(r.fd, offSQRing, sqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mapping the io_uring submission ring: %w", err)
	}
	cqMem := r.sqMem
	if !single {
		r.cqMem, err = unix.Mmap(r.fd, offCQRing, cqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return fmt.Errorf("mapping the io_uring completion ring: %w", err)
		}
		cqMem = r.cqMem
	}
	r.sqesMem, err = unix.Mmap(r.fd, offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(sqe{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mapping the io_uring SQE array: %w", err)
	}
	r.sqHead = (*uint32)(unsafe.Pointer(&r.sqMem[p.sqOff.head]))
	r.sqTail = (*uint32)(unsafe.Pointer(&r.sqMem[p.sqOff.tail]))
	r.sqMask = *(*uint32)(unsafe.Pointer(&r.sqMem[p.sqOff.ringMask]))
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Pointer(&r.sqMem[p.sqOff.array])), p.sqEntries)
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&r.sqesMem[0])), p.sqEntries)
	r.cqHead = (*uint32)(unsafe.Pointer(&cqMem[p.cqOff.head]))
	r.cqTail = (*uint32)(unsafe.Pointer(&cqMem[p.cqOff.tail]))
	r.cqMask = *(*uint32)(unsafe.Pointer(&cqMem[p.cqOff.ringMask]))
	r.cqes = unsafe.Slice((*cqe)(unsafe.Pointer(&cqMem[p.cqOff.cqes])), p.cqEntries)
	r.pendingTail = atomic.LoadUint32(r.sqTail)
	return nil
}

// Entries is the submission queue size the kernel granted.
func (r *Ring) Entries() int { return int(r.entries) }

// FixedBuffers reports whether the buffers given to New were registered,
// and if not, why.
func (r *Ring) FixedBuffers() (bool, error) { return r.buffers != nil, r.fixedBufsFailed }

// Read is one read request.
type Read struct {
	Fd int
	// Buf receives the data; it must stay mapped until the completion is
	// reaped and must not be Go heap memory.
	Buf []byte
	Off int64
	// UserData comes back with the completion.
	UserData uint64
}

// Prepare queues reads in the submission queue, returning how many fitted
// (the rest wait for free slots). They reach the kernel at the next Enter.
func (r *Ring) Prepare(reads []Read) int {
	free := r.entries - (r.pendingTail - atomic.LoadUint32(r.sqHead))
	n := min(uint32(len(reads)), free)
	for _, rd := range reads[:n] {
		idx := r.pendingTail & r.sqMask
		s := &r.sqes[idx]
		*s = sqe{opcode: opRead, fd: int32(rd.Fd), off: uint64(rd.Off), len: uint32(len(rd.Buf)), userData: rd.UserData}
		s.addr = uint64(uintptr(unsafe.Pointer(&rd.Buf[0])))
		if bi, ok := r.fixedIndex(rd.Buf); ok {
			s.opcode = opReadFixed
			s.bufIndex = bi
		}
		r.sqArray[idx] = idx
		r.pendingTail++
	}
	r.toSubmit += n
	return int(n)
}

func (r *Ring) fixedIndex(b []byte) (uint16, bool) {
	p := uintptr(unsafe.Pointer(&b[0]))
	for i, rb := range r.buffers {
		lo := uintptr(unsafe.Pointer(&rb[0]))
		if p >= lo && p+uintptr(len(b)) <= lo+uintptr(len(rb)) {
			return uint16(i), true
		}
	}
	return 0, false
}

// Enter publishes the prepared reads and, when minComplete > 0, waits
// until at least that many completions are ready. It returns how many reads
// the kernel took. An interrupted wait (EINTR, which Go's preemption
// signals cause) is retried.
func (r *Ring) Enter(minComplete int) (int, error) {
	// The store publishes the SQEs written before it (see package doc).
	atomic.StoreUint32(r.sqTail, r.pendingTail)
	var flags uintptr
	if minComplete > 0 {
		flags = enterGetEvents
	}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(r.toSubmit), uintptr(minComplete), flags, 0, 0)
		if errno == 0 {
			// Fewer than offered means the kernel lacked resources: the
			// rest stay queued and the next Enter offers them again. A
			// wait interrupted after submitting also returns here, with
			// fewer completions than asked for: callers reap what there is.
			r.toSubmit -= uint32(n)
			return int(n), nil
		}
		if errno == unix.EINTR {
			// Nothing was submitted by a call that returns EINTR: the
			// kernel reports submissions in preference to a wait error.
			continue
		}
		return 0, fmt.Errorf("io_uring_enter: %w", errno)
	}
}

// Completion is one finished read: Res is the byte count or a negative
// errno, as from pread.
type Completion struct {
	UserData uint64
	Res      int32
}

// Reap moves the ready completions into out (as many as fit) without
// waiting and returns how many it moved.
func (r *Ring) Reap(out []Completion) int {
	head := *r.cqHead // only this goroutine writes the head
	tail := atomic.LoadUint32(r.cqTail)
	n := 0
	for head != tail && n < len(out) {
		c := &r.cqes[head&r.cqMask]
		out[n] = Completion{UserData: c.userData, Res: c.res}
		head++
		n++
	}
	// The store tells the kernel those CQE slots are free; the reads of
	// them above happen before it.
	atomic.StoreUint32(r.cqHead, head)
	return n
}

// Close unmaps the rings and closes the ring. Reads in flight are
// cancelled by the kernel as it tears the ring down; their buffers must
// stay mapped until Close returns.
func (r *Ring) Close() error {
	for _, m := range [][]byte{r.sqesMem, r.cqMem, r.sqMem} {
		if m != nil {
			_ = unix.Munmap(m)
		}
	}
	r.sqesMem, r.cqMem, r.sqMem = nil, nil, nil
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	if err != nil {
		return fmt.Errorf("closing io_uring: %w", err)
	}
	return nil
}
