package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// Client is the typed Go client of the Strand service. It is safe for
// concurrent use.
type Client struct {
	nc *nats.Conn
	// Tenant is part of every subject.
	Tenant string
	// Actor, when set, rides on every request in the Strand-Actor header.
	Actor string
	// Timeout bounds a request when the context has no deadline.
	Timeout time.Duration
	// ChunkSize is the size of the chunks that Write uploads a large file in.
	ChunkSize int
	// RetryWait bounds the total time one request waits and retries when
	// the service refuses it for the tenant's rate limit (the refusal says
	// how long to wait, see names.HeaderRetryAfter); 0 never retries.
	RetryWait time.Duration
	// JSONRequests sends every request body as JSON, also to endpoints
	// that take MessagePack (Write, Batch and Upload send MessagePack
	// otherwise).
	JSONRequests bool

	// jsonOnly is set once a service answered a MessagePack body as one
	// that predates them (callMsgpack); jsonOnlyAt holds the endpoints
	// (*Endpoint) a service answered as taking JSON only (one from before
	// the endpoint took MessagePack).
	jsonOnly   atomic.Bool
	jsonOnlyAt sync.Map
}

// NewClient returns a client for a tenant on a connection.
func NewClient(nc *nats.Conn, tenant string) *Client {
	return &Client{nc: nc, Tenant: tenant, Timeout: 30 * time.Second, ChunkSize: 512 << 10, RetryWait: 30 * time.Second}
}

// Conn returns the client's connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Call sends a request to an endpoint of the table (endpoints.go) and
// decodes the reply into reply (when not nil). A failed request returns an
// *Error.
func (c *Client) Call(ctx context.Context, ep *Endpoint, req, reply any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	return c.send(ctx, ep.Subject(c.Tenant), body, reply)
}

// CallScoped is Call for a scoped endpoint (Endpoint.Scoped): scope takes
// the place of the subject's last token.
func (c *Client) CallScoped(ctx context.Context, ep *Endpoint, scope string, req, reply any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	return c.send(ctx, ep.SubjectScoped(c.Tenant, scope), body, reply)
}

// Request sends a JSON body to the endpoint <area>.<verb> and decodes the
// reply into reply (when not nil). A failed request returns an *Error.
// Call, with a row of the table, is the usual way; Request serves callers
// that choose the verb at run time (and tests that send what no typed
// method would).
func (c *Client) Request(ctx context.Context, area, verb string, req, reply any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	return c.RequestRaw(ctx, area, verb, body, reply)
}

// RequestRaw is Request with a body already encoded.
func (c *Client) RequestRaw(ctx context.Context, area, verb string, body []byte, reply any) error {
	return c.send(ctx, names.Subject(c.Tenant, area, verb), body, reply)
}

// send is the one round trip every call makes: the actor header, the
// default timeout, the rate limit's retries and the error mapping.
func (c *Client) send(ctx context.Context, subject string, body []byte, reply any) error {
	data, err := c.sendRaw(ctx, subject, body)
	if err != nil || reply == nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(reply); err != nil {
		return fmt.Errorf("decode reply of %s: %w", subject, err)
	}
	return nil
}

// sendRaw is send without decoding: it returns the reply's body.
func (c *Client) sendRaw(ctx context.Context, subject string, body []byte) ([]byte, error) {
	return c.sendTyped(ctx, subject, body, "")
}

