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
// answers to one (invalid_argument, nothing applied).
const notJSONMessage = "request body must be a JSON object"

// callMsgpack is Call with the request body in MessagePack, for an
// endpoint that takes it (Endpoint.Msgpack); the reply is JSON as always.
// A service that predates MessagePack requests refuses the body before
// doing anything: the client then sends JSON, to that request and every
// later one.
func (c *Client) callMsgpack(ctx context.Context, ep *Endpoint, req, reply any) error {
	if c.JSONRequests || !ep.Msgpack || c.jsonOnly.Load() {
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
	if err != nil || reply == nil {
		return err
	}
	if err := json.Unmarshal(data, reply); err != nil {
		return fmt.Errorf("decode reply of %s: %w", subject, err)
	}
	return nil
}
