package bench

import (
	"crypto/sha256"
	"os"
	"strings"
	"time"

	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// SHARate is one core's SHA-256 throughput.
type SHARate struct {
	// CompressionsPerSecond counts 64-byte SHA-256 blocks per second.
	CompressionsPerSecond float64
	// Implementation names the code measured (and whether the CPU has
	// SHA instructions it can use).
	Implementation string
}

// MeasureSHA256Rate hashes a long buffer on the calling goroutine for about
// d and returns the best rate of five rounds: on a shared machine the best
// round is the closest to what the core can do.
func MeasureSHA256Rate(d time.Duration) SHARate {
	buf := make([]byte, 64<<10)
	h := sha256.New()
	round := max(d/5, time.Millisecond)
	var best float64
	for range 5 {
		start := time.Now()
		var blocks int
		for time.Since(start) < round {
			h.Write(buf)
			blocks += len(buf) / 64
		}
		if r := float64(blocks) / time.Since(start).Seconds(); r > best {
			best = r
		}
	}
	impl := "crypto/sha256"
	if cpuHasSHAExtensions() {
		impl += " (sha-ni)"
	}
	return SHARate{CompressionsPerSecond: best, Implementation: impl}
}

// SHALimitRatio is the project's speed figure: labels per second per busy
// core times the compressions per label, over the measured compression
// rate of one core.
func SHALimitRatio(nodesPerSecondPerBusyCore float64, rate SHARate) float64 {
	if rate.CompressionsPerSecond <= 0 {
		return 0
	}
	return nodesPerSecondPerBusyCore * sdr.CompressionsPerNode / rate.CompressionsPerSecond
}

// cpuHasSHAExtensions reads the CPU flags the kernel reports; Go's
// crypto/sha256 uses SHA-NI (x86) or the ARMv8 SHA2 instructions when
// present.
func cpuHasSHAExtensions() bool {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "flags") || strings.HasPrefix(line, "Features") {
			for _, f := range strings.Fields(line) {
				if f == "sha_ni" || f == "sha2" {
					return true
				}
			}
			return false
		}
	}
	return false
}
