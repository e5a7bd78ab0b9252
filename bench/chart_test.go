package bench

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWriteChart draws a report of targets met and missed, floors and
// ceilings, and reads the SVG back as XML: one bar per target, starting at
// the 1x line and going right when met, left when missed, as long as the
// margin says (log scale), labels escaped.
func TestWriteChart(t *testing.T) {
	results := []Result{
		{Row: 1, Name: "write", Case: "16 clients", Server: "fsync", Target: atLeast(0.6, 0.5, "throughput")},
		{Row: 9, Name: "bulk", Case: "1,000 files", Server: "no-fsync", Target: atLeast(0.25, 0.5, "bytes")},
		{Row: 3, Name: "load", Case: "snapshots <head>", Server: "no-fsync", Target: atMost(1.6, 50, "cold load", " ms")},
		{Row: 4, Name: "manifest", Case: "first page & more", Server: "no-fsync", Target: atMost(4.1, 3, "first page", "x")},
		{Row: 7, Name: "storage", Case: "far beyond the scale", Server: "own", Target: atMost(0.001, 1, "overhead", "%")},
		{Row: 5, Name: "diff", Case: "no target", Server: "no-fsync"},
	}
	wantMargins := []float64{1.2, 0.5, 31.25, 3.0 / 4.1, 1000}
	for i, m := range wantMargins {
		if got := results[i].Target.Margin; math.Abs(got-m) > 1e-9 {
			t.Errorf("%s: margin %g, want %g", results[i].Case, got, m)
		}
	}
	rep := &Report{Mode: "embedded", Started: time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC), Results: results}
	var out bytes.Buffer
	if err := rep.WriteChart(&out); err != nil {
		t.Fatal(err)
	}
	type bar struct {
		x, w  float64
		fill  string
		title string
	}
	var bars []bar
	var texts []string
	var one float64     // the x of the 1x line (the thick one)
	var ticks []float64 // every grid line's x, 0.1x to 100x
	dec := xml.NewDecoder(&out)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, out.String())
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		attr := func(name string) string {
			for _, a := range se.Attr {
				if a.Name.Local == name {
					return a.Value
				}
			}
			return ""
		}
		num := func(name string) float64 {
			f, err := strconv.ParseFloat(attr(name), 64)
			if err != nil {
				t.Fatalf("%s %s=%q: %v", se.Name.Local, name, attr(name), err)
			}
			return f
		}
		switch se.Name.Local {
		case "line":
			ticks = append(ticks, num("x1"))
			if attr("stroke-width") == "2" {
				one = num("x1")
			}
		case "rect":
			if f := attr("fill"); f == chartMet || f == chartMissed {
				b := bar{x: num("x"), w: num("width"), fill: f}
				var inner struct {
					Title string `xml:"title"`
				}
				if err := dec.DecodeElement(&inner, &se); err != nil {
					t.Fatal(err)
				}
				b.title = inner.Title
				bars = append(bars, b)
			}
		case "text":
			var s string
			if err := dec.DecodeElement(&s, &se); err != nil {
				t.Fatal(err)
			}
			texts = append(texts, s)
		}
	}
	if len(bars) != 5 {
		t.Fatalf("%d bars, want 5 (one per target)", len(bars))
	}
	if one == 0 {
		t.Fatal("no 1x line")
	}
	// The plot's width per decade, from the grid's ends (0.1x, 100x).
	perDecade := (ticks[len(ticks)-1] - ticks[0]) / math.Log10(chartScale[1]/chartScale[0])
	for i, b := range bars {
		tg := results[i].Target
		wantFill := map[bool]string{true: chartMet, false: chartMissed}[tg.Pass]
		if b.fill != wantFill {
			t.Errorf("%s: fill %s, want %s", results[i].Case, b.fill, wantFill)
		}
		m := min(tg.Margin, chartScale[1])
		wantW := perDecade * math.Abs(math.Log10(m))
		if math.Abs(b.w-wantW) > 0.2 {
			t.Errorf("%s: bar %.1f wide, want %.1f (margin %g)", results[i].Case, b.w, wantW, tg.Margin)
		}
		start := b.x
		if !tg.Pass {
			start = b.x + b.w // a missed bar ends at the line
		}
		if math.Abs(start-one) > 0.2 {
			t.Errorf("%s: bar does not start at the 1x line (%.1f, line at %.1f)", results[i].Case, start, one)
		}
		if !strings.Contains(b.title, tg.Want) || (!tg.Pass && !strings.Contains(b.title, tg.Gap)) {
			t.Errorf("%s: title %q lacks the target or its gap", results[i].Case, b.title)
		}
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{"3 load: snapshots <head> (no-fsync)", "4 manifest: first page & more (no-fsync)", "3 of 5 targets met", "0.73x", "1000.00x"} {
		if !strings.Contains(all, want) {
			t.Errorf("no text %q in the chart:\n%s", want, all)
		}
	}
	if strings.Contains(all, "no target") {
		t.Error("a result without a target is drawn")
	}
}
