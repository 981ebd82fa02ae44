package plan

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/measure"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
	"github.com/stretchr/testify/require"
)

const (
	gib = uint64(1) << 30
	mib = uint64(1) << 20
)

func proofGraph(t *testing.T, name string) *sdr.Graph {
	t.Helper()
	p, err := sdr.ProofByName(name)
	require.NoError(t, err)
	g, err := sdr.NewProofGraph(p)
	require.NoError(t, err)
	return g
}

func sizePtr(v uint64) *uint64 { return &v }

// testSHA is a round SHA-256 rate: 25M compressions/s, 1.25M nodes/s per
// core before efficiency, as PLATFORM.md measured.
var testSHA = measure.SHARate{CompressionsPerSecond: 25e6, Implementation: "test"}

// testDevice is a made-up NVMe drive; plans take measured figures as input.
func testDevice(dir string, dev uint64, reads float64) tier.DeviceSpeed {
	return tier.DeviceSpeed{Dir: dir, Device: dev, FSType: "ext4", Direct: true, FreeBytes: 100 << 40,
		RandomReadsPerSecond: reads * 1.25, QueueDepth: 64, MissReadsPerSecond: reads / 2, MissKernelCPUSecondsPerRead: 8e-6,
		SpillReadsPerSecond: reads, SpillCPUSecondsPerRead: 10e-6}
}

// TestSampleColdBaseMatchesArchitecture checks the sampler against the
// table in ARCHITECTURE.md ("Where parents fall"), sampled there from the
// real 32 GiB graph: cold base reads per node behind a hot window of the
// last H nodes.
func TestSampleColdBaseMatchesArchitecture(t *testing.T) {
	g := proofGraph(t, "StackedDrg32GiBV1_1")
	nodes := g.Nodes()
	for _, tc := range []struct {
		div  uint64
		want float64
	}{{64, 0.81}, {16, 0.50}, {8, 0.35}, {4, 0.21}, {2, 0.07}} {
		got := sampleColdBase(g, 1, nodes/tc.div, DefaultPlanSamples)
		require.InDelta(t, tc.want, got, 0.03, "window S/%d", tc.div)
	}
	// Block-granular windows: a window of w blocks holds between w-1 and
	// w blocks' worth of nodes, so it leaves more cold than a window of w
	// blocks' worth of nodes; a window of the whole layer leaves nothing
	// cold.
	blockNodes := nodes / 16
	one := sampleColdBase(g, blockNodes, 1, DefaultPlanSamples)
	require.Greater(t, one, sampleColdBase(g, 1, blockNodes, DefaultPlanSamples))
	require.Less(t, one, 6.0)
	require.Zero(t, sampleColdBase(g, blockNodes, 16, DefaultPlanSamples))
	// More samples than nodes: every node once, no panic.
	small, err := sdr.NewGraph(2<<10, [32]byte{}, sdr.APIVersion1_1)
	require.NoError(t, err)
	require.GreaterOrEqual(t, sampleColdBase(small, 1, 1, 1000), 0.0)
}

