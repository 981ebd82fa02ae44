package labeler

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// multiPaths are the implementations sha256Multi can take: the SHA-NI
// kernels where the CPU has them, and always the portable one.
func multiPaths() []bool {
	if multiSHANI() {
		return []bool{true, false}
	}
	return []bool{false}
}

func pathName(useSHANI bool) string {
	if useSHANI {
		return "sha-ni"
	}
	return "portable"
}

// TestMultiLayout checks the offsets the assembly reads.
func TestMultiLayout(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the layout matters to the amd64 kernels only")
	}
	var p multiPlan
	var s multiStreams
	require.Equal(t, uintptr(0), unsafe.Offsetof(p.blocks))
	require.Equal(t, uintptr(16), unsafe.Offsetof(p.seq))
	require.Equal(t, uintptr(48), unsafe.Offsetof(p.ready))
	require.Equal(t, uintptr(80), unsafe.Offsetof(p.halves))
	require.Equal(t, uintptr(0), unsafe.Offsetof(s.halves))
	require.Equal(t, uintptr(32), unsafe.Offsetof(s.out))
	require.Equal(t, 8, int(unsafe.Sizeof(uintptr(0))))
}

func TestMultiPlan(t *testing.T) {
	l := newNodeLabeler(false)
	tests := []struct {
		name     string
		order    []uint8
		distinct int
		seq      []uint8
		err      bool
	}{
		{
			name: "layer 1", order: l.orderLayer1[:], distinct: 5,
			seq: []uint8{0, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 4},
		},
		{
			name: "layer n", order: l.orderLayerN[:], distinct: 9,
			seq: []uint8{0, 1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 8},
		},
		{name: "one block", order: []uint8{3, 3}, distinct: 1, seq: []uint8{0}},
		{name: "empty", order: nil, err: true},
		{name: "odd", order: []uint8{1, 2, 3}, err: true},
		{name: "too long", order: make([]uint8, 2*(maxPlanBlocks+1)), err: true},
		{name: "too many distinct", order: []uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21}, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newMultiPlan(tc.order)
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, len(tc.seq), p.blocks)
			require.Equal(t, tc.distinct, p.distinct)
			require.Equal(t, tc.seq, p.seq[:p.blocks])
			requirePlanInvariants(t, p)
			for j := range p.blocks {
				u := p.seq[j]
				require.Equal(t, tc.order[2*j:2*j+2], p.halves[2*u:2*u+2], "block %d", j)
			}
		})
	}
}

// requirePlanInvariants checks what the kernels rely on: block 0 is
// distinct block 0 (scheduled before any round), the next block's schedule
// is ready by the end of each block, and no block has to schedule more
// than one new block.
func requirePlanInvariants(t *testing.T, p multiPlan) {
	require.Zero(t, p.seq[0])
	require.LessOrEqual(t, p.ready[0], uint8(2))
	for j := range p.blocks {
		require.Greater(t, p.ready[j], p.seq[j], "block %d", j)
		if j+1 < p.blocks {
			require.Greater(t, p.ready[j], p.seq[j+1], "block %d", j)
		}
		if j > 0 {
			require.LessOrEqual(t, p.ready[j], p.ready[j-1]+1, "block %d", j)
		}
		require.LessOrEqual(t, int(p.ready[j]), p.distinct)
	}
	require.Equal(t, p.distinct, int(p.ready[p.blocks-1]))
}

// nodeStreams sets up k node messages in the labeler's layout: stream s has
// its own nodeLabeler (header: its replica id, layer and node) whose
// addrs[0] lists its parents' labels, scattered at random in pool.
type nodeStreams struct {
	ls      []*nodeLabeler
	parents [][sdr.Degree][32]byte
	nodes   []uint64
	pool    []byte
}

func newNodeStreams(rng *rand.Rand, k, layer int) *nodeStreams {
	ns := &nodeStreams{pool: make([]byte, 64<<10)}
	for i := range ns.pool {
		ns.pool[i] = byte(rng.Uint32())
	}
	perm := rng.Perm(len(ns.pool) / 32)
	degree := sdr.BaseDegree
	if layer > 1 {
		degree = sdr.Degree
	}
	for s := range k {
		var id [32]byte
		for i := range id {
			id[i] = byte(rng.Uint32())
		}
		l := newNodeLabeler(true)
		l.reset(&id, layer)
		node := 1 + rng.Uint64N(1<<30)
		binary.BigEndian.PutUint64(l.header[36:44], node)
		var ps [sdr.Degree][32]byte
		for p := range degree {
			at := perm[s*sdr.Degree+p] * 32
			copy(ps[p][:], ns.pool[at:])
			l.addrs[0][p] = uintptr(unsafe.Pointer(&ns.pool[at]))
		}
		// Layer 1 leaves the expander halves at address 0: a kernel
		// reading them faults.
		ns.ls = append(ns.ls, l)
		ns.parents = append(ns.parents, ps)
		ns.nodes = append(ns.nodes, node)
	}
	return ns
}

