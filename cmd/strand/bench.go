package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/strand-dev/strand/bench"
	"github.com/strand-dev/strand/domain"
)

// runBench runs the benchmark suite: fresh embedded servers in a temporary
// folder, or an existing cluster with --nats (under a tenant of its own).
func (m *Main) runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	var opts bench.Options
	var jsonOut, quiet bool
	var rows, cpuprofile, save, chart string
	fs.BoolVar(&opts.Quick, "quick", false, "smaller sizes and fewer repetitions (under two minutes on two cores)")
	fs.BoolVar(&jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&opts.NATS, "nats", "", "run against these NATS servers (comma-separated) instead of embedded ones")
	fs.IntVar(&opts.Replicas, "replicas", 0, "with --nats: replicas of the bench's own streams (default: as the event stream)")
	fs.StringVar(&rows, "rows", "", "rows to run, by number or name (write,fork,load,manifest,diff,projection,storage,workcopy,bulk,instances)")
	fs.StringVar(&opts.Dir, "dir", "", "where the embedded servers' temporary folder goes (default: the system's)")
	fs.BoolVar(&opts.Keep, "keep", false, "keep the temporary folder (or, with --nats, the bench tenant's data)")
	fs.StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.BoolVar(&quiet, "quiet", false, "no progress lines on stderr")
	fs.BoolVar(&opts.NoGroupCommit, "no-group-commit", false, "open the bench's stores with group commit off (to compare)")
	fs.BoolVar(&opts.KeepEntries, "keep-entries", false, "row 12: leave the kernel's dentries and inodes alone before the native cold walk (as root they are dropped, machine-wide; with this the native cold walk is mostly a warm one)")
	fs.StringVar(&opts.Tenant, "tenant", "", "tenant to write under (default bench-<random>; with --nats, one the instances' limits exempt)")
	fs.StringVar(&save, "save", "", "also write the report as JSON to this file")
	fs.StringVar(&chart, "chart", "", "also draw the targets as an SVG bar chart to this file (each figure against its target)")
	fs.StringVar(&opts.Tree, "tree", "", "row 8 (workcopy) also measures this real tree against git")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("usage: strand bench [--quick] [--json] [--nats URLS] [--rows r1,r2]")
	}
	if opts.Tenant != "" {
		if err := domain.ValidTenant(opts.Tenant); err != nil {
			return usagef("--tenant: %s", domain.ErrorMessage(err))
		}
	}
	if rows != "" {
		opts.Rows = strings.Split(rows, ",")
		if _, err := bench.SelectRows(opts.Rows); err != nil {
			return usagef("--rows: %v", err)
		}
	}
	if !quiet {
		opts.Progress = m.Stderr
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := bench.Run(ctx, opts)
	if err != nil {
		return err
	}
	if err := m.printBench(m.Stdout, rep, jsonOut); err != nil {
		return err
	}
	if save != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(save, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("save report: %w", err)
		}
	}
	if chart != "" {
		var b bytes.Buffer
		if err := rep.WriteChart(&b); err != nil {
			return err
		}
		if err := os.WriteFile(chart, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
	}
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d of the rows failed: %s", len(rep.Failures), strings.Join(rep.Failures, "; "))
	}
	return nil
}

func (m *Main) printBench(w io.Writer, rep *bench.Report, jsonOut bool) error {
	if jsonOut {
		return m.printJSON(rep)
	}
	return rep.WriteTable(w)
}