func TestPlanRegimes(t *testing.T) {
	g32 := proofGraph(t, "StackedDrg32GiBV1_1")
	g64m, err := sdr.NewGraph(64*mib, [32]byte{}, sdr.APIVersion1_1)
	require.NoError(t, err)
	vCore := 25e6 / 20 * 0.9
	nvme := []tier.DeviceSpeed{testDevice("/nvme0", 1, 100e3)}
	for _, tc := range []struct {
		name string
		in   Input
		// want
		regime    string
		pool      uint64
		perSector uint64 // 0: not checked
		speed     float64
		exp, win  int // spill plan
		verdict   []string
	}{
		{
			name: "no spill: default pool fits",
			// reserve 2 GiB + 56 GiB + 2 x 8 MiB; the default pool for
			// 2 sectors is 3.5 x 32 GiB = 112 GiB.
			in:     Input{Graph: g32, Layers: 11, Sectors: 2, RAM: 256 * gib, Cores: 2, SHA: testSHA},
			regime: RegimeFullSpeed, pool: 112 * gib, perSector: 56 * gib, speed: 2 * vCore,
			verdict: []string{"without spill at full speed"},
		},
		{
			name: "pool-limited: halfway between min and default",
			// min 5 x 32 = 160 GiB, default 6.5 x 32 = 208 GiB: 184 GiB
			// is halfway, so 0.74 + 0.25 / 2.
			in:     Input{Graph: g32, Layers: 11, Sectors: 4, RAM: 184 * gib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA},
			regime: RegimePoolLimited, pool: 184 * gib, perSector: 46 * gib, speed: 2 * vCore * 0.865,
			verdict: []string{"below the default pool", "x full speed"},
		},
		{
			name: "spill: 24 GiB per 32 GiB sector",
			// 768 blocks of 32 MiB per job: a window of 64 (S/16), 704
			// expander blocks, 320 of 1024 expander blocks spilled.
			in:     Input{Graph: g32, Layers: 11, Sectors: 4, RAM: 96 * gib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: nvme, ColdReadCPUSeconds: 20e-6},
			regime: RegimeSpill, pool: 96 * gib, exp: 704, win: 64,
			verdict: []string{"need spill", "--dram 96 GiB"},
		},
		{
			name: "spill: the lead's 4 x 64 MiB at 1.1 x S per sector",
			// Spilling, the labeler uses 1 MiB blocks: 70 per job, the
			// whole expander layer and a six-block window; layer 1 rings
			// through all 70: no spill.
			in:     Input{Graph: g64m, Layers: 4, Sectors: 4, RAM: 282 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: nvme},
			regime: RegimeSpill, pool: 4 * 70 * mib, exp: 64, win: 6,
			verdict: []string{"need spill"},
		},
		{
			name: "cannot fit: less than one block per job after the reserve",
			// The reserve is 58 GiB + 8 x 8 MiB; 100 MiB over 58 GiB
			// leaves 36 MiB, a 32 MiB block for one job. Two jobs need
			// 2 x (32 + 8) MiB = 80 MiB over the 58 GiB.
			in:      Input{Graph: g32, Layers: 11, Sectors: 8, RAM: 58*gib + 100*mib, Cores: 2, SHA: testSHA, Devices: nvme},
			regime:  RegimeCannotFit,
			verdict: []string{"cannot seal 8 x 32 GiB sectors in 58 GiB of RAM", "at most 2 (0 at full speed, 0 without spill, 2 with spill)"},
		},
		{
			name: "cannot fit: spill needed but no device",
			in:   Input{Graph: g32, Layers: 11, Sectors: 8, RAM: 256 * gib, Cores: 2, SHA: testSHA},
			// 256 GiB - 58 GiB - 8 x 8 MiB: (N+1) x 32 GiB fits for N = 5.
			regime:  RegimeCannotFit,
			verdict: []string{"cannot seal 8", "--nvme", "at most 5 (3 at full speed, 5 without spill"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Make(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.regime, r.Regime, r.String())
			require.Equal(t, tc.regime != RegimeCannotFit, r.Feasible)
			for _, v := range tc.verdict {
				require.Contains(t, r.Verdict, v)
			}
			require.NotEmpty(t, r.Arithmetic)
			lo, def, hi := pool.Bounds(tc.in.Graph.SectorSize(), tc.in.Sectors)
			require.Equal(t, []uint64{lo, def, hi}, []uint64{r.PoolMinBytes, r.PoolDefault, r.PoolMaxBytes})
			if !r.Feasible {
				require.Zero(t, r.NodesPerSecond)
				return
			}
			require.Equal(t, tc.pool, r.PoolSizeBytes)
			require.InDelta(t, float64(min(tc.in.Cores, tc.in.Sectors))*vCore, r.AllDRAMNodesPerSecond, 1e-6)
			require.InDelta(t, r.NodesPerSecond/r.AllDRAMNodesPerSecond, r.Slowdown, 1e-9)
			require.Greater(t, r.BatchSeconds, 0.0)
			if tc.perSector != 0 {
				require.Equal(t, tc.perSector, r.DRAMPerSectorBytes)
			}
			if tc.speed != 0 {
				require.InDelta(t, tc.speed, r.NodesPerSecond, 1)
			}
			if tc.regime != RegimeSpill {
				require.Nil(t, r.Spill)
				return
			}
			sp := r.Spill
			require.NotNil(t, sp)
			require.Equal(t, tc.exp, sp.ExpanderBlocks)
			require.Equal(t, tc.win, sp.WindowBlocks)
			k := float64(sp.BlocksPerLayer)
			require.InDelta(t, 8*(k-float64(tc.exp))/k, sp.ExpanderColdReadsPerNode, 1e-12)
			require.InDelta(t, sp.ExpanderColdReadsPerNode+sp.BaseColdReadsPerNode, sp.ColdReadsPerNode, 1e-12)
			require.Greater(t, sp.BaseColdReadsPerNode, 0.0)
			require.Less(t, sp.BaseColdReadsPerNode, 6.0)
			require.Equal(t, 2*r.SectorSize-uint64(tc.exp+tc.win)*r.BlockSizeBytes, sp.SpilledBytesPerSector)
			require.Greater(t, r.DRAMPerSectorBytes, uint64(tc.exp+tc.win)*r.BlockSizeBytes)
			// V = min(C' / (1/v_core + cold x c), R / cold) for layers
			// 2..L, and the batch is their harmonic mix with layer 1.
			c := sp.ColdReadCPUSeconds
			if tc.in.ColdReadCPUSeconds == 0 {
				require.Equal(t, 10e-6, c, "the devices' measured spill-path CPU")
			}
			require.InDelta(t, sp.ExpanderPageReadsPerNode+sp.BasePageReadsPerNode, sp.PageReadsPerNode, 1e-12)
			require.LessOrEqual(t, sp.PageReadsPerNode, sp.ColdReadsPerNode, "pages are shared, never more")
			later := softMin(2/(1/vCore+sp.PageReadsPerNode*c), DefaultSpillPathEfficiency*100e3/sp.PageReadsPerNode)
			require.InDelta(t, later, sp.LaterNodesPerSecond, 1e-6*later)
			first := softMin(2/(1/vCore+sp.Layer1PageReadsPerNode*c), DefaultSpillPathEfficiency*100e3/sp.Layer1PageReadsPerNode)
			require.InDelta(t, first, sp.Layer1NodesPerSecond, 1e-6*first)
			L := float64(tc.in.Layers)
			require.InDelta(t, L/(1/first+(L-1)/later), r.NodesPerSecond, 1e-6*r.NodesPerSecond)
			require.Less(t, r.Slowdown, 1.0)
		})
	}
}