// nodeMessage is a node's message written out as the reference lays it
// (spec/SDR.md): header, then 37 parent slots.
func nodeMessage(header *[64]byte, ps *[sdr.Degree][32]byte, layer int) []byte {
	msg := append([]byte(nil), header[:]...)
	if layer == 1 {
		for range 6 {
			for p := range sdr.BaseDegree {
				msg = append(msg, ps[p][:]...)
			}
		}
		msg = append(msg, ps[0][:]...)
	} else {
		for range 2 {
			for p := range sdr.Degree {
				msg = append(msg, ps[p][:]...)
			}
		}
		for p := range 9 {
			msg = append(msg, ps[p][:]...)
		}
	}
	return msg
}

// TestSumNodesMulti checks every kernel on node messages of layer 1 and
// later layers against the single-stream kernel and against crypto/sha256
// over the explicit message, on both paths.
func TestSumNodesMulti(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, layer := range []int{1, 2, 11} {
		for k := 1; k <= maxStreams; k++ {
			for _, useSHANI := range multiPaths() {
				t.Run(fmt.Sprintf("layer%d/k%d/%s", layer, k, pathName(useSHANI)), func(t *testing.T) {
					for range 10 {
						ns := newNodeStreams(rng, k, layer)
						order := ns.ls[0].orderLayerN[:]
						if layer == 1 {
							order = ns.ls[0].orderLayer1[:]
						}
						plan, err := newMultiPlan(order)
						require.NoError(t, err)
						var st multiStreams
						got := make([][32]byte, k)
						for s := range k {
							st.halves[s] = &ns.ls[s].addrs[0][0]
							st.out[s] = &got[s]
						}
						sumNodesMulti(k, &st, &plan, useSHANI)

						for s := range k {
							msg := nodeMessage(&ns.ls[s].header, &ns.parents[s], layer)
							require.Len(t, msg, sdr.MessageSize)
							want := sha256.Sum256(msg)
							want[31] &= 0x3f
							require.Equal(t, want, got[s], "stream %d", s)
							if cpuHasSHANI() {
								var single [32]byte
								a := &ns.ls[s].addrs[0]
								ns.ls[s].sumHalves(ns.nodes[s], a, &single, a, 0)
								require.Equal(t, single, got[s], "stream %d", s)
							}
						}
						runtime.KeepAlive(ns)
					}
				})
			}
		}
	}
}

