package bench

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/pc1-tiered/pc1-tiered/blockio"
)

// SweepPlotPoint is one point of a bench sweep.
type SweepPlotPoint struct {
	// DRAMPerSector is the DRAM budget per sector, in multiples of the
	// sector size S (the x axis).
	DRAMPerSector float64
	// Label names the point on the plot ("max", "default", "min",
	// "spill 1.10"); it may be empty.
	Label string
	// NodesPerSecond is the total node labels per second, all sectors.
	NodesPerSecond float64
	// SHALimitRatio is the run's sha_limit_ratio (see the package
	// documentation).
	SHALimitRatio float64
	// PeakAnonMiB is the peak anonymous RSS; PeakDRAMMiB the peak of
	// anonymous RSS plus the layer files' page cache.
	PeakAnonMiB, PeakDRAMMiB float64
	// PoolWaitSeconds and StallSeconds are the run's pool waits and page
	// fault stalls, summed over its sectors.
	PoolWaitSeconds, StallSeconds float64
	// Lockstep is the point's group size: points with groups (k > 1) are
	// another way of hashing, not another DRAM setting, so they are drawn
	// as markers of their own, off the line through the DRAM sweep.
	Lockstep int
	// RelativeThroughput is NodesPerSecond over its sweep's first point's:
	// the per-sector sweep's all-DRAM point (max), or the batch's.
	RelativeThroughput float64
	// Batch, when set, says the point is one of a batch sweep's (one batch
	// of Batch sectors, BatchSweep): it is drawn as a series of its own,
	// beside the per-sector jobs'.
	Batch int
}

// plotKind is which series of a panel a point belongs to.
type plotKind int

const (
	kindSectors  plotKind = iota // per-sector jobs: the DRAM line
	kindLockstep                 // lockstep groups: markers off the line
	kindBatch                    // one batch: a line of its own
)

func (p SweepPlotPoint) kind() plotKind {
	switch {
	case p.Batch > 0:
		return kindBatch
	case p.Lockstep > 1:
		return kindLockstep
	}
	return kindSectors
}

// Size of the sweep picture. Five panels stacked need the height; the
// PNG's DPI makes it about 1000 x 1600 pixels, legible on a screen
// without zooming.
const (
	plotWidth  = 8 * vg.Inch
	plotHeight = 13 * vg.Inch
	plotDPI    = 125
)

// WriteSweepPlot draws a DRAM-vs-NVMe sweep as one picture of five panels
// sharing the x axis (DRAM per sector): throughput against the sweep's
// all-DRAM point (per-sector jobs and the batch side by side), throughput,
// sha_limit_ratio, time lost to pool waits and stalls, and peak memory. It writes it as a PNG to
// pngPath and as an SVG to svgPath; an empty path skips that format. Points
// may come in any order.
func WriteSweepPlot(pngPath, svgPath, title string, pts []SweepPlotPoint) error {
	if len(pts) == 0 {
		return errors.New("sweep plot: no points")
	}
	if pngPath == "" && svgPath == "" {
		return errors.New("sweep plot: no output path")
	}
	for i, p := range pts {
		for _, v := range []float64{p.DRAMPerSector, p.NodesPerSecond, p.SHALimitRatio, p.PeakAnonMiB, p.PeakDRAMMiB, p.PoolWaitSeconds, p.StallSeconds, p.RelativeThroughput} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("sweep plot: point %d (%q) has a value that is not finite", i, p.Label)
			}
		}
	}
	panels, err := sweepPanels(title, pts)
	if err != nil {
		return err
	}
	if pngPath != "" {
		c := vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(plotDPI), vgimg.UseBackgroundColor(color.White))
		drawPanels(panels, draw.New(c))
		var buf bytes.Buffer
		if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
			return fmt.Errorf("sweep plot %s: %w", pngPath, err)
		}
		if err := blockio.WriteFileAtomic(pngPath, buf.Bytes()); err != nil {
			return fmt.Errorf("sweep plot: %w", err)
		}
	}
	if svgPath != "" {
		c := vgsvg.New(plotWidth, plotHeight)
		drawPanels(panels, draw.New(c))
		var buf bytes.Buffer
		if _, err := c.WriteTo(&buf); err != nil {
			return fmt.Errorf("sweep plot %s: %w", svgPath, err)
		}
		if err := blockio.WriteFileAtomic(svgPath, buf.Bytes()); err != nil {
			return fmt.Errorf("sweep plot: %w", err)
		}
	}
	return nil
}

