package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
)

// runManifest is row 4: listing a 100,000-file tree through the service,
// its first page (the default page size) and the whole tree (pages of the
// largest size, pinned to the first page's position). The service has the
// session cached, as it has for a session in use. The raw figure is a core
// NATS request whose reply has the same size as each page (a responder on
// the service's connection that answers with bytes it has ready): the
// transport's floor for moving the same listing.
func runManifest(ctx context.Context, r *Runner) ([]Result, error) {
	e := r.Fast
	n := r.Sizes.ManifestFiles
	b, err := r.session(ctx, e, historySpec{Files: n, Events: minEvents(n)})
	if err != nil {
		return nil, err
	}
	if err := r.verify(ctx, e, b); err != nil {
		return nil, err
	}
	id := b.Head.ID
	echo, stop, err := r.echoResponder(e)
	if err != nil {
		return nil, err
	}
	defer stop()

	// Sizes of the replies, to ask the responder for the same bytes.
	first, err := e.Client.Manifest(ctx, client.ManifestRequest{Session: id})
	if err != nil {
		return nil, err
	}
	firstSize := jsonSize(first)
	// The largest page whose reply fits the server's max_payload (a listing
	// entry is about 130 bytes of JSON).
	limit := int(min(int64(client.MaxManifestLimit), e.NC.MaxPayload()/256))
	var pageSizes []int
	entries := 0
	whole := func(measure bool) error {
		cursor := ""
		at := client.AtPosition(b.Head.Position)
		for pages := 0; pages < 10_000; pages++ {
			p, err := e.Client.Manifest(ctx, client.ManifestRequest{Session: id, At: at, After: cursor, Limit: limit})
			if err != nil {
				return err
			}
			if measure {
				pageSizes = append(pageSizes, jsonSize(p))
				entries += len(p.Entries)
			}
			if p.NextCursor == "" {
				return nil
			}
			cursor = p.NextCursor
		}
		return fmt.Errorf("manifest of %s did not end", id)
	}
	if err := whole(true); err != nil {
		return nil, err
	}
	if want := n + (n+99)/100; entries != want {
		return nil, fmt.Errorf("manifest listed %d entries, want %d", entries, want)
	}

	var sPage, rPage, sWhole, rWhole []time.Duration
	for k := 0; k < r.Sizes.ManifestPageReps; k++ {
		d, err := clock(func() error {
			_, err := e.Client.Manifest(ctx, client.ManifestRequest{Session: id})
			return err
		})
		if err != nil {
			return nil, err
		}
		sPage = append(sPage, d)
		if d, err = clock(func() error { return echo(ctx, firstSize) }); err != nil {
			return nil, err
		}
		rPage = append(rPage, d)
	}
	for k := 0; k < r.Sizes.ManifestWholeReps; k++ {
		d, err := clock(func() error { return whole(false) })
		if err != nil {
			return nil, err
		}
		sWhole = append(sWhole, d)
		if d, err = clock(func() error {
			for _, size := range pageSizes {
				if err := echo(ctx, size); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return nil, err
		}
		rWhole = append(rWhole, d)
	}
	rawWhat := "core NATS request/reply of the same reply sizes"
	pf, prf := latencyFigure(sPage), latencyFigure(rPage)
	wf, wrf := latencyFigure(sWhole), latencyFigure(rWhole)
	total := 0
	for _, s := range pageSizes {
		total += s
	}
	out := []Result{
		{Case: fmt.Sprintf("first page (%d entries)", len(first.Entries)), Server: e.Name, Strand: pf, Raw: &prf, RawWhat: rawWhat, Ratio: ratio(pf.Value, prf.Value),
			Note: fmt.Sprintf("%s-file tree, %d KiB reply", count(n), firstSize>>10)},
		{Case: fmt.Sprintf("whole tree (%s entries, %d pages)", count(entries), len(pageSizes)), Server: e.Name, Strand: wf, Raw: &wrf, RawWhat: rawWhat, Ratio: ratio(wf.Value, wrf.Value),
			Note: fmt.Sprintf("pages of %d, %.1f MiB of JSON", limit, float64(total)/(1<<20))},
	}
	r.progressf("  first page %.2f ms (raw %.2f), whole tree %.1f ms (raw %.1f)", pf.Value, prf.Value, wf.Value, wrf.Value)
	return out, nil
}

func jsonSize(v any) int {
	b, _ := json.Marshal(v)
	return len(b)
}

// echoResponder answers requests on a subject of the bench's own, on the
// service's connection, with as many bytes as the request asks for.
func (r *Runner) echoResponder(e *Env) (func(ctx context.Context, size int) error, func(), error) {
	subject := "strandbench." + r.Tenant + ".echo"
	buf := make([]byte, e.NC.MaxPayload())
	for i := range buf {
		buf[i] = 'x'
	}
	sub, err := e.NC.Subscribe(subject, func(m *nats.Msg) {
		n, _ := strconv.Atoi(string(m.Data))
		_ = m.Respond(buf[:min(max(n, 0), len(buf))])
	})
	if err != nil {
		return nil, nil, err
	}
	if err := e.NC.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, nil, err
	}
	req := func(ctx context.Context, size int) error {
		resp, err := e.ClientNC.RequestWithContext(ctx, subject, []byte(strconv.Itoa(size)))
		if err != nil {
			return err
		}
		if len(resp.Data) != size {
			return fmt.Errorf("echo answered %d bytes, want %d", len(resp.Data), size)
		}
		return nil
	}
	return req, func() { _ = sub.Unsubscribe() }, nil
}
