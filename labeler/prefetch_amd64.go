package labeler

// prefetchLabels asks the CPU to bring the first n labels at addrs into its
// caches without waiting for them: unlike a load, a prefetch does not hold
// up the instructions behind it, so the misses overlap the SHA rounds of the
// nodes hashed meanwhile.
//
//go:noescape
func prefetchLabels(addrs *uintptr, n int)
