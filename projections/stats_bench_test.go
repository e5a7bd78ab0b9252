package projections

import (
	"context"
	"testing"
	"time"

	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// BenchmarkRebuild_StatsAgainstSessions folds the same history (2,000
// events of a random workload) from sequence 1 with the stats projection
// and with the session views, in the same run: the ratio is what the stats
// read model costs next to the views (ns/op is one whole rebuild).
//
//	go test ./projections -run '^$' -bench Rebuild_StatsAgainstSessions -benchtime 3x
func BenchmarkRebuild_StatsAgainstSessions(b *testing.B) {
	env := streamstest.Start(b)
	ctx := context.Background()
	w := newWorkload(b, env, "acme", 21)
	for w.n.Load() < 2000 {
		w.step(ctx)
	}
	js := env.Store.JetStream()
	stats, err := OpenStats(ctx, js, names.EventStream, names.EventFilter("*"), 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	views, err := OpenSessions(ctx, js, names.EventStream, names.EventFilter("*"), 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, spec := range []Spec{stats.Spec(), views.Spec()} {
		b.Run(spec.Name, func(b *testing.B) {
			r, err := StartRunner(ctx, js, names.EventStream, 1, spec, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Stop()
			b.ResetTimer()
			for range b.N {
				rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
				if _, err := Rebuild(rctx, js, names.EventStream, 1, spec, true, nil); err != nil {
					b.Fatal(err)
				}
				cancel()
			}
			b.ReportMetric(float64(w.n.Load())*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
