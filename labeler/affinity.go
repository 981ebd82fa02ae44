package labeler

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// hashAffinity keeps the hashing threads off the CPUs that serve the
// block devices' interrupts, when the run hashes on fewer threads than
// it has CPUs without them. Each completion of a read or write interrupts
// whatever runs on the CPU that takes it, and on the development VM every
// completion of the virtual disk is taken by CPU 1: one sector's thread
// labeled 3% slower there than on CPU 0 (README, "Performance"), and the
// scheduler puts it on either. A run that needs every CPU pins nothing.
type hashAffinity struct {
	set unix.CPUSet
	on  bool
	// desc says where and why, for the report.
	desc string
}

// newHashAffinity decides where threads hashing threads run: on the CPUs
// this process may use that take under 1% of the storage interrupts, if
// there are at least threads of them and some CPU takes more.
func newHashAffinity(threads int) hashAffinity {
	var allowed unix.CPUSet
	if unix.SchedGetaffinity(0, &allowed) != nil {
		return hashAffinity{}
	}
	interrupts, err := os.ReadFile("/proc/interrupts")
	if err != nil {
		return hashAffinity{}
	}
	irq := storageIRQCPUs(string(interrupts), blockDeviceNames("/sys/block"))
	var online []int
	for cpu := range 1024 {
		if allowed.IsSet(cpu) {
			online = append(online, cpu)
		}
	}
	cpus, ok := hashingCPUs(online, irq, threads)
	if !ok {
		return hashAffinity{}
	}
	a := hashAffinity{on: true}
	quiet := map[int]bool{}
	for _, cpu := range cpus {
		a.set.Set(cpu)
		quiet[cpu] = true
	}
	var busy []int
	for _, cpu := range online {
		if !quiet[cpu] {
			busy = append(busy, cpu)
		}
	}
	a.desc = fmt.Sprintf("CPU %s (storage interrupts go to CPU %s)", cpuList(cpus), cpuList(busy))
	return a
}

// cpuList writes CPUs as "0", "0,2" or "0-3".
func cpuList(cpus []int) string {
	var parts []string
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		switch {
		case j == i:
			parts = append(parts, strconv.Itoa(cpus[i]))
		default:
			parts = append(parts, strconv.Itoa(cpus[i])+"-"+strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// apply confines the calling thread, which must be locked to its
// goroutine, to the hashing CPUs, and returns what puts it back (to run
// before the thread is unlocked: the runtime would hand it, confined, to
// other goroutines). A failure leaves it where it was: the placement is
// worth a few percent, never an error.
func (a hashAffinity) apply() (restore func()) {
	var was unix.CPUSet
	if !a.on || unix.SchedGetaffinity(0, &was) != nil || unix.SchedSetaffinity(0, &a.set) != nil {
		return func() {}
	}
	return func() { _ = unix.SchedSetaffinity(0, &was) }
}

// hashingCPUs returns the CPUs of online that take under 1% of the
// storage interrupts counted in irq, and whether they are at least
// threads and fewer than online (otherwise there is nothing to avoid, or
// no room to).
func hashingCPUs(online []int, irq map[int]uint64, threads int) ([]int, bool) {
	var total uint64
	for _, n := range irq {
		total += n
	}
	if total == 0 {
		return nil, false
	}
	var quiet []int
	for _, cpu := range online {
		if irq[cpu]*100 < total {
			quiet = append(quiet, cpu)
		}
	}
	if len(quiet) < max(threads, 1) || len(quiet) == len(online) {
		return nil, false
	}
	return quiet, true
}

// blockDeviceNames lists the kernel device names behind the block devices
// under sysBlock (/sys/block): "virtio1" for vda, "nvme0" for nvme0n1,
// the names their interrupts carry in /proc/interrupts.
func blockDeviceNames(sysBlock string) []string {
	entries, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(sysBlock, e.Name(), "device"))
		if err != nil {
			continue // loop, zram, ram: no device, no interrupts
		}
		names = append(names, filepath.Base(target))
	}
	return names
}

// storageIRQCPUs sums, per CPU, the interrupts /proc/interrupts (its text)
// counts for the devices named: lines whose action is a device's name, or
// the name followed by "-" (virtio's "virtio1-req.0") or "q" and a digit
// (NVMe's "nvme0q1").
func storageIRQCPUs(interrupts string, devices []string) map[int]uint64 {
	lines := strings.Split(interrupts, "\n")
	if len(lines) < 2 {
		return nil
	}
	cpus := strings.Fields(lines[0]) // CPU0 CPU1 ...
	irq := map[int]uint64{}
	for _, line := range lines[1:] {
		fields := strings.Fields(line)
		if len(fields) < len(cpus)+2 || !strings.HasSuffix(fields[0], ":") {
			continue
		}
		if !isStorageIRQ(fields[len(fields)-1], devices) {
			continue
		}
		for i, col := range cpus {
			n, err := strconv.ParseUint(fields[1+i], 10, 64)
			cpu, cerr := strconv.Atoi(strings.TrimPrefix(col, "CPU"))
			if err != nil || cerr != nil {
				continue
			}
			irq[cpu] += n
		}
	}
	return irq
}

func isStorageIRQ(action string, devices []string) bool {
	for _, d := range devices {
		rest, ok := strings.CutPrefix(action, d)
		if !ok {
			continue
		}
		if rest == "" || rest[0] == '-' || (rest[0] == 'q' && len(rest) > 1 && rest[1] >= '0' && rest[1] <= '9') {
			return true
		}
	}
	return false
}
