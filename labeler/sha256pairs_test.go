package labeler

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"testing"
	"unsafe"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// TestSHA256Pairs checks the assembly kernel against crypto/sha256 on
// messages of 1 to 40 blocks whose halves lie scattered in memory, padding
// included as the labeler supplies it.
func TestSHA256Pairs(t *testing.T) {
	if !cpuHasSHANI() {
		t.Skip("no SHA extensions on this CPU")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, blocks := range []int{1, 2, 3, 19, 20, 40} {
		for range 20 {
			msg, n := paddedMessage(rng, blocks, 0)
			halves, order, pool := scatterHalves(rng, msg)
			var got [32]byte
			sha256Halves(&got, &halves[0], &order[0], blocks, &halves[0], 2*blocks)
			runtime.KeepAlive(pool)
			require.Equal(t, sha256.Sum256(msg[:n]), got, "%d blocks, %d bytes", blocks, n)
		}
	}
}

// TestSHA256HalvesNext checks the chained kernel against crypto/sha256:
// a run of messages of 2 to 40 blocks, each hashed from the state its
// header block left, the state the previous call computed alongside its
// own rounds (the first from sha256HeaderState).
func TestSHA256HalvesNext(t *testing.T) {
	if !cpuHasSHANI() {
		t.Skip("no SHA extensions on this CPU")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, blocks := range []int{2, 3, 19, 20, 40} {
		const run = 8
		msgs := make([][]byte, run+1)
		lens := make([]int, run+1)
		for m := range msgs {
			// At least the header block of data: it is hashed apart.
			msgs[m], lens[m] = paddedMessage(rng, blocks, 64)
		}
		var state [32]byte
		var next [64]byte
		copy(next[:], msgs[0])
		sha256HeaderState(&next, &state)
		for m := range run {
			halves, order, pool := scatterHalves(rng, msgs[m])
			copy(next[:], msgs[m+1])
			var got [32]byte
			sha256HalvesNext(&got, &halves[0], &order[2], blocks-1, &halves[0], 2*blocks, &state, &next)
			runtime.KeepAlive(pool)
			require.Equal(t, sha256.Sum256(msgs[m][:lens[m]]), got, "%d blocks, message %d", blocks, m)
		}
	}
}

// paddedMessage returns a message of blocks 64-byte blocks: n random bytes
// (at least least, and into the last block) and their SHA-256 padding.
func paddedMessage(rng *rand.Rand, blocks, least int) (msg []byte, n int) {
	n = blocks*64 - 9 - rng.IntN(min(55, blocks*64-9-least))
	msg = make([]byte, blocks*64)
	for i := range n {
		msg[i] = byte(rng.Uint32())
	}
	msg[n] = 0x80
	binary.BigEndian.PutUint64(msg[len(msg)-8:], uint64(n)*8)
	return msg, n
}

// scatterHalves copies msg's 32-byte halves to random places in pool and
// lists their addresses in reverse, order putting them back: the kernels
// read a message wherever its halves lie. The caller keeps pool alive.
func scatterHalves(rng *rand.Rand, msg []byte) (halves []uintptr, order []uint8, pool []byte) {
	pool = make([]byte, 64*1024)
	perm := rng.Perm(len(pool) / 32)
	k := len(msg) / 32
	halves, order = make([]uintptr, k), make([]uint8, k)
	for h := range k {
		at := perm[h] * 32
		copy(pool[at:at+32], msg[32*h:])
		halves[k-1-h] = uintptr(unsafe.Pointer(&pool[at]))
		order[h] = uint8(k - 1 - h)
	}
	return halves, order, pool
}

// sumHalves hashes node's whole message, header block included, straight
// from its parents' labels, as labelRange did before sumChained: the
// reference the chained and multi-stream kernels are checked and measured
// against. It prefetches the nnext addresses at next while it is at it.
func (l *nodeLabeler) sumHalves(node uint64, a *[halfSlots]uintptr, out *[sdr.NodeSize]byte, next *[halfSlots]uintptr, nnext int) {
	binary.BigEndian.PutUint64(l.header[36:44], node)
	order := &l.orderLayerN
	if l.layer == 1 {
		order = &l.orderLayer1
	}
	sha256Halves(out, &a[0], &order[0], sdr.CompressionsPerNode, &next[0], nnext)
	out[31] &= 0x3f
}

// BenchmarkNodeKernels compares one node's hash by the pairs kernel (parents
// in cache, in place) with crypto/sha256 over the same 1248-byte message.
func BenchmarkNodeKernels(b *testing.B) {
	l := newNodeLabeler(true)
	l.reset(&[32]byte{1}, 2)
	labels := make([]byte, 64*sdrNodeSizeForBench)
	a := &l.addrs[0]
	for i := range sdrDegreeForBench {
		a[i] = uintptr(unsafe.Pointer(&labels[i*sdrNodeSizeForBench*3]))
	}
	var out [32]byte
	b.Run("pairs", func(b *testing.B) {
		if !cpuHasSHANI() {
			b.Skip("no SHA extensions")
		}
		for b.Loop() {
			l.sumHalves(7, a, &out, a, 14)
		}
	})
	msg := make([]byte, 1248)
	b.Run("crypto-sha256", func(b *testing.B) {
		for b.Loop() {
			out = sha256.Sum256(msg)
		}
	})
	runtime.KeepAlive(labels)
}

const (
	sdrNodeSizeForBench = 32
	sdrDegreeForBench   = 14
)
