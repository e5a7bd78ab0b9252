package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/strand-dev/strand/domain"
)

// MsgpackContentType is the Content-Type header of a MessagePack request
// body (endpoints with Endpoint.Msgpack) and of MessagePack replies.
const MsgpackContentType = "application/msgpack"

// EncodeMsgpackRequest returns the MessagePack form of a request body: a
// map with the JSON body's keys (empty fields left out, as in JSON), bytes
// as binary instead of base64 strings. JSON and base64 were the largest
// part of a bulk change's cost (docs/benchmarks.md, issue 16): decoding
// base64 JSON costs more per byte than storing the bytes.
func EncodeMsgpackRequest(v any) ([]byte, error) {
	var buf bytes.Buffer
	if b, ok := v.(BatchRequest); ok {
		// Grown once: content, paths and keys of every operation.
		n := 256
		for i := range b.Ops {
			n += len(b.Ops[i].Content) + len(b.Ops[i].Path) + len(b.Ops[i].Value) + 32
		}
		buf.Grow(n)
	}
	switch u := v.(type) {
	case UploadRequest:
		buf.Grow(len(u.Data) + len(u.Session) + 32)
	case SourceUploadRequest:
		buf.Grow(len(u.Data) + 32)
	}
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(&buf)
	enc.SetCustomStructTag("json")
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return buf.Bytes(), nil
}

// notJSONMessage is what a service that predates MessagePack requests
// answers to one (invalid_argument, nothing applied); jsonOnlyMessage what
// one answers for an endpoint that took JSON only in its version (fs.upload
// before 2026-12-07).
const (
	notJSONMessage  = "request body must be a JSON object"
	jsonOnlyMessage = "this endpoint takes a JSON body only"
)

// callMsgpack is Call with the request body in MessagePack, for an
// endpoint that takes it (Endpoint.Msgpack); the reply is JSON as always.
// A service that predates MessagePack requests refuses the body before
// doing anything: the client then sends JSON, to that request and every
// later one (to every endpoint, or to the one a service said takes JSON
// only).
func (c *Client) callMsgpack(ctx context.Context, ep *Endpoint, req, reply any) error {
	if _, only := c.jsonOnlyAt.Load(ep); c.JSONRequests || !ep.Msgpack || c.jsonOnly.Load() || only {
		return c.Call(ctx, ep, req, reply)
	}
	body, err := EncodeMsgpackRequest(req)
	if err != nil {
		return err
	}
	subject := ep.Subject(c.Tenant)
	data, err := c.sendTyped(ctx, subject, body, MsgpackContentType)
	if e, ok := err.(*Error); ok && e.Code == domain.CodeInvalidArgument && e.Message == notJSONMessage {
		c.jsonOnly.Store(true)
		return c.Call(ctx, ep, req, reply)
	}
	if e, ok := err.(*Error); ok && e.Code == domain.CodeInvalidArgument && e.Message == jsonOnlyMessage {
		c.jsonOnlyAt.Store(ep, true)
		return c.Call(ctx, ep, req, reply)
	}
	if err != nil || reply == nil {
		return err
	}
	if err := json.Unmarshal(data, reply); err != nil {
		return fmt.Errorf("decode reply of %s: %w", subject, err)
	}
	return nil
}

// EncodeMsgpack writes an operation as the map EncodeMsgpackRequest would
// make of it by reflection (the same keys, empty fields left out), without
// reflection's allocations: a batch holds up to 1,000 of them, and the
// reflective encoder allocated 11 times per operation, which made encoding
// a batch cost more than JSON did.
func (o *BatchOp) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := 2
	for _, set := range []bool{o.To != "", o.Target != "", len(o.Content) > 0, len(o.Chunks) > 0, o.Hash != "",
		o.Mode != 0 || o.Op == domain.OpChmod, o.Recursive, o.ExpectedHash != "", o.Name != "", len(o.Value) > 0} {
		if set {
			n++
		}
	}
	w := msgpackWriter{enc: enc}
	w.err = enc.EncodeMapLen(n)
	w.str("op", o.Op)
	w.str("path", o.Path)
	if o.To != "" {
		w.str("to", o.To)
	}
	if o.Target != "" {
		w.str("target", o.Target)
	}
	if len(o.Content) > 0 {
		w.bytes("content", o.Content)
	}
	if len(o.Chunks) > 0 {
		w.strs("chunks", o.Chunks)
	}
	if o.Hash != "" {
		w.str("hash", o.Hash)
	}
	if o.Mode != 0 || o.Op == domain.OpChmod {
		w.uint("mode", uint64(o.Mode)) // a chmod's 0 is no permissions, not no mode
	}
	if o.Recursive {
		w.bool("recursive", true)
	}
	if o.ExpectedHash != "" {
		w.str("expected_hash", o.ExpectedHash)
	}
	if o.Name != "" {
		w.str("name", o.Name)
	}
	if len(o.Value) > 0 {
		w.bytes("value", o.Value)
	}
	return w.err
}

// msgpackWriter writes map entries until the first error.
type msgpackWriter struct {
	enc *msgpack.Encoder
	err error
}

func (w *msgpackWriter) key(k string) {
	if w.err == nil {
		w.err = w.enc.EncodeString(k)
	}
}

func (w *msgpackWriter) str(k, v string) {
	w.key(k)
	if w.err == nil {
		w.err = w.enc.EncodeString(v)
	}
}

func (w *msgpackWriter) bytes(k string, v []byte) {
	w.key(k)
	if w.err == nil {
		w.err = w.enc.EncodeBytes(v)
	}
}

func (w *msgpackWriter) uint(k string, v uint64) {
	w.key(k)
	if w.err == nil {
		w.err = w.enc.EncodeUint(v)
	}
}

func (w *msgpackWriter) bool(k string, v bool) {
	w.key(k)
	if w.err == nil {
		w.err = w.enc.EncodeBool(v)
	}
}

func (w *msgpackWriter) strs(k string, vs []string) {
	w.key(k)
	if w.err == nil {
		w.err = w.enc.EncodeArrayLen(len(vs))
	}
	for _, v := range vs {
		if w.err == nil {
			w.err = w.enc.EncodeString(v)
		}
	}
}
