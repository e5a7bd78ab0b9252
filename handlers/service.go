package handlers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/oklog/ulid/v2"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/imports"
	"github.com/strand-dev/strand/keyring"
	"github.com/strand-dev/strand/names"
)

// Version of the service, reported through micro's discovery.
const Version = "0.1.0"

// Lister answers session.list from a read model, and finds the session of
// a commit id.
type Lister interface {
	ListSessions(ctx context.Context, tenant string, req client.ListSessionsRequest) (client.ListSessionsReply, error)
	CommitSession(ctx context.Context, tenant, commit string) (string, error)
}

// Reviews answers review.pending for a whole tenant from a read model.
type Reviews interface {
	PendingReviews(ctx context.Context, tenant, group string) (client.PendingReply, error)
}

// Options configure a Service.
type Options struct {
	// Now is the clock; events record its time.
	Now func() time.Time
	// NewID makes event and session ids (ULIDs).
	NewID func() string
	Log   *slog.Logger
	// MaxInflight bounds the requests handled at once by this instance.
	MaxInflight int
	// MaxRequestBytes refuses larger request bodies with too_large.
	MaxRequestBytes int
	// Timeout bounds the work of one request.
	Timeout time.Duration
	// Lister serves session.list; nil means the list comes from the stream.
	Lister Lister
	// Reviews serves the tenant-wide review queue.
	Reviews Reviews
	// Activity serves activity.list (activity.go).
	Activity ActivityFeed
	// Projections serves projections.status (projections.go).
	Projections ProjectionReporter
	// AllowDirImport lets source.import read directories and git
	// repositories by path on the server host (off by default: a path names
	// anything the server process can read).
	AllowDirImport bool
	// JobTimeout is how long an import job may go without a heartbeat
	// before it is reported failed (0: DefaultJobTimeout).
	JobTimeout time.Duration
	// ImportLimits bound one import (zero fields: imports.DefaultLimits).
	ImportLimits imports.Limits
	// Auth takes the actor from NATS authentication (identity.go).
	Auth Auth
	// Limits bound each tenant (limits.go); nil: no limits.
	Limits *LimitsConfig
	// Sessions counts a tenant's sessions for the session limit; nil:
	// counted on the event stream.
	Sessions SessionCounter
	// UsageRefresh is how often usage is read again (0: DefaultUsageRefresh).
	UsageRefresh time.Duration
	// RequestFlush is how often the requests this instance counted are
	// added to the deployment's counters (0: DefaultRequestFlush).
	RequestFlush time.Duration
	// Usage serves usage.get (usage.go); nil: unavailable.
	Usage UsageReporter
	// Stats serves session.stats (stats.go); nil: unavailable.
	Stats StatsReader
	// Secrets seals and opens secrets' values; nil: secret endpoints answer
	// unavailable.
	Secrets *keyring.Ring
	// SearchCacheBytes bounds the cache of content fs.search keeps
	// (0: DefaultSearchCacheBytes; negative: no cache).
	SearchCacheBytes int64
}

// Service is the request/reply surface.
type Service struct {
	store domain.Store
	blobs domain.BlobStore
	opts  Options
	sem   chan struct{}
	// work hands a request to an idle worker (dispatch); quit tells idle
	// workers to end (Stop).
	work chan func()
	quit chan struct{}
	svc  micro.Service
	wg   sync.WaitGroup
	// quitOnce closes quit; stopFlush closes flushStop.
	quitOnce  sync.Once
	stopFlush sync.Once
	nc        *nats.Conn
	jobs      jobRunner
	stats     map[string]*endpointStats
	// limits is nil when Options.Limits is.
	limits *limiter
	// searchCache caches content for fs.search (search.go).
	searchCache *blobCache
	// listings caches the encoded listings of whole trees (manifest.go).
	listings *listings
	// requests counts each tenant's requests by endpoint (usage.get);
	// flushStop ends its flush loop, which closes flushDone.
	requests  requestCounts
	flushStop chan struct{}
	flushDone chan struct{}
}

// endpointStats are an endpoint's true figures. micro measures a handler
// by the time its callback takes and learns of errors from Request.Error;
// requests here run on their own goroutines and reply themselves, so micro
// sees only the dispatch. These figures ride in each endpoint's stats "data"
// (nats micro stats strand --json).
type endpointStats struct {
	mu        sync.Mutex
	requests  uint64
	errors    uint64
	lastError string
	total     time.Duration
}

