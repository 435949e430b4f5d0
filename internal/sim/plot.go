package sim

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// PlotOptions tunes WritePlot.
type PlotOptions struct {
	// Title is drawn above the plot.
	Title string
	// Width and Height default to 8 × 5 inches (768 × 480 pixels).
	Width, Height vg.Length
}

// maxTickLabels bounds the labelled ticks of the size axis.
const maxTickLabels = 8

var kneeColor = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}

// WritePlot draws the hit rate (%, y) over the cache size (x, log scale) of
// results, sorted by size as Run returns them, as a PNG on w. A knee, if
// given, is marked with a point, a dashed drop line and a label.
func WritePlot(w io.Writer, results []Result, knee *KneePoint, opts PlotOptions) error {
	if len(results) == 0 {
		return errors.New("nothing to plot: no results")
	}
	if opts.Width == 0 {
		opts.Width = 8 * vg.Inch
	}
	if opts.Height == 0 {
		opts.Height = 5 * vg.Inch
	}
	p := plot.New()
	p.Title.Text = opts.Title
	unit := "bytes"
	if results[0].Size.inEntries() {
		unit = "entries"
	}
	p.X.Label.Text = "cache size (" + unit + ", log scale)"
	p.Y.Label.Text = "hit rate (%)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = sizeTicks(results)
	p.Y.Min, p.Y.Max = 0, 100
	p.Y.Tick.Marker = percentTicks()
	p.Add(plotter.NewGrid())

	xys := make(plotter.XYs, len(results))
	for i, r := range results {
		xys[i] = plotter.XY{X: float64(r.Size.value()), Y: 100 * r.HitRate()}
	}
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	line.Width = vg.Points(1.5)
	points.Shape = draw.CircleGlyph{}
	points.Radius = vg.Points(2.5)
	p.Add(line, points)

	if knee != nil {
		if err := addKnee(p, results, xys, *knee); err != nil {
			return err
		}
	}
	wt, err := p.WriterTo(opts.Width, opts.Height, "png")
	if err != nil {
		return err
	}
	_, err = wt.WriteTo(w)
	return err
}

func addKnee(p *plot.Plot, results []Result, xys plotter.XYs, k KneePoint) error {
	if k.Index < 0 || k.Index >= len(results) {
		return fmt.Errorf("knee index %d out of range [0, %d)", k.Index, len(results))
	}
	at := xys[k.Index]
	drop, err := plotter.NewLine(plotter.XYs{{X: at.X, Y: 0}, at})
	if err != nil {
		return err
	}
	drop.Color = kneeColor
	drop.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	mark, err := plotter.NewScatter(plotter.XYs{at})
	if err != nil {
		return err
	}
	mark.Shape = draw.CircleGlyph{}
	mark.Radius = vg.Points(5)
	mark.Color = kneeColor
	label, err := plotter.NewLabels(plotter.XYLabels{
		XYs:    plotter.XYs{at},
		Labels: []string{KneeLabel(results, k)},
	})
	if err != nil {
		return err
	}
	// The curve rises, so it leaves the space above-left and below-right
	// of the knee empty. Above-left, unless the knee is too close to the
	// left edge or the top for the text.
	style := &label.TextStyle[0]
	style.Color = kneeColor
	xs, _ := curve(results)
	pos := (xs[k.Index] - xs[0]) / (xs[len(xs)-1] - xs[0])
	switch {
	case pos >= 0.3 && at.Y < 90:
		style.XAlign, style.YAlign = text.XRight, text.YBottom
		label.Offset = vg.Point{X: -vg.Points(6), Y: vg.Points(6)}
	case pos <= 0.7:
		style.XAlign, style.YAlign = text.XLeft, text.YTop
		label.Offset = vg.Point{X: vg.Points(8), Y: -vg.Points(8)}
	default:
		style.XAlign, style.YAlign = text.XRight, text.YTop
		label.Offset = vg.Point{X: -vg.Points(8), Y: -vg.Points(8)}
	}
	p.Add(drop, mark, label)
	return nil
}

// KneeLabel describes a knee in one line: "knee: 64 MiB → 87.3 % hits".
func KneeLabel(results []Result, k KneePoint) string {
	r := results[k.Index]
	return fmt.Sprintf("knee: %s → %.1f %% hits", r.Size, 100*r.HitRate())
}

// sizeTicks labels the simulated sizes, at most maxTickLabels of them; the
// others get an unlabelled tick.
func sizeTicks(results []Result) plot.ConstantTicks {
	every := (len(results) + maxTickLabels - 1) / maxTickLabels
	ticks := make(plot.ConstantTicks, len(results))
	for i, r := range results {
		ticks[i].Value = float64(r.Size.value())
		if i%every == 0 || i == len(results)-1 && i%every >= every/2 {
			ticks[i].Label = tickLabel(r.Size)
		}
	}
	return ticks
}

// percentTicks labels every 10 % and marks every 5 %.
func percentTicks() plot.ConstantTicks {
	var ticks plot.ConstantTicks
	for v := 0; v <= 100; v += 5 {
		t := plot.Tick{Value: float64(v)}
		if v%10 == 0 {
			t.Label = strconv.Itoa(v)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// tickLabel is a short size: "64 MiB" or "10k".
func tickLabel(s Size) string {
	if !s.inEntries() {
		return humanize.IBytes(s.Bytes)
	}
	if s.Entries < 1000 {
		return strconv.FormatUint(s.Entries, 10)
	}
	v, prefix := humanize.ComputeSI(float64(s.Entries))
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0") + prefix
}