// sendTyped is sendRaw with a body of the given Content-Type ("": JSON,
// the header left out).
func (c *Client) sendTyped(ctx context.Context, subject string, body []byte, contentType string) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok && c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	m := nats.NewMsg(subject)
	m.Data = body
	if c.Actor != "" {
		m.Header.Set(names.HeaderActor, c.Actor)
	}
	if contentType != "" {
		m.Header.Set("Content-Type", contentType)
	}
	resp, err := c.requestRetrying(ctx, m)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, &Error{Code: domain.CodeUnavailable, Message: "no strand service answers on " + m.Subject}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, &Error{Code: domain.CodeUnavailable, Message: "request timed out"}
	case errors.Is(err, nats.ErrMaxPayload):
		return nil, &Error{Code: domain.CodeTooLarge, Message: "request is larger than the server's max_payload"}
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrConnectionDraining):
		// The request may or may not have reached the service: like a
		// timeout, retry it with its request_id.
		return nil, &Error{Code: domain.CodeUnavailable, Message: "connection to the server lost: " + err.Error()}
	case err != nil:
		return nil, fmt.Errorf("request %s: %w", m.Subject, err)
	}
	if resp.Header.Get(micro.ErrorCodeHeader) != "" {
		var eb ErrorBody
		if err := json.Unmarshal(resp.Data, &eb); err != nil || eb.Error.Code == "" {
			return nil, &Error{Code: domain.CodeInternal, Message: resp.Header.Get(micro.ErrorHeader)}
		}
		after, _ := retryAfter(resp)
		return nil, &Error{Code: domain.Code(eb.Error.Code), Message: eb.Error.Message, RetryAfter: after}
	}
	return resp.Data, nil
}

// CreateSession creates a session.
func (c *Client) CreateSession(ctx context.Context, req CreateSessionRequest) (SessionReply, error) {
	var r SessionReply
	return r, c.Call(ctx, SessionCreate, req, &r)
}

// GetSession returns a session, at its head or at a point of its history.
func (c *Client) GetSession(ctx context.Context, session string, at At) (SessionReply, error) {
	var r SessionReply
	return r, c.Call(ctx, SessionGet, GetSessionRequest{Session: session, At: at}, &r)
}

// ListSessions lists a page of sessions.
func (c *Client) ListSessions(ctx context.Context, req ListSessionsRequest) (ListSessionsReply, error) {
	var r ListSessionsReply
	return r, c.Call(ctx, SessionList, req, &r)
}

// ArchiveSession archives a session.
func (c *Client) ArchiveSession(ctx context.Context, req SessionRequest) (SessionReply, error) {
	var r SessionReply
	return r, c.Call(ctx, SessionArchive, req, &r)
}

// DeleteSession deletes a session.
func (c *Client) DeleteSession(ctx context.Context, req SessionRequest) (SessionReply, error) {
	var r SessionReply
	return r, c.Call(ctx, SessionDelete, req, &r)
}

// TagSession sets and removes tags.
func (c *Client) TagSession(ctx context.Context, req TagRequest) (SessionReply, error) {
	var r SessionReply
	return r, c.Call(ctx, SessionTag, req, &r)
}

// Fork creates a session that begins at a point of another.
func (c *Client) Fork(ctx context.Context, req ForkRequest) (SessionReply, error) {
	var r SessionReply
	return r, c.Call(ctx, SessionFork, req, &r)
}

// Restore points a session's tree back to an earlier point.
func (c *Client) Restore(ctx context.Context, req RestoreRequest) (SessionReply, error) {
	var r SessionReply
	return r, c.Call(ctx, SessionRestore, req, &r)
}

// Manifest lists a page of a session's tree. When req.Encoding is empty
// it asks for the MessagePack reply, which costs a fraction of the JSON one
// to encode and decode; the result is the same.
func (c *Client) Manifest(ctx context.Context, req ManifestRequest) (ManifestReply, error) {
	var r ManifestReply
	if req.Encoding == "" {
		req.Encoding = ManifestMsgpack
	}
	if req.Encoding != ManifestMsgpack {
		return r, c.Call(ctx, FSManifest, req, &r)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return r, fmt.Errorf("encode request: %w", err)
	}
	subject := FSManifest.Subject(c.Tenant)
	data, err := c.sendRaw(ctx, subject, body)
	if err != nil {
		return r, err
	}
	if r, err = DecodeManifest(data); err != nil {
		return r, fmt.Errorf("decode reply of %s: %w", subject, err)
	}
	return r, nil
}

