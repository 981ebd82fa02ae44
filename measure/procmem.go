package measure

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// MemPeaks are the process's memory high-water marks, in bytes.
type MemPeaks struct {
	// VmHWM is the kernel's peak resident set size.
	VmHWM uint64
	// RssAnon and RssFile are the largest anonymous and file-backed
	// resident sizes the sampler saw.
	RssAnon, RssFile uint64
	// DRAM is the largest RssAnon plus page cache held by the watched
	// files seen in one sample: what the process really keeps in DRAM,
	// spilled-but-cached bytes included.
	DRAM uint64
	// FileCache is the largest page cache held by the watched files.
	FileCache uint64
	// AnonHugePages is the most anonymous memory seen backed by
	// transparent hugepages.
	AnonHugePages uint64
}

// ReadProcStatus returns the process's current VmHWM, RssAnon and RssFile.
func ReadProcStatus() (MemPeaks, error) {
	r, err := openStatusReader()
	if err != nil {
		return MemPeaks{}, err
	}
	defer r.close()
	return r.read()
}

// statusReader reads VmHWM, RssAnon and RssFile from /proc/self/status
// through one open file and one buffer: the sampler reads it every 20 ms
// for a whole seal, and procfs's parse of every field (a fresh open, a
// map and strings for ~55 lines) cost about 1% of a two-core seal's CPU.
type statusReader struct {
	f   *os.File
	buf []byte
}

func openStatusReader() (*statusReader, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil, err
	}
	return &statusReader{f: f, buf: make([]byte, 4096)}, nil
}

// read re-reads the file from its start (the kernel renders it afresh at
// each read from offset 0).
func (r *statusReader) read() (MemPeaks, error) {
	for {
		n, err := r.f.ReadAt(r.buf, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return MemPeaks{}, fmt.Errorf("/proc/self/status: %w", err)
		}
		if n == len(r.buf) { // it may have been cut short: read it whole
			r.buf = make([]byte, 2*len(r.buf))
			continue
		}
		return parseStatus(r.buf[:n])
	}
}

func (r *statusReader) close() { r.f.Close() }

// parseStatus takes VmHWM, RssAnon and RssFile (in kB) out of the text of
// /proc/PID/status without allocating.
func parseStatus(b []byte) (MemPeaks, error) {
	var m MemPeaks
	found := 0
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		var dst *uint64
		switch {
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &m.VmHWM
		case bytes.HasPrefix(line, []byte("RssAnon:")):
			dst = &m.RssAnon
		case bytes.HasPrefix(line, []byte("RssFile:")):
			dst = &m.RssFile
		default:
			continue
		}
		v, ok := parseKBBytes(line[bytes.IndexByte(line, ':')+1:])
		if !ok {
			return MemPeaks{}, fmt.Errorf("/proc/self/status: unexpected line %q", line)
		}
		*dst = v
		found++
	}
	if found != 3 {
		return MemPeaks{}, errors.New("/proc/self/status: no VmHWM, RssAnon or RssFile line")
	}
	return m, nil
}

// parseKBBytes reads "   123456 kB" as bytes.
func parseKBBytes(b []byte) (uint64, bool) {
	b = bytes.TrimSpace(b)
	digits, ok := bytes.CutSuffix(b, []byte(" kB"))
	if !ok || len(digits) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n << 10, true
}

// AnonHugePages returns how much of the process's anonymous memory is
// backed by transparent hugepages. procfs (v0.22) parses smaps_rollup but
// drops its AnonHugePages line, so this one field is read by hand.
func AnonHugePages() (uint64, error) {
	f, err := os.Open("/proc/self/smaps_rollup")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return readSmapsField(f, "AnonHugePages")
}

// parseKB reads "  123456 kB" as bytes.
func parseKB(s string) (uint64, error) {
	f := strings.Fields(s)
	if len(f) != 2 || f[1] != "kB" {
		return 0, fmt.Errorf("unexpected value %q", s)
	}
	n, err := strconv.ParseUint(f[0], 10, 64)
	return n << 10, err
}

func readSmapsField(r io.Reader, field string) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if ok && key == field {
			return parseKB(val)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s field", field)
}

// PageCacheBytes returns how many bytes of the file at path are resident in
// the page cache: spilled bytes that are still cached are not savings.
func PageCacheBytes(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Size() == 0 {
		return 0, nil
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, fmt.Errorf("page cache of %s: %w", path, err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	// A 32 GiB layer has 8M pages: ask in chunks rather than allocate a
	// byte per page.
	var vec [8192]byte
	var n uint64
	for off := 0; off < len(m); off += len(vec) * page {
		end := min(off+len(vec)*page, len(m))
		// x/sys has no Mincore wrapper; the raw call is one line.
		if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[off])), uintptr(end-off), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
			return 0, fmt.Errorf("page cache of %s: mincore: %w", path, e)
		}
		for _, v := range vec[:(end-off+page-1)/page] {
			if v&1 != 0 {
				n += uint64(page)
			}
		}
	}
	return min(n, uint64(st.Size())), nil
}

