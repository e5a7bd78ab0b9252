package handlers_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// sendMsgpack sends body to an endpoint of tenant acme with the MessagePack
// Content-Type and returns the error code of the reply ("" when it
// succeeded).
func sendMsgpack(t *testing.T, h *harness, ep *client.Endpoint, body []byte) domain.Code {
	t.Helper()
	m := nats.NewMsg(ep.Subject("acme"))
	m.Header.Set("Content-Type", client.MsgpackContentType)
	m.Data = body
	resp, err := h.env.NC.RequestMsg(m, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", ep.Path(), err)
	}
	if resp.Header.Get(micro.ErrorCodeHeader) == "" {
		return ""
	}
	var eb client.ErrorBody
	if err := json.Unmarshal(resp.Data, &eb); err != nil {
		t.Fatalf("error body %q: %v", resp.Data, err)
	}
	return domain.Code(eb.Error.Code)
}

// TestMsgpackRequests_SameAsJSON writes, uploads and batches through the
// Go client, which sends MessagePack, and through one that sends JSON: the
// same changes give the same trees, inline and chunked content included,
// and the stored events hold the same operations.
func TestMsgpackRequests_SameAsJSON(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	jsonClient := client.NewClient(h.env.NC, "acme")
	jsonClient.JSONRequests = true
	var roots []string
	for _, c := range []*client.Client{h.c, jsonClient} {
		s, err := c.CreateSession(ctx, client.CreateSessionRequest{})
		if err != nil {
			t.Fatal(err)
		}
		id := s.Session.ID
		w, err := c.Write(ctx, client.WriteRequest{Session: id, Path: "a/b.txt", Content: []byte("hello\x00\xff"), Mode: 0o600,
			Mutation: client.Mutation{RequestID: "r1-" + id, Actor: "ann"}})
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		if w.Path != "a/b.txt" || w.Size != 7 || w.Hash != domain.Sum([]byte("hello\x00\xff")).String() {
			t.Errorf("write reply %+v", w)
		}
		big := make([]byte, domain.MaxInlineBytes+10) // a blob, stored before the event
		for i := range big {
			big[i] = byte(i)
		}
		if _, err := c.Batch(ctx, client.BatchRequest{Session: id, Mutation: client.Mutation{ExpectedPosition: w.Position}, Ops: []client.BatchOp{
			{Op: "write", Path: "c.bin", Content: big},
			{Op: "write", Path: "d.txt", Content: []byte("d"), ExpectedHash: domain.ExpectAbsent},
			{Op: "mkdir", Path: "e"},
			{Op: "symlink", Path: "l", Target: "d.txt"},
			{Op: "setxattr", Path: "d.txt", Name: "user.k", Value: []byte{0, 1, 2}},
			{Op: "rename", Path: "a/b.txt", To: "e/b.txt"},
		}}); err != nil {
			t.Fatalf("batch: %v", err)
		}
		// Larger than a chunk: uploaded in chunks (fs.upload) first.
		huge := make([]byte, 2*domain.DefaultChunkSize+100)
		for i := range huge {
			huge[i] = byte(i * 7)
		}
		if _, err := c.Write(ctx, client.WriteRequest{Session: id, Path: "f.bin", Content: huge}); err != nil {
			t.Fatalf("write of %d bytes: %v", len(huge), err)
		}
		if got := h.read(t, id, "f.bin", ""); got != string(huge) {
			t.Errorf("f.bin: %d bytes, want %d", len(got), len(huge))
		}
		if got := h.read(t, id, "e/b.txt", ""); got != "hello\x00\xff" {
			t.Errorf("e/b.txt = %q", got)
		}
		if got := h.read(t, id, "c.bin", ""); got != string(big) {
			t.Errorf("c.bin: %d bytes, want %d", len(got), len(big))
		}
		s2, err := c.GetSession(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, s2.Session.Root)
		ev, err := c.Events(ctx, client.EventsRequest{Session: id})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(ev.Events); n != 4 || ev.Events[1].Actor != "ann" {
			t.Errorf("events: %d, second by %q", n, ev.Events[1].Actor)
		}
	}
	if roots[0] != roots[1] {
		t.Errorf("MessagePack requests gave root %s, JSON requests %s", roots[0], roots[1])
	}
}

