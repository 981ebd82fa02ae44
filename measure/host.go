package measure

import (
	"runtime"
	"slices"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// Host describes the machine a report was measured on.
type Host struct {
	CPU           string `json:"cpu"`
	Cores         int    `json:"cores"`
	MemTotalBytes uint64 `json:"mem_total_bytes"`
	Kernel        string `json:"kernel"`
	GoVersion     string `json:"go_version"`
}

// ReadHost reads the host description from /proc and uname; fields it
// cannot read stay empty.
func ReadHost() Host {
	h := Host{Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	if fs, err := procfs.NewDefaultFS(); err == nil {
		if cpus, err := fs.CPUInfo(); err == nil && len(cpus) > 0 {
			h.CPU = cpus[0].ModelName
		}
		if mi, err := fs.Meminfo(); err == nil && mi.MemTotalBytes != nil {
			h.MemTotalBytes = *mi.MemTotalBytes
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	return h
}

// cpuHasSHAExtensions reads the CPU flags the kernel reports; Go's
// crypto/sha256 uses SHA-NI (x86) or the ARMv8 SHA2 instructions when
// present.
func cpuHasSHAExtensions() bool {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return false
	}
	cpus, err := fs.CPUInfo()
	if err != nil || len(cpus) == 0 {
		return false
	}
	return slices.Contains(cpus[0].Flags, "sha_ni") || slices.Contains(cpus[0].Flags, "sha2")
}

// MemAvailableBytes is the kernel's estimate of the memory that can be
// allocated without swapping (MemAvailable in /proc/meminfo), or 0 when
// it cannot be read.
func MemAvailableBytes() uint64 {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0
	}
	mi, err := fs.Meminfo()
	if err != nil || mi.MemAvailableBytes == nil {
		return 0
	}
	return *mi.MemAvailableBytes
}
