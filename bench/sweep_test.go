package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/pool"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/tier"
	"github.com/stretchr/testify/require"
)

func TestDefaultSweep(t *testing.T) {
	const s = 64 << 20
	lo, def, hi := pool.Bounds(s, 4)
	pts := DefaultSweep(s, 4, []float64{1.4, 1.3, 3, 1}, []float64{1.3, 1.2, 1.1})
	require.Equal(t, []SweepSpec{
		{Label: "max", PoolSize: hi},
		{Label: "default", PoolSize: def},
		// 3 and 1 x S per sector are outside the pool's bounds.
		{Label: "pool 1.4", PoolSize: s * 4 * 14 / 10},
		{Label: "pool 1.3", PoolSize: s * 4 * 13 / 10},
		{Label: "min", PoolSize: lo},
		// 1.3 x S per sector is above the minimum (1.25): no spill point.
		{Label: "spill 1.2", DRAMBudget: s * 4 * 12 / 10},
		{Label: "spill 1.1", DRAMBudget: s * 4 * 11 / 10},
	}, pts)
}

// TestSweep sweeps tiny sectors through every kind of point, spill
// included, and checks the outputs a person reads.
func TestSweep(t *testing.T) {
	const sectorSize = 64 << 10
	g, err := sdr.NewGraph(sectorSize, [32]byte{1}, sdr.APIVersion1_1)
	require.NoError(t, err)
	info, err := blockio.EnsureParentCache(context.Background(), g, t.TempDir(), blockio.ParentCacheOptions{})
	require.NoError(t, err)
	base := labeler.Config{Graph: g, ParentCache: info.Path, Layers: 2,
		Sectors: []labeler.Sector{{ReplicaID: [32]byte{7}}, {ReplicaID: [32]byte{8}}},
		Options: labeler.Options{Parallel: 2, BlockSize: 4 << 10},
	}
	out := t.TempDir()
	var started, ended []int
	pts, err := Sweep(context.Background(), SweepConfig{
		Base:         base,
		Points:       DefaultSweep(sectorSize, 2, nil, []float64{1.1, 0.5}),
		OutDir:       out,
		OnPointStart: func(k int, _ SweepSpec) { started = append(started, k) },
		OnPoint:      func(k int, _ SweepPoint) { ended = append(ended, k) },
	})
	require.NoError(t, err)
	require.Len(t, pts, 5)
	require.Equal(t, []int{0, 1, 2, 3, 4}, started)
	require.Equal(t, started, ended)
	for _, p := range pts {
		require.True(t, p.Identical, p.Spec.Label)
		require.Greater(t, p.Report.NodesPerSecond, 0.0, p.Spec.Label)
	}
	require.InDelta(t, 2.0, pts[0].DRAMPerSector, 1e-9)
	require.InDelta(t, 1.5, pts[2].DRAMPerSector, 1e-9)
	require.InDelta(t, 1.1, pts[3].DRAMPerSector, 1e-3)
	require.Nil(t, pts[2].Report.Spill)
	require.NotNil(t, pts[4].Report.Spill)
	require.Greater(t, pts[4].Report.Spill.ColdReadsPerNode, 0.0, "half a sector of DRAM spills most of both layers")
	// Only the first point's layer files are kept.
	_, err = os.Stat(filepath.Join(out, "point-0", "sector-1", sdr.LayerFileName(2)))
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(out, "point-1"))
	require.True(t, os.IsNotExist(err))

	var b bytes.Buffer
	require.NoError(t, WriteSweepCSV(&b, pts))
	rows, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 6)
	require.Equal(t, sweepColumns, rows[0])
	require.Equal(t, "spill 0.5", rows[5][0])
	js, err := SweepJSON(pts)
	require.NoError(t, err)
	var back []SweepPoint
	require.NoError(t, json.Unmarshal(js, &back))
	require.Equal(t, pts[4].Report.Spill.ColdReads, back[4].Report.Spill.ColdReads)
}

