package plan

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/labeler"
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
			in:     Input{Graph: g32, Layers: 11, Sectors: 4, RAM: 96 * gib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: nvme, ColdReadCPUSeconds: 20e-6, Batch: 1},
			regime: RegimeSpill, pool: 96 * gib, exp: 704, win: 64,
			verdict: []string{"need spill", "--dram 96 GiB"},
		},
		{
			name: "spill: the lead's 4 x 64 MiB at 1.1 x S per sector",
			// Spilling, the labeler uses 1 MiB blocks: 70 per job, the
			// whole expander layer and a six-block window; layer 1 rings
			// through all 70: no spill.
			in:     Input{Graph: g64m, Layers: 4, Sectors: 4, RAM: 282 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: nvme, Batch: 1},
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
			require.Equal(t, uint64(tc.exp+tc.win)*r.BlockSizeBytes+tier.ReaderBufferBytes(1), r.DRAMPerSectorBytes)
			require.Equal(t, []int{1, tc.in.Sectors, labelsPerPage}, []int{r.BatchSize, r.Batches, r.RecordsPerPage})
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
		Devices: []tier.DeviceSpeed{testDevice("/var/tmp/x", 1, 68e3)}, Batch: 1})
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
	require.InDelta(t, sampleColdBase(g, bn, 64, DefaultPlanSamples), sampleColdPages(g, bn, 64, planPageRuns, prefetchAheadNodes, pageLayout{rpp: labelsPerPage}), 0.03)
	require.Zero(t, sampleColdPages(g, bn, 1024, planPageRuns, prefetchAheadNodes, pageLayout{rpp: labelsPerPage}))
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
			r, err := Make(Input{Graph: g32, Layers: 11, Sectors: 4, RAM: 96 * gib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: tc.devs, Batch: 1})
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
		"slowdown", "all_dram_nodes_per_second", "max_sectors_with_spill", "arithmetic", "spill", "devices",
		"batch_size", "batches", "records_per_page", "page_reads_per_node_group", "labels_per_second", "batch_candidates"} {
		require.Contains(t, m, key)
	}
	for _, key := range []string{"job_block_bytes", "records_per_page", "pages_per_block", "spill_file_bytes_per_layer"} {
		require.Contains(t, m["spill"], key)
	}
	require.Equal(t, RegimeBatch, m["regime"])
	require.EqualValues(t, 4, m["batch_size"])
	text := r.String()
	require.True(t, strings.HasPrefix(text, "plan: 4 x 32 GiB sectors"), text)
	require.Contains(t, text, "answer: "+r.Verdict)
	require.Contains(t, text, "seal with: --parallel 4 --batch 4 --dram 97920MiB")
	require.Contains(t, text, "DRAM for blocks = 96 GiB - 1 jobs x 272 MiB of reader and packer buffers")
	require.Contains(t, text, "weighing B in [4 2 1]")
	require.Contains(t, text, "chosen B = 4")
	require.Contains(t, text, "rpp = floor(4096 / (32 x B)) = 32 records per 4 KiB page")
	require.Contains(t, text, "tier.PlanBudget(96 GiB, 1, 128 MiB, 1024)")
	require.Contains(t, text, "tier.PlanSpill(1024, 765)")
	require.Contains(t, text, "device bound B x e x R / reads")
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

