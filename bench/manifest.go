package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
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
	echo, stop, err := r.echoResponder(e)
	if err != nil {
		return nil, err
	}
	defer stop()
	var out []Result
	// The MessagePack reply (what the Go client asks for, read as a
	// ManifestPage) holds the targets; the JSON one is measured too, since
	// other languages use it.
	for _, enc := range []string{client.ManifestMsgpack, client.ManifestJSON} {
		res, err := r.manifestCases(ctx, e, b.Head, n, enc, echo)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// manifestCases measures the first page and the whole tree in one
// encoding, each against raw replies of the same sizes as that encoding's.
// MessagePack is read as Go callers read it (Client.ManifestPage: hashes
// as bytes), JSON as other languages' callers do (the reply as sent).
func (r *Runner) manifestCases(ctx context.Context, e *Env, head *domain.Session, n int, enc string, echo func(context.Context, int) error) ([]Result, error) {
	id := head.ID
	// list asks for a page; with measure it also says the reply's size.
	list := func(req client.ManifestRequest, measure bool) (entries int, next string, size int, err error) {
		req.Session, req.Encoding = id, enc
		if enc == client.ManifestJSON {
			p, err := e.Client.Manifest(ctx, req)
			if err != nil || !measure {
				return len(p.Entries), p.NextCursor, 0, err
			}
			return len(p.Entries), p.NextCursor, jsonSize(p), nil
		}
		p, err := e.Client.ManifestPage(ctx, req)
		if err != nil || !measure {
			return len(p.Entries), p.NextCursor, 0, err
		}
		size, err = msgpackSize(p)
		return len(p.Entries), p.NextCursor, size, err
	}
	// Sizes of the replies, to ask the responder for the same bytes.
	firstEntries, _, firstSize, err := list(client.ManifestRequest{}, true)
	if err != nil {
		return nil, err
	}
	// The largest page whose reply fits the server's max_payload (a listing
	// entry is about 130 bytes of JSON).
	limit := int(min(int64(client.MaxManifestLimit), e.NC.MaxPayload()/256))
	var pageSizes []int
	entries := 0
	whole := func(measure bool) error {
		cursor := ""
		at := client.AtPosition(head.Position)
		for pages := 0; pages < 10_000; pages++ {
			n, next, size, err := list(client.ManifestRequest{At: at, After: cursor, Limit: limit}, measure)
			if err != nil {
				return err
			}
			if measure {
				pageSizes = append(pageSizes, size)
				entries += n
			}
			if next == "" {
				return nil
			}
			cursor = next
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
	settle()
	for k := 0; k < r.Sizes.ManifestPageReps; k++ {
		d, err := clock(func() error {
			_, _, _, err := list(client.ManifestRequest{}, false)
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
	settle()
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
	page := Result{Case: fmt.Sprintf("first page (%d entries), %s", firstEntries, enc), Server: e.Name, Strand: pf, Raw: &prf, RawWhat: rawWhat, Ratio: ratio(pf.Value, prf.Value),
		Note: fmt.Sprintf("%s-file tree, %d KiB reply", count(n), firstSize>>10)}
	all := Result{Case: fmt.Sprintf("whole tree (%s entries, %d pages), %s", count(entries), len(pageSizes), enc), Server: e.Name, Strand: wf, Raw: &wrf, RawWhat: rawWhat, Ratio: ratio(wf.Value, wrf.Value),
		Note: fmt.Sprintf("pages of %d, %.1f MiB of %s", limit, float64(total)/(1<<20), enc)}
	if enc == client.ManifestMsgpack {
		page.Target = atMost(page.Ratio, 3, "first page Strand/raw", "x")
		all.Target = atMost(all.Ratio, 5, "whole tree Strand/raw", "x")
	}
	r.progressf("  %s: first page %.2f ms (raw %.2f), whole tree %.1f ms (raw %.1f)", enc, pf.Value, prf.Value, wf.Value, wrf.Value)
	return []Result{page, all}, nil
}

// msgpackSize is the size of a page's MessagePack reply: the same
// encoding the service sends.
func msgpackSize(p client.ManifestPage) (int, error) {
	var buf bytes.Buffer
	if err := client.EncodeManifest(&buf, p.Position, p.Root, p.NextCursor, p.Entries); err != nil {
		return 0, err
	}
	return buf.Len(), nil
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