// EndpointStats is the "data" of an endpoint in micro's STATS response.
type EndpointStats struct {
	NumRequests           uint64        `json:"num_requests"`
	NumErrors             uint64        `json:"num_errors"`
	LastError             string        `json:"last_error,omitempty"`
	ProcessingTime        time.Duration `json:"processing_time"`
	AverageProcessingTime time.Duration `json:"average_processing_time"`
}

func (st *endpointStats) record(d time.Duration, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.requests++
	st.total += d
	if err != nil {
		st.errors++
		st.lastError = string(domain.ErrorCode(err)) + ": " + domain.ErrorMessage(err)
	}
}

func (st *endpointStats) snapshot() EndpointStats {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := EndpointStats{NumRequests: st.requests, NumErrors: st.errors, LastError: st.lastError, ProcessingTime: st.total}
	if st.requests > 0 {
		out.AverageProcessingTime = st.total / time.Duration(st.requests)
	}
	return out
}

// NewService returns a service on a store.
func NewService(store domain.Store, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = func() time.Time { return time.Now().UTC() }
	}
	if opts.NewID == nil {
		var mu sync.Mutex
		entropy := ulid.Monotonic(rand.Reader, 0)
		opts.NewID = func() string {
			mu.Lock()
			defer mu.Unlock()
			return ulid.MustNew(ulid.Now(), entropy).String()
		}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = 256
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = domain.DefaultMaxPayload
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.SearchCacheBytes == 0 {
		opts.SearchCacheBytes = DefaultSearchCacheBytes
	}
	if opts.RequestFlush <= 0 {
		opts.RequestFlush = DefaultRequestFlush
	}
	s := &Service{store: store, blobs: store.BlobStore(), opts: opts, sem: make(chan struct{}, opts.MaxInflight),
		work: make(chan func()), quit: make(chan struct{}), searchCache: newBlobCache(opts.SearchCacheBytes),
		listings: newListings(DefaultListingCacheBytes)}
	if opts.Limits != nil {
		s.limits = newLimiter(*opts.Limits, store, opts.Sessions, opts.UsageRefresh, opts.Now, opts.Log)
	}
	return s
}

// call is one request being handled.
type call struct {
	ctx    context.Context
	tenant string
	req    micro.Request
	svc    *Service
	// user is the authenticated actor ("" when Options.Auth is off).
	user string
	// msgpack: the endpoint takes a MessagePack body (Endpoint.Msgpack).
	msgpack bool
}

type handlerFunc func(c *call) (any, error)

// Start registers the micro service and its endpoints on a connection.
func (s *Service) Start(nc *nats.Conn) error {
	s.nc = nc // before any endpoint exists: handlers reply on it
	s.stats = map[string]*endpointStats{}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        names.ServiceName,
		Version:     Version,
		Description: "Strand: event-sourced session workspaces on JetStream",
		QueueGroup:  names.QueueGroup,
		StatsHandler: func(e *micro.Endpoint) any {
			if st, ok := s.stats[e.Name]; ok {
				return st.snapshot()
			}
			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("add micro service: %w", err)
	}
	routes := s.routes()
	for _, ep := range client.Endpoints {
		fn, ok := routes[ep]
		if !ok {
			_ = svc.Stop()
			return fmt.Errorf("endpoint %s has no handler (handlers/routes.go)", ep.Path())
		}
		path := ep.Path()
		subject := names.SubjectPrefix + "*." + path
		// A trailing * takes one more token (secret.get.<scope>).
		name := strings.ReplaceAll(strings.ReplaceAll(path, ".*", "_scoped"), ".", "_")
		st := &endpointStats{}
		s.stats[name] = st
		if err := svc.AddEndpoint(name, s.dispatch(st, ep, fn), micro.WithEndpointSubject(subject),
			micro.WithEndpointMetadata(map[string]string{"subject": names.SubjectPrefix + "<tenant>." + path})); err != nil {
			_ = svc.Stop()
			return fmt.Errorf("add endpoint %s: %w", name, err)
		}
	}
	s.svc = svc
	s.flushStop, s.flushDone = make(chan struct{}), make(chan struct{})
	go s.flushRequests()
	return nil
}