// TestPlanBatchOneIsToday pins B = 1 to the predictions of the plan before
// the batch tier (commit 32bbbd8, figures printed by its Make for these
// inputs): today's spill tier is the batch tier with one sector per job,
// and its rates, reads and pool must not move. Only the DRAM per sector
// changed: the reader's fixed buffers replace an estimate of the pages in
// flight.
func TestPlanBatchOneIsToday(t *testing.T) {
	g32 := proofGraph(t, "StackedDrg32GiBV1_1")
	g64m, err := sdr.NewGraph(64*mib, [32]byte{}, sdr.APIVersion1_1)
	require.NoError(t, err)
	nvme := []tier.DeviceSpeed{testDevice("/nvme0", 1, 100e3)}
	for _, tc := range []struct {
		name string
		in   Input
		// nodes/s over all layers, layers 2..L, layer 1, the later
		// layers' CPU and device bounds
		nps, later, first, cpu, dev float64
		// page reads per node (layers 2..L, layer 1), cold parents
		pr, pr1, cold float64
		pool, held    uint64
		flags         string
	}{
		{
			name: "4 x 32 GiB in 96 GiB",
			in:   Input{Graph: g32, Layers: 11, Sectors: 4, RAM: 96 * gib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: nvme, ColdReadCPUSeconds: 20e-6},
			nps:  30561.319624009157, later: 27827.698031972097, first: 1.7303807277631292e+06, cpu: 32853.954346066945, dev: 33340.78845349495,
			pr: 2.999329189214705, pr1: 0.0133056640625, cold: 3.0015869140625,
			pool: 103079215104, held: 25769803776, flags: "--parallel 4 --dram 96GiB --out DIR-ON-NVME",
		},
		{
			name: "the lead's 4 x 64 MiB at 1.1 x S",
			in:   Input{Graph: g64m, Layers: 4, Sectors: 4, RAM: 282 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: nvme},
			nps:  222403.30949106874, later: 171028.85812559153, first: 2.25e+06, cpu: 303805.2923221462, dev: 175614.98472586955,
			pr: 0.569427490234375, pr1: 0, cold: 0.6158447265625,
			pool: 293601280, held: 73400320, flags: "--parallel 4 --dram 280MiB --out DIR-ON-NVME",
		},
		{
			name: "8 x 64 MiB in 100 MiB",
			in:   Input{Graph: g64m, Layers: 4, Sectors: 8, RAM: 100 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: nvme},
			nps:  18725.375434433572, later: 14290.577067440241, first: 271345.887334587, cpu: 28670.03329374267, dev: 14520.034366297126,
			pr: 6.8870360411896066, pr1: 0.355682373046875, cold: 7.743896484375,
			pool: 100663296, held: 12582912, flags: "--parallel 8 --dram 96MiB --out DIR-ON-NVME",
		},
		{
			name: "8 x 32 GiB, 256 GiB, 32 cores, two drives",
			in: Input{Graph: g32, Layers: 11, Sectors: 8, RAM: 256 * gib, Cores: 32, SHA: testSHA,
				Devices: []tier.DeviceSpeed{testDevice("/a", 1, 1e6), testDevice("/b", 2, 1e6)}, ColdReadCPUSeconds: 2e-6},
			nps: 753839.063426601, later: 690684.4902229577, first: 8.804123813198311e+06, cpu: 1.2254413903451685e+06, dev: 709298.9497442461,
			pr: 2.819685551094, pr1: 0.0098876953125, cold: 2.8218994140625,
			pool: 212332445696, held: 26541555712, flags: "--parallel 8 --dram 202496MiB --out DIR-ON-NVME",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Batch = 1
			r, err := Make(in)
			require.NoError(t, err)
			require.Equal(t, RegimeSpill, r.Regime, r.String())
			sp := r.Spill
			const eps = 1e-12
			require.InEpsilon(t, tc.nps, r.NodesPerSecond, eps)
			require.InEpsilon(t, tc.later, sp.LaterNodesPerSecond, eps)
			require.InEpsilon(t, tc.later, r.LabelsPerSecond, eps)
			require.InEpsilon(t, tc.first, sp.Layer1NodesPerSecond, eps)
			require.InEpsilon(t, tc.cpu, sp.CPUBoundNodesPerSecond, eps)
			require.InEpsilon(t, tc.dev, sp.DeviceBoundNodesPerSecond, eps)
			require.InEpsilon(t, tc.pr, sp.PageReadsPerNode, eps)
			require.InEpsilon(t, tc.pr, r.PageReadsPerNodeGroup, eps)
			require.InDelta(t, tc.pr1, sp.Layer1PageReadsPerNode, eps)
			require.InEpsilon(t, tc.cold, sp.ColdReadsPerNode, eps)
			require.Equal(t, tc.pool, r.PoolSizeBytes)
			require.Equal(t, tc.held+tier.ReaderBufferBytes(1), r.DRAMPerSectorBytes)
			require.Equal(t, tc.flags, r.SealFlags)
			require.Equal(t, []int{1, in.Sectors, labelsPerPage}, []int{r.BatchSize, r.Batches, r.RecordsPerPage})
			require.Zero(t, sp.SpillFileBytesPerLayer, "B = 1 reads the layer files back")
			require.Empty(t, r.BatchCandidates, "B was given")

			// Choosing B weighs B = 1 with the same arithmetic.
			in.Batch = 0
			auto, err := Make(in)
			require.NoError(t, err)
			one := auto.BatchCandidates[len(auto.BatchCandidates)-1]
			require.Equal(t, 1, one.BatchSize)
			require.InEpsilon(t, tc.nps, one.NodesPerSecond, eps)
			require.InEpsilon(t, tc.later, one.LabelsPerSecond, eps)
		})
	}
}

