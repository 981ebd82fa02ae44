//go:build !amd64

package labeler

// prefetchLabels is a no-op where no prefetch kernel is written yet.
func prefetchLabels(addrs *uintptr, n int) {}

func sha256Halves(out *[32]byte, halves *uintptr, order *uint8, blocks int, prefetch *uintptr, nprefetch int) {
	panic("labeler: sha256Halves needs amd64 with the SHA extensions")
}

func cpuHasSHANI() bool { return false }

func sha256HalvesNext(out *[32]byte, halves *uintptr, order *uint8, blocks int, prefetch *uintptr, nprefetch int, state *[32]byte, next *[64]byte) {
	panic("labeler: sha256HalvesNext needs amd64 with the SHA extensions")
}

func sha256HeaderState(next *[64]byte, state *[32]byte) {
	panic("labeler: sha256HeaderState needs amd64 with the SHA extensions")
}
