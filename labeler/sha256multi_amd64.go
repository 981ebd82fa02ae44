package labeler

// The k-stream SHA-NI kernels (sha256multi_amd64.s). Each hashes, for
// every stream s < k, the plan.blocks 64-byte blocks of its message, block
// j being the 32 bytes at streams.halves[s][plan.halves[2u]] followed by
// the 32 bytes at streams.halves[s][plan.halves[2u+1]], u = plan.seq[j],
// from the initial hash value, and writes the raw big-endian digest to
// streams.out[s]. The message must carry its own padding, and plan must
// come from newMultiPlan. They need the SHA extensions: check cpuHasSHANI
// first, or go through sha256Multi.

//go:noescape
func sha256Multi1(streams *multiStreams, plan *multiPlan)

//go:noescape
func sha256Multi2(streams *multiStreams, plan *multiPlan)

//go:noescape
func sha256Multi3(streams *multiStreams, plan *multiPlan)

//go:noescape
func sha256Multi4(streams *multiStreams, plan *multiPlan)

func init() {
	if cpuHasSHANI() {
		multiKernels = [maxStreams + 1]func(*multiStreams, *multiPlan){
			1: sha256Multi1,
			2: sha256Multi2,
			3: sha256Multi3,
			4: sha256Multi4,
		}
	}
}