// TestPlanBatchArithmetic checks the batch tier's arithmetic on
// constructed inputs: the DRAM split in batch units, the spill file's page
// layout, the reads per node-group, both bounds and the DRAM per sector,
// each recomputed here from its formula.
func TestPlanBatchArithmetic(t *testing.T) {
	g32 := proofGraph(t, "StackedDrg32GiBV1_1")
	g64m, err := sdr.NewGraph(64*mib, [32]byte{}, sdr.APIVersion1_1)
	require.NoError(t, err)
	vCore := 25e6 / 20 * 0.9
	devVM := []tier.DeviceSpeed{testDevice("/nvme0", 1, 200e3)}
	for _, tc := range []struct {
		name string
		in   Input
		// want
		batches, rpp int
		ppb          uint64
		exp, win     int
		rLo, rHi     float64 // page reads per node-group, layers 2..L
		dram         uint64  // DRAM per sector
		labelsLo     float64 // labels/s in layers 2..L, range
		labelsHi     float64
		deviceBound  bool // the device bound is the lower one
	}{
		{
			// BATCH.md's second row: 64 x 64 MiB all on the device, the
			// dev VM's ~200K reads/s at 2 µs each: r ~9, 64 x 200K / 9
			// = ~1.4M labels/s, 0.05-0.07 x S per sector. 256 MiB less
			// the batch's 24 MiB of reader and packer buffers is three
			// 64 MiB batch blocks: the window, no expander.
			name:    "64 x 64 MiB all on device",
			in:      Input{Graph: g64m, Layers: 4, Sectors: 64, RAM: 256 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: devVM, ColdReadCPUSeconds: 2e-6, Batch: 64},
			batches: 1, rpp: 2, ppb: 16384, exp: 0, win: 3,
			rLo: 8.5, rHi: 10, dram: (64*3*mib + labeler.SpillOverheadBytes(64, mib)) / 64,
			labelsLo: 1.2e6, labelsHi: 1.5e6, deviceBound: true,
		},
		{
			// BATCH.md's first row: the expander layer in DRAM and a
			// window of S/16 (4 blocks): ~1.06 x S per sector, only base
			// parents read, CPU-bound near the all-DRAM 2.25M.
			name:    "64 x 64 MiB, expander in DRAM",
			in:      Input{Graph: g64m, Layers: 4, Sectors: 64, RAM: 68 * 64 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: devVM, ColdReadCPUSeconds: 2e-6, Batch: 64},
			batches: 1, rpp: 2, ppb: 16384, exp: 63, win: 4,
			rLo: 0.3, rHi: 1.2, dram: (67*64*mib + labeler.SpillOverheadBytes(64, mib)) / 64,
			labelsLo: 1.8e6, labelsHi: 2.25e6,
		},
		{
			// B not a power of two: 42 records of 96 B a page, 64 B of
			// padding, a 32768-node block in 781 pages. Two batches of
			// three share 12 blocks of 3 MiB: 6 each, a window of S/16
			// (4 blocks) first, then 2 of the expander layer.
			name:    "6 x 64 MiB in batches of 3",
			in:      Input{Graph: g64m, Layers: 4, Sectors: 6, RAM: 12 * 3 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: devVM, ColdReadCPUSeconds: 2e-6, Batch: 3},
			batches: 2, rpp: 42, ppb: 781, exp: 2, win: 4,
			rLo: 7, rHi: 10, dram: 2 * (6*3*mib + labeler.SpillOverheadBytes(3, mib)) / 6,
			labelsLo: 40e3, labelsHi: 3 * 200e3 / 7, deviceBound: true,
		},
		{
			// A short last batch: 10 sectors in batches of 4 are jobs of
			// 4, 4 and 2, 3.33 sectors a job on average.
			name:    "10 x 64 MiB in batches of 4",
			in:      Input{Graph: g64m, Layers: 4, Sectors: 10, RAM: 3 * 8 * 4 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: devVM, ColdReadCPUSeconds: 2e-6, Batch: 4},
			batches: 3, rpp: 32, ppb: 1024, exp: 4, win: 4,
			rLo: 7, rHi: 9, dram: 3 * (8*4*mib + labeler.SpillOverheadBytes(4, mib)) / 10,
			labelsLo: 50e3, labelsHi: 10.0 / 3 * 200e3 / 7, deviceBound: true,
		},
		{
			// BATCH.md's third row, on its hypothetical server with the
			// device figure given: 64 x 32 GiB, 4 drives x 1M reads/s,
			// 32 cores. Its RAM holds a 34-block expander share and a
			// window of S/16: r = 8 x 990/1024 + ~0.5. At this test's
			// SHA-256 rate (1.125M labels/s a core) the CPU bound,
			// 32 / (0.89 + 8.2 x 2 / 64 µs) = 28M, is below the device's
			// 64 x 4M / 8.2 = 31M.
			name: "64 x 32 GiB, 256 GiB, 32 cores, 4M reads/s given",
			in: Input{Graph: g32, Layers: 11, Sectors: 64, RAM: 256 * gib, Cores: 32, SHA: testSHA,
				DeviceReadsPerSecond: 4e6, ColdReadCPUSeconds: 2e-6, Batch: 64},
			batches: 1, rpp: 2, ppb: 1 << 19, exp: 34, win: 64,
			rLo: 8.1, rHi: 8.3, dram: (98*64*32*mib + labeler.SpillOverheadBytes(64, 32*mib)) / 64,
			labelsLo: 20e6, labelsHi: 28.5e6,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Make(tc.in)
			require.NoError(t, err)
			require.Equal(t, RegimeBatch, r.Regime, r.String())
			B, n := tc.in.Batch, tc.in.Sectors
			require.Equal(t, B, r.BatchSize)
			require.Equal(t, tc.batches, r.Batches)
			require.Equal(t, (n+B-1)/B, r.Batches)
			require.Equal(t, tc.rpp, r.RecordsPerPage)
			require.Equal(t, 4096/(32*B), r.RecordsPerPage)
			sp := r.Spill
			b := labeler.DefaultSpillBlockSize(r.SectorSize)
			require.Equal(t, b, r.BlockSizeBytes)
			require.Equal(t, uint64(B)*b, sp.JobBlockBytes)
			require.Equal(t, tc.ppb, sp.PagesPerBlock)
			npb := b / 32
			require.Equal(t, (npb+uint64(tc.rpp)-1)/uint64(tc.rpp), sp.PagesPerBlock)
			k := int(r.SectorSize / b)
			require.Equal(t, k, sp.BlocksPerLayer)
			require.Equal(t, uint64(k)*sp.PagesPerBlock*4096, sp.SpillFileBytesPerLayer)
			require.GreaterOrEqual(t, sp.SpillFileBytesPerLayer, uint64(B)*r.SectorSize, "B x S written per layer, and padding")
			// The split is tier's, in batch units.
			// The batches' buffers come off the budget first, unless they
			// would take more than a quarter of it.
			forBlocks := r.AvailableBytes
			if ov := uint64(r.Batches) * labeler.SpillOverheadBytes(B, b); ov <= forBlocks/4 && forBlocks < uint64(r.Batches+1)*uint64(B)*r.SectorSize {
				forBlocks -= ov
			}
			plan, perJob, err := tier.PlanBudget(forBlocks, r.Batches, uint64(B)*b, k)
			require.NoError(t, err)
			require.Equal(t, []int{perJob, plan.Expander, plan.Window}, []int{sp.BlocksPerJob, sp.ExpanderBlocks, sp.WindowBlocks})
			require.Equal(t, []int{tc.exp, tc.win}, []int{sp.ExpanderBlocks, sp.WindowBlocks})
			// Reads per node-group.
			require.InDelta(t, 8*float64(k-tc.exp)/float64(k), sp.ExpanderColdReadsPerNode, 1e-12)
			require.InDelta(t, sp.ExpanderPageReadsPerNode+sp.BasePageReadsPerNode, sp.PageReadsPerNode, 1e-12)
			require.LessOrEqual(t, sp.PageReadsPerNode, sp.ColdReadsPerNode)
			require.Equal(t, sp.PageReadsPerNode, r.PageReadsPerNodeGroup)
			require.GreaterOrEqual(t, r.PageReadsPerNodeGroup, tc.rLo)
			require.LessOrEqual(t, r.PageReadsPerNodeGroup, tc.rHi)
			// DRAM per sector: the jobs' blocks and reader buffers over N.
			require.Equal(t, tc.dram, r.DRAMPerSectorBytes)
			require.Equal(t, uint64(r.Batches)*uint64(tc.exp+tc.win)*uint64(B)*b, r.PoolSizeBytes)
			// The bounds, recomputed.
			lanes := float64(n) / float64(r.Batches)
			R := r.DeviceReadsPerSecond
			c := sp.ColdReadCPUSeconds
			rr := sp.PageReadsPerNode
			cp := float64(min(tc.in.Cores, n))
			require.InEpsilon(t, cp/(1/vCore+rr*c/lanes), sp.CPUBoundNodesPerSecond, 1e-12)
			require.InEpsilon(t, lanes*R/rr, sp.DeviceBoundNodesPerSecond, 1e-12)
			require.InEpsilon(t, softMin(sp.CPUBoundNodesPerSecond, sp.DeviceBoundNodesPerSecond), r.LabelsPerSecond, 1e-12)
			require.Equal(t, tc.deviceBound, sp.DeviceBoundNodesPerSecond < sp.CPUBoundNodesPerSecond)
			require.GreaterOrEqual(t, r.LabelsPerSecond, tc.labelsLo)
			require.LessOrEqual(t, r.LabelsPerSecond, tc.labelsHi)
			require.InEpsilon(t, rr*r.LabelsPerSecond/lanes, sp.DeviceReadsPerSecond, 1e-12)
			L := float64(tc.in.Layers)
			require.InEpsilon(t, L/(1/sp.Layer1NodesPerSecond+(L-1)/r.LabelsPerSecond), r.NodesPerSecond, 1e-12)
			require.Contains(t, r.SealFlags, fmt.Sprintf("--parallel %d --batch %d --dram ", n, B))
			require.Contains(t, r.Verdict, fmt.Sprintf("%d batch(es) of %d", r.Batches, B))
		})
	}
}

