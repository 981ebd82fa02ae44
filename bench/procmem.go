package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MemPeaks are the process's memory high-water marks, in bytes.
type MemPeaks struct {
	// VmHWM is the kernel's peak resident set size.
	VmHWM uint64
	// RssAnon and RssFile are the largest anonymous and file-backed
	// resident sizes the sampler saw.
	RssAnon, RssFile uint64
}

// readStatus parses the kB fields of a /proc/<pid>/status.
func readStatus(r io.Reader) (MemPeaks, error) {
	var m MemPeaks
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *uint64
		switch key {
		case "VmHWM":
			dst = &m.VmHWM
		case "RssAnon":
			dst = &m.RssAnon
		case "RssFile":
			dst = &m.RssFile
		default:
			continue
		}
		kb, err := parseKB(val)
		if err != nil {
			return m, fmt.Errorf("status field %s: %w", key, err)
		}
		*dst = kb
	}
	return m, sc.Err()
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

// ReadProcStatus returns the process's current VmHWM, RssAnon and RssFile.
func ReadProcStatus() (MemPeaks, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return MemPeaks{}, err
	}
	defer f.Close()
	return readStatus(f)
}

// AnonHugePages returns how much of the process's anonymous memory is
// backed by transparent hugepages.
func AnonHugePages() (uint64, error) {
	f, err := os.Open("/proc/self/smaps_rollup")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return readSmapsField(f, "AnonHugePages")
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
	vec := make([]byte, (len(m)+page-1)/page)
	// x/sys has no Mincore wrapper; the raw call is one line.
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		return 0, fmt.Errorf("page cache of %s: mincore: %w", path, e)
	}
	var n uint64
	for _, v := range vec {
		if v&1 != 0 {
			n += uint64(page)
		}
	}
	return min(n, uint64(st.Size())), nil
}

// MemSampler samples /proc/self/status in the background, keeping the
// largest RssAnon and RssFile seen: the kernel keeps a high-water mark only
// for the total.
type MemSampler struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	peak MemPeaks
}

// StartMemSampler samples every interval until Stop.
func StartMemSampler(every time.Duration) *MemSampler {
	s := &MemSampler{stop: make(chan struct{})}
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
	m, err := ReadProcStatus()
	if err != nil {
		return
	}
	s.mu.Lock()
	s.peak.VmHWM = max(s.peak.VmHWM, m.VmHWM)
	s.peak.RssAnon = max(s.peak.RssAnon, m.RssAnon)
	s.peak.RssFile = max(s.peak.RssFile, m.RssFile)
	s.mu.Unlock()
}

// Stop takes a last sample and returns the peaks.
func (s *MemSampler) Stop() MemPeaks {
	close(s.stop)
	s.wg.Wait()
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}
