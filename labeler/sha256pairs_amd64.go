package labeler

// sha256Halves hashes blocks 64-byte blocks, block j being the 32 bytes
// at halves[order[2j]] followed by the 32 bytes at halves[order[2j+1]] (the
// message must include its own padding), and writes the digest to out.
// Before hashing it prefetches the nprefetch addresses at prefetch (a later
// node's parents: one call per node instead of two). It needs the SHA
// extensions: check cpuHasSHANI first.
//
//go:noescape
func sha256Halves(out *[32]byte, halves *uintptr, order *uint8, blocks int, prefetch *uintptr, nprefetch int)

// cpuHasSHANI reports whether the CPU has the SHA-256 instructions.
func cpuHasSHANI() bool
