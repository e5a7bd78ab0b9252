package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// APIPrefix starts every route of the HTTP API.
const APIPrefix = "/v1/"

// Route is the HTTP path of an endpoint: POST /v1/{tenant}/<area>/<verb>,
// the subject strand.v1.<tenant>.<area>.<verb> with slashes. A wildcard
// token of the verb (secret.get.* answers on secret.get.<scope>) is a path
// segment of its own, {p1} for the verb's second token and so on.
func Route(e *client.Endpoint) string {
	path := APIPrefix + "{tenant}/" + e.Area
	if e.Verb == "" {
		return path
	}
	var seg []string
	for i, tok := range strings.Split(e.Verb, ".") {
		switch {
		case tok == "*":
			path += "/" + strings.Join(seg, ".") + "/{p" + strconv.Itoa(i) + "}"
			seg = nil
		default:
			seg = append(seg, tok)
		}
	}
	if len(seg) > 0 {
		path += "/" + strings.Join(seg, ".")
	}
	return path
}

// subjectOf fills the tenant and the verb's wildcard tokens of an
// endpoint's subject from a request's path.
func subjectOf(e *client.Endpoint, tenant string, r *http.Request) (string, error) {
	toks := strings.Split(e.Verb, ".")
	for i, tok := range toks {
		if tok != "*" {
			continue
		}
		v := r.PathValue("p" + strconv.Itoa(i))
		if v == "" || strings.ContainsAny(v, ".*> \t\r\n\x00") {
			return "", domain.Errorf(domain.CodeInvalidArgument, "%q is not a subject token", v)
		}
		toks[i] = v
	}
	return names.Subject(tenant, e.Area, strings.Join(toks, ".")), nil
}

// routes registers every route: one per endpoint of the table, then the
// gateway's own.
func (g *Gateway) routes() {
	for _, e := range client.Endpoints {
		g.mux.Handle("POST "+Route(e), g.metrics.instrument(e.Path(), g.forward(e)))
	}
	g.mux.Handle("GET /v1/openapi.json", g.metrics.instrument("openapi", http.HandlerFunc(g.serveOpenAPI)))
	g.mux.Handle("GET /metrics", g.metricsHandler())
	g.mux.Handle("POST /v1/login", g.metrics.instrument("login", http.HandlerFunc(g.serveLogin)))
	g.mux.Handle("POST /v1/logout", g.metrics.instrument("logout", http.HandlerFunc(g.serveLogout)))
	g.fileRoutes()
	g.streamRoutes()
	// Anything else under /v1/ is an unknown route: a JSON answer, like
	// every other answer of the API.
	g.mux.HandleFunc("/v1/", g.noRoute)
	g.mux.HandleFunc("/", g.serveRoot)
}

// noRoute answers a request that no route takes: 405 when the path is
// a route for another method, else 404, both with a JSON error body.
func (g *Gateway) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := g.mux.Handler(probe); pattern != "/v1/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		w.Header().Set("Content-Type", "application/json")
		writeStatus(w, http.StatusMethodNotAllowed, domain.Errorf(domain.CodeInvalidArgument, "%s takes %s, not %s", r.URL.Path, strings.Join(allow, " or "), r.Method))
		return
	}
	writeError(w, domain.Errorf(domain.CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
}

// forward sends the request body to the endpoint's subject as the
// request's credentials and answers with the reply as it is.
func (g *Gateway) forward(e *client.Endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant, err := g.TenantOf(r)
		if err != nil {
			writeError(w, err)
			return
		}
		pc, err := g.connFor(r)
		if err != nil {
			writeError(w, err)
			return
		}
		defer g.pool.release(pc)
		body, err := readBody(r, pc.nc.MaxPayload())
		if err != nil {
			writeError(w, err)
			return
		}
		subject, err := subjectOf(e, tenant, r)
		if err != nil {
			writeError(w, err)
			return
		}
		m := nats.NewMsg(subject)
		m.Data = body
		if a := r.Header.Get(names.HeaderActor); a != "" {
			m.Header.Set(names.HeaderActor, a)
		}
		resp, err := g.request(r, pc, m)
		if err != nil {
			writeError(w, err)
			return
		}
		status := http.StatusOK
		if s := resp.Header.Get(micro.ErrorCodeHeader); s != "" {
			// The service's error header carries the status of the one
			// code table (client.StatusOf).
			if n, err := strconv.Atoi(s); err == nil && n >= 400 && n < 600 {
				status = n
			} else {
				status = http.StatusInternalServerError
			}
		}
		// The service names its reply's encoding (JSON, or the
		// MessagePack manifest a request asked for); JSON when it does not.
		contentType := resp.Header.Get("Content-Type")
		if contentType == "" {
			contentType = "application/json"
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		if ms, err := strconv.ParseInt(resp.Header.Get(names.HeaderRetryAfter), 10, 64); err == nil && ms > 0 {
			setRetryAfter(w, time.Duration(ms)*time.Millisecond)
			if resp.Header.Get(names.HeaderNotApplied) != "" {
				w.Header().Set(names.HeaderNotApplied, resp.Header.Get(names.HeaderNotApplied))
			}
		}
		w.WriteHeader(status)
		_, _ = w.Write(resp.Data)
	})
}

// request sends m on the request's pooled connection and maps the
// transport's failures to the closed set of codes.
func (g *Gateway) request(r *http.Request, pc *pooled, m *nats.Msg) (*nats.Msg, error) {
	ctx, cancel := g.requestContext(r)
	defer cancel()
	ctx, done := pc.watch(ctx, m.Subject)
	defer done()
	resp, err := pc.nc.RequestMsgWithContext(ctx, m)
	switch {
	case err == nil:
		return resp, nil
	case errors.Is(context.Cause(ctx), errPermission):
		return nil, domain.Errorf(domain.CodeForbidden, "your credentials may not address %s", m.Subject)
	case errors.Is(err, nats.ErrNoResponders):
		return nil, &domain.Error{Code: domain.CodeUnavailable, Message: "no strand service answers on " + m.Subject, RetryAfter: time.Second}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, &domain.Error{Code: domain.CodeUnavailable, Message: "request timed out", RetryAfter: time.Second}
	case errors.Is(err, nats.ErrMaxPayload):
		return nil, domain.Errorf(domain.CodeTooLarge, "request is larger than the server's max_payload")
	case errors.Is(err, context.Canceled):
		return nil, domain.Errorf(domain.CodeUnavailable, "request canceled")
	}
	return nil, domain.Wrap(err, "request "+m.Subject)
}

// readBody reads a request body of at most limit bytes.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, domain.Errorf(domain.CodeTooLarge, "request body is larger than %d bytes", limit)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "read request body: %v", err)
	}
	if int64(len(body)) > limit {
		return nil, domain.Errorf(domain.CodeTooLarge, "request body is larger than %d bytes", limit)
	}
	return body, nil
}
