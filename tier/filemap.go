package tier

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PageSize is the unit in which spilled bytes are read back.
const PageSize = 4096

// FileMap is a read-only shared mapping of a layer file, through which the
// spill tier reads labels that are no longer in DRAM. Pages come in on
// demand (or on WillNeed) and leave on Evict: the mapping never keeps the
// file in memory by itself.
type FileMap struct {
	path string
	f    *os.File
	data []byte
	// pidfd is this process's pidfd for process_madvise, opened on first
	// use (0: not yet).
	pidfd int
}

// MapFile maps size bytes of the file at path read-only. The file must be
// at least size bytes long (layer files are preallocated), so reads through
// the mapping cannot fault past its end.
func MapFile(path string, size int64) (*FileMap, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("spill: %w", err)
	}
	if st.Size() < size {
		f.Close()
		return nil, fmt.Errorf("spill: %s is %d bytes, want at least %d", path, st.Size(), size)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("spill: mapping %s: %w", path, err)
	}
	// Parent reads are random: kernel read-ahead would only fill the page
	// cache with neighbours nobody asked for. The same holds for ReadAt's
	// promotions: read-ahead past each chunk is still in flight when the
	// chunk is dropped, and stays cached (measured: 34 of 64 MiB promoted).
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM); err != nil {
		unix.Munmap(data)
		f.Close()
		return nil, fmt.Errorf("spill: advising %s: %w", path, err)
	}
	if err := unix.Madvise(data, unix.MADV_RANDOM); err != nil {
		unix.Munmap(data)
		f.Close()
		return nil, fmt.Errorf("spill: advising %s: %w", path, err)
	}
	return &FileMap{path: path, f: f, data: data}, nil
}

// Bytes returns the mapping. It is valid until Close.
func (m *FileMap) Bytes() []byte { return m.data }

// Path is the mapped file's name when it was mapped.
func (m *FileMap) Path() string { return m.path }

// WillNeed starts reading the pages covering [off, off+n) without waiting
// for them.
func (m *FileMap) WillNeed(off, n int64) error {
	start := off &^ (PageSize - 1)
	end := min((off+n+PageSize-1)&^(PageSize-1), int64(len(m.data)))
	if err := unix.Madvise(m.data[start:end], unix.MADV_WILLNEED); err != nil {
		return fmt.Errorf("spill: prefetching %s at %d: %w", m.path, off, err)
	}
	return nil
}

// Evict drops [off, off+n) from this mapping and from the page cache, so
// the next read of it goes to the device. The range must hold no unwritten
// data (layer blocks are written back before they are spilled).
func (m *FileMap) Evict(off, n int64) error {
	start := off &^ (PageSize - 1)
	end := min((off+n+PageSize-1)&^(PageSize-1), int64(len(m.data)))
	if end <= start {
		return nil
	}
	// Unmapping from our page tables first: the page cache will not drop
	// pages a process still maps.
	if err := unix.Madvise(m.data[start:end], unix.MADV_DONTNEED); err != nil {
		return fmt.Errorf("spill: evicting %s at %d: %w", m.path, off, err)
	}
	if err := unix.Fadvise(int(m.f.Fd()), start, end-start, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("spill: evicting %s at %d: %w", m.path, off, err)
	}
	return nil
}

// ReadAt copies [off, off+len(p)) of the file into p with sequential reads
// and drops what it read from the page cache: promoting a spilled range
// into DRAM must not leave a second copy behind.
func (m *FileMap) ReadAt(p []byte, off int64) error {
	if _, err := m.f.ReadAt(p, off); err != nil {
		return fmt.Errorf("spill: reading %d bytes at %d of %s: %w", len(p), off, m.path, err)
	}
	if err := unix.Fadvise(int(m.f.Fd()), off, int64(len(p)), unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("spill: dropping %s at %d from the page cache: %w", m.path, off, err)
	}
	return nil
}

// Close unmaps the file and drops whatever of it is still cached.
func (m *FileMap) Close() error {
	if m.data == nil {
		return nil
	}
	if m.pidfd > 0 {
		unix.Close(m.pidfd)
		m.pidfd = 0
	}
	err := errors.Join(
		unix.Munmap(m.data),
		unix.Fadvise(int(m.f.Fd()), 0, 0, unix.FADV_DONTNEED),
		m.f.Close(),
	)
	m.data = nil
	if err != nil {
		return fmt.Errorf("spill: closing %s: %w", m.path, err)
	}
	return nil
}

// maxAdviseBatch is the most pages one process_madvise call takes (IOV_MAX).
const maxAdviseBatch = 1024

// AdvisePages applies advice (unix.MADV_WILLNEED to start reading,
// unix.MADV_PAGEOUT to drop clean pages from memory) to single pages of
// the mapping, many per system call: the spill tier's reads are single
// scattered pages, and one call per page costs more CPU than the hashing
// they serve. Pages are page indexes into the mapping.
func (m *FileMap) AdvisePages(pages []int64, advice int) error {
	if m.pidfd == 0 {
		fd, err := unix.PidfdOpen(os.Getpid(), 0)
		if err != nil {
			return m.advisePagesOneByOne(pages, advice)
		}
		m.pidfd = fd
	}
	var iov [maxAdviseBatch]unix.Iovec
	for len(pages) > 0 {
		n := min(len(pages), maxAdviseBatch)
		for i, pg := range pages[:n] {
			iov[i].Base = &m.data[pg*PageSize]
			iov[i].SetLen(PageSize)
		}
		_, _, e := unix.Syscall6(unix.SYS_PROCESS_MADVISE, uintptr(m.pidfd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n), uintptr(advice), 0, 0)
		if e == unix.ENOSYS || e == unix.EINVAL || e == unix.EPERM {
			return m.advisePagesOneByOne(pages, advice)
		}
		if e != 0 {
			return fmt.Errorf("spill: advising %d pages of %s: %w", n, m.path, e)
		}
		pages = pages[n:]
	}
	return nil
}

// advisePagesOneByOne is AdvisePages for kernels without process_madvise.
func (m *FileMap) advisePagesOneByOne(pages []int64, advice int) error {
	for _, pg := range pages {
		var err error
		if advice == unix.MADV_WILLNEED {
			err = m.WillNeed(pg*PageSize, PageSize)
		} else {
			err = m.Evict(pg*PageSize, PageSize)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
