package bench

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// WriteTable prints the report as an aligned table, then the machine and
// the missed targets.
func (rep *Report) WriteTable(w io.Writer) error {
	m := rep.Machine
	fmt.Fprintf(w, "strand bench (%s%s), %s, %d CPUs %s, %s GiB, %s, nats-server %s, %.0fs, load %s -> %s\n\n",
		rep.Mode, map[bool]string{true: ", quick", false: ""}[rep.Quick], rep.Started.Format("2006-01-02 15:04 MST"),
		m.CPUs, m.CPU, m.MemoryGiB, m.Go, m.NATSServer, rep.Seconds, m.LoadStart, m.LoadEnd)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROW\tCASE\tSERVER\tSTRAND\tRAW\tSTRAND/RAW\tTARGET\tRESULT")
	for _, r := range rep.Results {
		raw, rt := "-", "-"
		if r.Raw != nil {
			raw = FormatFigure(*r.Raw)
		}
		if r.Ratio != 0 {
			rt = FormatRatio(r.Ratio)
		}
		target, result := "-", "-"
		if r.Target != nil {
			target, result = r.Target.Want, "pass"
			if !r.Target.Pass {
				result = "MISS (" + r.Target.Gap + ")"
			}
		}
		fmt.Fprintf(tw, "%d %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Row, r.Name, r.Case, r.Server, FormatFigure(r.Strand), raw, rt, target, result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nNotes:")
	seen := map[string]bool{}
	for _, r := range rep.Results {
		if r.RawWhat != "" && !seen[fmt.Sprint(r.Row, r.RawWhat)] {
			seen[fmt.Sprint(r.Row, r.RawWhat)] = true
			fmt.Fprintf(w, "  %d %s: raw = %s\n", r.Row, r.Name, r.RawWhat)
		}
		if r.Note != "" && !seen[fmt.Sprint(r.Row, r.Note)] {
			seen[fmt.Sprint(r.Row, r.Note)] = true
			fmt.Fprintf(w, "  %d %s, %s, %s: %s\n", r.Row, r.Name, r.Case, r.Server, r.Note)
		}
	}
	passed, missed := 0, 0
	for _, r := range rep.Results {
		if r.Target != nil {
			if r.Target.Pass {
				passed++
			} else {
				missed++
			}
		}
	}
	fmt.Fprintf(w, "\nTargets: %d passed, %d missed.\n", passed, missed)
	for _, f := range rep.Failures {
		fmt.Fprintf(w, "FAILED: %s\n", f)
	}
	return nil
}

// FormatFigure writes a figure for people: value, unit, latencies.
func FormatFigure(f Figure) string {
	var s string
	switch f.Unit {
	case "bytes":
		s = formatBytes(f.Value)
	case "x":
		s = strconv.FormatFloat(f.Value, 'f', 2, 64) + "x"
	case "ms":
		s = formatMs(f.Value)
	default:
		s = formatCount(f.Value) + " " + f.Unit
	}
	if f.P50Ms > 0 && f.Unit != "ms" {
		s += fmt.Sprintf(" (p50 %s, p99 %s)", formatMs(f.P50Ms), formatMs(f.P99Ms))
	} else if f.Unit == "ms" && f.P99Ms > 0 {
		s += fmt.Sprintf(" (p99 %s)", formatMs(f.P99Ms))
	}
	return s
}

// FormatRatio writes a ratio with the precision it needs.
func FormatRatio(r float64) string {
	switch {
	case r >= 100:
		return strconv.FormatFloat(r, 'f', 0, 64)
	case r >= 0.1:
		return strconv.FormatFloat(r, 'f', 2, 64)
	default:
		return strconv.FormatFloat(r, 'g', 2, 64)
	}
}

func formatMs(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
	default:
		return strconv.FormatFloat(v, 'f', 3, 64) + " ms"
	}
}

func formatCount(v float64) string {
	if v >= 1000 {
		return count(int(v + 0.5))
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func formatBytes(v float64) string {
	switch {
	case v >= 1<<20:
		return strconv.FormatFloat(v/(1<<20), 'f', 2, 64) + " MiB"
	case v >= 1<<10:
		return strconv.FormatFloat(v/(1<<10), 'f', 1, 64) + " KiB"
	default:
		return strconv.FormatFloat(v, 'f', 0, 64) + " B"
	}
}
