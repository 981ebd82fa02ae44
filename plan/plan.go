package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/measure"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
	"golang.org/x/sys/unix"
)

// Planning constants; the package documentation says where each comes from.
const (
	// DefaultSpillPathEfficiency scales the spill-path rate the device
	// probe measured (tier.DeviceSpeed.SpillReadsPerSecond): 1, since
	// that probe runs the tier's own mechanism. It replaced a share of the
	// O_DIRECT rate (0.64), calibrated on one day of the development VM,
	// which on another day's VM drew 1.06 of its O_DIRECT rate: the share
	// is the device's, not a constant. --spill-efficiency after a bench on
	// yours corrects what the short probe misses.
	DefaultSpillPathEfficiency = 1.0
	// DefaultEfficiency is the share of the single-stream SHA-256 rate a
	// hashing core is assumed to reach with every parent in DRAM.
	DefaultEfficiency = 0.9
	// DefaultPlanSamples is how many nodes Plan samples to measure how
	// many base parents fall behind a hot window.
	DefaultPlanSamples = 8192
	// planPageRuns is how many runs of prefetchAheadNodes consecutive
	// nodes Plan samples to count the distinct pages their cold base
	// parents fall in.
	planPageRuns = 64
	// SystemReserve is the part of the default reserve for the operating
	// system and the Go runtime.
	SystemReserve = 2 << 30
	// JobReserve is the part of the default reserve for each job's
	// buffers outside the pool (parent-cache read-ahead chunks, staging).
	JobReserve = 8 << 20

	// poolMinRatio and poolDefaultRatio are the README's measured
	// throughputs at the pool minimum and default against the maximum
	// (4 x 64 MiB sectors, 4 layers, 2 cores).
	poolMinRatio     = 0.74
	poolDefaultRatio = 0.99
	// prefetchAheadNodes is the spill tier's prefetch distance: a spilling
	// job holds the pages of at most this many nodes' cold reads in its
	// reader's buffers.
	prefetchAheadNodes = tier.PrefetchAheadNodes

	// MaxBatch is the most sectors one batch labels in lockstep.
	MaxBatch = 128
	// labelsPerPage is how many 32-byte labels a 4 KiB page holds: a
	// layer file's page, or a spill file's page of one-lane records.
	labelsPerPage = tier.PageSize / sdr.NodeSize
)

// Input is what Plan needs: the batch, the machine's RAM and cores, and
// figures measured on it (the SHA-256 rate, the spill devices). Plan does
// no measuring itself, so the same input always gives the same plan.
type Input struct {
	// Graph is the sectors' graph: its size, and the real parents that
	// Plan samples.
	Graph *sdr.Graph
	// Layers is the layer count (the proof's for production sizes).
	Layers int
	// Sectors is N, the number of sectors labeled at once.
	Sectors int
	// RAM is the machine's memory in bytes.
	RAM uint64
	// Reserve, when set, is the memory kept from the pool instead of
	// DefaultReserve.
	Reserve *uint64
	// Cores is the number of cores that may hash.
	Cores int
	// BlockSize is the pool block size; 0 means labeler.DefaultBlockSize.
	BlockSize uint64
	// SHA is one core's measured SHA-256 rate.
	SHA measure.SHARate
	// Efficiency scales the SHA-256 bound; 0 means DefaultEfficiency.
	Efficiency float64
	// SpillPathEfficiency scales the devices' spill-path rate to what the
	// spill tier draws from them in a real batch; 0 means
	// DefaultSpillPathEfficiency.
	SpillPathEfficiency float64
	// Devices are the probed spill directories; spilling needs one.
	Devices []tier.DeviceSpeed
	// ColdReadCPUSeconds is the CPU time one cold read costs; 0 means the
	// largest page-cache-miss kernel CPU time the devices measured.
	ColdReadCPUSeconds float64
	// Samples is the node sample size; 0 means DefaultPlanSamples.
	Samples int
	// Batch is B, the sectors one job labels in lockstep through the
	// batch tier (1 to MaxBatch, at most Sectors). 0 chooses: the pool
	// plan when the sectors fit without spill, else the B that labels
	// fastest. 1 is today's tier (one sector per job); B >= 2 plans the
	// batch tier even when the pool plan would need no spill.
	Batch int
	// DeviceReadsPerSecond, when set, is the spill devices' random 4 KiB
	// read rate taken as given (hypothetical hardware) instead of probed
	// Devices; ColdReadCPUSeconds must then be given too.
	DeviceReadsPerSecond float64
}

// Plan regimes. RegimeSpill is today's spill tier, one sector per job (a
// batch of 1); RegimeBatch is the batch tier, B >= 2 sectors per job.
const (
	RegimeFullSpeed   = "full-speed"
	RegimePoolLimited = "pool-limited"
	RegimeSpill       = "spill"
	RegimeBatch       = "batch"
	RegimeCannotFit   = "cannot-fit"
)

// Result is Plan's answer, with the arithmetic behind it.
type Result struct {
	SectorSize uint64 `json:"sector_size"`
	Sectors    int    `json:"sectors"`
	Layers     int    `json:"layers"`
	RAMBytes   uint64 `json:"ram_bytes"`
	// ReserveBytes is kept out of the pool: the OS, the Go runtime, the
	// parent cache in the page cache and the jobs' buffers (or --reserve).
	ReserveBytes     uint64 `json:"reserve_bytes"`
	ParentCacheBytes uint64 `json:"parent_cache_bytes"`
	// AvailableBytes is RAM less the reserve: what the pool may use.
	AvailableBytes uint64 `json:"available_bytes"`
	PoolMinBytes   uint64 `json:"pool_min_bytes"`
	PoolDefault    uint64 `json:"pool_default_bytes"`
	PoolMaxBytes   uint64 `json:"pool_max_bytes"`
	BlockSizeBytes uint64 `json:"block_size_bytes"`

	// Regime is one of the Regime constants; Feasible is false only for
	// RegimeCannotFit.
	Regime   string `json:"regime"`
	Feasible bool   `json:"feasible"`
	// Verdict is the answer in one line.
	Verdict string `json:"verdict"`
	// PoolSizeBytes is the pool to use: seal --pool-size without spill,
	// seal --dram with it.
	PoolSizeBytes uint64 `json:"pool_size_bytes"`
	// SealFlags are the seal flags that give this plan.
	SealFlags string `json:"seal_flags,omitempty"`
	// DRAMPerSectorBytes is the pool's share of each sector, plus, when
	// spilling, its share of its job's reader buffers.
	DRAMPerSectorBytes uint64         `json:"dram_per_sector_bytes"`
	Spill              *SpillEstimate `json:"spill,omitempty"`

	// BatchSize is B, the sectors one job labels in lockstep (1: one
	// sector per job, the pool plans and today's spill tier), and
	// Batches the jobs, ceil(N / B).
	BatchSize int `json:"batch_size"`
	Batches   int `json:"batches"`
	// RecordsPerPage is how many nodes' records (B labels each) a 4 KiB
	// page of the device copy holds: 128 for B = 1 (the layer file),
	// floor(128 / B) for a batch's spill file.
	RecordsPerPage int `json:"records_per_page"`
	// PageReadsPerNodeGroup is the device pages read per node of a batch
	// (B labels) in layers 2..L; 0 without spill.
	PageReadsPerNodeGroup float64 `json:"page_reads_per_node_group"`
	// LabelsPerSecond is the predicted rate, all sectors together, in
	// layers 2..L (where expander parents are read; BATCH.md's figure);
	// NodesPerSecond averages all layers, layer 1 included.
	LabelsPerSecond float64 `json:"labels_per_second"`
	// BatchCandidates are the batch sizes Plan compared when it chose B.
	BatchCandidates []BatchCandidate `json:"batch_candidates,omitempty"`

	Cores        int     `json:"cores"`
	HashingCores int     `json:"hashing_cores"`
	Efficiency   float64 `json:"efficiency"`
	// SHA256CompressionsPerSecond is the measured single-core rate.
	SHA256CompressionsPerSecond float64 `json:"sha256_compressions_per_second"`
	// NodesPerSecondPerCore is one core's all-DRAM labeling rate.
	NodesPerSecondPerCore float64 `json:"nodes_per_second_per_core"`
	// AllDRAMNodesPerSecond is the whole batch's rate with every label in
	// DRAM and the pool at its default.
	AllDRAMNodesPerSecond float64 `json:"all_dram_nodes_per_second"`
	// NodesPerSecond is the expected rate of the whole batch, averaged
	// over its layers; Slowdown is it over AllDRAMNodesPerSecond.
	NodesPerSecond float64 `json:"nodes_per_second"`
	Slowdown       float64 `json:"slowdown"`
	// BatchSeconds is the time to label all N sectors' layers.
	BatchSeconds float64 `json:"batch_seconds"`

	// Largest N this RAM holds: at the default pool, at the pool
	// minimum (no spill), and spilling all but one block per job.
	MaxSectorsFullSpeed int `json:"max_sectors_full_speed"`
	MaxSectorsNoSpill   int `json:"max_sectors_no_spill"`
	MaxSectorsWithSpill int `json:"max_sectors_with_spill"`

	Devices              []tier.DeviceSpeed `json:"devices,omitempty"`
	DeviceReadsPerSecond float64            `json:"device_random_reads_per_second"`

	// Arithmetic is the calculation, one step a line.
	Arithmetic []string `json:"arithmetic"`
	Warnings   []string `json:"warnings,omitempty"`
}

