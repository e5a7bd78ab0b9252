package bench

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
)

// Chart colours: a met target, a missed one.
const (
	chartMet    = "#2e7d32"
	chartMissed = "#c62828"
)

// chartScale is the range of margins the chart draws (log scale); a margin
// outside it is drawn at its end, its label says the real figure.
var chartScale = [2]float64{0.1, 100}

// WriteChart draws the report's targets as an SVG bar chart: one bar per
// result with a target, from the target's line (1x) to the figure's
// margin (Target.Margin) on a log scale, to the right in green when met,
// to the left in red when missed. Hovering a bar shows the target and the
// gap. Results without a target are left out.
func (rep *Report) WriteChart(w io.Writer) error {
	var rows []Result
	for _, r := range rep.Results {
		if r.Target != nil && r.Target.Margin > 0 {
			rows = append(rows, r)
		}
	}
	const (
		width, left, right = 980, 500, 64
		top, rowH          = 64, 20
	)
	lo, hi := chartScale[0], chartScale[1]
	x := func(m float64) float64 {
		m = min(max(m, lo), hi)
		return left + float64(width-left-right)*math.Log10(m/lo)/math.Log10(hi/lo)
	}
	bottom := top + rowH*len(rows)
	height := bottom + 68
	met := 0
	for _, r := range rows {
		if r.Target.Pass {
			met++
		}
	}
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	m := rep.Machine
	fmt.Fprintf(b, `<text x="12" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", esc(fmt.Sprintf(
		"strand bench (%s%s), %s: %d of %d targets met", rep.Mode, map[bool]string{true: ", quick", false: ""}[rep.Quick],
		rep.Started.Format("2006-01-02 15:04 MST"), met, len(rows))))
	fmt.Fprintf(b, `<text x="12" y="42" fill="#555555">%s</text>`+"\n", esc(fmt.Sprintf(
		"%d CPUs %s, %s, nats-server %s, load %s -> %s",
		m.CPUs, m.CPU, m.Go, m.NATSServer, m.LoadStart, m.LoadEnd)))
	for _, t := range []float64{0.1, 0.3, 1, 3, 10, 30, 100} {
		if t < lo || t > hi {
			continue
		}
		colour, w := "#dddddd", 1
		if t == 1 {
			colour, w = "#333333", 2
		}
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="%d"/>`+"\n", x(t), top-6, x(t), bottom+4, colour, w)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555555">%gx</text>`+"\n", x(t), bottom+20, t)
	}
	for i, r := range rows {
		y := top + i*rowH
		label := fmt.Sprintf("%d %s: %s (%s)", r.Row, r.Name, r.Case, r.Server)
		if rs := []rune(label); len(rs) > 78 {
			label = string(rs[:77]) + "…"
		}
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+14, esc(label))
		x0, x1 := x(1), x(r.Target.Margin)
		colour, textX := chartMet, x1+4
		if !r.Target.Pass {
			colour, textX = chartMissed, x0+4
		}
		tip := r.Target.Want
		if r.Target.Gap != "" {
			tip += ": missed, " + r.Target.Gap
		}
		fmt.Fprintf(b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`+"\n",
			min(x0, x1), y+3, math.Max(math.Abs(x1-x0), 1), rowH-6, colour, esc(tip))
		fmt.Fprintf(b, `<text x="%.1f" y="%d" fill="%s">%.2fx</text>`+"\n", textX, y+14, colour, r.Target.Margin)
	}
	fmt.Fprintf(b, `<text x="12" y="%d" fill="#555555">Each bar runs from the target (1x) to the figure's margin, log scale: right and green is met, left and red is missed.</text>`+"\n", bottom+40)
	fmt.Fprintf(b, `<text x="12" y="%d" fill="#555555">Margin: figure/target for a floor (throughput ratios), target/figure for a ceiling (latency, size); hover a bar for its target.</text>`+"\n", bottom+56)
	fmt.Fprintln(b, `</svg>`)
	return b.Flush()
}

func esc(s string) string { return html.EscapeString(s) }
