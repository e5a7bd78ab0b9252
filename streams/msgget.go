package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errNoMessage is returned by leaderGet when the stream has no such message.
var errNoMessage = errors.New("no message found")

// JetStream API error codes Strand acts on.
const (
	jsErrNoMessage             = 10037
	jsErrWrongLastSequence     = 10071
	jsErrWrongLastSequenceWait = 10164
	jsErrDuplicateInProcess    = 10158
)

// StoredMsg is one message read back from a stream.
type StoredMsg struct {
	Subject  string
	Sequence uint64
	Header   nats.Header
	Data     []byte
	Time     time.Time
}

type apiMsgGetResponse struct {
	Message *struct {
		Subject string    `json:"subject"`
		Seq     uint64    `json:"seq"`
		Header  []byte    `json:"hdrs,omitempty"`
		Data    []byte    `json:"data,omitempty"`
		Time    time.Time `json:"time"`
	} `json:"message,omitempty"`
	Error *jetstream.APIError `json:"error,omitempty"`
}

// leaderGet reads one message through the stream leader
// ($JS.API.STREAM.MSG.GET), never a direct get that a lagging follower may
// answer: reads that decide a write must see every acknowledged write.
func leaderGet(ctx context.Context, nc *nats.Conn, stream string, seq uint64, lastBySubject string) (*StoredMsg, error) {
	req := map[string]any{}
	if lastBySubject != "" {
		req["last_by_subj"] = lastBySubject
	} else {
		req["seq"] = seq
	}
	return leaderGetRequest(ctx, nc, stream, req)
}

// leaderGetRequest sends one $JS.API.STREAM.MSG.GET request (seq,
// last_by_subj, next_by_subj; a map or a struct of them) to the stream
// leader.
func leaderGetRequest(ctx context.Context, nc *nats.Conn, stream string, req any) (*StoredMsg, error) {
	body, _ := json.Marshal(req)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	var r apiMsgGetResponse
	err := retry(ctx, "read "+stream, func(ctx context.Context) error {
		resp, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, body)
		if err != nil {
			return fmt.Errorf("get message from %s: %w", stream, err)
		}
		r = apiMsgGetResponse{}
		if err := json.Unmarshal(resp.Data, &r); err != nil {
			return fmt.Errorf("get message from %s: bad reply: %w", stream, err)
		}
		if r.Error != nil && transient(r.Error) {
			return r.Error
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if r.Error != nil {
		if r.Error.ErrorCode == jsErrNoMessage {
			return nil, errNoMessage
		}
		return nil, fmt.Errorf("get message from %s: %w", stream, r.Error)
	}
	if r.Message == nil {
		return nil, errNoMessage
	}
	m := &StoredMsg{Subject: r.Message.Subject, Sequence: r.Message.Seq, Data: r.Message.Data, Time: r.Message.Time}
	if len(r.Message.Header) > 0 {
		h, err := decodeHeaders(r.Message.Header)
		if err != nil {
			return nil, fmt.Errorf("get message from %s: headers: %w", stream, err)
		}
		m.Header = h
	}
	return m, nil
}

// decodeHeaders parses the NATS/1.0 header block of a stored message.
func decodeHeaders(b []byte) (nats.Header, error) {
	h := nats.Header{}
	lines := splitLines(b)
	if len(lines) == 0 {
		return h, nil
	}
	for _, line := range lines[1:] {
		if line == "" {
			continue
		}
		i := indexByte(line, ':')
		if i < 0 {
			continue
		}
		k := line[:i]
		v := line[i+1:]
		for len(v) > 0 && v[0] == ' ' {
			v = v[1:]
		}
		h[k] = append(h[k], v)
	}
	return h, nil
}

func splitLines(b []byte) []string {
	var out []string
	start := 0
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' {
			out = append(out, string(b[start:i]))
			start = i + 2
			i++
		}
	}
	if start < len(b) {
		out = append(out, string(b[start:]))
	}
	return out
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func fromRaw(m *jetstream.RawStreamMsg) *StoredMsg {
	return &StoredMsg{Subject: m.Subject, Sequence: m.Sequence, Header: m.Header, Data: m.Data, Time: m.Time}
}

// errOtherStream is a direct get answered by another stream than the one
// asked (a mirror of it that answers direct gets).
var errOtherStream = errors.New("direct get answered by another stream")

// directGet reads one message with $JS.API.DIRECT.GET (seq, last_by_subj
// or next_by_subj, as leaderGetRequest), in one attempt bounded by
// attemptTimeout. Every replica of the stream may answer it, and a mirror
// with mirror_direct: only where the stream's one copy is the only
// responder does it see every acknowledged write (Store.eventGet). The
// message's headers are its own and the reply's Nats-* ones.
func directGet(ctx context.Context, nc *nats.Conn, stream string, req any) (*StoredMsg, error) {
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	resp, err := nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+stream, body)
	if err != nil {
		return nil, fmt.Errorf("direct get from %s: %w", stream, err)
	}
	return directReply(stream, resp)
}

// directReply reads a direct get's reply: the message, errNoMessage for a
// 404, any other status as an error.
func directReply(stream string, resp *nats.Msg) (*StoredMsg, error) {
	if status := resp.Header.Get(statusHeader); status != "" {
		if status == "404" {
			return nil, errNoMessage
		}
		return nil, fmt.Errorf("direct get from %s: status %s %s", stream, status, resp.Header.Get(descriptionHeader))
	}
	if from := resp.Header.Get(jetstream.StreamHeader); from != stream {
		return nil, fmt.Errorf("%w: %q, not %s", errOtherStream, from, stream)
	}
	seq, err := strconv.ParseUint(resp.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("direct get from %s: sequence %q", stream, resp.Header.Get(jetstream.SequenceHeader))
	}
	m := &StoredMsg{Subject: resp.Header.Get(jetstream.SubjectHeader), Sequence: seq, Header: resp.Header, Data: resp.Data}
	if ts := resp.Header.Get(jetstream.TimeStampHeaer); ts != "" {
		if m.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
			return nil, fmt.Errorf("direct get from %s: time %q", stream, ts)
		}
	}
	return m, nil
}