// SpillEstimate is the spill part of a plan: how each job (a batch of B
// sectors) splits its DRAM and what the spilled labels cost. Per node
// means per node of the job: one label for B = 1, B labels (a node-group)
// for a batch.
type SpillEstimate struct {
	BlocksPerLayer int `json:"blocks_per_layer"`
	BlocksPerJob   int `json:"blocks_per_job"`
	ExpanderBlocks int `json:"expander_blocks"`
	WindowBlocks   int `json:"window_blocks"`
	// JobBlockBytes is a job's block: B x the per-sector block size.
	JobBlockBytes uint64 `json:"job_block_bytes"`
	// RecordsPerPage is the nodes per 4 KiB page of the device copy, and
	// PagesPerBlock a block's pages in a batch's spill file (0 for B = 1,
	// whose device copy is the layer file).
	RecordsPerPage int    `json:"records_per_page"`
	PagesPerBlock  uint64 `json:"pages_per_block"`
	// SpillFileBytesPerLayer is what a batch writes to its spill file per
	// layer (every block once, pages padded for B not a power of two);
	// 0 for B = 1.
	SpillFileBytesPerLayer uint64 `json:"spill_file_bytes_per_layer"`
	// SpilledBytesPerSector is what lives only on the device at the end
	// of a layer (of the 2 x S a job reads); SpilledBytes for all jobs.
	SpilledBytesPerSector uint64 `json:"spilled_bytes_per_sector"`
	SpilledBytes          uint64 `json:"spilled_bytes"`
	// InFlightBytesPerSector is each sector's share of its job's reader
	// buffers, which hold the spilled pages in flight.
	InFlightBytesPerSector uint64 `json:"in_flight_bytes_per_sector"`
	// Cold parents per node (parents not in DRAM): in layer 1 (base
	// parents only, the ring spans the expander slots too) and in later
	// layers, split in expander and base parts.
	Layer1ColdReadsPerNode   float64 `json:"layer1_cold_reads_per_node"`
	ExpanderColdReadsPerNode float64 `json:"expander_cold_reads_per_node"`
	BaseColdReadsPerNode     float64 `json:"base_cold_reads_per_node"`
	ColdReadsPerNode         float64 `json:"cold_reads_per_node"`
	// Device page reads per node: the distinct 4 KiB pages the cold
	// parents of the prefetcher's look-ahead fall in, per node. Nodes
	// close together share pages, so these are at most the cold parents.
	Layer1PageReadsPerNode   float64 `json:"layer1_page_reads_per_node"`
	ExpanderPageReadsPerNode float64 `json:"expander_page_reads_per_node"`
	BasePageReadsPerNode     float64 `json:"base_page_reads_per_node"`
	PageReadsPerNode         float64 `json:"page_reads_per_node"`
	// ColdReadCPUSeconds is the CPU time one page read costs.
	ColdReadCPUSeconds float64 `json:"cold_read_cpu_seconds"`
	// The later layers' rate bounds, and the rates of both layer kinds.
	CPUBoundNodesPerSecond    float64 `json:"cpu_bound_nodes_per_second"`
	DeviceBoundNodesPerSecond float64 `json:"device_bound_nodes_per_second"`
	Layer1NodesPerSecond      float64 `json:"layer1_nodes_per_second"`
	LaterNodesPerSecond       float64 `json:"later_layers_nodes_per_second"`
	// DeviceReadsPerSecond is the random read rate the later layers ask
	// of the devices.
	DeviceReadsPerSecond float64 `json:"device_reads_per_second"`
}

// BatchCandidate is one batch size Plan weighed when choosing B.
type BatchCandidate struct {
	BatchSize int `json:"batch_size"`
	Batches   int `json:"batches"`
	// Feasible is false when a job of this size gets no whole block.
	Feasible              bool    `json:"feasible"`
	PageReadsPerNodeGroup float64 `json:"page_reads_per_node_group"`
	LabelsPerSecond       float64 `json:"labels_per_second"`
	NodesPerSecond        float64 `json:"nodes_per_second"`
	DRAMPerSectorBytes    uint64  `json:"dram_per_sector_bytes"`
}

// DefaultReserve is the memory Plan keeps from the pool unless told
// otherwise: SystemReserve for the OS and the Go runtime, the whole parent
// cache (1.75 x S, kept in the page cache as rust-fil-proofs does, since
// every job reads all of it each layer), and JobReserve per job.
func DefaultReserve(sectorSize uint64, jobs int) uint64 {
	return SystemReserve + parentCacheBytes(sectorSize) + uint64(jobs)*JobReserve
}

func parentCacheBytes(sectorSize uint64) uint64 {
	return sectorSize / sdr.NodeSize * sdr.ParentCacheBytesPerNode
}

// JSON returns the plan as indented JSON with a trailing newline.
func (r *Result) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// String is the plan for a person: the answer, then the arithmetic.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plan: %d x %s sectors, %d layers, %s RAM, %d cores\n",
		r.Sectors, humanize.IBytes(r.SectorSize), r.Layers, humanize.IBytes(r.RAMBytes), r.Cores)
	fmt.Fprintf(&b, "answer: %s\n", r.Verdict)
	if r.SealFlags != "" {
		fmt.Fprintf(&b, "seal with: %s\n", r.SealFlags)
	}
	b.WriteString("arithmetic:\n")
	for _, l := range r.Arithmetic {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}

// planner carries one Plan call: its input, its result, and the cold
// fractions sampled so far (per window and page layout, for this call
// only).
type planner struct {
	in        Input
	r         *Result
	s, b      uint64
	k         int
	reserve   func(n int) uint64
	vCore     float64
	baseCache map[int]float64
	pageCache map[pageKey]float64
	// devR and readCPU are the devices' page rate R and the CPU per page
	// read c, once spilling is planned.
	devR, readCPU float64
	// quiet drops steps and warnings while Plan weighs batch sizes.
	quiet bool
}

type pageKey struct {
	window int
	layout pageLayout
}

func (p *planner) step(format string, args ...any) {
	if !p.quiet {
		p.r.Arithmetic = append(p.r.Arithmetic, fmt.Sprintf(format, args...))
	}
}

func (p *planner) warn(format string, args ...any) {
	if !p.quiet {
		p.r.Warnings = append(p.r.Warnings, fmt.Sprintf(format, args...))
	}
}