// TestPlanLeadSpillCase pins what the model says about the lead's spill
// measurement: with the whole expander layer in DRAM only base parents
// are cold, and none in layer 1.
func TestPlanLeadSpillCase(t *testing.T) {
	g64m, err := sdr.NewGraph(64*mib, [32]byte{}, sdr.APIVersion1_1)
	require.NoError(t, err)
	r, err := Make(Input{Graph: g64m, Layers: 4, Sectors: 4, RAM: 282 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA,
		Devices: []tier.DeviceSpeed{testDevice("/var/tmp/x", 1, 68e3)}})
	require.NoError(t, err)
	sp := r.Spill
	require.Zero(t, sp.ExpanderColdReadsPerNode)
	require.Zero(t, sp.Layer1ColdReadsPerNode)
	// A window of six 1 MiB blocks holds between five and six blocks'
	// worth of nodes behind the head.
	blockNodes := uint64(1<<20) / sdr.NodeSize
	require.Greater(t, sp.BaseColdReadsPerNode, sampleColdBase(g64m, 1, 6*blockNodes, DefaultPlanSamples))
	require.Less(t, sp.BaseColdReadsPerNode, sampleColdBase(g64m, 1, 5*blockNodes, DefaultPlanSamples))
	// Nodes of one look-ahead share some of those pages.
	require.Less(t, sp.BasePageReadsPerNode, sp.BaseColdReadsPerNode)
	require.Zero(t, sp.ExpanderPageReadsPerNode)
	require.Zero(t, sp.Layer1PageReadsPerNode)
	require.InDelta(t, 2.25e6, sp.Layer1NodesPerSecond, 1e-3)
}

