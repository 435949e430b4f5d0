package sim

import (
	"bytes"
	"image"
	"image/png"
	"testing"
)

// reddish counts the pixels of img close to the knee's colour.
func reddish(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 > 0xb0 && g>>8 < 0x60 && bl>>8 < 0x60 {
				n++
			}
		}
	}
	return n
}

func TestWritePlot_PNGWithKneeMarked(t *testing.T) {
	bytesAt := []uint64{1 << 20, 2 << 20, 4 << 20, 8 << 20, 16 << 20, 32 << 20}
	rs := results(bytesAt, []float64{0.2, 0.5, 0.7, 0.8, 0.82, 0.83})
	k, ok := FindKnee(rs)
	if !ok {
		t.Fatal("no knee in a bent curve")
	}
	draw := func(knee *KneePoint) image.Image {
		t.Helper()
		var buf bytes.Buffer
		if err := WritePlot(&buf, rs, knee, PlotOptions{Title: "test"}); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(&buf)
		if err != nil {
			t.Fatalf("not a PNG: %v", err)
		}
		return img
	}
	marked, plain := draw(&k), draw(nil)
	if got := marked.Bounds().Size(); got != (image.Point{X: 768, Y: 480}) {
		t.Errorf("image is %v, want 768×480 (8 × 5 in at 96 dpi)", got)
	}
	if n := reddish(plain); n != 0 {
		t.Errorf("plot without a knee has %d red pixels", n)
	}
	if n := reddish(marked); n < 100 {
		t.Errorf("plot with a knee has %d red pixels, want a visible mark (≥ 100)", n)
	}
}

func TestWritePlot_EntriesAndErrors(t *testing.T) {
	rs := []Result{
		{Size: Size{Entries: 100}, MaxBytes: 20000, Hits: 1, Misses: 1},
		{Size: Size{Entries: 1500}, MaxBytes: 300000, Hits: 3, Misses: 1},
	}
	var buf bytes.Buffer
	if err := WritePlot(&buf, rs, nil, PlotOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&buf); err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if err := WritePlot(&buf, nil, nil, PlotOptions{}); err == nil {
		t.Error("plotting no results succeeded")
	}
	if err := WritePlot(&buf, rs, &KneePoint{Index: 2}, PlotOptions{}); err == nil {
		t.Error("plotting a knee out of range succeeded")
	}
	if got := tickLabel(Size{Entries: 1500}); got != "1.5k" {
		t.Errorf("tick label = %q, want 1.5k", got)
	}
	if got := tickLabel(Size{Entries: 1000000}); got != "1M" {
		t.Errorf("tick label = %q, want 1M", got)
	}
}
