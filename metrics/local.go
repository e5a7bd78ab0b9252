package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The figures of the parts that run on a user's machine rather than in the
// service: a mount (strand mount --metrics) and working copies (strand mcp
// --metrics, whose run_command checks out and pushes). Each is read once
// per scrape from a func that cmd/strand wires to the part's own figures,
// so this package depends on neither.

// MountFigures are one mount's figures (mount.Status).
type MountFigures struct {
	// Position is the session position the mount shows.
	Position uint64
	// Pending counts the changes in the journal not acknowledged by the
	// service yet; Conflicts the changes it refused that wait for a
	// resolve; Flushes the flushes done.
	Pending, Conflicts, Flushes int
	LastFlush                   time.Time
	// CacheHits and CacheMisses count the content reads the cache (or
	// memory) answered and those fetched from the service; FetchedBytes
	// the bytes fetched; CacheBytes and CacheMaxBytes the shared cache's
	// size and bound.
	CacheHits, CacheMisses, FetchedBytes, CacheBytes, CacheMaxBytes int64
}

// WorkcopyFigures are what a process's working copies did since it
// started (workcopy.ProcessFigures).
type WorkcopyFigures struct {
	Checkouts, CheckoutFiles, CheckoutBytes                       int64
	Pushes, PushChanges, PushBytes, ChunksUploaded, ChunksSkipped int64
	Pulls, PullUpdated, PullConflicts                             int64
	// Failures counts failed operations by operation name.
	Failures map[string]int64
}

// metric is one figure of a snapshot.
type metric[F any] struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	of   func(F) float64
}

// snapshotCollector reads a snapshot once per scrape and reports its
// figures.
type snapshotCollector[F any] struct {
	read    func() F
	metrics []metric[F]
	// labelled reports figures with one label (Failures by operation).
	labelled func(F, func(desc *prometheus.Desc, v float64, label string))
	extra    []*prometheus.Desc
}

func (c *snapshotCollector[F]) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
	for _, d := range c.extra {
		ch <- d
	}
}

func (c *snapshotCollector[F]) Collect(ch chan<- prometheus.Metric) {
	f := c.read()
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.of(f))
	}
	if c.labelled != nil {
		c.labelled(f, func(d *prometheus.Desc, v float64, label string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, label)
		})
	}
}

// NewMountCollector reports a mount's figures, labelled with its session
// and tenant.
func NewMountCollector(session, tenant string, read func() MountFigures) prometheus.Collector {
	labels := prometheus.Labels{"session": session, "tenant": tenant}
	m := func(name, help string, kind prometheus.ValueType, of func(MountFigures) float64) metric[MountFigures] {
		return metric[MountFigures]{prometheus.NewDesc("strand_mount_"+name, help, nil, labels), kind, of}
	}
	c, g := prometheus.CounterValue, prometheus.GaugeValue
	return &snapshotCollector[MountFigures]{read: read, metrics: []metric[MountFigures]{
		m("position", "The session position the mount shows.", g, func(f MountFigures) float64 { return float64(f.Position) }),
		m("journal_pending", "Local changes in the journal that the service has not acknowledged yet.", g, func(f MountFigures) float64 { return float64(f.Pending) }),
		m("conflicts", "Local changes the service refused (the path changed meanwhile) that wait for strand mount --resolve.", g, func(f MountFigures) float64 { return float64(f.Conflicts) }),
		m("flushes_total", "Flushes of the journal to the service.", c, func(f MountFigures) float64 { return float64(f.Flushes) }),
		m("last_flush_timestamp_seconds", "When the last flush ended (0: none yet).", g, func(f MountFigures) float64 {
			if f.LastFlush.IsZero() {
				return 0
			}
			return float64(f.LastFlush.UnixNano()) / 1e9
		}),
		m("cache_hits_total", "Content reads answered by the local cache or memory.", c, func(f MountFigures) float64 { return float64(f.CacheHits) }),
		m("cache_misses_total", "Content reads that fetched from the service.", c, func(f MountFigures) float64 { return float64(f.CacheMisses) }),
		m("fetched_bytes_total", "Bytes of content fetched from the service.", c, func(f MountFigures) float64 { return float64(f.FetchedBytes) }),
		m("cache_bytes", "Bytes the shared content cache holds (every mount and working copy of the machine).", g, func(f MountFigures) float64 { return float64(f.CacheBytes) }),
		m("cache_max_bytes", "The shared content cache's bound.", g, func(f MountFigures) float64 { return float64(f.CacheMaxBytes) }),
	}}
}

// NewWorkcopyCollector reports what a process's working copies did.
func NewWorkcopyCollector(read func() WorkcopyFigures) prometheus.Collector {
	m := func(name, help string, of func(WorkcopyFigures) float64) metric[WorkcopyFigures] {
		return metric[WorkcopyFigures]{prometheus.NewDesc("strand_workcopy_"+name, help, nil, nil), prometheus.CounterValue, of}
	}
	failures := prometheus.NewDesc("strand_workcopy_failures_total", "Working-copy operations that failed, by operation.", []string{"op"}, nil)
	return &snapshotCollector[WorkcopyFigures]{read: read, extra: []*prometheus.Desc{failures},
		metrics: []metric[WorkcopyFigures]{
			m("checkouts_total", "Checkouts made.", func(f WorkcopyFigures) float64 { return float64(f.Checkouts) }),
			m("checkout_files_total", "Files the checkouts wrote.", func(f WorkcopyFigures) float64 { return float64(f.CheckoutFiles) }),
			m("checkout_bytes_total", "Bytes of content the checkouts wrote.", func(f WorkcopyFigures) float64 { return float64(f.CheckoutBytes) }),
			m("pushes_total", "Pushes that succeeded (with nothing to push included).", func(f WorkcopyFigures) float64 { return float64(f.Pushes) }),
			m("push_changes_total", "Local changes the pushes sent.", func(f WorkcopyFigures) float64 { return float64(f.PushChanges) }),
			m("push_bytes_total", "Bytes of content of the files the pushes wrote.", func(f WorkcopyFigures) float64 { return float64(f.PushBytes) }),
			m("push_chunks_uploaded_total", "Chunks the pushes uploaded.", func(f WorkcopyFigures) float64 { return float64(f.ChunksUploaded) }),
			m("push_chunks_skipped_total", "Chunks the pushes did not upload: the service held them already.", func(f WorkcopyFigures) float64 { return float64(f.ChunksSkipped) }),
			m("pulls_total", "Pulls that succeeded.", func(f WorkcopyFigures) float64 { return float64(f.Pulls) }),
			m("pull_updated_total", "Paths the pulls took from the session or merged.", func(f WorkcopyFigures) float64 { return float64(f.PullUpdated) }),
			m("pull_conflicts_total", "Conflicts the pulls left in files.", func(f WorkcopyFigures) float64 { return float64(f.PullConflicts) }),
		},
		labelled: func(f WorkcopyFigures, emit func(*prometheus.Desc, float64, string)) {
			for op, n := range f.Failures {
				emit(failures, float64(n), op)
			}
		},
	}
}