func TestLockstepSweep(t *testing.T) {
	const s = 64 << 20
	_, _, hi := pool.Bounds(s, 4)
	require.Equal(t, []SweepSpec{
		{Label: "lockstep 2", PoolSize: hi, Lockstep: 2},
		{Label: "lockstep 3", PoolSize: 12 * s, Lockstep: 3},
		{Label: "lockstep 4", PoolSize: hi, Lockstep: 4},
	}, LockstepSweep(s, 4, []int{1, 2, 3, 4, 5}), "k must be from 2 to the sectors hashing at once")
	// Groups of 3 out of 4 sectors are two jobs on 3 x S sectors: the pool
	// the labeler accepts for them is larger than 4 sectors' maximum
	// (a bench once failed its last point here).
	g, err := sdr.NewGraph(64<<10, sdr.Proofs()[5].PorepID(), sdr.APIVersion1_1)
	require.NoError(t, err)
	for _, k := range []int{2, 3, 4} {
		spec := LockstepSweep(64<<10, 4, []int{k})[0]
		cfg := labeler.Config{Graph: g, ParentCache: "unused", Layers: 2, Sectors: make([]labeler.Sector, 4),
			Options: labeler.Options{BlockSize: 4 << 10, Parallel: 4, PoolSize: spec.PoolSize, Lockstep: k},
		}
		require.NoError(t, cfg.Check(), "k=%d", k)
	}
}

func TestFirstDifference(t *testing.T) {
	want := [][]string{{"a", "b"}, {"c", "d"}}
	for _, tc := range []struct {
		got           [][]string
		sector, layer int
		differs       bool
	}{
		{got: [][]string{{"a", "b"}, {"c", "d"}}},
		{got: [][]string{{"a", "x"}, {"c", "d"}}, sector: 0, layer: 2, differs: true},
		{got: [][]string{{"a", "b"}, {"x", "x"}}, sector: 1, layer: 1, differs: true},
	} {
		sector, layer, differs := firstDifference(want, tc.got)
		require.Equal(t, tc.differs, differs)
		require.Equal(t, tc.sector, sector)
		require.Equal(t, tc.layer, layer)
	}
	_, err := Sweep(context.Background(), SweepConfig{})
	require.ErrorContains(t, err, "no points")
}

// TestSweepChecksEveryPointFirst: a point the labeler would refuse fails
// the sweep before the first point is measured, not after.
func TestSweepChecksEveryPointFirst(t *testing.T) {
	g, err := sdr.NewGraph(64<<10, sdr.Proofs()[5].PorepID(), sdr.APIVersion1_1)
	require.NoError(t, err)
	out := t.TempDir()
	_, _, hi := pool.Bounds(64<<10, 2)
	_, err = Sweep(context.Background(), SweepConfig{
		Base: labeler.Config{Graph: g, ParentCache: "unused", Layers: 2, Sectors: make([]labeler.Sector, 2), Options: labeler.Options{BlockSize: 4 << 10, Parallel: 2}},
		Points: []SweepSpec{
			{Label: "max", PoolSize: hi},
			{Label: "too big", PoolSize: 2 * hi},
		},
		OutDir: out,
	})
	require.ErrorContains(t, err, "sweep point 1 (too big)")
	left, err := os.ReadDir(out)
	require.NoError(t, err)
	require.Empty(t, left, "nothing measured, nothing written")
}

