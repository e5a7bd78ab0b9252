package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
)

// bulkFileSize is the size of one file of row 9's change: small, so the
// whole change travels inline in one event (design record 0009).
const bulkFileSize = 200

// bulkWarmups is how many changes (and raw publishes) of each server row 9
// makes before it starts the clock.
const bulkWarmups = 3

// runBulk is row 9: one change of BulkFiles small files as one fs.batch
// through the service (what a working copy's push of small files sends),
// against raw publishing of the same bytes: one JetStream publish, with a
// per-subject expectation, of a message holding all the files' content.
// Both figures are bytes of file content per second; a repetition writes
// new content to the same paths of one session.
//
// The servers take turns, a change and a raw publish on each per
// repetition, so that what the process goes through meanwhile (its heap
// growing to its working size, page faults and collections with it) falls
// on both alike: measured one server after the other, whichever came first
// took 1.3-2x as long per change (the first server's changes, not its
// fsyncs, were the gap between the two rows).
func runBulk(ctx context.Context, r *Runner) ([]Result, error) {
	envs := r.servers()
	cases := make([]*bulkCase, len(envs))
	for i, e := range envs {
		if _, _, err := r.ensureBenchStream(ctx, e, kindRaw); err != nil {
			return nil, err
		}
		c, err := r.newBulkCase(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name, err)
		}
		if c.floor, err = r.startFloor(e); err != nil {
			return nil, fmt.Errorf("%s: the floor service: %w", e.Name, err)
		}
		defer c.floor.stop()
		cases[i] = c
	}
	for rep := 0; rep < bulkWarmups+r.Sizes.BulkReps; rep++ {
		for _, c := range cases {
			if err := c.round(ctx, rep, rep >= bulkWarmups); err != nil {
				return nil, fmt.Errorf("%s: %w", c.env.Name, err)
			}
		}
	}
	var out []Result
	for _, c := range cases {
		res, fl := c.result()
		out = append(out, res, fl)
		r.progressf("  %s bulk: strand %.2f ms, floor %.2f ms, raw %.2f ms, ratio %.2f", c.env.Name, res.Strand.P50Ms, fl.Raw.P50Ms, res.Raw.P50Ms, res.Ratio)
	}
	return out, nil
}

// bulkCase is row 9 on one server: a session, a raw subject, the floor
// service (floor.go) and its key, the times.
type bulkCase struct {
	env              *Env
	files            int
	session          string
	subject          string
	last             uint64
	floor            *floorService
	key              string
	sLat, fLat, rLat []time.Duration
}

func (r *Runner) newBulkCase(ctx context.Context, e *Env) (*bulkCase, error) {
	s, err := e.Client.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		return nil, err
	}
	_, prefix := r.benchStream(kindRaw)
	return &bulkCase{env: e, files: r.Sizes.BulkFiles, session: s.Session.ID,
		subject: fmt.Sprintf("%sbulk-%d", prefix, time.Now().UnixNano()), key: fmt.Sprintf("bulk-%d", time.Now().UnixNano())}, nil
}

// round makes one change through the service, one write of the same bytes
// through the floor service and one raw publish of them (new content for
// the same paths each repetition), and keeps their times when timed.
func (c *bulkCase) round(ctx context.Context, rep int, timed bool) error {
	ops := make([]client.BatchOp, c.files)
	var all []byte
	for i := range ops {
		content := sourceLike(uint64(rep)<<32|uint64(i), bulkFileSize)
		ops[i] = client.BatchOp{Op: "write", Path: filePath(i), Content: content}
		all = append(all, content...)
	}
	e := c.env
	ds, err := clock(func() error {
		_, err := e.Client.Batch(ctx, client.BatchRequest{Session: c.session, Ops: ops})
		return err
	})
	if err != nil {
		return fmt.Errorf("batch of %d files: %w", c.files, err)
	}
	df, err := clock(func() error { return c.floor.write(ctx, e.ClientNC, c.key, all) })
	if err != nil {
		return fmt.Errorf("the floor service: %w", err)
	}
	dr, err := clock(func() error {
		m := nats.NewMsg(c.subject)
		m.Data = all
		ack, err := e.JS.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(c.last))
		if err == nil {
			c.last = ack.Sequence
		}
		return err
	})
	if err != nil {
		return err
	}
	if timed {
		c.sLat, c.fLat, c.rLat = append(c.sLat, ds), append(c.fLat, df), append(c.rLat, dr)
	}
	return nil
}

// result is the row's line and the line of Strand against the floor.
func (c *bulkCase) result() (Result, Result) {
	total := int64(c.files * bulkFileSize)
	perSec := func(ds []time.Duration) Figure {
		f := latencyFigure(ds)
		return Figure{Value: float64(total) / (f.Value / 1000), Unit: "B/s", P50Ms: f.P50Ms, P99Ms: f.P99Ms, Samples: f.Samples}
	}
	res := Result{
		Case: fmt.Sprintf("one change of %d files of %d bytes", c.files, bulkFileSize), Server: c.env.Name,
		Strand:  perSec(c.sLat),
		Raw:     ptr(perSec(c.rLat)),
		RawWhat: "one JetStream publish of the same bytes, expected last subject sequence",
	}
	res.Ratio = ratio(res.Strand.Value, res.Raw.Value)
	res.Target = atLeast(res.Ratio, 0.5, "throughput in bytes strand/raw")
	res.Note = fmt.Sprintf("median change %.2f ms, raw publish %.2f ms; the servers take turns, %d changes each before the clock starts",
		res.Strand.P50Ms, res.Raw.P50Ms, bulkWarmups)
	fl := Result{
		Case: res.Case + ", against the floor", Server: c.env.Name,
		Strand:  res.Strand,
		Raw:     ptr(perSec(c.fLat)),
		RawWhat: "the floor: the same bytes as one request to a service that appends its body as it came (expecting its subject's last sequence) and answers",
	}
	fl.Ratio = ratio(fl.Strand.Value, fl.Raw.Value)
	fl.Note = fmt.Sprintf("floor/raw %.2f: what strand/raw could reach if the service's own work cost nothing; median floor write %.2f ms",
		ratio(fl.Raw.Value, res.Raw.Value), fl.Raw.P50Ms)
	return res, fl
}

func ptr[T any](v T) *T { return &v }