// TestSHA256Multi checks the kernels on arbitrary padded messages: 1 to
// maxPlanBlocks blocks with up to maxPlanDistinct distinct ones, repeated
// in random order, halves scattered in memory, each stream with its own
// bytes; and that both paths give the same digests.
func TestSHA256Multi(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	shapes := []struct{ blocks, distinct int }{
		{1, 1}, {2, 1}, {2, 2}, {3, 2}, {19, 9}, {20, 5}, {maxPlanBlocks, maxPlanDistinct}, {maxPlanBlocks, 1},
	}
	for _, sh := range shapes {
		for k := 1; k <= maxStreams; k++ {
			t.Run(fmt.Sprintf("%dblocks/%ddistinct/k%d", sh.blocks, sh.distinct, k), func(t *testing.T) {
				for range 5 {
					// Distinct blocks are pairs of distinct halves; the
					// rest of the message repeats them at random.
					halfCount := 2 * sh.distinct
					perm := rng.Perm(halfCount)
					order := make([]uint8, 0, 2*sh.blocks)
					for j := range sh.blocks {
						u := j
						if j >= sh.distinct {
							u = rng.IntN(sh.distinct)
						}
						order = append(order, uint8(perm[2*u]), uint8(perm[2*u+1]))
					}
					plan, err := newMultiPlan(order)
					require.NoError(t, err)
					require.Equal(t, sh.distinct, plan.distinct)
					requirePlanInvariants(t, plan)

					// The last block's second half ends the message: r
					// bytes, then the padding.
					r := rng.IntN(24)
					size := (sh.blocks-1)*64 + 32 + r
					pool := make([]byte, 64<<10)
					slots := rng.Perm(len(pool) / 32)
					halves := make([][]uintptr, k)
					msgs := make([][]byte, k)
					for s := range k {
						halves[s] = make([]uintptr, halfCount)
						bytesOf := make([][]byte, halfCount)
						for h := range halfCount {
							at := slots[s*halfCount+h] * 32
							half := pool[at : at+32]
							for i := range half {
								half[i] = byte(rng.Uint32())
							}
							if h == int(order[len(order)-1]) {
								clear(half[r:])
								half[r] = 0x80
								binary.BigEndian.PutUint64(half[24:], uint64(size)*8)
							}
							halves[s][h] = uintptr(unsafe.Pointer(&half[0]))
							bytesOf[h] = half
						}
						for _, h := range order {
							msgs[s] = append(msgs[s], bytesOf[h]...)
						}
					}

					var byPath [][][32]byte
					for _, useSHANI := range multiPaths() {
						var st multiStreams
						got := make([][32]byte, k)
						for s := range k {
							st.halves[s] = &halves[s][0]
							st.out[s] = &got[s]
						}
						sha256Multi(k, &st, &plan, useSHANI)
						for s := range k {
							require.Equal(t, sha256.Sum256(msgs[s][:size]), got[s], "%s, stream %d", pathName(useSHANI), s)
						}
						byPath = append(byPath, got)
					}
					for _, got := range byPath[1:] {
						require.Equal(t, byPath[0], got)
					}
					runtime.KeepAlive(pool)
				}
			})
		}
	}
}

// TestSumNodesMultiAllocs checks that neither path allocates: both may run
// in the hashing loop.
func TestSumNodesMultiAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	ns := newNodeStreams(rng, maxStreams, 2)
	plan, err := newMultiPlan(ns.ls[0].orderLayerN[:])
	require.NoError(t, err)
	var st multiStreams
	var got [maxStreams][32]byte
	for s := range maxStreams {
		st.halves[s] = &ns.ls[s].addrs[0][0]
		st.out[s] = &got[s]
	}
	for _, useSHANI := range multiPaths() {
		allocs := testing.AllocsPerRun(10, func() { sumNodesMulti(maxStreams, &st, &plan, useSHANI) })
		require.Zero(t, allocs, pathName(useSHANI))
	}
	runtime.KeepAlive(ns)
}

// TestUnpaddedLen checks the portable path's padding check.
func TestUnpaddedLen(t *testing.T) {
	padded := func(n int) []byte {
		m := make([]byte, (n+9+63)/64*64)
		m[n] = 0x80
		binary.BigEndian.PutUint64(m[len(m)-8:], uint64(n)*8)
		return m
	}
	for _, n := range []int{0, 1, 55, 56, 64, 1248} {
		got, ok := unpaddedLen(padded(n))
		require.True(t, ok, "%d bytes", n)
		require.Equal(t, n, got)
	}
	extraBlock := append(padded(10), make([]byte, 64)...)
	binary.BigEndian.PutUint64(extraBlock[len(extraBlock)-8:], 80)
	bad := map[string][]byte{
		"no 0x80":     func() []byte { m := padded(10); m[10] = 0; return m }(),
		"dirty zeros": func() []byte { m := padded(10); m[20] = 1; return m }(),
		"odd bits":    func() []byte { m := padded(10); m[63] |= 1; return m }(),
		"too long":    func() []byte { m := padded(10); m[56] = 1; return m }(),
		"extra block": extraBlock,
	}
	for name, m := range bad {
		_, ok := unpaddedLen(m)
		require.False(t, ok, name)
	}
}

