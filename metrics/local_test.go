package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/strand-dev/strand/metrics"
)

func TestMountCollector(t *testing.T) {
	f := metrics.MountFigures{Position: 42, Pending: 3, Conflicts: 1, Flushes: 7, LastFlush: time.Unix(1700000000, 0),
		CacheHits: 10, CacheMisses: 4, FetchedBytes: 4096, CacheBytes: 8192, CacheMaxBytes: 1 << 30}
	c := metrics.NewMountCollector("01S", "acme", func() metrics.MountFigures { return f })
	want := `
# HELP strand_mount_cache_hits_total Content reads answered by the local cache or memory.
# TYPE strand_mount_cache_hits_total counter
strand_mount_cache_hits_total{session="01S",tenant="acme"} 10
# HELP strand_mount_cache_misses_total Content reads that fetched from the service.
# TYPE strand_mount_cache_misses_total counter
strand_mount_cache_misses_total{session="01S",tenant="acme"} 4
# HELP strand_mount_journal_pending Local changes in the journal that the service has not acknowledged yet.
# TYPE strand_mount_journal_pending gauge
strand_mount_journal_pending{session="01S",tenant="acme"} 3
# HELP strand_mount_flushes_total Flushes of the journal to the service.
# TYPE strand_mount_flushes_total counter
strand_mount_flushes_total{session="01S",tenant="acme"} 7
# HELP strand_mount_conflicts Local changes the service refused (the path changed meanwhile) that wait for strand mount --resolve.
# TYPE strand_mount_conflicts gauge
strand_mount_conflicts{session="01S",tenant="acme"} 1
# HELP strand_mount_last_flush_timestamp_seconds When the last flush ended (0: none yet).
# TYPE strand_mount_last_flush_timestamp_seconds gauge
strand_mount_last_flush_timestamp_seconds{session="01S",tenant="acme"} 1.7e+09
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "strand_mount_cache_hits_total", "strand_mount_cache_misses_total",
		"strand_mount_journal_pending", "strand_mount_flushes_total", "strand_mount_conflicts", "strand_mount_last_flush_timestamp_seconds"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c); n != 10 {
		t.Errorf("%d mount metrics, want 10", n)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

func TestWorkcopyCollector(t *testing.T) {
	f := metrics.WorkcopyFigures{Checkouts: 2, CheckoutFiles: 5, CheckoutBytes: 33, Pushes: 1, PushBytes: 17,
		Failures: map[string]int64{"checkout": 1, "push": 0, "pull": 0}}
	c := metrics.NewWorkcopyCollector(func() metrics.WorkcopyFigures { return f })
	want := `
# HELP strand_workcopy_checkout_bytes_total Bytes of content the checkouts wrote.
# TYPE strand_workcopy_checkout_bytes_total counter
strand_workcopy_checkout_bytes_total 33
# HELP strand_workcopy_failures_total Working-copy operations that failed, by operation.
# TYPE strand_workcopy_failures_total counter
strand_workcopy_failures_total{op="checkout"} 1
strand_workcopy_failures_total{op="pull"} 0
strand_workcopy_failures_total{op="push"} 0
# HELP strand_workcopy_push_bytes_total Bytes of content of the files the pushes wrote.
# TYPE strand_workcopy_push_bytes_total counter
strand_workcopy_push_bytes_total 17
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "strand_workcopy_checkout_bytes_total",
		"strand_workcopy_failures_total", "strand_workcopy_push_bytes_total"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}