// TestPlanBatchDevVMExample prints BATCH.md's all-on-device figure as the
// plan computes it, so a change in the samplers shows in the test log.
func TestPlanBatchDevVMExample(t *testing.T) {
	g64m, err := sdr.NewGraph(64*mib, [32]byte{}, sdr.APIVersion1_1)
	require.NoError(t, err)
	r, err := Make(Input{Graph: g64m, Layers: 4, Sectors: 64, RAM: 256 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA,
		Devices: []tier.DeviceSpeed{testDevice("/nvme0", 1, 200e3)}, ColdReadCPUSeconds: 2e-6, Batch: 64})
	require.NoError(t, err)
	sp := r.Spill
	t.Logf("r = %.3f (expander %.3f + base %.3f), device bound 64 x 200K / r = %.0f, CPU bound %.0f, labels/s %.0f, DRAM per sector %.3f x S",
		sp.PageReadsPerNode, sp.ExpanderPageReadsPerNode, sp.BasePageReadsPerNode, sp.DeviceBoundNodesPerSecond,
		sp.CPUBoundNodesPerSecond, r.LabelsPerSecond, float64(r.DRAMPerSectorBytes)/float64(r.SectorSize))
	// Expander parents are uniform over a million pages: the look-ahead
	// barely shares them.
	require.InDelta(t, 8, sp.ExpanderPageReadsPerNode, 0.03)
	require.InDelta(t, 64*200e3/9, sp.DeviceBoundNodesPerSecond, 0.1*64*200e3/9)
}

