package measure

import (
	"fmt"
	"math/rand/v2"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PageWalk is what a load from a new 4 KiB page costs this machine in
// memory backed by transparent huge pages, against the same loads within
// the TLB's reach. A node's parents fall on random pages of the previous
// and current layers, so on a machine where huge pages do not widen the
// TLB each parent read pays a page walk: measured on the development VM
// (AMD EPYC, 2 vCPUs) about 40-60 ns with the data in L2, where a loaded
// huge page would cost nothing, and 300-370 ns a random read over 1 GiB
// with or without huge pages. A hypervisor backing guest memory with small
// pages gives that: the TLB then holds the host's 4 KiB translations
// whatever the guest's page size.
type PageWalk struct {
	// SpreadNs is one dependent load from each of 8192 4 KiB pages of a
	// 32 MiB region (512 KiB of lines: the data fits in L2, the pages
	// exceed any TLB unless huge pages cover them).
	SpreadNs float64 `json:"spread_ns"`
	// PackedNs is the same loads over 512 KiB of contiguous lines: 128
	// pages, within the TLB's reach either way.
	PackedNs float64 `json:"packed_ns"`
	// HugePages says whether the kernel backed the region with huge pages
	// (AnonHugePages grew by at least half of it).
	HugePages bool `json:"huge_pages"`
}

// WalkNs is what reaching a new page adds to a load.
func (w PageWalk) WalkNs() float64 { return max(0, w.SpreadNs-w.PackedNs) }

// String says what the figures mean for labeling.
func (w PageWalk) String() string {
	switch {
	case !w.HugePages:
		return fmt.Sprintf("a load from a new 4 KiB page costs %.0f ns against %.0f ns within the TLB's reach; the kernel gave no huge pages (transparent_hugepage off or memory fragmented)", w.SpreadNs, w.PackedNs)
	case w.WalkNs() > 4*max(w.PackedNs, 1):
		return fmt.Sprintf("a load from a new 4 KiB page of huge-page memory costs %.0f ns against %.0f ns within the TLB's reach: huge pages do not widen the TLB here (as when a hypervisor backs them with small pages), so every parent on a page not recently read pays a page walk", w.SpreadNs, w.PackedNs)
	default:
		return fmt.Sprintf("huge pages widen the TLB: a load from a new 4 KiB page of huge-page memory costs %.0f ns against %.0f ns within one page", w.SpreadNs, w.PackedNs)
	}
}

// pageWalkLines is how many lines each chase visits: one per 4 KiB page of
// a 32 MiB region (16 huge pages).
const pageWalkLines = 8192

// MeasurePageWalk chases pointers through memory it maps for the purpose
// (32 MiB, released before it returns) and reports the best of rounds
// rounds of each layout; it takes about 0.1 s per round on the
// development VM.
func MeasurePageWalk(rounds int) (PageWalk, error) {
	const huge = 2 << 20
	const region = pageWalkLines * 4096
	mem, err := unix.Mmap(-1, 0, region+huge, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return PageWalk{}, fmt.Errorf("page walk probe: mapping %d bytes: %w", region+huge, err)
	}
	defer unix.Munmap(mem)
	skip := (huge - int(uintptr(unsafe.Pointer(&mem[0])))%huge) % huge
	m := mem[skip : skip+region]
	// Without THP the advice fails, and the probe says so.
	_ = unix.Madvise(m, unix.MADV_HUGEPAGE)
	before, _ := AnonHugePages()
	for i := 0; i < region; i += 4096 {
		m[i] = 1
	}
	after, _ := AnonHugePages()
	w := PageWalk{HugePages: after >= before+region/2}

	rng := rand.New(rand.NewPCG(1, 2))
	// Line i of the spread chase is on page i, at a line that varies with
	// i so that the lines do not all map to the same cache sets; line i of
	// the packed chase is the i-th line of the region.
	spread := func(i int) uint32 { return uint32(i*4096 + (i*7%64)*64) }
	packed := func(i int) uint32 { return uint32(i * 64) }
	w.SpreadNs, w.PackedNs = 1e9, 1e9
	for range max(1, rounds) {
		w.SpreadNs = min(w.SpreadNs, chase(m, rng.Perm(pageWalkLines), spread))
		w.PackedNs = min(w.PackedNs, chase(m, rng.Perm(pageWalkLines), packed))
	}
	return w, nil
}

// chase links the lines at(order[0]), at(order[1]), ... into a cycle
// through m (each holds the offset of the next) and returns the time of
// one dependent load, walking the cycle 64 times.
func chase(m []byte, order []int, at func(int) uint32) float64 {
	base := unsafe.Pointer(&m[0])
	for k, i := range order {
		next := at(order[(k+1)%len(order)])
		*(*uint32)(unsafe.Add(base, at(i))) = next
	}
	off := at(order[0])
	for range len(order) { // warm the caches and the TLB
		off = *(*uint32)(unsafe.Add(base, off))
	}
	loads := 64 * len(order)
	start := time.Now()
	for range loads {
		off = *(*uint32)(unsafe.Add(base, off))
	}
	ns := float64(time.Since(start).Nanoseconds()) / float64(loads)
	if off != at(order[0]) { // 64 whole turns end where they began
		panic("measure: page walk chase left its cycle")
	}
	return ns
}
