package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sweepSeries is a made-up sweep of two 8 MiB sectors from the maximum pool
// down into the spill tier, out of order as a caller might pass it.
func sweepSeries() []SweepPlotPoint {
	return []SweepPlotPoint{
		{DRAMPerSector: 1.5, Label: "min", RelativeThroughput: 0.875, NodesPerSecond: 2.1e6, SHALimitRatio: 0.88, PeakAnonMiB: 26, PeakDRAMMiB: 30, PoolWaitSeconds: 0.8},
		{DRAMPerSector: 2, Label: "max", RelativeThroughput: 1, NodesPerSecond: 2.4e6, SHALimitRatio: 0.93, PeakAnonMiB: 34, PeakDRAMMiB: 38},
		{DRAMPerSector: 1.75, Label: "default", RelativeThroughput: 0.98, NodesPerSecond: 2.35e6, SHALimitRatio: 0.92, PeakAnonMiB: 30, PeakDRAMMiB: 34, PoolWaitSeconds: 0.1},
		{DRAMPerSector: 1.1, Label: "spill 1.10", RelativeThroughput: 0.54, NodesPerSecond: 1.3e6, SHALimitRatio: 0.55, PeakAnonMiB: 19, PeakDRAMMiB: 27, StallSeconds: 2.5},
		{DRAMPerSector: 0.5, Label: "spill 0.50", RelativeThroughput: 0.25, NodesPerSecond: 0.6e6, SHALimitRatio: 0.26, PeakAnonMiB: 10, PeakDRAMMiB: 21, StallSeconds: 7.9},
	}
}

// svgText returns the character data of every element of an SVG document,
// failing the test if it is not well-formed XML with an <svg> root.
func svgText(t *testing.T, data []byte) string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	var text strings.Builder
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "the SVG parses as XML")
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
		case xml.CharData:
			text.Write(tok)
			text.WriteByte('\n')
		}
	}
	require.Equal(t, "svg", root)
	return text.String()
}

func TestWriteSweepPlot(t *testing.T) {
	for _, tc := range []struct {
		name string
		pts  []SweepPlotPoint
	}{
		{name: "sweep", pts: sweepSeries()},
		{name: "one point", pts: sweepSeries()[:1]},
		{name: "all zero", pts: []SweepPlotPoint{{DRAMPerSector: 2}, {DRAMPerSector: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pngPath, svgPath := filepath.Join(dir, "sweep.png"), filepath.Join(dir, "sweep.svg")
			require.NoError(t, WriteSweepPlot(pngPath, svgPath, "8 MiB x 2 sectors: DRAM vs NVMe", tc.pts))

			f, err := os.Open(pngPath)
			require.NoError(t, err)
			defer f.Close()
			img, err := png.Decode(f)
			require.NoError(t, err, "the PNG decodes")
			b := img.Bounds()
			require.InDelta(t, plotWidth.Dots(plotDPI), float64(b.Dx()), 2)
			require.InDelta(t, plotHeight.Dots(plotDPI), float64(b.Dy()), 2)
			require.Greater(t, b.Dy(), b.Dx(), "panels stack vertically")

			data, err := os.ReadFile(svgPath)
			require.NoError(t, err)
			text := svgText(t, data)
			for _, want := range []string{sweepXLabel, sweepVsLabel, sweepRateLabel, sweepRatioLabel, sweepLostLabel, sweepMemoryLabel, "peak anon RSS", "peak DRAM incl. layer page cache", "8 MiB x 2 sectors: DRAM vs NVMe"} {
				require.Contains(t, text, want)
			}
			require.Equal(t, 1, strings.Count(text, sweepXLabel), "one shared x axis title")
			for _, p := range tc.pts {
				require.Contains(t, text, p.Label, "points are labelled")
			}
		})
	}
}

func TestWriteSweepPlotErrors(t *testing.T) {
	dir := t.TempDir()
	pngPath, svgPath := filepath.Join(dir, "sweep.png"), filepath.Join(dir, "sweep.svg")
	for _, tc := range []struct {
		name     string
		png, svg string
		pts      []SweepPlotPoint
		want     string
	}{
		{name: "empty series", png: pngPath, svg: svgPath, want: "no points"},
		{name: "no output", pts: sweepSeries(), want: "no output path"},
		{name: "NaN", png: pngPath, svg: svgPath, pts: []SweepPlotPoint{{DRAMPerSector: 1, Label: "bad", NodesPerSecond: math.NaN()}}, want: `point 0 ("bad")`},
		{name: "infinite ratio", png: pngPath, svg: svgPath, pts: []SweepPlotPoint{{DRAMPerSector: 1, Label: "inf", RelativeThroughput: math.Inf(1)}}, want: `point 0 ("inf")`},
		{name: "unwritable", png: filepath.Join(dir, "missing", "sweep.png"), pts: sweepSeries(), want: "sweep.png"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorContains(t, WriteSweepPlot(tc.png, tc.svg, "t", tc.pts), tc.want)
		})
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "a failed plot writes nothing")
}

