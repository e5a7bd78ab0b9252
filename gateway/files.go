package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// FilesRoute is where a file's raw bytes are read (GET) and written (PUT):
// no JSON and no base64 on the way. Both are made of the fs.read, fs.upload
// and fs.write endpoints, as the Go client makes them.
const FilesRoute = APIPrefix + "{tenant}/files/{session}/{path...}"

func (g *Gateway) fileRoutes() {
	g.mux.Handle("GET "+FilesRoute, g.metrics.instrument("files.get", http.HandlerFunc(g.serveDownload)))
	g.mux.Handle("PUT "+FilesRoute, g.metrics.instrument("files.put", http.HandlerFunc(g.serveUpload)))
}

// call is a request's client, acting as its credentials on its tenant.
type call struct {
	c    *client.Client
	ctx  context.Context
	done func()
}

// clientCall returns the request's client, with a context that a
// permission violation on the tenant's subjects cancels at once.
func (g *Gateway) clientCall(r *http.Request, bounded bool) (*call, error) {
	tenant, err := g.TenantOf(r)
	if err != nil {
		return nil, err
	}
	pc, err := g.connFor(r)
	if err != nil {
		return nil, err
	}
	ctx, cancel := r.Context(), context.CancelFunc(func() {})
	if bounded {
		ctx, cancel = g.requestContext(r)
	}
	ctx, unwatch := pc.watch(ctx, names.SubjectPrefix+tenant+".")
	c := client.NewClient(pc.nc, tenant)
	c.Timeout = g.opts.Timeout
	c.Actor = r.Header.Get(names.HeaderActor)
	return &call{c: c, ctx: ctx, done: func() { unwatch(); cancel(); g.pool.release(pc) }}, nil
}

// err turns a client call's failure into what the caller should see.
func (c *call) err(err error) error {
	if errors.Is(context.Cause(c.ctx), errPermission) {
		return domain.Errorf(domain.CodeForbidden, "your credentials may not address tenant %s", c.c.Tenant)
	}
	return err
}

func (g *Gateway) serveDownload(w http.ResponseWriter, r *http.Request) {
	cl, err := g.clientCall(r, false)
	if err != nil {
		writeError(w, err)
		return
	}
	defer cl.done()
	session, path := r.PathValue("session"), r.PathValue("path")
	first, err := cl.c.Read(cl.ctx, client.ReadRequest{Session: session, Path: path, At: client.At(r.URL.Query().Get("at"))})
	if err != nil {
		writeError(w, cl.err(err))
		return
	}
	if first.Kind != "file" {
		writeError(w, domain.Errorf(domain.CodeInvalidArgument, "%s is a %s, not a file", first.Path, first.Kind))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(first.Size, 10))
	h.Set("ETag", `"`+first.Hash+`"`)
	h.Set(names.HeaderPosition, strconv.FormatUint(first.Position, 10))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", "attachment")
	if _, err := w.Write(first.Content); err != nil {
		return
	}
	// The rest at the same position, so that the pieces belong together.
	pinned := client.AtPosition(first.Position)
	for off := int64(len(first.Content)); off < first.Size; {
		part, err := cl.c.Read(cl.ctx, client.ReadRequest{Session: session, Path: path, At: pinned, Offset: off})
		if err != nil || len(part.Content) == 0 {
			// Headers are gone: cutting the body short is the only way left
			// to say it failed (the length will not match).
			g.opts.Log.Warn("download cut short", "session", session, "path", path, "offset", off, "err", err)
			return
		}
		if _, err := w.Write(part.Content); err != nil {
			return
		}
		off += int64(len(part.Content))
	}
}

// serveUpload writes a file from the raw request body, streamed in chunks
// through fs.upload and written by reference with fs.write, so the
// gateway holds one chunk at a time whatever the size. Query parameters
// carry the rest of fs.write's body: expected_hash, mode, token,
// request_id, expected_position.
func (g *Gateway) serveUpload(w http.ResponseWriter, r *http.Request) {
	cl, err := g.clientCall(r, false)
	if err != nil {
		writeError(w, err)
		return
	}
	defer cl.done()
	req, err := writeRequestOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	chunk := make([]byte, cl.c.ChunkSize)
	sum := sha256.New()
	for {
		n, rerr := io.ReadFull(r.Body, chunk)
		if n > 0 {
			sum.Write(chunk[:n])
			if len(req.Chunks) == 0 && rerr != nil {
				// All of it fits in one chunk: inline, one request.
				req.Content = append([]byte{}, chunk[:n]...)
				break
			}
			up, err := cl.c.Upload(cl.ctx, req.Session, chunk[:n])
			if err != nil {
				writeError(w, cl.err(err))
				return
			}
			req.Chunks = append(req.Chunks, up.Hash)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			writeError(w, domain.Errorf(domain.CodeInvalidArgument, "read request body: %v", rerr))
			return
		}
	}
	if len(req.Chunks) > 0 {
		req.Hash = hex.EncodeToString(sum.Sum(nil))
	} else if req.Content == nil {
		req.Content = []byte{}
	}
	reply, err := cl.c.Write(cl.ctx, req)
	if err != nil {
		writeError(w, cl.err(err))
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

// writeRequestOf reads fs.write's fields from the path and the query.
func writeRequestOf(r *http.Request) (client.WriteRequest, error) {
	q := r.URL.Query()
	req := client.WriteRequest{Session: r.PathValue("session"), Path: r.PathValue("path"), ExpectedHash: q.Get("expected_hash")}
	req.RequestID, req.Token = q.Get("request_id"), q.Get("token")
	if v := q.Get("mode"); v != "" {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil {
			return req, domain.Errorf(domain.CodeInvalidArgument, "mode must be an octal number")
		}
		req.Mode = uint32(m)
	}
	if v := q.Get("expected_position"); v != "" {
		p, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return req, domain.Errorf(domain.CodeInvalidArgument, "expected_position must be a number")
		}
		req.ExpectedPosition = p
	}
	return req, nil
}