// TestPlanBatchAuto: without --batch, sectors that fit keep the pool plan;
// spilling ones get the batch size predicted fastest, among candidates that
// include one batch of N and one sector per job.
func TestPlanBatchAuto(t *testing.T) {
	g64m, err := sdr.NewGraph(64*mib, [32]byte{}, sdr.APIVersion1_1)
	require.NoError(t, err)
	devVM := []tier.DeviceSpeed{testDevice("/nvme0", 1, 200e3)}
	for _, tc := range []struct {
		name   string
		in     Input
		regime string
		batch  int
		cands  []int
	}{
		{
			name:   "fits at full speed: the pool plan",
			in:     Input{Graph: g64m, Layers: 4, Sectors: 4, RAM: 1 * gib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: devVM},
			regime: RegimeFullSpeed, batch: 1,
		},
		{
			name:   "fits below the default pool: the pool plan",
			in:     Input{Graph: g64m, Layers: 4, Sectors: 4, RAM: 6 * 64 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA},
			regime: RegimePoolLimited, batch: 1,
		},
		{
			name:   "64 sectors spill: one batch of 64",
			in:     Input{Graph: g64m, Layers: 4, Sectors: 64, RAM: 300 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: devVM, ColdReadCPUSeconds: 2e-6},
			regime: RegimeBatch, batch: 64, cands: []int{64, 32, 16, 8, 4, 2, 1},
		},
		{
			name:   "12 sectors: divisors and halvings",
			in:     Input{Graph: g64m, Layers: 4, Sectors: 12, RAM: 200 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: devVM, ColdReadCPUSeconds: 2e-6},
			regime: RegimeBatch, batch: 12, cands: []int{12, 6, 4, 3, 2, 1},
		},
		{
			// More than MaxBatch: at least two batches.
			name:   "200 sectors: at most 128 a batch",
			in:     Input{Graph: g64m, Layers: 4, Sectors: 200, RAM: 1 * gib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Devices: devVM, ColdReadCPUSeconds: 2e-6},
			regime: RegimeBatch, batch: 100, cands: []int{100, 50, 40, 25, 20, 13, 10, 8, 7, 5, 4, 2, 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Make(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.regime, r.Regime, r.String())
			require.Equal(t, tc.batch, r.BatchSize)
			require.Equal(t, (tc.in.Sectors+tc.batch-1)/tc.batch, r.Batches)
			if tc.cands == nil {
				require.Empty(t, r.BatchCandidates)
				require.Equal(t, r.NodesPerSecond, r.LabelsPerSecond)
				require.Zero(t, r.PageReadsPerNodeGroup)
				require.NotContains(t, r.SealFlags, "--batch")
				return
			}
			var got []int
			best := 0.0
			for _, c := range r.BatchCandidates {
				got = append(got, c.BatchSize)
				require.True(t, c.Feasible)
				best = max(best, c.NodesPerSecond)
			}
			require.Equal(t, tc.cands, got)
			require.Equal(t, best, r.NodesPerSecond, "the fastest candidate is chosen")
			require.Contains(t, strings.Join(r.Arithmetic, "\n"), fmt.Sprintf("chosen B = %d: ", tc.batch))
			require.Contains(t, r.SealFlags, fmt.Sprintf("--batch %d ", tc.batch))
			// The chosen plan is the one --batch B gives.
			in := tc.in
			in.Batch = tc.batch
			given, err := Make(in)
			require.NoError(t, err)
			require.Equal(t, given.NodesPerSecond, r.NodesPerSecond)
			require.Equal(t, given.DRAMPerSectorBytes, r.DRAMPerSectorBytes)
			require.Equal(t, given.SealFlags, r.SealFlags)
		})
	}
}