// TestBatchSweep: a batch sweep's points for S, B and a block size, and
// what each leaves in DRAM (tier.PlanBudget, the labeler's arithmetic for
// one job of B x S): all of it, the expander and a window, part of the
// expander, a window only.
func TestBatchSweep(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name      string
		s         uint64
		b         int
		blockSize uint64
		// deviceBlocks is the device point's blocks (0: no device point).
		deviceBlocks uint64
		// expander11 is the expander blocks the 1.1 point keeps when it
		// is not the whole layer: with few blocks a layer, or buffers
		// that weigh more per sector, 1.1 x S rounds down to less than
		// the layer and its window.
		expander11 int
		// oneBlock: the layer is one block; 0.5 x S is less than it.
		oneBlock bool
	}{
		// The batch's 24 MiB of buffers come off 1.1 x S: 4 blocks of the
		// expander go to the device.
		{name: "64MiB x 4, default block", s: 64 * mib, b: 4, deviceBlocks: 2, expander11: 60},
		{name: "64MiB x 64, default block: the buffers on top", s: 64 * mib, b: 64, deviceBlocks: 2},
		{name: "2MiB x 2, default block", s: 2 * mib, b: 2, deviceBlocks: 2},
		{name: "2MiB x 128", s: 2 * mib, b: 128, deviceBlocks: 2, expander11: 62},
		{name: "64KiB x 2, 4KiB blocks: S/16 is one block", s: 64 << 10, b: 2, blockSize: 4 << 10, deviceBlocks: 1},
		{name: "64KiB x 3, 2KiB blocks", s: 64 << 10, b: 3, blockSize: 2 << 10, deviceBlocks: 2},
		{name: "32KiB x 3, 4KiB blocks: one block is over 0.1 x S", s: 32 << 10, b: 3, blockSize: 4 << 10, expander11: 7},
		{name: "2KiB x 4, one block a layer: 0.5 x S is under a block", s: 2 << 10, b: 4, oneBlock: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, b := tc.s, uint64(tc.b)
			bs := tc.blockSize
			if bs == 0 {
				bs = labeler.DefaultSpillBlockSize(s)
			}
			want := []SweepSpec{
				{Label: "batch DRAM", PoolSize: 2 * b * s, Batch: tc.b},
				{Label: "batch 1.2", DRAMBudget: s * b * 12 / 10, Batch: tc.b},
				{Label: "batch 1.1", DRAMBudget: s * b * 11 / 10, Batch: tc.b},
			}
			if !tc.oneBlock {
				want = append(want, SweepSpec{Label: "batch 0.5", DRAMBudget: s * b / 2, Batch: tc.b})
			}
			if tc.deviceBlocks > 0 {
				// Its window is checked below, as the labeler shares out the budget.
				want = append(want, SweepSpec{Label: "batch device", DRAMBudget: windowBudget(tc.deviceBlocks*b*bs, tc.b, bs), Batch: tc.b})
			}
			pts := BatchSweep(s, tc.b, tc.blockSize)
			require.Equal(t, want, pts)

			perLayer := int(s / bs)
			lo, def, _ := pool.Bounds(b*s, 1)
			require.Equal(t, def, pts[0].PoolSize, "all-DRAM is the batch's pool default")
			for _, p := range pts[1:] {
				require.Less(t, p.DRAMBudget, lo, "%s spills", p.Label)
				// The blocks' share, as the labeler takes it.
				plan, _, err := tier.PlanBudget(labeler.BudgetForBlocks(p.DRAMBudget, 1, tc.b, bs), 1, b*bs, perLayer)
				require.NoError(t, err, p.Label)
				switch p.Label {
				case "batch 1.2", "batch 1.1":
					want := perLayer
					if p.Label == "batch 1.1" && tc.expander11 > 0 {
						want = tc.expander11
					}
					if tc.oneBlock {
						want = 0 // one block: the one being written
					}
					require.Equal(t, want, plan.Expander, "%s: the expander in DRAM", p.Label)
					require.Positive(t, plan.Window, p.Label)
				case "batch 0.5":
					require.Positive(t, plan.Expander, "part of the expander in DRAM")
					require.Less(t, plan.Expander, perLayer, "part of it on the device")
				case "batch device":
					require.Zero(t, plan.Expander, "nothing of the expander in DRAM")
					require.Equal(t, int(tc.deviceBlocks), plan.Window, "a window only")
					require.LessOrEqual(t, float64(p.DRAMBudget)/float64(b*s), 0.1)
				}
			}
		})
	}
	for _, b := range []int{-1, 0, 1} {
		require.Nil(t, BatchSweep(64<<20, b, 0), "B=%d is no batch", b)
	}
}

