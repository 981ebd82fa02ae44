package labeler

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The development VM's /proc/interrupts, cut: the virtual disk (virtio1)
// is served by CPU 1 alone.
const virtioInterrupts = `           CPU0       CPU1       
 28:          2          0 PCI-MSIX-0000:00:01.0   0-edge      virtio0-config
 32:      10286          0 PCI-MSIX-0000:00:01.0   4-edge      virtio0-reporting_vq
 35:          0          1 PCI-MSIX-0000:00:02.0   0-edge      virtio1-config
 36:          0   54784358 PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0
 41:      13999          0 PCI-MSIX-0000:00:04.0   1-edge      virtio3-rx
NMI:          0          0   Non-maskable interrupts
LOC:   10934245    9843234   Local timer interrupts
`

// Four CPUs, two NVMe drives with a queue on each CPU, the second drive
// busier on CPUs 2 and 3.
const nvmeInterrupts = `            CPU0       CPU1       CPU2       CPU3
 120:        10          0          0          0  IR-PCI-MSIX-0000:01:00.0    0-edge      nvme0q0
 121:      5000          0          0          0  IR-PCI-MSIX-0000:01:00.0    1-edge      nvme0q1
 122:         0       4000          0          0  IR-PCI-MSIX-0000:01:00.0    2-edge      nvme0q2
 130:         0          0     900000          0  IR-PCI-MSIX-0000:02:00.0    1-edge      nvme1q1
 131:         0          0          0     800000  IR-PCI-MSIX-0000:02:00.0    2-edge      nvme1q2
 140:       777        777        777        777  IR-PCI-MSIX-0000:03:00.0    1-edge      nvme10q1
`

func TestStorageIRQCPUs(t *testing.T) {
	for _, tc := range []struct {
		name       string
		interrupts string
		devices    []string
		want       map[int]uint64
	}{
		{"virtio disk", virtioInterrupts, []string{"virtio1"}, map[int]uint64{0: 0, 1: 54784359}},
		{"no such device", virtioInterrupts, []string{"virtio9"}, map[int]uint64{}},
		// nvme1 is not nvme10.
		{"nvme", nvmeInterrupts, []string{"nvme0", "nvme1"}, map[int]uint64{0: 5010, 1: 4000, 2: 900000, 3: 800000}},
		{"empty", "", []string{"vda"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, storageIRQCPUs(tc.interrupts, tc.devices))
		})
	}
}

func TestHashingCPUs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		online  []int
		irq     map[int]uint64
		threads int
		want    []int
		ok      bool
	}{
		{"one sector off the disk's CPU", []int{0, 1}, map[int]uint64{1: 54784359}, 1, []int{0}, true},
		{"two threads need both CPUs", []int{0, 1}, map[int]uint64{1: 54784359}, 2, nil, false},
		{"no storage interrupts", []int{0, 1}, map[int]uint64{}, 1, nil, false},
		// Under 1% of the interrupts is noise, not a CPU to avoid.
		{"a few stray interrupts", []int{0, 1}, map[int]uint64{0: 1, 1: 1000}, 1, []int{0}, true},
		{"interrupts everywhere", []int{0, 1, 2, 3}, map[int]uint64{0: 500000, 1: 400000, 2: 900000, 3: 800000}, 1, nil, false},
		{"a busy drive hides a quiet one", []int{0, 1, 2, 3}, map[int]uint64{0: 5010, 1: 4000, 2: 900000, 3: 800000}, 2, []int{0, 1}, true},
		{"two quiet of four", []int{0, 1, 2, 3}, map[int]uint64{2: 900000, 3: 800000}, 2, []int{0, 1}, true},
		{"allowed set without the busy CPU", []int{0, 2}, map[int]uint64{1: 100}, 1, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := hashingCPUs(tc.online, tc.irq, tc.threads)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestBlockDeviceNames(t *testing.T) {
	dir := t.TempDir()
	devices := filepath.Join(dir, "devices")
	for name, target := range map[string]string{"vda": "virtio1", "nvme0n1": "nvme0"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "block", name), 0o755))
		require.NoError(t, os.MkdirAll(filepath.Join(devices, target), 0o755))
		require.NoError(t, os.Symlink(filepath.Join(devices, target), filepath.Join(dir, "block", name, "device")))
	}
	// A loop device has no device link.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "block", "loop0"), 0o755))
	require.ElementsMatch(t, []string{"virtio1", "nvme0"}, blockDeviceNames(filepath.Join(dir, "block")))
	require.Nil(t, blockDeviceNames(filepath.Join(dir, "missing")))
}

// TestHashAffinityRestores checks that a thread confined for hashing gets
// its CPUs back before it is unlocked.
func TestHashAffinityRestores(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var was unix.CPUSet
	require.NoError(t, unix.SchedGetaffinity(0, &was))
	cpu := -1
	for c := range 1024 {
		if was.IsSet(c) {
			cpu = c
			break
		}
	}
	require.GreaterOrEqual(t, cpu, 0)
	a := hashAffinity{on: true}
	a.set.Set(cpu)
	restore := a.apply()
	var now unix.CPUSet
	require.NoError(t, unix.SchedGetaffinity(0, &now))
	require.Equal(t, 1, now.Count())
	require.True(t, now.IsSet(cpu))
	restore()
	require.NoError(t, unix.SchedGetaffinity(0, &now))
	require.Equal(t, was, now)
	// Off, it changes nothing.
	hashAffinity{}.apply()()
	require.NoError(t, unix.SchedGetaffinity(0, &now))
	require.Equal(t, was, now)
}

func TestCPUList(t *testing.T) {
	for _, tc := range []struct {
		cpus []int
		want string
	}{
		{[]int{0}, "0"},
		{[]int{0, 2}, "0,2"},
		{[]int{0, 1, 2, 3}, "0-3"},
		{[]int{0, 1, 3, 4, 5, 7}, "0-1,3-5,7"},
		{nil, ""},
	} {
		require.Equal(t, tc.want, cpuList(tc.cpus), "%v", tc.cpus)
	}
}
