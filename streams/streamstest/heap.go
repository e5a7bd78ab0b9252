package streamstest

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// LiveHeapDuring runs f and returns the live heap before it and the most
// it reached while f ran (sampled every 5 ms), for tests that check what
// an operation holds in memory. Collections run as often as GOGC=5 would
// make them meanwhile, so that the live heap the runtime reports (which
// counts what a cycle allocates as live) stays close to what is held.
func LiveHeapDuring(f func()) (before, peak uint64) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	live := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	gcPercent := debug.SetGCPercent(5)
	defer debug.SetGCPercent(gcPercent)
	runtime.GC()
	before = live()
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			peak = max(peak, live())
		}
	}()
	f()
	close(stop)
	<-sampled
	return before, max(peak, live())
}