// Stop stops taking requests and waits for those in flight.
func (s *Service) Stop() error {
	var err error
	if s.svc != nil {
		err = s.svc.Stop()
	}
	s.quitOnce.Do(func() { close(s.quit) })
	s.wg.Wait()
	s.jobs.stop()
	// The requests just answered are counted; the loop's last flush adds
	// them to the deployment's counters.
	if s.flushStop != nil {
		s.stopFlush.Do(func() { close(s.flushStop) })
		<-s.flushDone
	}
	return err
}

// dispatch runs a handler on a worker of its own, so that one slow
// request does not hold the endpoint's subscription. Workers outlive their
// request: one that finishes waits workerIdle for the next before it ends,
// so a busy service reuses goroutines whose stacks have already grown to
// what a request needs (a new goroutine per request grew its stack from 8
// KiB on every write: runtime.newstack was 7-9% of the CPU of row 1 of
// strand bench). At most MaxInflight workers exist; when all are busy,
// dispatch waits for one, as it waited for a slot before.
func (s *Service) dispatch(st *endpointStats, ep *client.Endpoint, fn handlerFunc) micro.Handler {
	return micro.HandlerFunc(func(r micro.Request) {
		job := func() {
			start := time.Now()
			err := s.handle(r, ep, fn)
			st.record(time.Since(start), err)
		}
		select {
		case s.work <- job:
		case s.sem <- struct{}{}:
			s.wg.Add(1)
			go s.worker(job)
		}
	})
}

// workerIdle is how long a worker waits for another request before it ends.
const workerIdle = 10 * time.Second

// worker runs job, then the requests dispatch hands it, until it has been
// idle for workerIdle or the service stops.
func (s *Service) worker(job func()) {
	defer func() {
		<-s.sem
		s.wg.Done()
	}()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for ok := true; ok; job, ok = s.next(idle) {
		job()
		idle.Reset(workerIdle)
	}
}

// workerStackKept is how much stack a waiting worker keeps in use. The
// garbage collector halves the stack of a goroutine that, parked, uses
// less than a quarter of it: a worker waiting between requests lost, one
// collection after another, the stack its requests had grown, and the
// next request grew it again by copying (runtime.newstack was 7.5% of the
// handler's CPU for one client's writes, 0.6% with this).
// Waiting in a frame of this size keeps a stack of up to four times it.
const workerStackKept = 8 << 10

// next waits for the worker's next job; false once the worker has been
// idle for workerIdle or the service stops. It waits in a frame of
// workerStackKept bytes (see there).
//
//go:noinline
func (s *Service) next(idle *time.Timer) (func(), bool) {
	var kept [workerStackKept]byte
	keepStack(&kept)
	select {
	case job := <-s.work:
		return job, true
	case <-idle.C:
	case <-s.quit:
	}
	return nil, false
}

// keepStack makes the frame that holds b keep it: b does not escape, and
// a call the compiler cannot see through uses it.
//
//go:noinline
func keepStack(b *[workerStackKept]byte) { b[0] = 1 }

func (s *Service) handle(r micro.Request, ep *client.Endpoint, fn handlerFunc) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	var reply any
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = domain.Wrap(fmt.Errorf("panic: %v", p), "handle "+r.Subject())
			}
		}()
		tenant, terr := tenantOf(r.Subject())
		if terr != nil {
			err = terr
			return
		}
		user, aerr := s.opts.Auth.authenticate(r, tenant)
		if aerr != nil {
			err = aerr
			return
		}
		if len(r.Data()) > s.opts.MaxRequestBytes {
			err = domain.Errorf(domain.CodeTooLarge, "request body is larger than %d bytes", s.opts.MaxRequestBytes)
			return
		}
		s.requests.add(tenant, ep.Path())
		if s.limits != nil {
			if err = s.limits.admit(ctx, tenant, ep, len(r.Data())); err != nil {
				return
			}
		}
		reply, err = fn(&call{ctx: ctx, tenant: tenant, req: r, svc: s, user: user, msgpack: ep.Msgpack})
		if err == nil && s.limits != nil && ep.Effect == client.AddsSession {
			s.limits.added(tenant, 1, 0)
		}
	}()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = &domain.Error{Code: domain.CodeUnavailable, Message: "request timed out", RetryAfter: timeoutRetryAfter}
		}
		code := domain.ErrorCode(err)
		if code == domain.CodeInternal {
			s.opts.Log.Error("request failed", "subject", r.Subject(), "err", err)
		}
		s.respondError(r, err)
		return err
	}
	if enc, ok := reply.(encodedReply); ok {
		s.respond(r, nats.Header{"Content-Type": []string{enc.contentType}}, enc.body)
		if enc.release != nil {
			enc.release()
		}
		return nil
	}
	body, err := json.Marshal(reply)
	if err != nil {
		s.opts.Log.Error("request failed", "subject", r.Subject(), "err", fmt.Errorf("encode reply: %w", err))
		s.respondError(r, domain.ErrInternal)
		return domain.ErrInternal
	}
	s.respond(r, nats.Header{"Content-Type": []string{"application/json"}}, body)
	return nil
}