// TestDistinctPages checks the expander's page count against what it must
// be at the extremes, and the base pages of the 32 GiB graph against its
// cold parents (far apart at that size: no sharing).
func TestDistinctPages(t *testing.T) {
	for _, tc := range []struct {
		pages, look, perNode, want, delta float64
	}{
		{1e12, 2048, 2.5, 2.5, 1e-6},  // pages never repeat
		{1, 2048, 2.5, 1.0 / 2048, 0}, // one page, read once
		{100, 1000, 0, 0, 0},
		{0, 1000, 3, 0, 0},
		{16384, 2048, 8, 16384 * (1 - 0.3679) / 2048, 0.01}, // m = P: 1 - 1/e of the pages
	} {
		require.InDelta(t, tc.want, distinctPagesPerNode(tc.pages, tc.look, tc.perNode), tc.delta)
	}
	g := proofGraph(t, "StackedDrg32GiBV1_1")
	bn := g.Nodes() / 1024
	require.InDelta(t, sampleColdBase(g, bn, 64, DefaultPlanSamples), sampleColdPages(g, bn, 64, planPageRuns, prefetchAheadNodes), 0.03)
	require.Zero(t, sampleColdPages(g, bn, 1024, planPageRuns, prefetchAheadNodes))
}

// TestPlanMaxSectors checks the largest-N answers against a plain count.
func TestPlanMaxSectors(t *testing.T) {
	g32 := proofGraph(t, "StackedDrg32GiBV1_1")
	s := g32.SectorSize()
	b := uint64(32 * mib)
	for _, ram := range []uint64{58 * gib, 64 * gib, 256 * gib, 1 << 40, 3<<40 + 5} {
		for _, reserve := range []*uint64{nil, sizePtr(0), sizePtr(10 * gib)} {
			r, err := Make(Input{Graph: g32, Layers: 11, Sectors: 1, RAM: ram, Reserve: reserve, Cores: 2, SHA: testSHA})
			require.NoError(t, err)
			count := func(need func(n uint64) uint64) int {
				n := uint64(0)
				for {
					res := DefaultReserve(s, int(n+1))
					if reserve != nil {
						res = *reserve
					}
					if res+need(n+1) > ram {
						return int(n)
					}
					n++
				}
			}
			require.Equal(t, count(func(n uint64) uint64 { return (3*n + 1) * s / 2 }), r.MaxSectorsFullSpeed, "ram %d", ram)
			require.Equal(t, count(func(n uint64) uint64 { return (n + 1) * s }), r.MaxSectorsNoSpill, "ram %d", ram)
			require.Equal(t, count(func(n uint64) uint64 { return n * b }), r.MaxSectorsWithSpill, "ram %d", ram)
		}
	}
}

