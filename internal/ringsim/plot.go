package ringsim

import (
	"errors"
	"image/color"
	"io"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var (
	balanceColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	movedColor   = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

// WritePlot draws max_over_mean and moved_over_ideal over the cluster size
// of rows as a PNG on w, with the bounds as dashed lines in the same
// colours.
func WritePlot(w io.Writer, rows []Row, title string) error {
	if len(rows) == 0 {
		return errors.New("nothing to plot: no rows")
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "members"
	p.Y.Label.Text = "ratio"
	p.Y.Min, p.Y.Max = 0.9, 1.2
	p.X.Min, p.X.Max = float64(rows[0].Nodes), float64(rows[len(rows)-1].Nodes)
	p.Add(plotter.NewGrid())
	p.Legend.Top = true

	balance, moved := make(plotter.XYs, len(rows)), make(plotter.XYs, len(rows))
	for i, r := range rows {
		balance[i] = plotter.XY{X: float64(r.Nodes), Y: r.MaxOverMean}
		moved[i] = plotter.XY{X: float64(r.Nodes), Y: r.MovedOverIdeal}
		p.Y.Max = max(p.Y.Max, r.MaxOverMean+0.05, r.MovedOverIdeal+0.05)
	}
	var ticks []plot.Tick
	for y := 0.9; y <= p.Y.Max+1e-9; y += 0.05 {
		ticks = append(ticks, plot.Tick{Value: y, Label: strconv.FormatFloat(y, 'f', 2, 64)})
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	// The curves often coincide (the busiest member leaving moves the
	// most): the first is drawn wide beneath the second.
	for _, c := range []struct {
		xys   plotter.XYs
		bound float64
		col   color.Color
		width vg.Length
		name  string
	}{
		{balance, MaxOverMeanBound, balanceColor, vg.Points(4), "busiest member / mean (bound 1.05)"},
		{moved, MovedOverIdealBound, movedColor, vg.Points(1.5), "moved by a join or leave / ideal (bound 1.1)"},
	} {
		line, err := plotter.NewLine(c.xys)
		if err != nil {
			return err
		}
		line.Color, line.Width = c.col, c.width
		bound, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: c.bound}, {X: p.X.Max, Y: c.bound}})
		if err != nil {
			return err
		}
		bound.Color, bound.Dashes = c.col, []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(line, bound)
		p.Legend.Add(c.name, line)
	}
	wt, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return err
	}
	_, err = wt.WriteTo(w)
	return err
}