// MemSampler samples /proc/self/status in the background, keeping the
// largest RssAnon and RssFile seen: the kernel keeps a high-water mark only
// for the total.
type MemSampler struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	peak  MemPeaks
	files func() []string
	// status is /proc/self/status, kept open; nil if it could not be
	// opened (no samples then).
	status *statusReader
	n      int // samples taken
	// cached is the files' page cache at the last scan; the next scan is
	// due at nextScan. mincore costs time in proportion to the files' size
	// (about 60 ms per 32 GiB), so scans are spaced ten times their own
	// duration apart: the sampler never takes more than a tenth of a core.
	cached   uint64
	nextScan time.Time
}

// StartMemSampler samples every interval until Stop. files, if not nil,
// lists the files whose page cache counts as the process's DRAM (layer
// and spill files); it is called at each sample.
func StartMemSampler(every time.Duration, files func() []string) *MemSampler {
	s := &MemSampler{stop: make(chan struct{}), files: files}
	s.status, _ = openStatusReader()
	s.sample()
	s.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.sample()
			case <-s.stop:
				return
			}
		}
	})
	return s
}

func (s *MemSampler) sample() {
	if s.status == nil {
		return
	}
	m, err := s.status.read()
	if err != nil {
		return
	}
	// smaps_rollup walks every mapping's page tables: about 5 ms of CPU a
	// read with a 1 GiB pool (a CPU profile of 8 x 64 MiB sectors, 4
	// layers: 0.64 s of 41 s reading it one sample in ten, 1.6% of what
	// the hashing could have had). The pool is mapped and populated at the
	// start, so it is read one sample in ten for the first hundred, then
	// one in a hundred.
	var huge uint64
	if s.n%10 == 0 && (s.n < 100 || s.n%100 == 0) {
		huge, _ = AnonHugePages()
	}
	s.n++
	if now := time.Now(); s.files != nil && !now.Before(s.nextScan) {
		var cached uint64
		for _, f := range s.files() {
			n, _ := PageCacheBytes(f) // a file may vanish (renamed) meanwhile
			cached += n
		}
		s.cached = cached
		// At most 2% of a core: mincore over a wide batch's layer files
		// took 7% of a seal's CPU at 10%.
		s.nextScan = now.Add(50 * time.Since(now))
	}
	cached := s.cached
	s.mu.Lock()
	s.peak.VmHWM = max(s.peak.VmHWM, m.VmHWM)
	s.peak.RssAnon = max(s.peak.RssAnon, m.RssAnon)
	s.peak.RssFile = max(s.peak.RssFile, m.RssFile)
	s.peak.FileCache = max(s.peak.FileCache, cached)
	s.peak.DRAM = max(s.peak.DRAM, m.RssAnon+cached)
	s.peak.AnonHugePages = max(s.peak.AnonHugePages, huge)
	s.mu.Unlock()
}

// IOCounters are the process's totals from /proc/self/io and getrusage.
type IOCounters struct {
	// ReadBytes and WriteBytes are bytes the process made the block layer
	// read and write: page-cache hits do not count.
	ReadBytes, WriteBytes uint64
	// MajorFaults are page faults that had to wait for the device.
	MajorFaults uint64
}

// ReadIOCounters reads the process's I/O totals (/proc/self/io and the
// major faults of /proc/self/stat).
func ReadIOCounters() (IOCounters, error) {
	p, err := procfs.Self()
	if err != nil {
		return IOCounters{}, err
	}
	io, err := p.IO()
	if err != nil {
		return IOCounters{}, fmt.Errorf("/proc/self/io: %w", err)
	}
	st, err := p.NewStat()
	if err != nil {
		return IOCounters{}, fmt.Errorf("/proc/self/stat: %w", err)
	}
	return IOCounters{ReadBytes: io.ReadBytes, WriteBytes: io.WriteBytes, MajorFaults: uint64(st.MajFlt)}, nil
}

// Sub returns the counts from earlier to c.
func (c IOCounters) Sub(earlier IOCounters) IOCounters {
	return IOCounters{
		ReadBytes:   c.ReadBytes - earlier.ReadBytes,
		WriteBytes:  c.WriteBytes - earlier.WriteBytes,
		MajorFaults: c.MajorFaults - earlier.MajorFaults,
	}
}

// Stop takes a last sample and returns the peaks.
func (s *MemSampler) Stop() MemPeaks {
	close(s.stop)
	s.wg.Wait()
	s.sample()
	if s.status != nil {
		s.status.close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// ResetPeakRSS resets the kernel's VmHWM for this process (clear_refs 5,
// Linux 4.0+), so that a run's peak is its own and not an earlier run's in
// the same process (a bench sweep). Best effort: an old kernel keeps the
// process-wide peak.
func ResetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
