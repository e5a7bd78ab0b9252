package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/bench"
)

// TestRun runs every row with tiny sizes, so the suite keeps working as the
// code under it changes. The figures mean nothing; that every row measures
// and reports does.
func TestRun(t *testing.T) {
	// Generous: on a busy 2-core machine (load 30 and more) the tiny rows,
	// each on two fresh servers, took 100-125 s with -race.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sizes := bench.TinySizes()
	var progress bytes.Buffer
	var rows []string
	if _, err := os.Stat("/dev/fuse"); err != nil && os.Getenv("STRAND_REQUIRE_FUSE") == "" {
		// Row 12 mounts a session: without FUSE, every other row.
		t.Logf("no /dev/fuse (%v): row 12 (mount) not run", err)
		for _, row := range bench.Rows() {
			if row.Name != "mount" {
				rows = append(rows, row.Name)
			}
		}
	}
	// KeepEntries: the kernel's entries are the whole machine's, and the
	// mount tests of other packages, running meanwhile, count on theirs
	// (TestDropEntries checks the drop, in a CI step of its own).
	rep, err := bench.Run(ctx, bench.Options{Sizes: &sizes, Dir: t.TempDir(), Progress: &progress, Rows: rows, KeepEntries: true})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(rep.Failures) > 0 {
		t.Fatalf("failures: %v\n%s", rep.Failures, progress.String())
	}
	got := map[int]int{}
	for _, r := range rep.Results {
		got[r.Row]++
		if r.Strand.Value < 0 || r.Strand.Unit == "" {
			t.Errorf("row %d %s: strand figure %+v", r.Row, r.Case, r.Strand)
		}
		if r.Raw != nil && r.Raw.Value <= 0 {
			t.Errorf("row %d %s: raw figure %+v", r.Row, r.Case, *r.Raw)
		}
	}
	for _, row := range bench.Rows() {
		if got[row.N] == 0 && (rows == nil || row.Name != "mount") {
			t.Errorf("row %d %s: no results", row.N, row.Name)
		}
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		t.Logf("progress:\n%s\ntable:\n%s", progress.String(), table.String())
	}
	// The nanosecond build budget ends the 600-event parent at its first
	// snapshot boundary, and the row says so.
	if !strings.Contains(table.String(), "500 vs 10 parent events") {
		t.Errorf("fork row does not name the size the budget reached:\n%s", table.String())
	}
	coldWalks := 0
	for _, r := range rep.Results {
		// With the kernel's entries left alone the row says that its
		// native cold walk was mostly a warm one.
		if r.Row == 12 && strings.HasPrefix(r.Case, "walk, cold, generated") {
			coldWalks++
			if !strings.Contains(r.RawWhat, "entries stay cached") || !strings.Contains(r.Note, "left alone, as asked") {
				t.Errorf("row 12's cold walk with KeepEntries: native side %q, note %q", r.RawWhat, r.Note)
			}
		}
	}
	if rows == nil && coldWalks != 1 {
		t.Errorf("row 12: %d cold walks of the generated tree, want 1", coldWalks)
	}
	if rows == nil && !strings.Contains(table.String(), "against go-fuse's loopback") {
		t.Errorf("row 12 lacks its extract against go-fuse's loopback:\n%s", table.String())
	}
	if _, err := os.Stat("/dev/shm"); err == nil && rows == nil && !strings.Contains(table.String(), "against tmpfs") {
		t.Errorf("row 12 lacks its extract against tmpfs:\n%s", table.String())
	}
	floors := map[int]int{}
	for _, r := range rep.Results {
		if strings.HasSuffix(r.Case, "against the floor") {
			floors[r.Row]++
		}
	}
	if floors[1] != len(sizes.WriteClients)*2 || floors[9] != 2 {
		t.Errorf("rows 1 and 9 should measure each case against the floor service: %v lines", floors)
	}
	if !strings.Contains(table.String(), "7 storage") {
		t.Errorf("table lacks row 7:\n%s", table.String())
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatalf("json: %v", err)
	}
}

func TestSelectRows(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []int
		err  bool
	}{
		{nil, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, false},
		{[]string{"2", "fork", "r3"}, []int{2, 3}, false},
		{[]string{"storage", "1"}, []int{1, 7}, false},
		{[]string{"workcopy"}, []int{8}, false},
		{[]string{"bulk", "instances"}, []int{9, 10}, false},
		{[]string{"search"}, []int{11}, false},
		{[]string{"mount", "12"}, []int{12}, false},
		{[]string{"past"}, []int{13}, false},
		{[]string{"14"}, nil, true},
	} {
		got, err := bench.SelectRows(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("SelectRows(%q): error %v, want error %v", tc.in, err, tc.err)
			continue
		}
		var ns []int
		for _, r := range got {
			ns = append(ns, r.N)
		}
		if !tc.err && !equal(ns, tc.want) {
			t.Errorf("SelectRows(%q) = %v, want %v", tc.in, ns, tc.want)
		}
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