// encodedReply is a reply a handler has already encoded in a form other
// than JSON (the MessagePack manifest), sent as it is.
type encodedReply struct {
	contentType string
	body        []byte
	// release, when set, is called once the body is sent (its buffer
	// goes back to a pool).
	release func()
}

// respondError answers r with the micro error headers and the JSON error body.
func (s *Service) respondError(r micro.Request, err error) {
	status, desc, body := errorReply(err)
	h := nats.Header{
		micro.ErrorHeader:     []string{desc},
		micro.ErrorCodeHeader: []string{status},
		"Content-Type":        []string{"application/json"},
	}
	var rl *rateLimited
	var de *domain.Error
	switch {
	case errors.As(err, &rl):
		h.Set(names.HeaderRetryAfter, strconv.FormatInt(max(rl.after.Milliseconds(), 1), 10))
		h.Set(names.HeaderNotApplied, "true")
	case errors.As(err, &de) && de.Code == domain.CodeUnavailable && de.RetryAfter > 0:
		// The request may have been applied (the store did not answer in
		// time): a retry must carry the same request_id.
		h.Set(names.HeaderRetryAfter, strconv.FormatInt(max(de.RetryAfter.Milliseconds(), 1), 10))
	}
	s.respond(r, h, body)
}

// timeoutRetryAfter is the pause suggested to a caller whose request ran
// out of the service's time.
const timeoutRetryAfter = time.Second

// respond publishes the reply to r itself rather than through r.Respond or
// r.Error: those record the outcome in the micro request, which micro's
// subscription goroutine reads as soon as the handler returns, and dispatch
// returns before the work is done, so that was a data race. The wire format
// is the same; micro's per-endpoint error count and processing time do not
// see these replies (its request counts are right).
func (s *Service) respond(r micro.Request, h nats.Header, body []byte) {
	if r.Reply() == "" {
		return
	}
	if err := s.nc.PublishMsg(&nats.Msg{Subject: r.Reply(), Header: h, Data: body}); err != nil {
		s.opts.Log.Warn("reply failed", "subject", r.Subject(), "err", err)
	}
}

func tenantOf(subject string) (string, error) {
	rest, ok := strings.CutPrefix(subject, names.SubjectPrefix)
	if !ok {
		return "", domain.Errorf(domain.CodeInvalidArgument, "bad subject %q", subject)
	}
	tenant, _, _ := strings.Cut(rest, ".")
	if err := domain.ValidTenant(tenant); err != nil {
		return "", err
	}
	return tenant, nil
}

