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

// sha256HalvesNext hashes a node's message from block 1 on, like
// sha256Halves (order and blocks describe blocks 1.. only), starting from
// *state, the state after the node's header block, and meanwhile
// compresses the next node's header block, the 64 bytes at next, writing
// that state to *state for the next call. blocks must be at least 1.
//
//go:noescape
func sha256HalvesNext(out *[32]byte, halves *uintptr, order *uint8, blocks int, prefetch *uintptr, nprefetch int, state *[32]byte, next *[64]byte)

// sha256HeaderState compresses the block at next from the initial hash
// value into *state, in the layout sha256HalvesNext starts from.
//
//go:noescape
func sha256HeaderState(next *[64]byte, state *[32]byte)
