package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
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
	_, prefix, err := r.ensureBenchStream(ctx, e, kindRaw)
	if err != nil {
		return nil, err
	}
	// Build every parent first, then measure them in turns, so that drift
	// in a busy machine hits every size alike.
	type parent struct {
		n                 int // events: fewer than asked when the build budget ran out
		id                string
		warm, cold, raw   []time.Duration
		rawFork, warmFork func() error
	}
	var parents []*parent
	for _, n := range r.Sizes.ForkEvents {
		r.progressf("  parent with %d events", n)
		b, err := r.session(ctx, e, historySpec{Files: min(forkFiles, (n-1)*domain.MaxBatchOps), Events: n, Budget: r.Sizes.ForkBuildBudget})
		if err != nil {
			return nil, err
		}
		if err := r.verify(ctx, e, b); err != nil {
			return nil, err
		}
		p := &parent{n: int(b.Head.Version), id: b.Head.ID}
		subject := names.EventSubject(r.Tenant, p.id)
		i := 0
		p.rawFork = func() error {
			i++
			if _, err := lastBySubject(ctx, e.ClientNC, names.EventStream, subject); err != nil {
				return err
			}
			m := nats.NewMsg(fmt.Sprintf("%sfork-%d-%d-%d", prefix, p.n, time.Now().UnixNano(), i))
			m.Data = make([]byte, 300)
			_, err := e.JS.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(0))
			return err
		}
		p.warmFork = func() error {
			_, err := e.Client.Fork(ctx, client.ForkRequest{Session: p.id})
			return err
		}
		// Warm up both paths (the first service fork loads the parent).
		if err := p.warmFork(); err != nil {
			return nil, err
		}
		if err := p.rawFork(); err != nil {
			return nil, err
		}
		parents = append(parents, p)
	}
	for k := 0; k < r.Sizes.ForkWarmReps; k++ {
		for _, p := range parents {
			d, err := clock(p.warmFork)
			if err != nil {
				return nil, err
			}
			p.warm = append(p.warm, d)
			if d, err = clock(p.rawFork); err != nil {
				return nil, err
			}
			p.raw = append(p.raw, d)
		}
	}
	for k := 0; k < r.Sizes.ForkColdReps; k++ {
		for _, p := range parents {
			st, err := streams.Open(ctx, e.NC, e.Config, nil)
			if err != nil {
				return nil, err
			}
			d, err := clock(func() error {
				_, err := st.Fork(ctx, r.Tenant, p.id, 0, r.meta(), domain.ForkSession{ID: r.ids.next(), Owner: "bench"})
				return err
			})
			st.Close()
			if err != nil {
				return nil, err
			}
			p.cold = append(p.cold, d)
		}
	}
	var out []Result
	rawWhat := "leader get of the parent's last message + publish to a new subject expecting it empty"
	type figs struct{ warm, cold, raw float64 }
	medians := make([]figs, len(parents))
	for i, p := range parents {
		rf, wf, cf := latencyFigure(p.raw), latencyFigure(p.warm), latencyFigure(p.cold)
		out = append(out,
			Result{Case: fmt.Sprintf("warm, parent %s events", count(p.n)), Server: e.Name, Strand: wf, Raw: &rf, RawWhat: rawWhat, Ratio: ratio(wf.Value, rf.Value)},
			Result{Case: fmt.Sprintf("cold, parent %s events", count(p.n)), Server: e.Name, Strand: cf, Raw: &rf, RawWhat: rawWhat, Ratio: ratio(cf.Value, rf.Value),
				Note: fmt.Sprintf("fresh store; snapshot every %d events", e.Config.SnapshotEvery)},
		)
		medians[i] = figs{wf.Value, cf.Value, rf.Value}
		r.progressf("  parent %d events: warm %.2f ms, cold %.2f ms, raw %.2f ms", p.n, wf.Value, cf.Value, rf.Value)
	}
	if len(parents) >= 2 {
		lo, hi := medians[0], medians[len(medians)-1]
		for _, kind := range []string{"cold", "warm"} {
			got, base := hi.cold, lo.cold
			if kind == "warm" {
				got, base = hi.warm, lo.warm
			}
			rr := ratio(got, base)
			out = append(out, Result{
				Case: fmt.Sprintf("%s: %s vs %s parent events", kind, count(parents[len(parents)-1].n), count(parents[0].n)), Server: e.Name,
				Strand:  Figure{Value: rr, Unit: "x", Samples: 2},
				Raw:     &Figure{Value: ratio(hi.raw, lo.raw), Unit: "x", Samples: 2},
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

// plural writes "1 client", "16 clients".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return count(n) + " " + what + "s"
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
