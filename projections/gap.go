package projections

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A projection whose entry (a session's view, a session's figures) is
// folded strictly in the session's event order fills a gap itself: when an
// event arrives before its predecessors (another instance holds them, they
// were handed back, a leader change redelivered them late), it reads the
// missing events of the session's subject from the stream leader and folds
// them first. Waiting for their redelivery instead (ErrGap, a Nak with a
// delay) does not converge under load: with two instances sharing the
// consumer, a busy session's events keep arriving out of order, and a view
// that advances one event per redelivery delay falls further behind its
// session with every write (measured in TestFault_BackgroundWorkThroughFailover:
// views advancing 0.8 events/s against 6 writes/s, 436-4,470 events held).

// maxGapFill bounds the events one apply reads to fill a gap; a longer gap
// is filled over several deliveries (each folds and writes what it read).
const maxGapFill = 1024

// fillGap returns the events to fold, in order, into an entry that holds
// its session up to version have (stream sequence applied), for d
// (numbered version) to follow on: the session's events between the two,
// read from the stream, then d itself; without d when the gap is longer
// than one read (the events that follow on, to fold now); none when the
// stream does not hold them yet. what names the entry in the log.
func fillGap(ctx context.Context, js jetstream.JetStream, stream string, log *slog.Logger, what string, applied, have uint64, d Delivery, version uint64) ([]Delivery, error) {
	ds, err := missing(ctx, js, stream, d.Subject, applied, d.Seq, maxGapFill, d.Gen)
	if err != nil {
		return nil, err
	}
	ds = ds[:following(ds, have, deliveryVersion)]
	if uint64(len(ds)) == version-have-1 {
		ds = append(ds, d)
	}
	log.Debug(what+": gap filled from the stream", "subject", d.Subject, "from", have, "to", version, "read", len(ds))
	return ds, nil
}

// missing reads the events of a subject stored after sequence after and
// before sequence before, in stream order, at most limit of them, from the
// stream leader (a follower could answer short). It returns them as
// deliveries of generation gen.
func missing(ctx context.Context, js jetstream.JetStream, stream, subject string, after, before uint64, limit int, gen uint64) ([]Delivery, error) {
	var out []Delivery
	for seq := after + 1; seq < before && len(out) < limit; {
		m, err := nextBySubject(ctx, js.Conn(), stream, subject, seq)
		if err != nil {
			return nil, err
		}
		if m == nil || m.Seq >= before {
			break
		}
		m.Gen, m.Delivered = gen, 1
		out = append(out, *m)
		seq = m.Seq + 1
	}
	return out, nil
}

// nextBySubject reads the first message of subject at or after seq through
// the stream leader ($JS.API.STREAM.MSG.GET with next_by_subj); nil when
// there is none.
func nextBySubject(ctx context.Context, nc *nats.Conn, stream, subject string, seq uint64) (*Delivery, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	body, _ := json.Marshal(map[string]any{"seq": seq, "next_by_subj": subject})
	resp, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, body)
	if err != nil {
		return nil, fmt.Errorf("read %s after %d: %w", subject, seq, err)
	}
	var r struct {
		Message *struct {
			Subject string `json:"subject"`
			Seq     uint64 `json:"seq"`
			Header  []byte `json:"hdrs,omitempty"`
			Data    []byte `json:"data,omitempty"`
		} `json:"message,omitempty"`
		Error *jetstream.APIError `json:"error,omitempty"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return nil, fmt.Errorf("read %s after %d: bad reply: %w", subject, seq, err)
	}
	if r.Error != nil {
		if r.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s after %d: %w", subject, seq, r.Error)
	}
	if r.Message == nil {
		return nil, nil
	}
	return &Delivery{Seq: r.Message.Seq, Subject: r.Message.Subject, Header: parseHeader(r.Message.Header), Data: r.Message.Data}, nil
}

// parseHeader decodes a stored message's header block ("NATS/1.0\r\n"
// then "Key: value" lines), keeping keys as they were written.
func parseHeader(b []byte) nats.Header {
	if len(b) == 0 {
		return nil
	}
	h := nats.Header{}
	lines := bytes.Split(b, []byte("\r\n"))
	for _, line := range lines[1:] {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(k) == 0 {
			continue
		}
		h[string(k)] = append(h[string(k)], string(bytes.TrimLeft(v, " ")))
	}
	return h
}

// following returns how many of ds, from the first, are numbered from+1,
// from+2, ... (each delivery's number as version gives it).
func following(ds []Delivery, from uint64, version func(Delivery) uint64) int {
	for i, d := range ds {
		if version(d) != from+1+uint64(i) {
			return i
		}
	}
	return len(ds)
}

// deliveryVersion is the number of a delivery's event in its session (0
// when it names none).
func deliveryVersion(d Delivery) uint64 {
	_, _, _, n, _ := headOf(d)
	return n
}
