package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/streams"
)

// forkFiles is the working set of the parents forked in row 2: every
// parent has the same tree, whatever its history's length.
const forkFiles = 1_000

// runFork is row 2: forking a parent with 1,000, 100,000 and 1,000,000
// events, warm (through the service, whose store has the parent's head
// cached) and cold (a fresh store that has nothing cached: the parent is
// loaded from its newest snapshot). The raw figure is the JetStream work
// a fork needs: read the last message of the parent's subject through the
// stream leader, and publish one message to a new subject with the
// expectation that it is empty.
func runFork(ctx context.Context, r *Runner) ([]Result, error) {
	e := r.Fast
	stream, prefix, err := r.ensureBenchStream(ctx, e, kindRaw)
	if err != nil {
		return nil, err
	}
	_ = stream
	var out []Result
	type pair struct{ warm, cold, raw float64 }
	figs := map[int]pair{}
	for _, n := range r.Sizes.ForkEvents {
		r.progressf("  parent with %d events", n)
		parent, err := r.session(ctx, e, historySpec{Files: min(forkFiles, (n-1)*domain.MaxBatchOps), Events: n})
		if err != nil {
			return out, err
		}
		if err := r.verify(ctx, e, parent); err != nil {
			return out, err
		}
		id := parent.Head.ID
		subject := streams.EventSubject(r.Tenant, id)
		i := 0
		rawFork := func() error {
			i++
			if _, err := lastBySubject(ctx, e.ClientNC, streams.EventStream, subject); err != nil {
				return err
			}
			m := nats.NewMsg(fmt.Sprintf("%sfork-%d-%d-%d", prefix, n, time.Now().UnixNano(), i))
			m.Data = make([]byte, 300)
			_, err := e.JS.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(0))
			return err
		}
		warmFork := func() error {
			_, err := e.Client.Fork(ctx, handlers.ForkRequest{Session: id})
			return err
		}
		// Warm up both paths (the first service fork loads the parent).
		if err := warmFork(); err != nil {
			return out, err
		}
		if err := rawFork(); err != nil {
			return out, err
		}
		var warm, raw []time.Duration
		for k := 0; k < r.Sizes.ForkWarmReps; k++ {
			d, err := clock(warmFork)
			if err != nil {
				return out, err
			}
			warm = append(warm, d)
			if d, err = clock(rawFork); err != nil {
				return out, err
			}
			raw = append(raw, d)
		}
		var cold []time.Duration
		for k := 0; k < r.Sizes.ForkColdReps; k++ {
			st, err := streams.Open(ctx, e.NC, e.Config, nil)
			if err != nil {
				return out, err
			}
			d, err := clock(func() error {
				_, err := st.Fork(ctx, r.Tenant, id, 0, r.meta(), domain.ForkSession{ID: r.ids.next(), Owner: "bench"})
				return err
			})
			st.Close()
			if err != nil {
				return out, err
			}
			cold = append(cold, d)
		}
		rawFig := latencyFigure(raw)
		rawWhat := "leader get of the parent's last message + publish to a new subject expecting it empty"
		wf, cf := latencyFigure(warm), latencyFigure(cold)
		out = append(out,
			Result{Case: fmt.Sprintf("warm, parent %s events", count(n)), Server: e.Name, Strand: wf, Raw: &rawFig, RawWhat: rawWhat, Ratio: ratio(wf.Value, rawFig.Value)},
			Result{Case: fmt.Sprintf("cold, parent %s events", count(n)), Server: e.Name, Strand: cf, Raw: &rawFig, RawWhat: rawWhat, Ratio: ratio(cf.Value, rawFig.Value),
				Note: fmt.Sprintf("fresh store; snapshot every %d events", e.Config.SnapshotEvery)},
		)
		figs[n] = pair{wf.Value, cf.Value, rawFig.Value}
		r.progressf("  parent %d events: warm %.2f ms, cold %.2f ms, raw %.2f ms", n, wf.Value, cf.Value, rawFig.Value)
	}
	sizes := r.Sizes.ForkEvents
	if len(sizes) >= 2 {
		lo, hi := sizes[0], sizes[len(sizes)-1]
		for _, kind := range []string{"cold", "warm"} {
			a, b := figs[hi], figs[lo]
			got, base := a.cold, b.cold
			if kind == "warm" {
				got, base = a.warm, b.warm
			}
			rr := ratio(got, base)
			out = append(out, Result{
				Case: fmt.Sprintf("%s: %s vs %s parent events", kind, count(hi), count(lo)), Server: e.Name,
				Strand:  Figure{Value: rr, Unit: "x", Samples: 2},
				Raw:     &Figure{Value: ratio(a.raw, b.raw), Unit: "x", Samples: 2},
				RawWhat: "the same ratio for the raw fork",
				Target:  atMost(rr, 1.5, "fork latency ratio", "x"),
			})
		}
	}
	return out, nil
}

// verify checks that the store rebuilds a built session to the state the
// builder computed (and warms the store's cache with it).
func (r *Runner) verify(ctx context.Context, e *Env, b *built) error {
	got, err := e.Store.Head(ctx, r.Tenant, b.Head.ID)
	if err != nil {
		return fmt.Errorf("load built session: %w", err)
	}
	if got.Position != b.Head.Position || got.Tree.Hash() != b.Head.Tree.Hash() {
		return fmt.Errorf("built session loads at %d with root %s, built at %d with root %s",
			got.Position, got.Tree.Hash(), b.Head.Position, b.Head.Tree.Hash())
	}
	return nil
}

// clock times fn.
func clock(fn func() error) (time.Duration, error) {
	t0 := time.Now()
	err := fn()
	return time.Since(t0), err
}

// count formats n with thousands separators.
func count(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// lastBySubject reads the last message of a subject through the stream
// leader ($JS.API.STREAM.MSG.GET), as the store does before a write.
func lastBySubject(ctx context.Context, nc *nats.Conn, stream, subject string) (uint64, error) {
	body, _ := json.Marshal(map[string]string{"last_by_subj": subject})
	resp, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, body)
	if err != nil {
		return 0, err
	}
	var r struct {
		Message *struct {
			Seq uint64 `json:"seq"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return 0, err
	}
	if r.Error != nil {
		return 0, r.Error
	}
	if r.Message == nil {
		return 0, fmt.Errorf("no message on %s", subject)
	}
	return r.Message.Seq, nil
}
