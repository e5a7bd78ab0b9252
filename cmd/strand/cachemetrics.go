package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strand-dev/strand/streams"
)

// registerCacheMetrics adds this instance's session-state caches to reg:
// what they hold, and how often the live heap over --state-memory made
// them give entries back (streams/memory.go).
func registerCacheMetrics(reg *prometheus.Registry, stats func() streams.CacheStats) error {
	gauge, counter := funcMetrics(stats)
	return register(reg,
		gauge("strand_state_cache_heads", "Session heads cached by this instance.", func(s streams.CacheStats) float64 { return float64(s.Heads) }),
		gauge("strand_state_cache_past", "Session states at past positions cached by this instance.", func(s streams.CacheStats) float64 { return float64(s.Past) }),
		gauge("strand_state_cache_frame_sessions", "Sessions whose frames (every 16th state read) this instance keeps.", func(s streams.CacheStats) float64 { return float64(s.Frames) }),
		counter("strand_state_cache_trims_total", "Times the live heap exceeded --state-memory and the state caches gave back a quarter of their entries.", func(s streams.CacheStats) float64 { return float64(s.Trims) }),
		gauge("strand_heap_live_bytes", "The live heap the last garbage collection found, which --state-memory bounds (with the caches' trims).", func(s streams.CacheStats) float64 { return float64(s.LiveHeap) }),
		counter("strand_state_cache_dropped_total", "Cache entries given back by those trims.", func(s streams.CacheStats) float64 { return float64(s.Dropped) }),
		counter("strand_state_cache_expired_total", "Cache entries dropped for being unused for --state-idle.", func(s streams.CacheStats) float64 { return float64(s.Expired) }),
	)
}

// registerAppendMetrics adds this instance's appends of events to a
// registry: how many, how many group commit stored together, and the
// races lost to other writers.
func registerAppendMetrics(reg *prometheus.Registry, stats func() streams.AppendStats) error {
	_, counter := funcMetrics(stats)
	return register(reg,
		counter("strand_events_appended_total", "Events this instance stored in the event stream.", func(s streams.AppendStats) float64 { return float64(s.Appended) }),
		counter("strand_group_commit_batches_total", "Atomic batches of events group commit stored (one sync each with fsync).", func(s streams.AppendStats) float64 { return float64(s.Batches) }),
		counter("strand_group_commit_events_total", "Events stored in those batches; the others went one publish each.", func(s streams.AppendStats) float64 { return float64(s.Batched) }),
		counter("strand_group_commit_refused_total", "Batches refused (a stale expectation, a timeout) whose events were published again one by one.", func(s streams.AppendStats) float64 { return float64(s.Refused) }),
		counter("strand_append_races_lost_total", "Appends refused because another writer extended the session first (each catches up and decides again).", func(s streams.AppendStats) float64 { return float64(s.RacesLost) }),
		counter("strand_append_races_followed_total", "Writes decided on a cached head that the live tail had brought up to date, instead of losing a race.", func(s streams.AppendStats) float64 { return float64(s.RacesFollowed) }),
	)
}

// registerBlobBatchMetrics adds the atomic batches in which this instance
// stored the contents of a change (streams.Blobs.PutMany).
func registerBlobBatchMetrics(reg *prometheus.Registry, stats func() streams.BlobBatchStats) error {
	_, counter := funcMetrics(stats)
	return register(reg,
		counter("strand_blob_batches_total", "Atomic batches of content (blobs of one change) stored: one sync each with fsync. 0 where group commit is off.", func(s streams.BlobBatchStats) float64 { return float64(s.Batches) }),
		counter("strand_blob_batched_total", "Blobs stored in those batches.", func(s streams.BlobBatchStats) float64 { return float64(s.Blobs) }),
		counter("strand_blob_batches_refused_total", "Batches of content refused (some of it stored already, a timeout) whose blobs then went one by one.", func(s streams.BlobBatchStats) float64 { return float64(s.Refused) }),
	)
}

// metricFunc makes a metric read from a snapshot of T at each scrape.
type metricFunc[T any] func(name, help string, v func(T) float64) prometheus.Collector

// funcMetrics returns the makers of gauges and counters read from stats.
func funcMetrics[T any](stats func() T) (gauge, counter metricFunc[T]) {
	gauge = func(name, help string, v func(T) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return v(stats()) })
	}
	counter = func(name, help string, v func(T) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return v(stats()) })
	}
	return gauge, counter
}

// register adds collectors to reg, stopping at the first refused.
func register(reg *prometheus.Registry, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
