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

// runBulk is row 9: one change of BulkFiles small files as one fs.batch
// through the service (what a working copy's push of small files sends),
// against raw publishing of the same bytes: one JetStream publish, with a
// per-subject expectation, of a message holding all the files' content.
// Both figures are bytes of file content per second; a repetition writes
// new content to the same paths of one session.
func runBulk(ctx context.Context, r *Runner) ([]Result, error) {
	envs := r.servers()
	var out []Result
	for _, e := range envs {
		if _, _, err := r.ensureBenchStream(ctx, e, kindRaw); err != nil {
			return out, err
		}
		res, err := r.bulkCase(ctx, e)
		if err != nil {
			return out, fmt.Errorf("%s: %w", e.Name, err)
		}
		out = append(out, res)
	}
	return out, nil
}

func (r *Runner) bulkCase(ctx context.Context, e *Env) (Result, error) {
	n := r.Sizes.BulkFiles
	s, err := e.Client.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		return Result{}, err
	}
	_, prefix := r.benchStream(kindRaw)
	subject := fmt.Sprintf("%sbulk-%d", prefix, time.Now().UnixNano())
	var last uint64
	content := func(rep int) ([]client.BatchOp, []byte) {
		ops := make([]client.BatchOp, n)
		var all []byte
		for i := range ops {
			c := sourceLike(uint64(rep)<<32|uint64(i), bulkFileSize)
			ops[i] = client.BatchOp{Op: "write", Path: filePath(i), Content: c}
			all = append(all, c...)
		}
		return ops, all
	}
	var sLat, rLat []time.Duration
	total := int64(n * bulkFileSize)
	for rep := 0; rep <= r.Sizes.BulkReps; rep++ { // rep 0 warms up
		ops, all := content(rep)
		ds, err := clock(func() error {
			_, err := e.Client.Batch(ctx, client.BatchRequest{Session: s.Session.ID, Ops: ops})
			return err
		})
		if err != nil {
			return Result{}, fmt.Errorf("batch of %d files: %w", n, err)
		}
		dr, err := clock(func() error {
			m := nats.NewMsg(subject)
			m.Data = all
			ack, err := e.JS.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(last))
			if err == nil {
				last = ack.Sequence
			}
			return err
		})
		if err != nil {
			return Result{}, err
		}
		if rep > 0 {
			sLat, rLat = append(sLat, ds), append(rLat, dr)
		}
	}
	perSec := func(ds []time.Duration) Figure {
		f := latencyFigure(ds)
		return Figure{Value: float64(total) / (f.Value / 1000), Unit: "B/s", P50Ms: f.P50Ms, P99Ms: f.P99Ms, Samples: f.Samples}
	}
	res := Result{
		Case: fmt.Sprintf("one change of %d files of %d bytes", n, bulkFileSize), Server: e.Name,
		Strand:  perSec(sLat),
		Raw:     ptr(perSec(rLat)),
		RawWhat: "one JetStream publish of the same bytes, expected last subject sequence",
	}
	res.Ratio = ratio(res.Strand.Value, res.Raw.Value)
	res.Target = atLeast(res.Ratio, 0.5, "throughput in bytes strand/raw")
	res.Note = fmt.Sprintf("median change %.2f ms, raw publish %.2f ms", res.Strand.P50Ms, res.Raw.P50Ms)
	r.progressf("  %s bulk: strand %.2f ms, raw %.2f ms, ratio %.2f", e.Name, res.Strand.P50Ms, res.Raw.P50Ms, res.Ratio)
	return res, nil
}

func ptr[T any](v T) *T { return &v }