// TestPlanDevices: directories on one device count once, tmpfs is
// called out, and a spill plan warns when the layer files do not fit.
func TestPlanDevices(t *testing.T) {
	g32 := proofGraph(t, "StackedDrg32GiBV1_1")
	a := testDevice("/a", 7, 100e3)
	b := testDevice("/b", 7, 80e3)
	c := testDevice("/c", 9, 50e3)
	shm := testDevice("/dev/shm", 11, 1e6)
	shm.FSType, shm.InMemory = "tmpfs", true
	small := testDevice("/small", 12, 10e3)
	small.FreeBytes = 1 << 30
	// A probe from before the spill-path phase: its O_DIRECT rate stands in.
	old := testDevice("/old", 13, 40e3)
	old.SpillReadsPerSecond = 0
	for _, tc := range []struct {
		name  string
		devs  []tier.DeviceSpeed
		reads float64
		warn  string
	}{
		{"distinct", []tier.DeviceSpeed{a, c}, 150e3, ""},
		{"shared device", []tier.DeviceSpeed{a, b, c}, 150e3, "/b shares its device"},
		{"tmpfs", []tier.DeviceSpeed{shm}, 1e6, "/dev/shm is on tmpfs"},
		{"no room for layer files", []tier.DeviceSpeed{small}, 10e3, "layer files need"},
		{"probe without the spill path", []tier.DeviceSpeed{old}, 50e3, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Make(Input{Graph: g32, Layers: 11, Sectors: 4, RAM: 96 * gib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: tc.devs})
			require.NoError(t, err)
			require.Equal(t, RegimeSpill, r.Regime)
			require.Equal(t, tc.reads, r.DeviceReadsPerSecond)
			if tc.warn != "" {
				require.Contains(t, strings.Join(r.Warnings, "\n"), tc.warn)
			} else {
				require.Empty(t, r.Warnings)
			}
		})
	}
}

func TestPlanInvalidInput(t *testing.T) {
	g32 := proofGraph(t, "StackedDrg32GiBV1_1")
	ok := Input{Graph: g32, Layers: 11, Sectors: 2, RAM: 256 * gib, Cores: 2, SHA: testSHA}
	for _, tc := range []struct {
		name   string
		mutate func(*Input)
		want   string
	}{
		{"no graph", func(in *Input) { in.Graph = nil }, "no graph"},
		{"no sectors", func(in *Input) { in.Sectors = 0 }, "0 sectors"},
		{"no layers", func(in *Input) { in.Layers = 0 }, "0 layers"},
		{"no cores", func(in *Input) { in.Cores = 0 }, "0 cores"},
		{"no RAM", func(in *Input) { in.RAM = 0 }, "RAM"},
		{"no SHA rate", func(in *Input) { in.SHA = measure.SHARate{} }, "SHA-256 rate"},
		{"bad efficiency", func(in *Input) { in.Efficiency = -1 }, "efficiency"},
		{"bad block size", func(in *Input) { in.BlockSize = 3 << 20 }, "block size"},
		{"negative cold CPU", func(in *Input) { in.ColdReadCPUSeconds = -1 }, "cold read CPU"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ok
			tc.mutate(&in)
			_, err := Make(in)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestPlanOutput: the JSON carries the answer and the arithmetic, and the
// text shows the answer first.
func TestPlanOutput(t *testing.T) {
	g32 := proofGraph(t, "StackedDrg32GiBV1_1")
	r, err := Make(Input{Graph: g32, Layers: 11, Sectors: 4, RAM: 96 * gib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA,
		Devices: []tier.DeviceSpeed{testDevice("/nvme0", 1, 100e3)}})
	require.NoError(t, err)
	data, err := r.JSON()
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))
	for _, key := range []string{"regime", "verdict", "pool_size_bytes", "dram_per_sector_bytes", "nodes_per_second",
		"slowdown", "all_dram_nodes_per_second", "max_sectors_with_spill", "arithmetic", "spill", "devices"} {
		require.Contains(t, m, key)
	}
	text := r.String()
	require.True(t, strings.HasPrefix(text, "plan: 4 x 32 GiB sectors"), text)
	require.Contains(t, text, "answer: "+r.Verdict)
	require.Contains(t, text, "seal with: --parallel 4 --dram 96GiB")
	require.Contains(t, text, "tier.PlanSpill(1024, 768)")
	require.Contains(t, text, "device bound e x R / reads")
}

func TestSoftMin(t *testing.T) {
	for _, tc := range []struct{ a, b, want float64 }{
		{1, 1e9, 1},
		{1e9, 2, 2},
		{1, 1, math.Pow(2, -0.25)},
	} {
		require.InDelta(t, tc.want, softMin(tc.a, tc.b), 1e-9, "softMin(%g, %g)", tc.a, tc.b)
	}
}