// decode parses a JSON body strictly: one object, no unknown fields. An
// empty body is an empty object. A body sent as MessagePack (the header
// Content-Type: application/msgpack) to an endpoint that takes it is
// decoded as such (decodeMsgpack).
func (c *call) decode(v any) error {
	if c.req.Headers().Get("Content-Type") == client.MsgpackContentType {
		if !c.msgpack {
			return domain.Errorf(domain.CodeInvalidArgument, "this endpoint takes a JSON body only")
		}
		return decodeMsgpack(c.req.Data(), v)
	}
	data := bytes.TrimSpace(c.req.Data())
	if len(data) == 0 {
		data = []byte("{}")
	}
	if data[0] != '{' {
		return domain.Errorf(domain.CodeInvalidArgument, "request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return domain.Errorf(domain.CodeInvalidArgument, "malformed request: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return domain.Errorf(domain.CodeInvalidArgument, "malformed request: trailing data after the JSON object")
	}
	return nil
}

// decodeMsgpack parses a MessagePack body as strictly as decode parses
// JSON: one map (not the array form of a struct), the JSON body's keys
// exactly, no unknown keys, nothing after the map.
func decodeMsgpack(data []byte, v any) error {
	if len(data) == 0 || !(data[0]&0xf0 == 0x80 || data[0] == 0xde || data[0] == 0xdf) {
		return domain.Errorf(domain.CodeInvalidArgument, "request body must be a MessagePack map")
	}
	// Checked before the library decodes it (domain.CheckMsgpack): the
	// library sizes a slice by the length its header claims.
	if err := domain.CheckMsgpack(data, maxMsgpackEntries); err != nil {
		return domain.Errorf(domain.ErrorCode(err), "malformed request: %s", domain.ErrorMessage(err))
	}
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(bytes.NewReader(data))
	dec.SetCustomStructTag("json")
	dec.DisallowUnknownFields(true)
	if err := dec.Decode(v); err != nil {
		return domain.Errorf(domain.CodeInvalidArgument, "malformed request: %s", strings.TrimPrefix(err.Error(), "msgpack: "))
	}
	return nil
}

// maxMsgpackEntries bounds every array and map of a MessagePack request:
// the largest a valid request holds are a batch's operations
// (domain.MaxBatchOps, 1,000) and a file's chunks (storeChunks takes at
// most 8,192). A larger one is refused as too_large before anything is
// decoded.
const maxMsgpackEntries = 1 << 16

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
		}
		return fmt.Sprintf("value must be %s", te.Type)
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	return msg
}

// meta builds the event metadata of a mutating request.
func (c *call) meta(m client.Mutation) (domain.Meta, error) {
	actor, err := c.actor(m)
	if err != nil {
		return domain.Meta{}, err
	}
	if len(m.RequestID) > 128 || strings.ContainsAny(m.RequestID, "\x00\r\n .*>") {
		return domain.Meta{}, domain.Errorf(domain.CodeInvalidArgument, "request_id must be at most 128 bytes without spaces, dots, wildcards or control characters")
	}
	return domain.Meta{
		EventID:   c.svc.opts.NewID(),
		Actor:     actor,
		Time:      c.svc.opts.Now(),
		RequestID: m.RequestID,

		ExpectedPosition: m.ExpectedPosition,
	}, nil
}

// decodeSession decodes a request body into req and checks the session id
// it names (session points at req's Session field): the first two steps of
// nearly every handler.
func (c *call) decodeSession(req any, session *string) (string, error) {
	if err := c.decode(req); err != nil {
		return "", err
	}
	return sessionID(*session)
}

// decodeSource is decodeSession for requests that name a source: it
// decodes the body into req and returns the checked source name.
func (c *call) decodeSource(req any, name *string) (string, error) {
	if err := c.decode(req); err != nil {
		return "", err
	}
	return sourceName(*name)
}

// sessionID checks the syntax of a session id.
func sessionID(id string) (string, error) {
	if id == "" {
		return "", domain.Errorf(domain.CodeInvalidArgument, "session is required")
	}
	if _, err := ulid.ParseStrict(id); err != nil {
		return "", domain.Errorf(domain.CodeInvalidArgument, "session %q is not a valid id", truncate(id, 64))
	}
	return strings.ToUpper(id), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// change runs a mutation on a session, honouring expected_position.
func (c *call) change(id string, m client.Mutation, build func(s *domain.Session) (domain.Command, error)) (res domain.Result, err error) {
	defer func() {
		if err == nil {
			c.svc.charge(c.tenant, res)
		}
	}()
	meta, err := c.meta(m)
	if err != nil {
		return domain.Result{}, err
	}
	if m.Token == "" {
		return c.svc.store.Change(c.ctx, c.tenant, id, meta, build)
	}
	// The lease token rides on every command that touches paths.
	return c.svc.store.Change(c.ctx, c.tenant, id, meta, func(s *domain.Session) (domain.Command, error) {
		cmd, err := build(s)
		switch v := cmd.(type) {
		case domain.ChangeFiles:
			v.Token = m.Token
			return v, err
		case domain.RestoreSession:
			v.Token = m.Token
			return v, err
		}
		return cmd, err
	})
}