// TestBadInput_Msgpack sends malformed MessagePack bodies to fs.write and
// fs.batch, and a MessagePack body to endpoints that take JSON only: each
// answers invalid_argument and appends nothing.
func TestBadInput_Msgpack(t *testing.T) {
	t.Parallel()
	h := start(t)
	id := h.session(t)
	h.write(t, id, "a.txt", "hi")
	enc := func(v any) []byte {
		b, err := client.EncodeMsgpackRequest(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	raw := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	write := enc(client.WriteRequest{Session: id, Path: "b.txt", Content: []byte("b")})
	batch := enc(client.BatchRequest{Session: id, Ops: []client.BatchOp{{Op: "write", Path: "b.txt", Content: []byte("b")}}})
	// A map of session and a key whose value is an array header claiming
	// n entries, followed by body.
	claims := func(key string, n uint32, body []byte) []byte {
		b := append(raw(map[string]any{"session": id})[:1:1], raw(map[string]any{"session": id})[1:]...)
		b[0]++ // one more key
		b = append(b, raw(key)...)
		b = append(b, 0xdd, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		return append(b, body...)
	}
	nils := func(n int) []byte { return bytes.Repeat([]byte{0xc0}, n) }
	deep := append(bytes.Repeat([]byte{0x91}, 100), 0xc0)
	for _, tc := range []struct {
		name string
		ep   *client.Endpoint
		body []byte
	}{
		{"Empty", client.FSWrite, nil},
		{"JSON", client.FSWrite, []byte(`{"session":"` + id + `","path":"b.txt"}`)},
		{"Truncated", client.FSWrite, write[:len(write)-3]},
		{"Trailing", client.FSWrite, append(append([]byte{}, write...), 0xc0)},
		{"TwoMaps", client.FSWrite, append(append([]byte{}, write...), write...)},
		{"ArrayForm", client.FSWrite, raw([]any{id, "b.txt"})},
		{"Nil", client.FSWrite, raw(nil)},
		{"String", client.FSWrite, raw(id)},
		{"UnknownKey", client.FSWrite, raw(map[string]any{"session": id, "path": "b.txt", "bogus": 1})},
		{"KeyCase", client.FSWrite, raw(map[string]any{"Session": id, "path": "b.txt"})},
		{"WrongType", client.FSWrite, raw(map[string]any{"session": 5, "path": "b.txt"})},
		{"WrongTypeMode", client.FSWrite, raw(map[string]any{"session": id, "path": "b.txt", "mode": "rw"})},
		{"BadSession", client.FSWrite, raw(map[string]any{"session": "nope", "path": "b.txt"})},
		{"BatchOpsNotArray", client.FSBatch, raw(map[string]any{"session": id, "ops": "x"})},
		{"BatchUnknownOpKey", client.FSBatch, raw(map[string]any{"session": id, "ops": []any{map[string]any{"op": "mkdir", "path": "d", "x": 1}}})},
		{"BatchTrailing", client.FSBatch, append(append([]byte{}, batch...), 0x90)},
		{"JSONOnlyMkdir", client.FSMkdir, raw(map[string]any{"session": id, "path": "d"})},
		{"JSONOnlyRename", client.FSRename, raw(map[string]any{"session": id, "from": "a.txt", "to": "c.txt"})},
		{"UploadUnknownKey", client.FSUpload, raw(map[string]any{"session": id, "data": []byte("x"), "hash": "x"})},
		{"UploadDataNumber", client.FSUpload, raw(map[string]any{"session": id, "data": 7})},
	} {
		h.unchanged(t, tc.name, func() {
			if got := sendMsgpack(t, h, tc.ep, tc.body); got != domain.CodeInvalidArgument {
				t.Errorf("%s: %s answered %q, want invalid_argument", tc.name, tc.ep.Path(), got)
			}
		})
	}
	for _, tc := range []struct {
		name string
		ep   *client.Endpoint
		body []byte
		want domain.Code
	}{
		// Headers claiming more entries than the body holds: the library
		// would make the slice first (four billion operations of 192
		// bytes: the process died out of memory).
		{"ClaimedOps", client.FSBatch, claims("ops", 1<<32-1, nil), domain.CodeInvalidArgument},
		{"ClaimedOpsSome", client.FSBatch, claims("ops", 200_000_000, nils(1000)), domain.CodeInvalidArgument},
		{"ClaimedChunks", client.FSWrite, claims("chunks", 1<<32-1, nil), domain.CodeInvalidArgument},
		{"ClaimedMap", client.FSWrite, append(raw(map[string]any{"session": id})[:0:0], 0xdf, 0xff, 0xff, 0xff, 0xff), domain.CodeInvalidArgument},
		// As many entries as the body holds, but more than any request
		// needs: refused before anything is decoded.
		{"ManyOps", client.FSBatch, claims("ops", 70_000, nils(70_000)), domain.CodeTooLarge},
		{"ManyChunks", client.FSWrite, claims("chunks", 70_000, nils(70_000)), domain.CodeTooLarge},
		{"Deep", client.FSBatch, claims("ops", 1, deep), domain.CodeInvalidArgument},
	} {
		h.unchanged(t, tc.name, func() {
			if got := sendMsgpack(t, h, tc.ep, tc.body); got != tc.want {
				t.Errorf("%s: %s answered %q, want %s", tc.name, tc.ep.Path(), got, tc.want)
			}
		})
	}
	// The well-formed bodies the cases above were cut from are applied.
	for _, tc := range []struct {
		ep   *client.Endpoint
		body []byte
	}{{client.FSWrite, write}, {client.FSBatch, batch}} {
		if got := sendMsgpack(t, h, tc.ep, tc.body); got != "" {
			t.Errorf("well-formed %s: %s", tc.ep.Path(), got)
		}
	}
}

// TestBadInput_MsgpackTooLarge: the body limit holds for MessagePack as for
// JSON, and a batch of more than domain.MaxBatchOps operations is refused.
func TestBadInput_MsgpackTooLarge(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	h.unchanged(t, "too many operations", func() {
		ops := make([]client.BatchOp, domain.MaxBatchOps+1)
		for i := range ops {
			ops[i] = client.BatchOp{Op: "write", Path: fmt.Sprintf("f%d", i), Content: []byte("x")}
		}
		_, err := h.c.Batch(ctx, client.BatchRequest{Session: id, Ops: ops})
		wantCode(t, "batch of MaxBatchOps+1", err, domain.CodeTooLarge)
	})
	small := start(t, harnessOptions{service: handlers.Options{MaxRequestBytes: 1024}})
	sid := small.session(t)
	small.unchanged(t, "a body over MaxRequestBytes", func() {
		_, err := small.c.Write(ctx, client.WriteRequest{Session: sid, Path: "a", Content: make([]byte, 2048)})
		wantCode(t, "a 2 KiB MessagePack write with MaxRequestBytes 1024", err, domain.CodeTooLarge)
	})
}

// TestClient_MsgpackFallback: a service that predates MessagePack requests
// refuses one as not JSON before doing anything; the client sends the
// same request as JSON, and every later one too.
func TestClient_MsgpackFallback(t *testing.T) {
	t.Parallel()
	// A server of its own: the service of start would answer too.
	env := streamstest.Start(t, streamstest.Options{})
	ctx := t.Context()
	// An "old service" for tenant old, answering as handlers did before.
	types := oldService(t, env.NC, "write", func(m *nats.Msg, _ string) {
		if len(m.Data) == 0 || m.Data[0] != '{' {
			refuse(m, "request body must be a JSON object")
			return
		}
		_ = m.Respond([]byte(`{"session":"S","position":7,"root":"R"}`))
	})
	c := client.NewClient(env.NC, "old")
	for i := range 2 {
		r, err := c.Write(ctx, client.WriteRequest{Session: "S", Path: "a", Content: []byte("x")})
		if err != nil || r.Position != 7 {
			t.Fatalf("write %d to an old service: %+v, %v", i, r, err)
		}
	}
	if got, want := fmt.Sprint(types()), fmt.Sprint([]string{client.MsgpackContentType, "", ""}); got != want {
		t.Errorf("bodies sent: %q, want %q", got, want)
	}
}

// oldService answers tenant old's fs.<verb> with answer (given each
// request and its Content-Type), as a service from before would, on a
// server where no Strand service runs; it returns the Content-Types of
// the requests it took so far.
func oldService(t *testing.T, nc *nats.Conn, verb string, answer func(m *nats.Msg, contentType string)) func() []string {
	t.Helper()
	var mu sync.Mutex
	var types []string
	sub, err := nc.Subscribe(names.Subject("old", "fs", verb), func(m *nats.Msg) {
		ct := m.Header.Get("Content-Type")
		mu.Lock()
		types = append(types, ct)
		mu.Unlock()
		answer(m, ct)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(types)
	}
}

// TestClient_MsgpackFallbackPerEndpoint: a service from before fs.upload
// took MessagePack answers a MessagePack upload as "JSON only" while its
// fs.write takes MessagePack; the client sends that upload and every later
// one as JSON, and keeps sending writes as MessagePack.
func TestClient_MsgpackFallbackPerEndpoint(t *testing.T) {
	t.Parallel()
	env := streamstest.Start(t, streamstest.Options{})
	ctx := t.Context()
	uploads := oldService(t, env.NC, "upload", func(m *nats.Msg, ct string) {
		if ct == client.MsgpackContentType {
			refuse(m, "this endpoint takes a JSON body only")
			return
		}
		var req client.UploadRequest
		if err := json.Unmarshal(m.Data, &req); err != nil || string(req.Data) != "chunk" {
			refuse(m, "bad body")
			return
		}
		_ = m.Respond([]byte(`{"hash":"H","size":5}`))
	})
	writes := oldService(t, env.NC, "write", func(m *nats.Msg, _ string) {
		_ = m.Respond([]byte(`{"session":"S","position":7,"root":"R"}`))
	})
	c := client.NewClient(env.NC, "old")
	for i := range 2 {
		if r, err := c.Upload(ctx, "S", []byte("chunk")); err != nil || r.Hash != "H" {
			t.Fatalf("upload %d to an old service: %+v, %v", i, r, err)
		}
		if r, err := c.Write(ctx, client.WriteRequest{Session: "S", Path: "a", Content: []byte("x")}); err != nil || r.Position != 7 {
			t.Fatalf("write %d to an old service: %+v, %v", i, r, err)
		}
	}
	if got, want := fmt.Sprint(uploads()), fmt.Sprint([]string{client.MsgpackContentType, "", ""}); got != want {
		t.Errorf("upload bodies sent: %q, want %q", got, want)
	}
	if got, want := fmt.Sprint(writes()), fmt.Sprint([]string{client.MsgpackContentType, client.MsgpackContentType}); got != want {
		t.Errorf("write bodies sent: %q, want %q", got, want)
	}
}

// TestClient_WriteFrom: content streamed from a reader is written as Write
// writes it, whatever its size around the chunk size; a reader that fails
// midway writes nothing.
func TestClient_WriteFrom(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	chunk := h.c.ChunkSize
	for _, n := range []int{0, 1, chunk - 1, chunk, chunk + 1, 3*chunk + 5} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*31 + n)
		}
		p := fmt.Sprintf("f%d.bin", n)
		r, err := h.c.WriteFrom(ctx, client.WriteRequest{Session: id, Path: p}, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if r.Size != int64(n) || r.Hash != domain.Sum(data).String() {
			t.Errorf("%d bytes: reply %+v", n, r)
		}
		if got := h.read(t, id, p, ""); got != string(data) {
			t.Errorf("%d bytes: read back %d bytes that differ", n, len(got))
		}
	}
	before, err := h.c.GetSession(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	broken := io.MultiReader(bytes.NewReader(make([]byte, 2*chunk+10)), iotest.ErrReader(errors.New("disk gone")))
	if _, err := h.c.WriteFrom(ctx, client.WriteRequest{Session: id, Path: "broken.bin"}, broken); err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Errorf("a reader that fails: %v", err)
	}
	after, err := h.c.GetSession(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if after.Session.Position != before.Session.Position {
		t.Errorf("a failed WriteFrom moved the session from %d to %d", before.Session.Position, after.Session.Position)
	}
}

// refuse answers m as a service answers a request it refuses as
// invalid_argument.
func refuse(m *nats.Msg, message string) {
	r := nats.NewMsg(m.Reply)
	r.Header.Set(micro.ErrorCodeHeader, "400")
	r.Header.Set(micro.ErrorHeader, string(domain.CodeInvalidArgument))
	r.Data, _ = json.Marshal(map[string]any{"error": map[string]string{"code": string(domain.CodeInvalidArgument), "message": message}})
	_ = m.RespondMsg(r)
}