// ManifestPage lists a page of a session's tree as Manifest does, asking
// for the MessagePack reply, and gives the entries with their hashes as 32
// bytes (DecodeManifestPage). req.Encoding must be empty or
// ManifestMsgpack.
func (c *Client) ManifestPage(ctx context.Context, req ManifestRequest) (ManifestPage, error) {
	var p ManifestPage
	if req.Encoding == "" {
		req.Encoding = ManifestMsgpack
	}
	if req.Encoding != ManifestMsgpack {
		return p, &Error{Code: domain.CodeInvalidArgument, Message: "ManifestPage reads the msgpack encoding only"}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return p, fmt.Errorf("encode request: %w", err)
	}
	subject := FSManifest.Subject(c.Tenant)
	data, err := c.sendRaw(ctx, subject, body)
	if err != nil {
		return p, err
	}
	if p, err = DecodeManifestPage(data); err != nil {
		return p, fmt.Errorf("decode reply of %s: %w", subject, err)
	}
	return p, nil
}

// Read reads one reply's worth of a file.
func (c *Client) Read(ctx context.Context, req ReadRequest) (ReadReply, error) {
	var r ReadReply
	return r, c.Call(ctx, FSRead, req, &r)
}

// ReadAll reads a whole file, in as many requests as its size needs, all at
// the same position so that the pieces belong together.
func (c *Client) ReadAll(ctx context.Context, session, path string, at At) ([]byte, ReadReply, error) {
	first, err := c.Read(ctx, ReadRequest{Session: session, Path: path, At: at})
	if err != nil {
		return nil, first, err
	}
	data := first.Content
	pinned := AtPosition(first.Position)
	for off := int64(len(data)); off < first.Size; {
		r, err := c.Read(ctx, ReadRequest{Session: session, Path: path, At: pinned, Offset: off})
		if err != nil {
			return nil, first, err
		}
		if len(r.Content) == 0 {
			return nil, first, fmt.Errorf("read %s: no progress at offset %d", path, off)
		}
		data = append(data, r.Content...)
		off += int64(len(r.Content))
	}
	first.Content = data
	first.EOF = true
	return data, first, nil
}

// Upload stores one chunk of a large file and returns its hash.
func (c *Client) Upload(ctx context.Context, session string, data []byte) (UploadReply, error) {
	var r UploadReply
	return r, c.callMsgpack(ctx, FSUpload, UploadRequest{Session: session, Data: data}, &r)
}

// Write writes a file. Content larger than one chunk is uploaded in chunks
// first and then written by reference, so any size up to the service's
// limit works whatever the server's max_payload.
func (c *Client) Write(ctx context.Context, req WriteRequest) (ChangeReply, error) {
	if len(req.Content) > c.ChunkSize {
		content := req.Content
		req.Content = nil
		return c.WriteFrom(ctx, req, bytes.NewReader(content))
	}
	var r ChangeReply
	return r, c.callMsgpack(ctx, FSWrite, req, &r)
}

// WriteFrom writes a file whose content is read from r, holding at most two
// chunks of it in memory: content of up to one chunk is sent as Write
// sends it; larger content is uploaded chunk by chunk as it is read and
// then written by reference. Content over domain.MaxBlobSize is too_large,
// refused as soon as that much was read (the chunks uploaded until then
// are collected as unused uploads). req.Content must be empty.
func (c *Client) WriteFrom(ctx context.Context, req WriteRequest, r io.Reader) (ChangeReply, error) {
	if len(req.Content) > 0 || len(req.Chunks) > 0 {
		return ChangeReply{}, fmt.Errorf("WriteFrom: content comes from the reader")
	}
	size := c.ChunkSize
	read := func() ([]byte, error) {
		buf := make([]byte, size)
		n, err := io.ReadFull(r, buf)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = nil
		}
		if err != nil {
			return nil, fmt.Errorf("read content: %w", err)
		}
		return buf[:n], nil
	}
	cur, err := read()
	if err != nil {
		return ChangeReply{}, err
	}
	next, err := read()
	if err != nil {
		return ChangeReply{}, err
	}
	if len(next) == 0 {
		req.Content = cur
		return c.Write(ctx, req)
	}
	whole := sha256.New()
	var total int64
	for len(cur) > 0 {
		total += int64(len(cur))
		if total > domain.MaxBlobSize {
			return ChangeReply{}, &Error{Code: domain.CodeTooLarge, Message: fmt.Sprintf("content larger than %d bytes", domain.MaxBlobSize)}
		}
		whole.Write(cur)
		up, err := c.Upload(ctx, req.Session, cur)
		if err != nil {
			return ChangeReply{}, err
		}
		req.Chunks = append(req.Chunks, up.Hash)
		cur = next
		if len(cur) == size {
			if next, err = read(); err != nil {
				return ChangeReply{}, err
			}
		} else {
			next = nil
		}
	}
	req.Hash = hex.EncodeToString(whole.Sum(nil))
	var reply ChangeReply
	return reply, c.callMsgpack(ctx, FSWrite, req, &reply)
}

