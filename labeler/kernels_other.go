//go:build !amd64

package labeler

import "github.com/pc1-tiered/pc1-tiered/sdr"

// prefetchLabels is a no-op where no prefetch kernel is written yet.
func prefetchLabels(addrs *[sdr.Degree]uintptr, n int) {}

func sha256Pairs(out *[32]byte, pairs *[2]uintptr, blocks int, prefetch *uintptr, nprefetch int) {
	panic("labeler: sha256Pairs needs amd64 with the SHA extensions")
}

func cpuHasSHANI() bool { return false }