// TestPlanBatchGiven: --batch B >= 2 plans the batch tier even where the
// pool plan needs no spill; a batch that holds both layers reads nothing
// and needs no device, one that spills does.
func TestPlanBatchGiven(t *testing.T) {
	g64m, err := sdr.NewGraph(64*mib, [32]byte{}, sdr.APIVersion1_1)
	require.NoError(t, err)
	vCore := 25e6 / 20 * 0.9

	// 4 sectors x 2 layers in DRAM: 8 x 64 MiB blocks of 4 x 1 MiB.
	r, err := Make(Input{Graph: g64m, Layers: 4, Sectors: 4, RAM: 512 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Batch: 4})
	require.NoError(t, err)
	require.Equal(t, RegimeBatch, r.Regime, r.String())
	require.Zero(t, r.PageReadsPerNodeGroup)
	require.Zero(t, r.Spill.SpillFileBytesPerLayer, "nothing spills: no spill file")
	require.InDelta(t, 2*vCore, r.NodesPerSecond, 1e-6)
	require.Equal(t, uint64(128*mib), r.DRAMPerSectorBytes, "both layers, no reader")
	require.Contains(t, r.Verdict, "fit in the batch tier's DRAM")
	require.Contains(t, strings.Join(r.Arithmetic, "\n"), "the pool plan needs no spill; --batch 4 plans the batch tier instead")

	// Half that spills, and there is no device.
	r, err = Make(Input{Graph: g64m, Layers: 4, Sectors: 4, RAM: 256 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Batch: 4})
	require.NoError(t, err)
	require.Equal(t, RegimeCannotFit, r.Regime)
	require.Contains(t, r.Verdict, "needs an NVMe directory")

	// Less than one batch block.
	r, err = Make(Input{Graph: g64m, Layers: 4, Sectors: 64, RAM: 60 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA, Batch: 64,
		Devices: []tier.DeviceSpeed{testDevice("/nvme0", 1, 200e3)}})
	require.NoError(t, err)
	require.Equal(t, RegimeCannotFit, r.Regime)
	require.Contains(t, r.Verdict, "each job needs at least one 64 MiB block (B 64 x 1.0 MiB)")
}