// BenchmarkMultiKernels measures node labels per second on each kernel,
// parents in cache: crypto/sha256 over the 1248-byte message, the
// single-stream pairs kernel (sha256Halves), and the k-stream kernels. Each
// reports ns/node and x_sha256, its node rate over the rate of 20
// compressions by one crypto/sha256 stream measured right after it.
//
// Shapes: layer1 and layer2 are node messages; "rounds" hashes the header
// block 19 times and then the last block, so that almost no schedule is
// computed: its k = 1 and k = 2 figures are the round unit's latency-bound
// and throughput-bound rates, the ceiling of any interleave.
func BenchmarkMultiKernels(b *testing.B) {
	for _, shape := range []string{"layer1", "layer2", "rounds"} {
		layer := 2
		if shape == "layer1" {
			layer = 1
		}
		rng := rand.New(rand.NewPCG(1, 2))
		ns := newNodeStreams(rng, maxStreams, layer)
		order := ns.ls[0].orderLayerN[:]
		switch shape {
		case "layer1":
			order = ns.ls[0].orderLayer1[:]
		case "rounds":
			order = nil
			for range sdr.CompressionsPerNode - 1 {
				order = append(order, halfHeaderLo, halfHeaderHi)
			}
			order = append(order, 0, halfPad)
		}
		plan, err := newMultiPlan(order)
		require.NoError(b, err)
		var st multiStreams
		var out [maxStreams][32]byte
		for s := range maxStreams {
			st.halves[s] = &ns.ls[s].addrs[0][0]
			st.out[s] = &out[s]
		}
		msg := nodeMessage(&ns.ls[0].header, &ns.parents[0], layer)

		b.Run(shape+"/crypto-sha256", func(b *testing.B) {
			if shape == "rounds" {
				b.Skip("the same message as layer2")
			}
			for b.Loop() {
				out[0] = sha256.Sum256(msg)
			}
			reportNodeRate(b, 1)
		})
		b.Run(shape+"/pairs-k1", func(b *testing.B) {
			if !cpuHasSHANI() {
				b.Skip("no SHA extensions")
			}
			a := &ns.ls[0].addrs[0]
			for b.Loop() {
				sha256Halves(&out[0], &a[0], &order[0], sdr.CompressionsPerNode, &a[0], 0)
			}
			reportNodeRate(b, 1)
		})
		// A run of nodes, each next header compressed alongside the node
		// before it, as labelRange hashes one sector.
		b.Run(shape+"/chain-k1", func(b *testing.B) {
			if !cpuHasSHANI() {
				b.Skip("no SHA extensions")
			}
			l := ns.ls[0]
			a := &l.addrs[0]
			var state [32]byte
			sha256HeaderState(&l.header, &state)
			for b.Loop() {
				sha256HalvesNext(&out[0], &a[0], &order[2], sdr.CompressionsPerNode-1, &a[0], 0, &state, &l.header)
			}
			reportNodeRate(b, 1)
		})
		// The same with the true dependency of one sector's chain: the
		// first parent is the label just written, so no node starts before
		// the one before it ends.
		b.Run(shape+"/chain-k1-dep", func(b *testing.B) {
			if !cpuHasSHANI() {
				b.Skip("no SHA extensions")
			}
			l := ns.ls[0]
			a := l.addrs[0]
			var lab [32]byte
			a[0] = uintptr(unsafe.Pointer(&lab))
			var state [32]byte
			sha256HeaderState(&l.header, &state)
			for b.Loop() {
				sha256HalvesNext(&lab, &a[0], &order[2], sdr.CompressionsPerNode-1, &a[0], 0, &state, &l.header)
				lab[31] &= 0x3f
			}
			reportNodeRate(b, 1)
		})
		for k := 1; k <= maxStreams; k++ {
			b.Run(fmt.Sprintf("%s/multi-k%d", shape, k), func(b *testing.B) {
				if !multiSHANI() {
					b.Skip("no SHA extensions")
				}
				for b.Loop() {
					sumNodesMulti(k, &st, &plan, true)
				}
				reportNodeRate(b, k)
			})
		}
		runtime.KeepAlive(ns)
	}
}

// reportNodeRate reports the b.N*k nodes just hashed as ns/node and as a
// multiple of one crypto/sha256 stream's rate (20 compressions a node),
// measured now as bench.MeasureSHA256Rate does (the best of five 40 ms
// runs), so that both figures see about the same machine load.
func reportNodeRate(b *testing.B, k int) {
	perNode := b.Elapsed().Seconds() / float64(b.N*k)
	b.StopTimer()
	buf := make([]byte, 64<<10)
	h := sha256.New()
	perCompression := math.Inf(1)
	for range 5 {
		start := time.Now()
		var blocks int
		for time.Since(start) < 40*time.Millisecond {
			h.Write(buf)
			blocks += len(buf) / 64
		}
		perCompression = min(perCompression, time.Since(start).Seconds()/float64(blocks))
	}
	b.ReportMetric(perNode*1e9, "ns/node")
	b.ReportMetric(sdr.CompressionsPerNode*perCompression/perNode, "x_sha256")
}
