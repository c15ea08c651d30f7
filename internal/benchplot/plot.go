// Package benchplot draws the small line and CDF charts of `p2pxhr bench`
// as hand-written SVG: a few panels of axes, ticks, polylines and a
// legend. It exists so the benchmark can commit its plots without a
// plotting dependency; it is not a general charting library.
package benchplot

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Series is one line of a panel.
type Series struct {
	Name string
	X, Y []float64
	// Color is any SVG colour; empty picks one by the series' index.
	Color string
	// Dashed draws a reference line (a limit, a goal).
	Dashed bool
	// Step draws a staircase (empirical CDFs) instead of straight segments.
	Step bool
	// Markers puts a dot on every point (sweeps with few points).
	Markers bool
}

// Panel is one chart: axes with their own ranges and a legend.
type Panel struct {
	Title, XLabel, YLabel string
	Series                []Series
	// YMin and YMax fix the y range when YMax > YMin (CDFs: 0..1);
	// otherwise it is fitted to the data, from zero.
	YMin, YMax float64
}

// palette is colour-blind safe (Okabe–Ito) and keeps the first series
// (P2P in the bench) blue and the second (HTTP only) orange.
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"}

// CDF returns the empirical distribution of values as a step series:
// y is the fraction of values at or below x.
func CDF(name string, values []float64) Series {
	v := slices.Clone(values)
	slices.Sort(v)
	s := Series{Name: name, Step: true}
	if len(v) == 0 {
		return s
	}
	s.X = append(s.X, v[0])
	s.Y = append(s.Y, 0)
	for i, x := range v {
		s.X = append(s.X, x)
		s.Y = append(s.Y, float64(i+1)/float64(len(v)))
	}
	return s
}

// Geometry of one panel, in SVG user units.
const (
	panelW, panelH = 460.0, 300.0
	marginL        = 62.0
	marginR        = 16.0
	marginT        = 30.0
	marginB        = 46.0
	titleH         = 34.0
)

// Render writes an SVG document of the panels laid out cols per row under
// a title.
func Render(w io.Writer, title string, panels []Panel, cols int) error {
	if len(panels) == 0 {
		return fmt.Errorf("benchplot: no panels")
	}
	cols = max(1, min(cols, len(panels)))
	rows := (len(panels) + cols - 1) / cols
	// Wide enough for the title (about 8.5 units a character in bold 15):
	// a one-panel figure must not clip it.
	width := max(float64(cols)*panelW, math.Ceil(8.5*float64(len(title))+40))
	height := titleH + float64(rows)*panelH
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(bw, `<text x="%.1f" y="22" text-anchor="middle" font-size="15" font-weight="bold">%s</text>`+"\n", width/2, esc(title))
	for i, p := range panels {
		x0 := float64(i%cols) * panelW
		y0 := titleH + float64(i/cols)*panelH
		drawPanel(bw, p, x0, y0)
	}
	fmt.Fprintln(bw, "</svg>")
	return bw.Flush()
}

func drawPanel(w io.Writer, p Panel, x0, y0 float64) {
	xmin, xmax, ymin, ymax := bounds(p)
	xt, yt := ticks(xmin, xmax), ticks(ymin, ymax)
	// The axes run over the ticks' span so the last tick sits on the edge.
	xmin, xmax = min(xmin, xt[0]), max(xmax, xt[len(xt)-1])
	ymin, ymax = min(ymin, yt[0]), max(ymax, yt[len(yt)-1])
	left, top := x0+marginL, y0+marginT
	pw, ph := panelW-marginL-marginR, panelH-marginT-marginB
	sx := func(v float64) float64 { return left + (v-xmin)/(xmax-xmin)*pw }
	sy := func(v float64) float64 { return top + ph - (v-ymin)/(ymax-ymin)*ph }

	fmt.Fprintf(w, `<g class="panel">`+"\n")
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" font-weight="bold">%s</text>`+"\n", left+pw/2, y0+18, esc(p.Title))
	for _, t := range xt {
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", sx(t), top, sx(t), top+ph)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", sx(t), top+ph+16, label(t))
	}
	for _, t := range yt {
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, sy(t), left+pw, sy(t))
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, sy(t)+4, label(t))
	}
	fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", left+pw/2, top+ph+36, esc(p.XLabel))
	fmt.Fprintf(w, `<text transform="translate(%.1f %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", x0+16, top+ph/2, esc(p.YLabel))

	for i, s := range p.Series {
		color := s.Color
		if color == "" {
			color = palette[i%len(palette)]
		}
		fmt.Fprintf(w, `<g class="series" data-name="%s">`+"\n", esc(s.Name))
		var pts []string
		for j := range s.X {
			if s.Step && j > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(s.X[j]), sy(s.Y[j-1])))
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(s.X[j]), sy(s.Y[j])))
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", color, dash, strings.Join(pts, " "))
		if s.Markers {
			for j := range s.X {
				fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", sx(s.X[j]), sy(s.Y[j]), color)
			}
		}
		// Legend, top left inside the plot area.
		ly := top + 14 + float64(i)*16
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", left+8, ly-4, left+28, ly-4, color, dash)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f">%s</text>`+"\n", left+34, ly, esc(s.Name))
		fmt.Fprintln(w, "</g>")
	}
	fmt.Fprintln(w, "</g>")
}

// bounds is the data range of a panel: x fitted, y from zero (or fixed).
func bounds(p Panel) (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = math.Inf(1), math.Inf(-1)
	ymin, ymax = 0, math.Inf(-1)
	for _, s := range p.Series {
		for j := range s.X {
			xmin, xmax = min(xmin, s.X[j]), max(xmax, s.X[j])
			ymin, ymax = min(ymin, s.Y[j]), max(ymax, s.Y[j])
		}
	}
	if p.YMax > p.YMin {
		ymin, ymax = p.YMin, p.YMax
	}
	if math.IsInf(xmin, 0) {
		xmin, xmax = 0, 1
	}
	if math.IsInf(ymax, 0) {
		ymax = 1
	}
	// A time CDF reads better from zero: completion times are durations.
	xmin = min(xmin, 0)
	if xmax <= xmin {
		xmax = xmin + 1
	}
	if ymax <= ymin {
		ymax = ymin + 1
	}
	return
}

// ticks returns about five round tick values covering [lo, hi].
func ticks(lo, hi float64) []float64 {
	raw := (hi - lo) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Floor(lo/step) * step; v <= hi+step*0.999; v += step {
		out = append(out, math.Round(v/step)*step)
		if v >= hi {
			break
		}
	}
	return out
}

func label(v float64) string {
	s := fmt.Sprintf("%.3g", v)
	if math.Abs(v) >= 1000 {
		s = fmt.Sprintf("%.0f", v)
	}
	return s
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
