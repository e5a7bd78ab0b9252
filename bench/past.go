package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// runPast is row 13: reading one file of a 100,000-event session (row 3's
// history) at random past positions through the service, as an outside
// checker reading many past states does, next to reading a file at the
// head in the same run. The service starts with nothing of the session's
// past cached: the figure includes what it takes to get there. The raw
// figure is one get of the event at the position (what any read at a
// position costs at least: the service reads it to check the position
// belongs to the session).
func runPast(ctx context.Context, r *Runner) ([]Result, error) {
	e := r.Fast
	n := r.Sizes.LoadEvents
	b, err := r.session(ctx, e, historySpec{Files: forkFiles, Events: n})
	if err != nil {
		return nil, err
	}
	if err := r.verify(ctx, e, b); err != nil {
		return nil, err
	}
	events, err := e.JS.Stream(ctx, names.EventStream)
	if err != nil {
		return nil, err
	}
	id := b.Head.ID
	// Every file exists from the version after the batches that wrote them.
	first := 2 + (forkFiles+domain.MaxBatchOps-1)/domain.MaxBatchOps
	if first >= n {
		return nil, fmt.Errorf("a history of %d events is too short for row 13", n)
	}
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	heap0 := heap()
	cs0 := e.Store.CacheStats()
	rng := rand.New(rand.NewPCG(13, uint64(n)))
	var cold, past, head, raw []time.Duration
	for k := 0; k < 2*r.Sizes.PastReads; k++ {
		if k == r.Sizes.PastReads {
			cold, past = past, nil
		}
		pos := b.Positions[first+rng.IntN(n-first)-1]
		path := filePath(rng.IntN(forkFiles))
		d, err := clock(func() error {
			_, err := e.Client.Read(ctx, client.ReadRequest{Session: id, Path: path, At: client.At(strconv.FormatUint(pos, 10))})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read %s at %d: %w", path, pos, err)
		}
		past = append(past, d)
		d, err = clock(func() error {
			_, err := e.Client.Read(ctx, client.ReadRequest{Session: id, Path: path})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read %s at the head: %w", path, err)
		}
		head = append(head, d)
		d, err = clock(func() error {
			_, err := events.GetMsg(ctx, pos)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("get event %d: %w", pos, err)
		}
		raw = append(raw, d)
	}
	grown := float64(int64(heap()-heap0)) / (1 << 20)
	cs := e.Store.CacheStats()
	rf := latencyFigure(raw)
	cf, pf, hf := latencyFigure(cold), latencyFigure(past), latencyFigure(head)
	const rawWhat = "a get of the event at the position (JetStream message get)"
	note := fmt.Sprintf("two passes of %d reads each at positions drawn uniformly from %s events (snapshots every %d): the first starts with the service's caches empty of the session's past (its first read took %.1f ms), the second follows it; the process's heap grew by %.0f MiB over both (the service's past states and frames among it), from %.0f MiB; "+
		"the store's state caches (budget %.0f MiB of live heap) were trimmed %d times over both passes, %s entries dropped",
		len(past), count(n), e.Config.SnapshotEvery, ms(cold[0]), grown, float64(heap0)/(1<<20),
		float64(e.Config.StateMemory)/(1<<20), cs.Trims-cs0.Trims, count(int(cs.Dropped-cs0.Dropped)))
	out := []Result{
		{Case: "a file at a random past position, first pass", Server: e.Name, Strand: cf, Raw: &rf, RawWhat: rawWhat, Ratio: ratio(cf.Value, rf.Value), Note: note},
		{Case: "a file at a random past position, second pass", Server: e.Name, Strand: pf, Raw: &rf, RawWhat: rawWhat, Ratio: ratio(pf.Value, rf.Value), Note: note,
			Target: atMost(pf.P50Ms, 2, "past read p50", " ms")},
		{Case: "the same file at the head", Server: e.Name, Strand: hf, Raw: &rf, RawWhat: rawWhat, Ratio: ratio(hf.Value, rf.Value), Note: note},
	}
	r.progressf("  past read p50 %.2f ms (p99 %.1f) first pass, %.2f ms (p99 %.1f) second; head read p50 %.2f ms, event get p50 %.2f ms", cf.P50Ms, cf.P99Ms, pf.P50Ms, pf.P99Ms, hf.P50Ms, rf.P50Ms)
	return out, nil
}