// Mkdir makes a directory (and its missing parents).
func (c *Client) Mkdir(ctx context.Context, req MkdirRequest) (ChangeReply, error) {
	var r ChangeReply
	return r, c.Call(ctx, FSMkdir, req, &r)
}

// Remove removes a path.
func (c *Client) Remove(ctx context.Context, req RemoveRequest) (ChangeReply, error) {
	var r ChangeReply
	return r, c.Call(ctx, FSRemove, req, &r)
}

// Rename moves a path.
func (c *Client) Rename(ctx context.Context, req RenameRequest) (ChangeReply, error) {
	var r ChangeReply
	return r, c.Call(ctx, FSRename, req, &r)
}

// Chmod sets the permission bits of a file or folder (a link's target).
func (c *Client) Chmod(ctx context.Context, req ChmodRequest) (ChangeReply, error) {
	var r ChangeReply
	return r, c.Call(ctx, FSChmod, req, &r)
}

// Symlink creates a symbolic link.
func (c *Client) Symlink(ctx context.Context, req SymlinkRequest) (ChangeReply, error) {
	var r ChangeReply
	return r, c.Call(ctx, FSSymlink, req, &r)
}

// Batch applies several operations as one event, all or nothing. The
// request is sent as MessagePack (see callMsgpack).
func (c *Client) Batch(ctx context.Context, req BatchRequest) (ChangeReply, error) {
	var r ChangeReply
	return r, c.callMsgpack(ctx, FSBatch, req, &r)
}

// Events lists a page of a session's history.
func (c *Client) Events(ctx context.Context, req EventsRequest) (EventsReply, error) {
	var r EventsReply
	return r, c.Call(ctx, EventsList, req, &r)
}

// CreateCheckpoint names a position of a session.
func (c *Client) CreateCheckpoint(ctx context.Context, req CheckpointRequest) (CheckpointReply, error) {
	var r CheckpointReply
	return r, c.Call(ctx, CheckpointCreate, req, &r)
}

// DeleteCheckpoint removes a checkpoint name.
func (c *Client) DeleteCheckpoint(ctx context.Context, req CheckpointRequest) (CheckpointReply, error) {
	var r CheckpointReply
	return r, c.Call(ctx, CheckpointDelete, req, &r)
}

// ListCheckpoints lists a session's checkpoints.
func (c *Client) ListCheckpoints(ctx context.Context, req CheckpointListRequest) (CheckpointListReply, error) {
	var r CheckpointListReply
	return r, c.Call(ctx, CheckpointList, req, &r)
}

// requestRetrying sends m and, while the service refuses it for the rate
// limit, waits as long as the refusal says and sends it again, for at most
// RetryWait in all. A refused request did nothing, so sending it again is
// safe whatever it is.
func (c *Client) requestRetrying(ctx context.Context, m *nats.Msg) (*nats.Msg, error) {
	var waited time.Duration
	for {
		resp, err := c.nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return resp, err
		}
		after, ok := retryAfter(resp)
		if !ok || resp.Header.Get(names.HeaderNotApplied) != "true" || waited+after > c.RetryWait {
			return resp, nil
		}
		t := time.NewTimer(after)
		select {
		case <-ctx.Done():
			t.Stop()
			return resp, nil
		case <-t.C:
		}
		waited += after
	}
}

func retryAfter(resp *nats.Msg) (time.Duration, bool) {
	v := resp.Header.Get(names.HeaderRetryAfter)
	if v == "" {
		return 0, false
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}
