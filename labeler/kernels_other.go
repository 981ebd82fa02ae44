//go:build !amd64

package labeler

// prefetchLabels is a no-op where no prefetch kernel is written yet.
func prefetchLabels(addrs *uintptr, n int) {}

func sha256Halves(out *[32]byte, halves *uintptr, order *uint8, blocks int, prefetch *uintptr, nprefetch int) {
	panic("labeler: sha256Halves needs amd64 with the SHA extensions")
}

func cpuHasSHANI() bool { return false }