// Axis labels; the test looks for them in the SVG's text.
const (
	sweepXLabel      = "DRAM per sector (x sector size)"
	sweepVsLabel     = "labels/s vs all-DRAM (same run)"
	sweepRateLabel   = "throughput (M node labels/s)"
	sweepRatioLabel  = "sha_limit_ratio (1 = SHA-256 bound)"
	sweepLostLabel   = "time lost (s, all sectors)"
	sweepMemoryLabel = "memory (MiB)"
)

// plotSeries is one line of a panel.
type plotSeries struct {
	name  string
	y     func(SweepPlotPoint) float64
	color color.Color
	dash  []vg.Length
	shape draw.GlyphDrawer
}

// sweepPanels builds the four panels, top to bottom.
func sweepPanels(title string, pts []SweepPlotPoint) ([]*plot.Plot, error) {
	pts = slices.Clone(pts)
	slices.SortStableFunc(pts, func(a, b SweepPlotPoint) int { return cmp.Compare(a.DRAMPerSector, b.DRAMPerSector) })
	xmin, xmax := pts[0].DRAMPerSector, pts[len(pts)-1].DRAMPerSector
	// Room either side for the end points and their labels; a single x
	// gets a range wide enough for readable ticks.
	pad := (xmax - xmin) * 0.08
	if pad == 0 {
		pad = max(0.25, math.Abs(xmax)*0.2)
	}
	xmin, xmax = xmin-pad, xmax+pad

	var (
		blue   = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
		orange = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
		green  = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
		red    = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
		purple = color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}
		gray   = color.Gray{Y: 0x80}
		dashed = []vg.Length{vg.Points(6), vg.Points(3)}
		dotted = []vg.Length{vg.Points(1.5), vg.Points(2.5)}
	)
	// batch is the batch sweep's batch size, if it has points.
	batch := 0
	for _, p := range pts {
		if p.Batch > 0 {
			batch = p.Batch
			break
		}
	}
	panels := []struct {
		ylabel string
		lines  []plotSeries
		// ref draws a dashed horizontal reference line at this y (0: none).
		ref float64
		// labels names the points on this panel, and its legend says
		// which glyphs are which kind of point (the other panels' legends
		// name their per-sector lines only).
		labels bool
	}{
		{ylabel: sweepVsLabel, ref: 1, labels: true, lines: []plotSeries{
			{name: "per-sector jobs (solid lines)", y: func(p SweepPlotPoint) float64 { return p.RelativeThroughput }, color: blue, shape: draw.CircleGlyph{}},
		}},
		{ylabel: sweepRateLabel, lines: []plotSeries{
			{name: "total node labels/s (all sectors)", y: func(p SweepPlotPoint) float64 { return p.NodesPerSecond / 1e6 }, color: blue, shape: draw.CircleGlyph{}},
		}},
		{ylabel: sweepRatioLabel, ref: 1, lines: []plotSeries{
			{name: "sha_limit_ratio", y: func(p SweepPlotPoint) float64 { return p.SHALimitRatio }, color: purple, shape: draw.SquareGlyph{}},
		}},
		{ylabel: sweepLostLabel, lines: []plotSeries{
			{name: "pool wait", y: func(p SweepPlotPoint) float64 { return p.PoolWaitSeconds }, color: orange, shape: draw.TriangleGlyph{}},
			{name: "stall (waiting for spilled labels)", y: func(p SweepPlotPoint) float64 { return p.StallSeconds }, color: red, dash: dashed, shape: draw.CrossGlyph{}},
		}},
		{ylabel: sweepMemoryLabel, lines: []plotSeries{
			{name: "peak DRAM incl. layer page cache", y: func(p SweepPlotPoint) float64 { return p.PeakDRAMMiB }, color: green, shape: draw.CircleGlyph{}},
			{name: "peak anon RSS", y: func(p SweepPlotPoint) float64 { return p.PeakAnonMiB }, color: blue, dash: dashed, shape: draw.SquareGlyph{}},
		}},
	}

	var out []*plot.Plot
	for i, pn := range panels {
		p := plot.New()
		if i == 0 {
			p.Title.Text = title
			p.Title.TextStyle.Font.Size = vg.Points(14)
			p.Title.Padding = vg.Points(6)
		}
		if i == len(panels)-1 {
			p.X.Label.Text = sweepXLabel
		}
		p.Y.Label.Text = pn.ylabel
		p.Y.Tick.Marker = plot.TickerFunc(trimmedTicks)
		p.X.Min, p.X.Max = xmin, xmax
		p.Add(plotter.NewGrid())

		ymax := pn.ref
		for _, s := range pn.lines {
			for _, kind := range []plotKind{kindSectors, kindLockstep, kindBatch} {
				var xys plotter.XYs
				var names []string
				for _, pt := range pts {
					if pt.kind() != kind {
						continue
					}
					xys = append(xys, plotter.XY{X: pt.DRAMPerSector, Y: s.y(pt)})
					names = append(names, pt.Label)
					ymax = max(ymax, s.y(pt))
				}
				if len(xys) == 0 {
					continue
				}
				sc, err := plotter.NewScatter(xys)
				if err != nil {
					return nil, fmt.Errorf("sweep plot %q: %w", s.name, err)
				}
				sc.Color, sc.Shape, sc.Radius = s.color, s.shape, vg.Points(3.5)
				switch kind {
				case kindLockstep:
					sc.Shape = draw.PyramidGlyph{}
					p.Add(sc)
					if pn.labels {
						p.Legend.Add("sectors in lockstep groups (triangles)", sc)
					}
				case kindBatch:
					sc.Shape = draw.RingGlyph{}
					l, err := plotter.NewLine(xys)
					if err != nil {
						return nil, fmt.Errorf("sweep plot %q: %w", s.name, err)
					}
					l.Color, l.Width, l.Dashes = s.color, vg.Points(1.5), dotted
					p.Add(l, sc)
					if pn.labels {
						p.Legend.Add(fmt.Sprintf("one batch of %d sectors (dotted lines, rings)", batch), l, sc)
					}
				default:
					l, err := plotter.NewLine(xys)
					if err != nil {
						return nil, fmt.Errorf("sweep plot %q: %w", s.name, err)
					}
					l.Color, l.Width, l.Dashes = s.color, vg.Points(1.5), s.dash
					p.Add(l, sc)
					p.Legend.Add(s.name, l, sc)
				}
				if pn.labels {
					lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: names})
					if err != nil {
						return nil, fmt.Errorf("sweep plot labels: %w", err)
					}
					for j := range lb.TextStyle {
						lb.TextStyle[j].Font.Size = vg.Points(9)
						lb.TextStyle[j].Color = gray
						lb.TextStyle[j].XAlign = draw.XCenter
					}
					// Batch points are named below theirs: at 2 x S both
					// sweeps have a point.
					lb.Offset = vg.Point{Y: vg.Points(7)}
					if kind == kindBatch {
						lb.Offset.Y = -vg.Points(14)
					}
					p.Add(lb)
				}
			}
		}
		if pn.ref != 0 {
			ref := plotter.NewFunction(func(float64) float64 { return pn.ref })
			ref.Color, ref.Dashes, ref.Width = gray, []vg.Length{vg.Points(2), vg.Points(3)}, vg.Points(1)
			p.Add(ref)
		}
		// Every panel starts at zero, so heights compare honestly, and
		// leaves headroom above the data for the legend.
		p.Y.Min = 0
		p.Y.Max = ymax * 1.35
		if p.Y.Max == 0 {
			p.Y.Max = 1 // all zero: any range, but not an empty one
		}
		p.Legend.Top = true
		p.Legend.Left = true
		p.Legend.XOffs = vg.Points(6)
		p.Legend.YOffs = -vg.Points(2)
		p.Legend.TextStyle.Font.Size = vg.Points(10)
		p.Legend.Padding = vg.Points(2)
		out = append(out, p)
	}
	return out, nil
}

// trimmedTicks is plot.DefaultTicks without trailing zeros ("0, 25, 50"
// rather than "0.00, 25.00, 50.00").
func trimmedTicks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		if strings.Contains(t.Label, ".") && !strings.ContainsAny(t.Label, "eE") {
			ticks[i].Label = strings.TrimRight(strings.TrimRight(t.Label, "0"), ".")
		}
	}
	return ticks
}

// drawPanels stacks the panels on c, aligned so their x axes line up.
func drawPanels(panels []*plot.Plot, c draw.Canvas) {
	// SVG has no background of its own: paint one, or the gaps between
	// the panels show through dark viewers.
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())
	grid := make([][]*plot.Plot, len(panels))
	for i, p := range panels {
		grid[i] = []*plot.Plot{p}
	}
	tiles := draw.Tiles{
		Rows: len(panels), Cols: 1,
		PadY:   vg.Points(10),
		PadTop: vg.Points(6), PadBottom: vg.Points(6),
		PadLeft: vg.Points(6), PadRight: vg.Points(14),
	}
	canvases := plot.Align(grid, tiles, c)
	for i, p := range panels {
		p.Draw(canvases[i][0])
	}
}
