package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/strand-dev/strand/client"
)

// searchPattern matches the header line of about one file in a hundred of
// a bench tree ("// seed 1277"); grep -E and Go's RE2 read it the same way.
const searchPattern = `seed [0-9]*77$`

// searchLiteral is on every line but the first three of file 127 of a
// bench tree (and of no other file).
const searchLiteral = "compute(127)"

// runSearch is row 11: fs.search of a regular expression over a tree of
// SearchFiles source-like files (all pages, pinned to the head), against
// `grep -rn -E` over the same files written to local disk, in the same
// run. Both are warm: grep reads from the page cache (the files were just
// written), the service from its blob cache (filled by the first, cold,
// search, which is reported on its own line with no target). The two must
// find the same lines.
func runSearch(ctx context.Context, r *Runner) ([]Result, error) {
	e := r.Fast
	sz := r.Sizes
	grep, err := exec.LookPath("grep")
	if err != nil {
		return nil, fmt.Errorf("row 11 compares with grep: %w", err)
	}
	size := func(i int) int {
		span := uint64(max(sz.StorageMaxSize-sz.StorageMinSize, 1))
		return sz.StorageMinSize + int((uint64(i)*2654435761)%span)
	}
	content := func(i int) []byte { return sourceLike(uint64(i), size(i)) }
	b, err := r.build(ctx, e, historySpec{Files: sz.SearchFiles, Events: minEvents(sz.SearchFiles), Content: content})
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(r.Opts.Dir, "strand-search-")
	if err != nil {
		return nil, fmt.Errorf("temporary folder: %w", err)
	}
	defer os.RemoveAll(dir)
	var total int64
	for i := range sz.SearchFiles {
		p := filepath.Join(dir, filepath.FromSlash(filePath(i)))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		data := content(i)
		total += int64(len(data))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
	}

	var out []Result
	for _, c := range []searchCase{{"regexp", searchPattern, false, true}, {"literal", searchLiteral, true, false}} {
		res, err := r.searchCase(ctx, e, b, dir, grep, c)
		if err != nil {
			return nil, err
		}
		for i := range res {
			res[i].Note = fmt.Sprintf("%s files, %.1f MiB; ", count(sz.SearchFiles), float64(total)/(1<<20)) + res[i].Note
		}
		out = append(out, res...)
	}
	return out, nil
}

// searchCase is one pattern row 11 measures.
type searchCase struct {
	name, pattern string
	literal, cold bool
}

func (r *Runner) searchCase(ctx context.Context, e *Env, b *built, dir, grep string, c searchCase) ([]Result, error) {
	sz := r.Sizes
	search := func() (int, error) {
		req := client.SearchRequest{Session: b.Head.ID, At: client.AtPosition(b.Head.Position), Pattern: c.pattern, Literal: c.literal, Limit: client.MaxSearchLimit}
		n := 0
		for pages := 0; pages < 10_000; pages++ {
			rep, err := e.Client.Search(ctx, req)
			if err != nil {
				return 0, err
			}
			n += rep.Matches
			if rep.NextCursor == "" {
				return n, nil
			}
			req.Cursor = rep.NextCursor
		}
		return 0, fmt.Errorf("search of %s did not end", b.Head.ID)
	}
	var grepOut bytes.Buffer
	runGrep := func() error {
		grepOut.Reset()
		flag := "-E"
		if c.literal {
			flag = "-F"
		}
		cmd := exec.CommandContext(ctx, grep, "-rn", flag, c.pattern, ".")
		cmd.Dir, cmd.Stdout = dir, &grepOut
		return cmd.Run()
	}

	var found int
	cold, err := clock(func() (err error) { found, err = search(); return err })
	if err != nil {
		return nil, err
	}
	if err := runGrep(); err != nil {
		return nil, fmt.Errorf("grep: %w", err)
	}
	if lines := bytes.Count(grepOut.Bytes(), []byte{'\n'}); lines != found {
		return nil, fmt.Errorf("search found %d lines, grep %d", found, lines)
	}
	var sd, gd []time.Duration
	for range sz.SearchReps {
		d, err := clock(func() error { _, err := search(); return err })
		if err != nil {
			return nil, err
		}
		sd = append(sd, d)
		if d, err = clock(runGrep); err != nil {
			return nil, fmt.Errorf("grep: %w", err)
		}
		gd = append(gd, d)
	}
	sf, gf := latencyFigure(sd), latencyFigure(gd)
	cf := latencyFigure([]time.Duration{cold})
	rawWhat := "grep -rn over the same files on local disk (page cache warm)"
	out := []Result{
		{Case: fmt.Sprintf("%s over %s files, warm", c.name, count(sz.SearchFiles)), Server: e.Name, Strand: sf, Raw: &gf, RawWhat: rawWhat,
			Ratio: ratio(sf.Value, gf.Value), Target: atMost(ratio(sf.Value, gf.Value), 2, "search / grep", "x"),
			Note: fmt.Sprintf("%q, %d matching lines", c.pattern, found)},
	}
	if c.cold {
		out = append(out, Result{Case: fmt.Sprintf("%s over %s files, cold (first search)", c.name, count(sz.SearchFiles)), Server: e.Name, Strand: cf, Raw: &gf, RawWhat: rawWhat,
			Ratio: ratio(cf.Value, gf.Value), Note: "blob cache empty: every file read from the blob stream"})
	}
	r.progressf("  %s: search warm %.1f ms, first %.1f ms; grep %.1f ms", c.name, sf.Value, cf.Value, gf.Value)
	return out, nil
}