// TestPageLayout: a layer file packs 128 labels a page across blocks; a
// spill file starts each block on a page and pads its last one.
func TestPageLayout(t *testing.T) {
	packed := pageLayout{rpp: 128}
	require.Equal(t, []uint64{0, 0, 1, 7}, []uint64{packed.page(0), packed.page(127), packed.page(128), packed.page(1000)})
	// B = 3: 42 records a page; a 100-node block takes 3 pages.
	three := pageLayout{rpp: 42, npb: 100}
	require.Equal(t, []uint64{0, 0, 1, 2, 3, 5, 6}, []uint64{three.page(0), three.page(41), three.page(42), three.page(99), three.page(100), three.page(199), three.page(200)})
	// Powers of two: the block layout is the packed one.
	for _, rpp := range []uint64{1, 2, 32, 64} {
		l := pageLayout{rpp: rpp, npb: 4096}
		for _, u := range []uint64{0, 1, 4095, 4096, 12345, 1 << 20} {
			require.Equal(t, u/rpp, l.page(u))
		}
	}
	// Fewer records a page share fewer pages: on the 64 MiB graph behind
	// a 4-block window, more distinct pages per node at 2 records a page
	// than at 128, and never more than the cold parents.
	g, err := sdr.NewGraph(64*mib, [32]byte{}, sdr.APIVersion1_1)
	require.NoError(t, err)
	bn := uint64(1 << 15)
	at128 := sampleColdPages(g, bn, 4, planPageRuns, prefetchAheadNodes, pageLayout{rpp: 128})
	at2 := sampleColdPages(g, bn, 4, planPageRuns, prefetchAheadNodes, pageLayout{rpp: 2, npb: bn})
	at1 := sampleColdPages(g, bn, 4, planPageRuns, prefetchAheadNodes, pageLayout{rpp: 1, npb: bn})
	require.Less(t, at128, at2)
	require.LessOrEqual(t, at2, at1)
	require.InDelta(t, sampleColdBase(g, bn, 4, DefaultPlanSamples), at1, 0.1, "one record a page: a page per distinct parent")
}

// TestReaderBuffers checks the reader's buffers plan counts: 1070 pages,
// 4.2 MiB a job.
func TestReaderBuffers(t *testing.T) {
	require.Equal(t, uint64(1070*tier.PageSize), tier.ReaderBufferBytes(1))
	require.InDelta(t, 4.18, float64(tier.ReaderBufferBytes(1))/float64(mib), 0.01)
	require.InDelta(t, 16.18, float64(tier.ReaderBufferBytes(64))/float64(mib), 0.01)
}