// TestWriteSweepPlotOneFormat writes only the SVG when the PNG path is
// empty.
func TestWriteSweepPlotOneFormat(t *testing.T) {
	svgPath := filepath.Join(t.TempDir(), "sweep.svg")
	require.NoError(t, WriteSweepPlot("", svgPath, "t", sweepSeries()))
	entries, err := os.ReadDir(filepath.Dir(svgPath))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "sweep.svg", entries[0].Name())
}

// TestWriteSweepPlotLockstepMarkers: lockstep points are another way of
// hashing, not another DRAM setting, so they get markers and a legend
// entry of their own instead of joining the line through the DRAM sweep.
func TestWriteSweepPlotLockstepMarkers(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		lockstep int
		want     bool
	}{{"without", 0, false}, {"with", 2, true}} {
		t.Run(tc.name, func(t *testing.T) {
			pts := sweepSeries()
			if tc.lockstep > 0 {
				pts = append(pts, SweepPlotPoint{DRAMPerSector: 2, Label: "lockstep 2", NodesPerSecond: 3.1e6, SHALimitRatio: 1.3,
					PeakAnonMiB: 36, PeakDRAMMiB: 39, Lockstep: tc.lockstep})
			}
			svg := filepath.Join(dir, tc.name+".svg")
			require.NoError(t, WriteSweepPlot("", svg, "sweep", pts))
			data, err := os.ReadFile(svg)
			require.NoError(t, err)
			text := svgText(t, data)
			require.Equal(t, tc.want, strings.Contains(text, "sectors in lockstep groups"))
			require.Equal(t, tc.want, strings.Contains(text, "lockstep 2"))
			require.Contains(t, text, "total node labels/s (all sectors)")
		})
	}
}

// batchSeries is a made-up batch sweep of the same two sectors as one
// batch, down to a window only.
func batchSeries() []SweepPlotPoint {
	return []SweepPlotPoint{
		{DRAMPerSector: 2, Label: "batch DRAM", NodesPerSecond: 3e6, RelativeThroughput: 1, SHALimitRatio: 0.95, PeakAnonMiB: 36, PeakDRAMMiB: 38, Lockstep: 2, Batch: 2},
		{DRAMPerSector: 1.2, Label: "batch 1.2", NodesPerSecond: 1.5e6, RelativeThroughput: 0.5, SHALimitRatio: 0.5, PeakAnonMiB: 24, PeakDRAMMiB: 25, StallSeconds: 1, Lockstep: 2, Batch: 2},
		{DRAMPerSector: 0.5, Label: "batch 0.5", NodesPerSecond: 0.9e6, RelativeThroughput: 0.3, SHALimitRatio: 0.3, PeakAnonMiB: 14, PeakDRAMMiB: 15, StallSeconds: 3, Lockstep: 2, Batch: 2},
		{DRAMPerSector: 0.03125, Label: "batch device", NodesPerSecond: 0.3e6, RelativeThroughput: 0.1, SHALimitRatio: 0.1, PeakAnonMiB: 9, PeakDRAMMiB: 10, StallSeconds: 9, Lockstep: 2, Batch: 2},
	}
}

// TestWriteSweepPlotBatch: the batch sweep is a series of its own beside
// the per-sector jobs' in every panel, its speed against its own all-DRAM
// point on the top one; the legend says which is which only when there is
// a batch. A batch's points are batches even though their groups are
// lockstep groups too (Lockstep 2): no lockstep markers.
func TestWriteSweepPlotBatch(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name       string
		pts        []SweepPlotPoint
		batch      bool
		perSectors bool
	}{
		{name: "per-sector only", pts: sweepSeries(), perSectors: true},
		{name: "both", pts: append(sweepSeries(), batchSeries()...), batch: true, perSectors: true},
		{name: "batch only", pts: batchSeries(), batch: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svg, png := filepath.Join(dir, tc.name+".svg"), filepath.Join(dir, tc.name+".png")
			require.NoError(t, WriteSweepPlot(png, svg, "sweep", tc.pts))
			data, err := os.ReadFile(svg)
			require.NoError(t, err)
			text := svgText(t, data)
			require.Contains(t, text, sweepVsLabel)
			require.Equal(t, tc.batch, strings.Contains(text, "one batch of 2 sectors (dotted lines, rings)"))
			require.Equal(t, tc.perSectors, strings.Contains(text, "per-sector jobs (solid lines)"))
			require.NotContains(t, text, "lockstep groups")
			for _, p := range tc.pts {
				require.Contains(t, text, p.Label)
			}
		})
	}
}
