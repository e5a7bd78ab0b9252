package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strand-dev/strand/streams"
)

// registerCacheMetrics adds this instance's session-state caches to reg:
// what they hold, and how often the live heap over --state-memory made
// them give entries back (streams/memory.go).
func registerCacheMetrics(reg *prometheus.Registry, stats func() streams.CacheStats) error {
	gauge := func(name, help string, v func(streams.CacheStats) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(v(stats())) })
	}
	counter := func(name, help string, v func(streams.CacheStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v(stats())) })
	}
	for _, c := range []prometheus.Collector{
		gauge("strand_state_cache_heads", "Session heads cached by this instance.", func(s streams.CacheStats) int { return s.Heads }),
		gauge("strand_state_cache_past", "Session states at past positions cached by this instance.", func(s streams.CacheStats) int { return s.Past }),
		gauge("strand_state_cache_frame_sessions", "Sessions whose frames (every 16th state read) this instance keeps.", func(s streams.CacheStats) int { return s.Frames }),
		counter("strand_state_cache_trims_total", "Times the live heap exceeded --state-memory and the state caches gave back a quarter of their entries.", func(s streams.CacheStats) uint64 { return s.Trims }),
		gauge("strand_heap_live_bytes", "The live heap the last garbage collection found, which --state-memory bounds (with the caches' trims).", func(s streams.CacheStats) int { return int(s.LiveHeap) }),
		counter("strand_state_cache_dropped_total", "Cache entries given back by those trims.", func(s streams.CacheStats) uint64 { return s.Dropped }),
		counter("strand_state_cache_expired_total", "Cache entries dropped for being unused for --state-idle.", func(s streams.CacheStats) uint64 { return s.Expired }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