func TestPlanBatchInvalidInput(t *testing.T) {
	g64m, err := sdr.NewGraph(64*mib, [32]byte{}, sdr.APIVersion1_1)
	require.NoError(t, err)
	ok := Input{Graph: g64m, Layers: 4, Sectors: 8, RAM: 256 * mib, Cores: 2, SHA: testSHA}
	for _, tc := range []struct {
		name   string
		mutate func(*Input)
		want   string
	}{
		{"negative batch", func(in *Input) { in.Batch = -1 }, "batch of -1 sectors"},
		{"batch over 128", func(in *Input) { in.Sectors, in.Batch = 200, 129 }, "1 to 128"},
		{"batch over N", func(in *Input) { in.Batch = 9 }, "batch of 9 sectors but only 8 sectors"},
		{"negative device reads", func(in *Input) { in.DeviceReadsPerSecond = -1 }, "device reads"},
		{"device reads without CPU", func(in *Input) { in.DeviceReadsPerSecond = 1e6 }, "without the CPU per read"},
		{"device reads and devices", func(in *Input) {
			in.DeviceReadsPerSecond, in.ColdReadCPUSeconds = 1e6, 2e-6
			in.Devices = []tier.DeviceSpeed{testDevice("/a", 1, 1e5)}
		}, "one or the other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ok
			tc.mutate(&in)
			_, err := Make(in)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestPlanColdReadCPU: the CPU a read costs is the hashing it takes away
// when the probe measured that (it sees the kernel's share, which the
// process's own CPU time misses), the process's spill-path CPU otherwise,
// the largest over the devices, and a given figure over both.
func TestPlanColdReadCPU(t *testing.T) {
	g64m, err := sdr.NewGraph(64*mib, [32]byte{}, sdr.APIVersion1_1)
	require.NoError(t, err)
	loaded := func(dir string, dev uint64, lost float64) tier.DeviceSpeed {
		d := testDevice(dir, dev, 200e3)
		d.LoadThreads, d.LoadedSpillReadsPerSecond, d.HashCPUSecondsPerRead = 2, 120e3, lost
		return d
	}
	for _, tc := range []struct {
		name    string
		devices []tier.DeviceSpeed
		given   float64
		want    float64
		says    string
	}{
		{"process CPU only", []tier.DeviceSpeed{testDevice("/a", 1, 200e3)}, 0, 10e-6, "largest measured CPU per spill-path page"},
		{"hashing lost", []tier.DeviceSpeed{loaded("/a", 1, 14e-6)}, 0, 14e-6, "from 2 threads hashing at full speed"},
		{"largest over devices", []tier.DeviceSpeed{loaded("/a", 1, 4e-6), loaded("/b", 2, 7e-6)}, 0, 7e-6, "from 2 threads hashing"},
		{"one device not loaded", []tier.DeviceSpeed{loaded("/a", 1, 4e-6), testDevice("/b", 2, 200e3)}, 0, 10e-6, "largest measured CPU per spill-path page"},
		{"given wins", []tier.DeviceSpeed{loaded("/a", 1, 14e-6)}, 3e-6, 3e-6, "(given)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Make(Input{Graph: g64m, Layers: 2, Sectors: 64, RAM: 256 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA,
				Devices: tc.devices, ColdReadCPUSeconds: tc.given, Batch: 64})
			require.NoError(t, err)
			require.Equal(t, RegimeBatch, r.Regime, r.String())
			require.Equal(t, tc.want, r.Spill.ColdReadCPUSeconds)
			require.Contains(t, strings.Join(r.Arithmetic, "\n"), tc.says)
		})
	}
	// More CPU per read, slower: the CPU bound is what moves.
	slow, err := Make(Input{Graph: g64m, Layers: 2, Sectors: 64, RAM: 256 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA,
		Devices: []tier.DeviceSpeed{loaded("/a", 1, 14e-6)}, Batch: 64})
	require.NoError(t, err)
	fast, err := Make(Input{Graph: g64m, Layers: 2, Sectors: 64, RAM: 256 * mib, Reserve: sizePtr(0), Cores: 2, SHA: testSHA,
		Devices: []tier.DeviceSpeed{loaded("/a", 1, 2e-6)}, Batch: 64})
	require.NoError(t, err)
	require.Less(t, slow.Spill.CPUBoundNodesPerSecond, fast.Spill.CPUBoundNodesPerSecond)
	require.Equal(t, slow.Spill.DeviceBoundNodesPerSecond, fast.Spill.DeviceBoundNodesPerSecond)
}