// hasDevices reports whether spilling has somewhere to go.
func (p *planner) hasDevices() bool {
	return len(p.in.Devices) > 0 || p.in.DeviceReadsPerSecond > 0
}

// Plan works out how N sectors fit in the machine's RAM (with the spill
// devices if needed) and how fast they will label, showing its arithmetic.
// A batch that cannot fit is an answer (Feasible false), not an error;
// errors are for input that makes no sense.
func Make(in Input) (Result, error) {
	if err := in.validate(); err != nil {
		return Result{}, err
	}
	g := in.Graph
	s := g.SectorSize()
	b := in.BlockSize
	if b == 0 {
		b = labeler.DefaultBlockSize(s)
	}
	if in.SpillPathEfficiency == 0 {
		in.SpillPathEfficiency = DefaultSpillPathEfficiency
	}
	if in.Efficiency == 0 {
		in.Efficiency = DefaultEfficiency
	}
	if in.Samples == 0 {
		in.Samples = DefaultPlanSamples
	}
	n := in.Sectors
	r := &Result{
		SectorSize: s, Sectors: n, Layers: in.Layers, RAMBytes: in.RAM, BlockSizeBytes: b,
		ParentCacheBytes: parentCacheBytes(s), Cores: in.Cores, HashingCores: min(in.Cores, n),
		Efficiency: in.Efficiency, SHA256CompressionsPerSecond: in.SHA.CompressionsPerSecond,
		Devices: in.Devices,
	}
	p := &planner{in: in, r: r, s: s, b: b, k: int(s / b), baseCache: map[int]float64{}, pageCache: map[pageKey]float64{}}
	p.reserve = func(n int) uint64 { return DefaultReserve(s, n) }
	if in.Reserve != nil {
		p.reserve = func(int) uint64 { return *in.Reserve }
	}

	// Memory.
	r.ReserveBytes = p.reserve(n)
	if in.Reserve != nil {
		p.step("reserve = %s (given)", humanize.IBytes(r.ReserveBytes))
	} else {
		p.step("reserve = OS + Go runtime %s + parent cache %s (14 parents x 4 B per node = 1.75 x S, kept in page cache) + %d sectors x %s buffers = %s",
			humanize.IBytes(SystemReserve), humanize.IBytes(r.ParentCacheBytes), n, humanize.IBytes(JobReserve), humanize.IBytes(r.ReserveBytes))
	}
	if in.RAM > r.ReserveBytes {
		r.AvailableBytes = in.RAM - r.ReserveBytes
	}
	p.step("DRAM for the pool = RAM %s - reserve %s = %s", humanize.IBytes(in.RAM), humanize.IBytes(r.ReserveBytes), humanize.IBytes(r.AvailableBytes))
	r.PoolMinBytes, r.PoolDefault, r.PoolMaxBytes = pool.Bounds(s, n)
	if in.BlockSize == 0 && (r.AvailableBytes < r.PoolMinBytes || in.Batch >= 2) {
		// The labeler's own choice when a budget below the minimum spills
		// (and the batch tier's per-sector block).
		p.b = labeler.DefaultSpillBlockSize(s)
		p.k = int(s / p.b)
		r.BlockSizeBytes = p.b
	}
	p.step("pool bounds for N = %d, S = %s: min (N+1) x S = %s, default (3N+1) x S / 2 = %s, max 2 x N x S = %s",
		n, humanize.IBytes(s), humanize.IBytes(r.PoolMinBytes), humanize.IBytes(r.PoolDefault), humanize.IBytes(r.PoolMaxBytes))

	// Speed with every label in DRAM.
	p.vCore = in.SHA.CompressionsPerSecond / sdr.CompressionsPerNode * in.Efficiency
	r.NodesPerSecondPerCore = p.vCore
	r.AllDRAMNodesPerSecond = float64(r.HashingCores) * p.vCore
	p.step("all-DRAM speed per core = %s SHA-256 compressions/s (%s, measured) / %d per node x efficiency %.2f = %s nodes/s",
		measure.HumanRate(in.SHA.CompressionsPerSecond), in.SHA.Implementation, sdr.CompressionsPerNode, in.Efficiency, measure.HumanRate(p.vCore))
	p.step("hashing cores C' = min(cores %d, N %d) = %d; all-DRAM batch speed = %d x %s = %s nodes/s",
		in.Cores, n, r.HashingCores, r.HashingCores, measure.HumanRate(p.vCore), measure.HumanRate(r.AllDRAMNodesPerSecond))

	p.maxSectors()

	switch {
	case in.Batch >= 2 || r.AvailableBytes < r.PoolMinBytes:
		p.spill()
	case r.AvailableBytes >= r.PoolDefault:
		p.fullSpeed()
	default:
		p.poolLimited()
	}
	if (r.Regime == RegimeFullSpeed || r.Regime == RegimePoolLimited) && p.hasDevices() {
		p.step("no spill: the spill devices are not needed; for reference:")
		r.DeviceReadsPerSecond = p.deviceRate()
		p.checkSpace(0)
	}
	if r.Feasible && r.Spill == nil {
		// The pool plans: one sector per job, nothing read back.
		r.BatchSize, r.Batches, r.RecordsPerPage = 1, n, labelsPerPage
		r.LabelsPerSecond = r.NodesPerSecond
	}
	if r.Feasible {
		if r.AllDRAMNodesPerSecond > 0 {
			r.Slowdown = r.NodesPerSecond / r.AllDRAMNodesPerSecond
		}
		if r.NodesPerSecond > 0 {
			r.BatchSeconds = float64(n) * float64(in.Layers) * float64(g.Nodes()) / r.NodesPerSecond
		}
		p.step("batch time = N %d x L %d x %d nodes / %s nodes/s = %s; slowdown vs all-DRAM = %.3f",
			n, in.Layers, g.Nodes(), measure.HumanRate(r.NodesPerSecond), duration(r.BatchSeconds), r.Slowdown)
		if best := min(in.Cores, r.MaxSectorsFullSpeed); r.Regime != RegimeFullSpeed && best >= 1 {
			v := float64(best) * p.vCore
			p.step("for comparison: %d sector(s) at a time (min(cores, largest N at full speed)) label %s nodes/s with no spill and no pool waits",
				best, measure.HumanRate(v))
		}
	}
	return *r, nil
}

func (in *Input) validate() error {
	switch {
	case in.Graph == nil:
		return errors.New("plan: no graph")
	case in.Sectors < 1:
		return fmt.Errorf("plan: %d sectors: need at least 1", in.Sectors)
	case in.Layers < 1:
		return fmt.Errorf("plan: %d layers: need at least 1", in.Layers)
	case in.Cores < 1:
		return fmt.Errorf("plan: %d cores: need at least 1", in.Cores)
	case in.RAM == 0 || in.RAM > 1<<60:
		return fmt.Errorf("plan: RAM %d bytes: want 1 byte to 1 EiB", in.RAM)
	case in.SHA.CompressionsPerSecond <= 0:
		return fmt.Errorf("plan: SHA-256 rate %g: must be measured (positive)", in.SHA.CompressionsPerSecond)
	case in.SpillPathEfficiency < 0 || in.SpillPathEfficiency > 1:
		return fmt.Errorf("plan: spill path efficiency %g: want a share in (0, 1]", in.SpillPathEfficiency)
	case in.Efficiency < 0 || in.Efficiency > 4:
		return fmt.Errorf("plan: efficiency %g: want a factor in (0, 4]", in.Efficiency)
	case in.ColdReadCPUSeconds < 0:
		return fmt.Errorf("plan: cold read CPU %g s: must not be negative", in.ColdReadCPUSeconds)
	case in.Samples < 0:
		return fmt.Errorf("plan: %d samples", in.Samples)
	case in.Batch < 0 || in.Batch > MaxBatch:
		return fmt.Errorf("plan: batch of %d sectors: want 0 (choose) or 1 to %d", in.Batch, MaxBatch)
	case in.Batch > in.Sectors:
		return fmt.Errorf("plan: batch of %d sectors but only %d sectors: a batch holds at most N", in.Batch, in.Sectors)
	case in.DeviceReadsPerSecond < 0 || math.IsNaN(in.DeviceReadsPerSecond) || math.IsInf(in.DeviceReadsPerSecond, 0):
		return fmt.Errorf("plan: device reads %g/s: want a positive rate", in.DeviceReadsPerSecond)
	case in.DeviceReadsPerSecond > 0 && len(in.Devices) > 0:
		return errors.New("plan: device reads given and devices probed: give one or the other")
	case in.DeviceReadsPerSecond > 0 && in.ColdReadCPUSeconds == 0:
		return errors.New("plan: device reads given without the CPU per read: give ColdReadCPUSeconds too")
	}
	s := in.Graph.SectorSize()
	if b := in.BlockSize; b != 0 && (b < sdr.NodeSize || b&(b-1) != 0 || b > s) {
		return fmt.Errorf("plan: block size %d: must be a power of two from 32 bytes to the sector size (%d)", b, s)
	}
	return nil
}