// TestBatchSweepRun seals one batch at every point of a batch sweep,
// checks every point against the same sectors sealed one at a time, and
// what the report says of the spill tier at each.
func TestBatchSweepRun(t *testing.T) {
	const sectorSize = 64 << 10
	g, err := sdr.NewGraph(sectorSize, [32]byte{1}, sdr.APIVersion1_1)
	require.NoError(t, err)
	info, err := blockio.EnsureParentCache(context.Background(), g, t.TempDir(), blockio.ParentCacheOptions{})
	require.NoError(t, err)
	ids := [][32]byte{{7}, {8}, {9}}
	single := labeler.Config{Graph: g, ParentCache: info.Path, Layers: 2, Options: labeler.Options{Parallel: 2, BlockSize: 4 << 10}}
	for _, id := range ids[:2] {
		single.Sectors = append(single.Sectors, labeler.Sector{ReplicaID: id})
	}
	_, _, hi := pool.Bounds(sectorSize, 2)
	ref, err := Sweep(context.Background(), SweepConfig{Base: single, Points: []SweepSpec{{Label: "max", PoolSize: hi}}, OutDir: t.TempDir()})
	require.NoError(t, err)
	require.Len(t, ref[0].LayerSHA256, 2)
	require.Len(t, ref[0].LayerSHA256[0], 2)

	// A batch of 3, more than the reference's 2 sectors: its first two
	// are checked against them.
	batch := single
	batch.Sectors = nil
	for _, id := range ids {
		batch.Sectors = append(batch.Sectors, labeler.Sector{ReplicaID: id})
	}
	spill := t.TempDir()
	batch.Parallel, batch.SpillDirs = 3, []string{spill}
	points := BatchSweep(sectorSize, 3, 2<<10)
	require.Len(t, points, 5)
	batch.BlockSize = 2 << 10
	pts, err := Sweep(context.Background(), SweepConfig{Base: batch, Points: points, OutDir: t.TempDir(), Want: ref[0].LayerSHA256})
	require.NoError(t, err)
	require.Len(t, pts, 5)
	require.Len(t, pts[0].LayerSHA256, 3)
	require.Equal(t, ref[0].LayerSHA256, pts[0].LayerSHA256[:2], "a batch labels its sectors as they are labeled alone")
	require.Nil(t, pts[0].Report.Spill, "all in DRAM")
	require.Equal(t, 3, pts[0].Report.Lockstep)
	require.InDelta(t, 2.0, pts[0].DRAMPerSector, 1e-9)
	require.Equal(t, 1.0, pts[0].RelativeThroughput)
	for _, p := range pts[1:] {
		require.True(t, p.Identical, p.Spec.Label)
		require.Nil(t, p.LayerSHA256, "only the first point carries the digests")
		sp := p.Report.Spill
		require.NotNil(t, sp, p.Spec.Label)
		require.Equal(t, 3, sp.BatchLanes, p.Spec.Label)
		require.Positive(t, sp.SpillFileBytesWritten, p.Spec.Label)
		require.Positive(t, sp.DeviceReadsPerNodeGroup, p.Spec.Label)
		require.Equal(t, p.Spec.DRAMBudget, p.Report.DRAMBudgetBytes, p.Spec.Label)
		require.LessOrEqual(t, p.Report.PoolPeakBytes, p.Spec.DRAMBudget, "%s: the pool keeps to the budget", p.Spec.Label)
		require.Positive(t, p.RelativeThroughput, p.Spec.Label)
	}
	require.InDelta(t, 1.2, pts[1].DRAMPerSector, 1e-3)
	require.InDelta(t, 1.0/16, pts[4].DRAMPerSector, 1e-9, "two 2 KiB blocks of a 64 KiB sector")
	require.Greater(t, pts[4].Report.Spill.DeviceReadsPerNodeGroup, pts[2].Report.Spill.DeviceReadsPerNodeGroup,
		"a window only reads more than the expander in DRAM")
	left, err := os.ReadDir(spill)
	require.NoError(t, err)
	require.Empty(t, left, "no spill file left behind")

	var b bytes.Buffer
	require.NoError(t, WriteSweepCSV(&b, pts))
	rows, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	col := func(name string) int { return slices.Index(sweepColumns, name) }
	require.Equal(t, "3", rows[1][col("batch")])
	require.Equal(t, "3", rows[5][col("batch_lanes")])
	require.NotEqual(t, "0", rows[5][col("spill_file_bytes_written")])

	// A batch whose sectors differ from the reference's fails at its
	// first point.
	bad := [][]string{ref[0].LayerSHA256[0], {ref[0].LayerSHA256[1][0], "00"}}
	_, err = Sweep(context.Background(), SweepConfig{Base: batch, Points: points[:1], OutDir: t.TempDir(), Want: bad})
	require.ErrorContains(t, err, "sector 1 layer 2 differs from the reference sweep's")
}
