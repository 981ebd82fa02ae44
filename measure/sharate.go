package measure

import (
	"crypto/sha256"
	"fmt"
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

// HumanRate formats a rate for a person: 1.25M, 68.7K, 950.
func HumanRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fK", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}