// maxSectors finds the largest N the RAM holds in each regime. Each test
// is monotone in N, so a binary search over [0, RAM / block] finds it.
func (p *planner) maxSectors() {
	r, s, ram := p.r, p.s, p.in.RAM
	fits := func(n int, need func(n int) uint64) bool {
		res := p.reserve(n)
		return res <= ram && need(n) <= ram-res
	}
	largest := func(limit int, need func(n int) uint64) int {
		lo, hi := 0, limit // fits(lo) holds, fits(hi+1) fails
		for lo < hi {
			mid := lo + (hi-lo+1)/2
			if fits(mid, need) {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		return lo
	}
	bySector := int(min(ram/s+1, 1<<40))
	r.MaxSectorsFullSpeed = largest(bySector, func(n int) uint64 { _, def, _ := pool.Bounds(s, n); return def })
	r.MaxSectorsNoSpill = largest(bySector, func(n int) uint64 { lo, _, _ := pool.Bounds(s, n); return lo })
	// The least a spilling job can hold is the block being written
	// (tier.PlanSpill).
	r.MaxSectorsWithSpill = largest(int(min(ram/p.b+1, 1<<40)), func(n int) uint64 { return uint64(n) * p.b })
	p.step("largest N in %s RAM: %d at full speed (default pool + reserve), %d without spill (pool minimum + reserve), %d with spill (one %s block per job + reserve: it fits, at a crawl)",
		humanize.IBytes(ram), r.MaxSectorsFullSpeed, r.MaxSectorsNoSpill, r.MaxSectorsWithSpill, humanize.IBytes(p.b))
}

func (p *planner) fullSpeed() {
	r := p.r
	r.Regime, r.Feasible = RegimeFullSpeed, true
	r.PoolSizeBytes = r.PoolDefault
	r.DRAMPerSectorBytes = r.PoolSizeBytes / uint64(r.Sectors)
	r.NodesPerSecond = r.AllDRAMNodesPerSecond
	r.SealFlags = fmt.Sprintf("--parallel %d --pool-size %s", r.Sectors, sdr.FormatSize(r.PoolSizeBytes))
	p.step("%s >= default pool %s: no spill, pool %s, %s DRAM per sector; measured %.2f of the maximum pool's speed at the default, taken as full speed",
		humanize.IBytes(r.AvailableBytes), humanize.IBytes(r.PoolDefault), humanize.IBytes(r.PoolSizeBytes),
		humanize.IBytes(r.DRAMPerSectorBytes), poolDefaultRatio)
	p.step("expected speed = all-DRAM %s nodes/s", measure.HumanRate(r.NodesPerSecond))
	r.Verdict = fmt.Sprintf("%d x %s sectors fit without spill at full speed: pool %s (%s DRAM per sector), %s nodes/s",
		r.Sectors, humanize.IBytes(p.s), humanize.IBytes(r.PoolSizeBytes), humanize.IBytes(r.DRAMPerSectorBytes), measure.HumanRate(r.NodesPerSecond))
}

func (p *planner) poolLimited() {
	r := p.r
	r.Regime, r.Feasible = RegimePoolLimited, true
	// The pool is made of whole blocks.
	r.PoolSizeBytes = r.AvailableBytes / p.b * p.b
	r.DRAMPerSectorBytes = r.PoolSizeBytes / uint64(r.Sectors)
	frac := float64(r.PoolSizeBytes-r.PoolMinBytes) / float64(r.PoolDefault-r.PoolMinBytes)
	ratio := poolMinRatio + (poolDefaultRatio-poolMinRatio)*frac
	r.NodesPerSecond = r.AllDRAMNodesPerSecond * ratio
	r.SealFlags = fmt.Sprintf("--parallel %d --pool-size %s", r.Sectors, sdr.FormatSize(r.PoolSizeBytes))
	p.step("min %s <= %s < default %s: no spill, pool %s (whole %s blocks), %s DRAM per sector; jobs wait for the pool",
		humanize.IBytes(r.PoolMinBytes), humanize.IBytes(r.AvailableBytes), humanize.IBytes(r.PoolDefault),
		humanize.IBytes(r.PoolSizeBytes), humanize.IBytes(p.b), humanize.IBytes(r.DRAMPerSectorBytes))
	p.step("pool-wait factor = %.2f + (%.2f - %.2f) x (pool - min) / (default - min) = %.2f + %.2f x %.3f = %.3f (linear interpolation of the README's measured %.2f at the minimum and %.2f at the default: 4 x 64 MiB sectors on 2 cores)",
		poolMinRatio, poolDefaultRatio, poolMinRatio, poolMinRatio, poolDefaultRatio-poolMinRatio, frac, ratio, poolMinRatio, poolDefaultRatio)
	p.step("expected speed = %s x %.3f = %s nodes/s", measure.HumanRate(r.AllDRAMNodesPerSecond), ratio, measure.HumanRate(r.NodesPerSecond))
	r.Verdict = fmt.Sprintf("%d x %s sectors fit without spill but below the default pool: pool %s (%s DRAM per sector), %s nodes/s (%.2f x full speed)",
		r.Sectors, humanize.IBytes(p.s), humanize.IBytes(r.PoolSizeBytes), humanize.IBytes(r.DRAMPerSectorBytes), measure.HumanRate(r.NodesPerSecond), ratio)
}

func (p *planner) cannotFit(why string) {
	r := p.r
	r.Regime, r.Feasible = RegimeCannotFit, false
	most := r.MaxSectorsWithSpill
	if !p.hasDevices() {
		most = r.MaxSectorsNoSpill
	}
	r.Verdict = fmt.Sprintf("cannot seal %d x %s sectors in %s of RAM (%s after the %s reserve): %s; at most %d (%d at full speed, %d without spill, %d with spill)",
		r.Sectors, humanize.IBytes(p.s), humanize.IBytes(p.in.RAM), humanize.IBytes(r.AvailableBytes), humanize.IBytes(r.ReserveBytes),
		why, most, r.MaxSectorsFullSpeed, r.MaxSectorsNoSpill, r.MaxSectorsWithSpill)
	p.step("%s", r.Verdict)
}

// spill plans the spill tier: today's (one sector per job, B = 1) or the
// batch tier (B sectors per job). It runs when the pool minimum does not
// fit, or when Batch >= 2 asks for the batch tier whatever the pool would
// do.
func (p *planner) spill() {
	r, in := p.r, p.in
	n := r.Sectors
	if r.AvailableBytes < r.PoolMinBytes {
		p.step("%s < min pool %s: spill needed", humanize.IBytes(r.AvailableBytes), humanize.IBytes(r.PoolMinBytes))
		if !p.hasDevices() {
			p.cannotFit("spilling needs an NVMe directory (--nvme)")
			return
		}
	} else {
		p.step("%s >= min pool %s: the pool plan needs no spill; --batch %d plans the batch tier instead (--batch 0 gives the pool plan)",
			humanize.IBytes(r.AvailableBytes), humanize.IBytes(r.PoolMinBytes), in.Batch)
	}
	if p.hasDevices() {
		p.devR = p.deviceRate()
		r.DeviceReadsPerSecond = p.devR
		p.readCPU = p.coldReadCPU()
	}

	size := in.Batch
	if size == 0 {
		size = p.chooseBatch()
	}
	e, why := p.evalBatch(size)
	if e == nil {
		p.cannotFit(why)
		return
	}
	sp := e.sp
	r.Spill = sp
	r.BatchSize, r.Batches, r.RecordsPerPage = e.size, e.jobs, sp.RecordsPerPage
	r.PageReadsPerNodeGroup = sp.PageReadsPerNode
	r.LabelsPerSecond = sp.LaterNodesPerSecond
	if in.Layers == 1 {
		r.LabelsPerSecond = sp.Layer1NodesPerSecond
	}
	r.PoolSizeBytes, r.DRAMPerSectorBytes, r.NodesPerSecond = e.pool, e.dramPerSector, e.nodesPerSecond
	if r.NodesPerSecond <= 0 {
		p.cannotFit("the spill devices serve no random reads")
		return
	}
	r.Feasible = true
	dram := fmt.Sprintf("--dram %s", humanize.IBytes(r.PoolSizeBytes))
	if e.size == 1 {
		r.Regime = RegimeSpill
		r.SealFlags = fmt.Sprintf("--parallel %d --dram %s --out DIR-ON-NVME", n, sdr.FormatSize(r.PoolSizeBytes))
	} else {
		r.Regime = RegimeBatch
		r.SealFlags = fmt.Sprintf("--parallel %d --batch %d --dram %s --out DIR-ON-NVME", n, e.size, sdr.FormatSize(r.PoolSizeBytes))
		dram = fmt.Sprintf("%d batch(es) of %d, --batch %d --dram %s", e.jobs, e.size, e.size, humanize.IBytes(r.PoolSizeBytes))
	}
	if sp.PageReadsPerNode > 0 {
		unit := "nodes"
		if e.size > 1 {
			unit = "node-groups"
		}
		p.step("device reads asked in layers 2..L = %.3f x %s %s/s = %s/s of the devices' %s/s",
			sp.PageReadsPerNode, measure.HumanRate(sp.LaterNodesPerSecond/e.lanes), unit, measure.HumanRate(sp.DeviceReadsPerSecond), measure.HumanRate(r.DeviceReadsPerSecond))
	}
	if sp.SpillFileBytesPerLayer > 0 {
		perLabel := float64(sp.SpillFileBytesPerLayer) / float64(p.in.Graph.Nodes()) / e.lanes
		p.step("spill-file writes = %s labels/s x %.1f B = %s/s sequential, besides the layer files' %s/s",
			measure.HumanRate(r.LabelsPerSecond), perLabel, humanize.IBytes(uint64(r.LabelsPerSecond*perLabel)), humanize.IBytes(uint64(r.LabelsPerSecond*sdr.NodeSize)))
	}
	if p.hasDevices() {
		// A batch holds at most two layers' spill files: the one it
		// writes and the previous one, until the layer is done with it.
		p.checkSpace(uint64(e.jobs) * 2 * sp.SpillFileBytesPerLayer)
	}
	verb := "need spill"
	if sp.PageReadsPerNode == 0 && sp.Layer1PageReadsPerNode == 0 {
		verb = "fit in the batch tier's DRAM"
	}
	r.Verdict = fmt.Sprintf("%d x %s sectors %s: %s (%s DRAM per sector, %s per sector spilled), %s labels/s in layers 2..L, %s nodes/s over all layers (%.3f x all-DRAM)",
		n, humanize.IBytes(p.s), verb, dram, humanize.IBytes(r.DRAMPerSectorBytes),
		humanize.IBytes(sp.SpilledBytesPerSector), measure.HumanRate(r.LabelsPerSecond), measure.HumanRate(r.NodesPerSecond), r.NodesPerSecond/r.AllDRAMNodesPerSecond)
}

// coldReadCPU is c, the CPU time one page read costs: given, or the
// largest the devices measured on the spill path.
func (p *planner) coldReadCPU() float64 {
	if c := p.in.ColdReadCPUSeconds; c > 0 {
		p.step("CPU per page read c = %s (given)", micros(c))
		return c
	}
	var c float64
	loaded := true
	for _, d := range p.in.Devices {
		dc := d.HashCPUSecondsPerRead
		if dc == 0 {
			loaded = false
			dc = d.SpillCPUSecondsPerRead
		}
		if dc == 0 {
			dc = d.MissKernelCPUSecondsPerRead
		}
		c = max(c, dc)
	}
	if loaded && len(p.in.Devices) > 0 {
		p.step("CPU per page read c = %s (largest over the devices of the hashing a spill-path read took from %d threads hashing at full speed: every cost of a read on the hashing cores, the kernel's and the interrupts' too, which the process's own CPU time does not see)",
			micros(c), p.in.Devices[0].LoadThreads)
	} else {
		p.step("CPU per page read c = %s (largest measured CPU per spill-path page over the devices)", micros(c))
	}
	return c
}

// batchCandidates are the batch sizes weighed when none is given, largest
// first: one batch of N (or the fewest batches of at most MaxBatch), then
// halving the batch count's share, every divisor of N (equal batches) and
// 1 (today's tier).
func (p *planner) batchCandidates() []int {
	n := p.r.Sectors
	seen := map[int]bool{1: true}
	for m := ceilDiv(n, MaxBatch); m < n; m *= 2 {
		seen[ceilDiv(n, m)] = true
	}
	for d := 2; d <= min(n, MaxBatch); d++ {
		if n%d == 0 {
			seen[d] = true
		}
	}
	var out []int
	for b := range seen {
		out = append(out, b)
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

// chooseBatch weighs the candidate batch sizes quietly and returns the one
// predicted to label fastest over all layers, showing the comparison.
func (p *planner) chooseBatch() int {
	r := p.r
	cands := p.batchCandidates()
	p.step("batch size: not given; weighing B in %v (one batch of N, fewer batches, equal batches, one sector per job) by predicted nodes/s over all layers",
		cands)
	best := -1
	for _, b := range cands {
		p.quiet = true
		e, _ := p.evalBatch(b)
		p.quiet = false
		c := BatchCandidate{BatchSize: b, Batches: ceilDiv(r.Sectors, b)}
		if e != nil {
			c.Feasible = true
			c.PageReadsPerNodeGroup = e.sp.PageReadsPerNode
			c.LabelsPerSecond = e.sp.LaterNodesPerSecond
			if p.in.Layers == 1 {
				c.LabelsPerSecond = e.sp.Layer1NodesPerSecond
			}
			c.NodesPerSecond = e.nodesPerSecond
			c.DRAMPerSectorBytes = e.dramPerSector
			p.step("  B = %d: %d batch(es), E %d + W %d blocks of %s, r = %.3f page reads per node-group, %s labels/s in layers 2..L, %s nodes/s over all layers, %s DRAM per sector",
				b, c.Batches, e.sp.ExpanderBlocks, e.sp.WindowBlocks, humanize.IBytes(e.sp.JobBlockBytes), c.PageReadsPerNodeGroup,
				measure.HumanRate(c.LabelsPerSecond), measure.HumanRate(c.NodesPerSecond), humanize.IBytes(c.DRAMPerSectorBytes))
			// Ties go to the larger batch (fewer jobs), which comes first.
			if best < 0 || c.NodesPerSecond > r.BatchCandidates[best].NodesPerSecond {
				best = len(r.BatchCandidates)
			}
		} else {
			p.step("  B = %d: %d batch(es) of %s blocks: no whole block per batch", b, c.Batches, humanize.IBytes(uint64(b)*p.b))
		}
		r.BatchCandidates = append(r.BatchCandidates, c)
	}
	if best < 0 {
		// Nothing fits; the evaluation of B = 1 says why.
		return 1
	}
	c := r.BatchCandidates[best]
	var why string
	switch {
	case len(cands) == 1:
		why = "the only candidate"
	case c.BatchSize == cands[0]:
		why = "the largest batch: a page read serves all B sectors, so the device bound B x R / r grows with B faster than r does, and the reads' CPU per label r x c / B falls"
	default:
		why = "faster than the larger batches here (their share of the DRAM splits into fewer or coarser blocks)"
	}
	runnerUp := -1
	for i, o := range r.BatchCandidates {
		if i != best && o.Feasible && (runnerUp < 0 || o.NodesPerSecond > r.BatchCandidates[runnerUp].NodesPerSecond) {
			runnerUp = i
		}
	}
	if runnerUp >= 0 {
		o := r.BatchCandidates[runnerUp]
		why += fmt.Sprintf("; next best B = %d at %s nodes/s (%.2f x)", o.BatchSize, measure.HumanRate(o.NodesPerSecond), o.NodesPerSecond/c.NodesPerSecond)
	}
	p.step("chosen B = %d: %s nodes/s, %s", c.BatchSize, measure.HumanRate(c.NodesPerSecond), why)
	return c.BatchSize
}

// batchEval is the spill plan for one batch size.
type batchEval struct {
	size, jobs int
	// lanes is N / jobs: sectors per job on average (B, or less when the
	// last batch is short).
	lanes          float64
	sp             *SpillEstimate
	pool           uint64
	dramPerSector  uint64
	nodesPerSecond float64
}

// evalBatch plans N sectors as ceil(N / size) jobs of size sectors each,
// with the DRAM left after the reserve, showing its arithmetic unless
// quiet. It returns nil and why when the plan cannot run.
func (p *planner) evalBatch(size int) (*batchEval, string) {
	r, in := p.r, p.in
	n := r.Sectors
	jobs := ceilDiv(n, size)
	e := &batchEval{size: size, jobs: jobs, lanes: float64(n) / float64(jobs)}
	block := uint64(size) * p.b
	npb := p.b / sdr.NodeSize
	lay := pageLayout{rpp: labelsPerPage}
	var ppb uint64
	if size == 1 {
		p.step("one sector per job (B = 1, today's spill tier): %d jobs; the device copy of a layer is its layer file, %d labels per 4 KiB page",
			n, labelsPerPage)
	} else {
		lay = pageLayout{rpp: labelsPerPage / uint64(size), npb: npb}
		ppb = ceilDiv64(npb, lay.rpp)
		p.step("batch tier: B = %d sectors per job walk the graph in lockstep; jobs = ceil(N %d / B %d) = %d (%.2f sectors per job on average); labels node-major, record(node) = B x 32 B = %s",
			size, n, size, jobs, e.lanes, humanize.IBytes(uint64(size)*sdr.NodeSize))
		pad := tier.PageSize - lay.rpp*uint64(size)*sdr.NodeSize
		p.step("spill file: rpp = floor(4096 / (32 x B)) = %d records per 4 KiB page (%d B padding per page); a block of %d nodes = ceil(%d / %d) = %d pages",
			lay.rpp, pad, npb, npb, lay.rpp, ppb)
	}
	// As the labeler does: a spilling batch's buffers come off the budget
	// first, unless they would take more than a quarter of it.
	forBlocks := r.AvailableBytes
	if lo, _, _ := pool.Bounds(uint64(size)*p.s, jobs); forBlocks < lo {
		forBlocks = labeler.BudgetForBlocks(r.AvailableBytes, jobs, size, p.b)
	}
	if ov := r.AvailableBytes - forBlocks; ov > 0 {
		p.step("DRAM for blocks = %s - %d jobs x %s of reader and packer buffers = %s",
			humanize.IBytes(r.AvailableBytes), jobs, humanize.IBytes(ov/uint64(jobs)), humanize.IBytes(forBlocks))
	}
	plan, perJob, err := tier.PlanBudget(forBlocks, jobs, block, p.k)
	p.step("DRAM per job = %s / %d jobs = %s = %d blocks of B %d x %s = %s (layer = %d blocks): tier.PlanBudget(%s, %d, %s, %d)",
		humanize.IBytes(forBlocks), jobs, humanize.IBytes(forBlocks/uint64(jobs)), perJob, size, humanize.IBytes(p.b), humanize.IBytes(block), p.k,
		humanize.IBytes(forBlocks), jobs, humanize.IBytes(block), p.k)
	if err != nil {
		return nil, fmt.Sprintf("each job needs at least one %s block (B %d x %s)", humanize.IBytes(block), size, humanize.IBytes(p.b))
	}
	ex, w := plan.Expander, plan.Window
	sp := &SpillEstimate{BlocksPerLayer: p.k, BlocksPerJob: perJob, ExpanderBlocks: ex, WindowBlocks: w,
		JobBlockBytes: block, RecordsPerPage: int(lay.rpp), PagesPerBlock: ppb}
	e.sp = sp
	held := uint64(ex+w) * block
	// A job reads two layers at once, or one when there is only one.
	reads := 2 * p.s
	if in.Layers == 1 {
		reads = p.s
	}
	perSectorHeld := uint64(ex+w) * p.b
	sp.SpilledBytesPerSector = reads - min(perSectorHeld, reads)
	sp.SpilledBytes = uint64(n) * sp.SpilledBytesPerSector
	p.step("tier.PlanSpill(%d, %d): keep %d expander blocks (%.1f%% of the previous layer) and a window of %d blocks of the layer being written",
		p.k, perJob, ex, 100*float64(ex)/float64(p.k), w)
	spills := plan.Spills(p.k)
	if !spills {
		p.step("the job's blocks hold both layers it reads: nothing spills, nothing is read back")
	} else if size == 1 {
		p.step("spilled at the end of a layer = %s - %d x %s = %s per sector, %s in all (read back from the layer files, which are written anyway)",
			humanize.IBytes(reads), ex+w, humanize.IBytes(p.b), humanize.IBytes(sp.SpilledBytesPerSector), humanize.IBytes(sp.SpilledBytes))
	} else {
		sp.SpillFileBytesPerLayer = uint64(p.k) * ppb * tier.PageSize
		p.step("spilled at the end of a layer = %s - %d x %s = %s per sector, %s in all; every block of every layer goes to the job's spill file once: %d blocks x %d pages x 4 KiB = %s per layer per job (B x S = %s), sequential O_DIRECT writes",
			humanize.IBytes(reads), ex+w, humanize.IBytes(p.b), humanize.IBytes(sp.SpilledBytesPerSector), humanize.IBytes(sp.SpilledBytes),
			p.k, ppb, humanize.IBytes(sp.SpillFileBytesPerLayer), humanize.IBytes(uint64(size)*p.s))
	}
	if spills && !p.hasDevices() {
		return nil, "the batch tier spills at this budget and spilling needs an NVMe directory (--nvme)"
	}

	// Cold parents per node-group, and the device pages they fall in.
	unit := "node"
	if size > 1 {
		unit = "node-group"
	}
	spilledPrev := p.k - ex
	sp.ExpanderColdReadsPerNode = sdr.ExpanderDegree * float64(spilledPrev) / float64(p.k)
	sp.BaseColdReadsPerNode = p.coldBase(w)
	sp.ColdReadsPerNode = sp.ExpanderColdReadsPerNode + sp.BaseColdReadsPerNode
	sp.Layer1ColdReadsPerNode = p.coldBase(min(ex+w, p.k))
	look := float64(min(prefetchAheadNodes, in.Graph.Nodes()))
	if spills {
		p.step("cold base parents per %s behind a window of %d blocks = %.3f (sampled: %d nodes spread over the layer, base parents before the window)",
			unit, w, sp.BaseColdReadsPerNode, in.Samples)
		p.step("layers 2..L: cold parents per %s = expander 8 x %d/%d spilled + base %.3f = %.3f + %.3f = %.3f",
			unit, spilledPrev, p.k, sp.BaseColdReadsPerNode, sp.ExpanderColdReadsPerNode, sp.BaseColdReadsPerNode, sp.ColdReadsPerNode)
		var pages float64
		if size == 1 {
			pages = max(float64(spilledPrev)*float64(p.b)/tier.PageSize, min(float64(spilledPrev), 1))
		} else {
			pages = float64(uint64(spilledPrev) * ppb)
		}
		sp.ExpanderPageReadsPerNode = distinctPagesPerNode(pages, look, sp.ExpanderColdReadsPerNode)
		// Two samplers, two sample sets: a page count above the parent
		// count is sampling noise.
		sp.BasePageReadsPerNode = min(p.coldBasePages(w, lay), sp.BaseColdReadsPerNode)
		sp.PageReadsPerNode = sp.ExpanderPageReadsPerNode + sp.BasePageReadsPerNode
		sp.Layer1PageReadsPerNode = min(p.coldBasePages(min(ex+w, p.k), lay), sp.Layer1ColdReadsPerNode)
		p.step("device page reads per %s r, one per distinct 4 KiB page among the cold parents of the prefetcher's %.0f-%s look-ahead, %d %ss per page: expander P (1 - (1 - 1/P)^(%.0f x %.3f)) / %.0f with P = %.0f spilled pages = %.3f; base %.3f (sampled: %d runs of %.0f nodes); total r = %.3f",
			unit, look, unit, lay.rpp, unit, look, sp.ExpanderColdReadsPerNode, look, pages, sp.ExpanderPageReadsPerNode, sp.BasePageReadsPerNode, planPageRuns, look, sp.PageReadsPerNode)
		p.step("layer 1: no expander parents; the ring spans all %d blocks: cold base parents per %s %.3f, page reads %.3f",
			ex+w, unit, sp.Layer1ColdReadsPerNode, sp.Layer1PageReadsPerNode)
	}

	// DRAM: the blocks, and the reader's page buffers when anything is
	// read back.
	var buffers uint64
	if spills {
		// The pages its prefetcher may hold, a node's parents and a
		// submission: 4.2 MiB for one sector, 16.2 MiB for a batch,
		// whatever the job's share of cold parents.
		buffers = tier.ReaderBufferBytes(size)
		if size > 1 {
			buffers = labeler.SpillOverheadBytes(size, p.b)
		}
	}
	e.pool = uint64(jobs) * held
	e.dramPerSector = uint64(jobs) * (held + buffers) / uint64(n)
	sp.InFlightBytesPerSector = uint64(jobs) * buffers / uint64(n)
	p.step("DRAM per sector = jobs %d x (B %d x %s x (E %d + W %d) + reader buffers %d x 4 KiB) / N %d = %d x (%s + %s) / %d = %s (%.3f x S)",
		jobs, size, humanize.IBytes(p.b), ex, w, buffers/tier.PageSize, n, jobs, humanize.IBytes(held), humanize.IBytes(buffers), n,
		humanize.IBytes(e.dramPerSector), float64(e.dramPerSector)/float64(p.s))

	later := p.layerRate(sp.PageReadsPerNode, e.lanes, "layers 2..L")
	sp.CPUBoundNodesPerSecond, sp.DeviceBoundNodesPerSecond, sp.LaterNodesPerSecond = later.cpu, later.dev, later.v
	first := p.layerRate(sp.Layer1PageReadsPerNode, e.lanes, "layer 1")
	sp.Layer1NodesPerSecond = first.v
	sp.ColdReadCPUSeconds = p.readCPU
	sp.DeviceReadsPerSecond = sp.PageReadsPerNode * sp.LaterNodesPerSecond / e.lanes
	L := float64(in.Layers)
	if in.Layers == 1 {
		e.nodesPerSecond = first.v
	} else if first.v > 0 && later.v > 0 {
		e.nodesPerSecond = L / (1/first.v + (L-1)/later.v)
		p.step("batch speed = L / (1/V1 + (L-1)/V2..L) = %d / (1/%s + %d/%s) = %s nodes/s",
			in.Layers, measure.HumanRate(first.v), in.Layers-1, measure.HumanRate(later.v), measure.HumanRate(e.nodesPerSecond))
	}
	return e, ""
}

// spillRate is the rate at which the spill tier can draw pages from d: the
// spill-path probe's, or the O_DIRECT rate for a probe made without it.
func spillRate(d tier.DeviceSpeed) float64 {
	if d.SpillReadsPerSecond > 0 {
		return d.SpillReadsPerSecond
	}
	return d.RandomReadsPerSecond
}

// deviceRate sums the devices' random read rates, counting a device that
// several directories share once, and warns about directories that save
// no DRAM.
func (p *planner) deviceRate() float64 {
	if g := p.in.DeviceReadsPerSecond; g > 0 {
		p.step("device random reads R = %s/s (given, not probed)", measure.HumanRate(g))
		return g
	}
	best := map[uint64]float64{}
	var order []uint64
	for _, d := range p.in.Devices {
		loaded := ""
		if d.LoadThreads > 0 {
			loaded = fmt.Sprintf(" (process CPU); with %d threads hashing meanwhile %s pages/s, %s of hashing lost per page",
				d.LoadThreads, measure.HumanRate(d.LoadedSpillReadsPerSecond), micros(d.HashCPUSecondsPerRead))
		}
		p.step("device %s (%s, dev %d:%d, %s): %s random 4 KiB reads/s at depth %d, %s kernel CPU/read; page-cache misses %s/s at %s kernel + %s user CPU/read; spill path (O_DIRECT through the tier's reader, %s, %d readers at once) %s pages/s at %s CPU/page%s; sequential %s/s",
			d.Dir, d.FSType, unix.Major(d.Device), unix.Minor(d.Device), directName(d.Direct), measure.HumanRate(d.RandomReadsPerSecond), d.QueueDepth,
			micros(d.KernelCPUSecondsPerRead), measure.HumanRate(d.MissReadsPerSecond), micros(d.MissKernelCPUSecondsPerRead),
			micros(d.MissUserCPUSecondsPerRead), d.SpillEngine, max(1, d.SpillStreams),
			measure.HumanRate(d.SpillReadsPerSecond), micros(d.SpillCPUSecondsPerRead), loaded, humanize.IBytes(uint64(d.SeqReadBytesPerSecond)))
		p.r.Warnings = append(p.r.Warnings, d.Warnings...)
		if d.InMemory && len(d.Warnings) == 0 {
			p.warn("%s is on %s: spilled labels there still live in DRAM", d.Dir, d.FSType)
		}
		if _, seen := best[d.Device]; !seen {
			order = append(order, d.Device)
		} else {
			p.warn("%s shares its device with another --nvme directory: counted once", d.Dir)
		}
		best[d.Device] = max(best[d.Device], spillRate(d))
	}
	var sum float64
	var terms []string
	for _, dev := range order {
		sum += best[dev]
		terms = append(terms, measure.HumanRate(best[dev]))
	}
	p.step("device random reads R = %s = %s/s (the spill path's rate, one figure per distinct device)", strings.Join(terms, " + "), measure.HumanRate(sum))
	return sum
}

// checkSpace warns when the probed devices lack room for the layer files
// and extra bytes of spill files. Given device figures carry no free space.
func (p *planner) checkSpace(extra uint64) {
	if len(p.in.Devices) == 0 {
		return
	}
	// Directories on one device share its free space.
	freeOn := map[uint64]uint64{}
	for _, d := range p.in.Devices {
		freeOn[d.Device] = max(freeOn[d.Device], d.FreeBytes)
	}
	var free uint64
	for _, f := range freeOn {
		free += f
	}
	layers := uint64(p.r.Sectors) * uint64(p.in.Layers) * p.s
	switch {
	case free < layers:
		p.warn("the layer files need N x L x S = %s on the devices; %s is free", humanize.IBytes(layers), humanize.IBytes(free))
	case free-layers < extra:
		p.warn("the layer files (N x L x S = %s) and the batches' spill files (two layers per job, %s) need %s on the devices; %s is free",
			humanize.IBytes(layers), humanize.IBytes(extra), humanize.IBytes(layers+extra), humanize.IBytes(free))
	}
}

type layerSpeed struct{ cpu, dev, v float64 }

// layerRate is the labels/s of all jobs in one kind of layer, with reads
// device page reads per node of a job and lanes sectors per job (B, or
// N / jobs when the last batch is short): the CPU bound
// C' / (1/v_core + reads x c / lanes) (each read is shared by the job's
// lanes), the device bound lanes x e x R / reads (every job advances one
// node per reads pages), and their soft minimum. For lanes = 1 this is
// today's per-sector model exactly.
func (p *planner) layerRate(cold, lanes float64, name string) layerSpeed {
	r := p.r
	c := p.readCPU
	cp := float64(r.HashingCores)
	cpu := cp / (1/p.vCore + cold*c/lanes)
	if cold == 0 {
		p.step("%s: no page reads: V = %s labels/s", name, measure.HumanRate(cpu))
		return layerSpeed{cpu: cpu, dev: 0, v: cpu}
	}
	eff := p.in.SpillPathEfficiency
	dev := lanes * eff * p.devR / cold
	v := softMin(cpu, dev)
	p.step("%s: CPU bound C' / (1/v_core + reads x c / B) = %d / (%s + %.3f x %s / %.2f) = %s labels/s; device bound B x e x R / reads = %.2f x %.2f x %s / %.3f = %s labels/s; V = (cpu^-%d + dev^-%d)^(-1/%d) = %s labels/s",
		name, r.HashingCores, micros(1/p.vCore), cold, micros(c), lanes, measure.HumanRate(cpu), lanes, eff, measure.HumanRate(p.devR), cold, measure.HumanRate(dev),
		softMinPower, softMinPower, softMinPower, measure.HumanRate(v))
	return layerSpeed{cpu: cpu, dev: dev, v: v}
}

// softMinPower shapes softMin. Where the CPU and the device bound are far
// apart it is the smaller; where they are close, each resource waits on
// the other (a core faulting in a page is not hashing, a page asked for
// late leaves the device idle) and the batch runs below both: on the
// development VM's spill points the bounds were within 15% of each other
// and min() over-predicted by 15 to 25%, p = 4 by 0 to 20%.
const softMinPower = 4

// softMin is the p-norm (a^-p + b^-p)^(-1/p) of two rates.
func softMin(a, b float64) float64 {
	return math.Pow(math.Pow(a, -softMinPower)+math.Pow(b, -softMinPower), -1.0/softMinPower)
}

// coldBase is the mean number of base parents per node that fall before a
// hot window of the w most recent blocks (the block being written and the
// w-1 before it), over the whole layer.
func (p *planner) coldBase(w int) float64 {
	if w >= p.k {
		return 0
	}
	if v, ok := p.baseCache[w]; ok {
		return v
	}
	v := sampleColdBase(p.in.Graph, p.b/sdr.NodeSize, uint64(w), p.in.Samples)
	p.baseCache[w] = v
	return v
}

// coldBasePages is the mean number of distinct pages per node that the
// base parents before a window of w blocks fall in, over runs of the
// prefetcher's look-ahead, with the device copy's page layout lay.
func (p *planner) coldBasePages(w int, lay pageLayout) float64 {
	if w >= p.k {
		return 0
	}
	key := pageKey{w, lay}
	if v, ok := p.pageCache[key]; ok {
		return v
	}
	v := sampleColdPages(p.in.Graph, p.b/sdr.NodeSize, uint64(w), planPageRuns, prefetchAheadNodes, lay)
	p.pageCache[key] = v
	return v
}

// pageLayout is where a node's record lies in the device copy of a layer:
// rpp records per 4 KiB page, packed across blocks (npb 0: a layer file,
// 128 labels a page), or, in a batch's spill file, each block of npb nodes
// starting on a page of its own (no record straddles a page; the rest of
// a block's last page is padding when rpp does not divide npb).
type pageLayout struct{ rpp, npb uint64 }

func (l pageLayout) page(u uint64) uint64 {
	if l.npb == 0 {
		return u / l.rpp
	}
	return u/l.npb*ceilDiv64(l.npb, l.rpp) + u%l.npb/l.rpp
}

// sampleColdPages takes one run of run consecutive nodes at a random place
// in each of runs equal strata of the layer and counts the distinct pages
// (of layout lay) holding the runs' cold base parents (the test of
// sampleColdBase), per node: the prefetcher fetches a page once for every
// node of its look-ahead that needs it.
func sampleColdPages(g *sdr.Graph, blockNodes, window uint64, runs int, run uint64, lay pageLayout) float64 {
	nodes := g.Nodes()
	run = min(run, nodes)
	runs = int(max(1, min(uint64(runs), nodes/run)))
	rng := rand.New(rand.NewPCG(0x5044, 0x32))
	var ps [sdr.BaseDegree]uint32
	var pages []uint64
	var distinct uint64
	for i := range uint64(runs) {
		lo, hi := nodes*i/uint64(runs), nodes*(i+1)/uint64(runs)
		start := lo + rng.Uint64N(hi-lo-run+1)
		pages = pages[:0]
		for v := start; v < start+run; v++ {
			g.BaseParents(v, &ps)
			for _, u := range ps {
				if uint64(u)/blockNodes+window <= v/blockNodes {
					pages = append(pages, lay.page(uint64(u)))
				}
			}
		}
		slices.Sort(pages)
		distinct += uint64(len(slices.Compact(pages)))
	}
	return float64(distinct) / float64(uint64(runs)*run)
}

// distinctPagesPerNode is the expected number of distinct pages, per node,
// that look nodes with perNode reads each, uniform over pages pages, touch:
// the expander parents' page reads.
func distinctPagesPerNode(pages, look, perNode float64) float64 {
	if pages == 0 || perNode == 0 {
		return 0
	}
	return pages * -math.Expm1(look*perNode*math.Log1p(-1/pages)) / look
}

// sampleColdBase samples one random node in each of samples equal strata
// of the layer and counts, per node v, the base parents u with
// u/blockNodes + window <= v/blockNodes: those outside the window of
// blocks that stays in DRAM (the prefetcher's test). With blockNodes 1 the
// window is the last window nodes. The seed is fixed, so a plan is
// reproducible.
func sampleColdBase(g *sdr.Graph, blockNodes, window uint64, samples int) float64 {
	nodes := g.Nodes()
	samples = int(min(uint64(samples), nodes))
	rng := rand.New(rand.NewPCG(0x5044, 0x31))
	var ps [sdr.BaseDegree]uint32
	var cold uint64
	for i := range uint64(samples) {
		lo, hi := nodes*i/uint64(samples), nodes*(i+1)/uint64(samples)
		v := lo + rng.Uint64N(hi-lo)
		g.BaseParents(v, &ps)
		for _, u := range ps {
			if uint64(u)/blockNodes+window <= v/blockNodes {
				cold++
			}
		}
	}
	return float64(cold) / float64(samples)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func ceilDiv64(a, b uint64) uint64 { return (a + b - 1) / b }

func micros(sec float64) string { return fmt.Sprintf("%.1f µs", sec*1e6) }

func duration(sec float64) string {
	switch {
	case sec >= 2*3600:
		return fmt.Sprintf("%.1f h", sec/3600)
	case sec >= 120:
		return fmt.Sprintf("%.1f min", sec/60)
	}
	return fmt.Sprintf("%.1f s", sec)
}

func directName(direct bool) string {
	if direct {
		return "O_DIRECT"
	}
	return "buffered"
}
