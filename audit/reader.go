package audit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// The stream layout this package reads. The writer is package streams;
// both take the names from package names, so an audit depends on the wire
// format and not on the code that wrote it.
const (
	DefaultEventStream  = names.EventStream
	DefaultBlobStream   = names.BlobStream
	DefaultSourceStream = names.SourceStream
	// DefaultStreamPrefix gives the default stream names with StreamsWithPrefix.
	DefaultStreamPrefix = "STRAND"

	eventPrefix  = names.EventPrefix
	blobPrefix   = names.BlobPrefix
	sourcePrefix = names.SourcePrefix

	headerType    = names.HeaderType
	headerVersion = names.HeaderVersion
)

// Streams names the streams an audit reads. A backup restored under other
// names, or a copy made for an investigation, is read by naming it here;
// subjects inside the streams stay the same.
type Streams struct {
	Events string `json:"events"`
	Blobs  string `json:"blobs"`
	// Sources holds source revisions, which sessions created from a source
	// start from. A store without sources may lack it.
	Sources string `json:"sources"`
}

// StreamsWithPrefix returns PREFIX_EVENTS, PREFIX_BLOBS and PREFIX_SOURCES.
func StreamsWithPrefix(prefix string) Streams {
	return Streams{Events: prefix + "_EVENTS", Blobs: prefix + "_BLOBS", Sources: prefix + "_SOURCES"}
}

func (s Streams) withDefaults() Streams {
	if s.Events == "" {
		s.Events = DefaultEventStream
	}
	if s.Blobs == "" {
		s.Blobs = DefaultBlobStream
	}
	if s.Sources == "" {
		s.Sources = DefaultSourceStream
	}
	return s
}

// Defaults for Reader's tuning fields.
const (
	DefaultPastStates = 65536
	DefaultBlobFetch  = 16
)

// Reader reads session histories and content straight from the streams: it
// needs only a NATS connection, so it works the same on a live server and on
// one where a backup was restored, and it never goes through the service it
// audits. A Reader is safe for concurrent use; each call reads the streams
// anew.
type Reader struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	names   Streams
	events  jetstream.Stream
	blobs   jetstream.Stream
	sources jetstream.Stream // nil: the store has no source stream

	srcMu    sync.Mutex
	srcTrees map[revisionKey]domain.Tree

	// PastStates bounds how many past states (session at a position) a
	// replay keeps in memory, over all sessions, for restores and forks to
	// start from. A state that was dropped is rebuilt by replaying its
	// session again, so the bound trades memory for time, never correctness.
	PastStates int
	// Workers is how many goroutines fold histories in parallel during
	// Verify. Sessions of one fork family always go to the same worker.
	Workers int
	// BlobFetch is how many blob reads Verify keeps in flight.
	BlobFetch int
	// IdleTimeout is how long a scan waits for the next message the
	// stream says it has before it asks the server again.
	IdleTimeout time.Duration
}

// DefaultWorkers is how many goroutines Verify folds histories on unless
// told otherwise: one per CPU but one, which reading the stream keeps busy
// (the client's delivery goroutine decodes and hashes every event), and at
// least one.
func DefaultWorkers() int { return max(runtime.GOMAXPROCS(0)-1, 1) }

// Open returns a Reader on the named streams (empty names: the defaults).
// The event and blob streams must exist; the source stream may not.
func Open(ctx context.Context, nc *nats.Conn, names Streams) (*Reader, error) {
	names = names.withDefaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	events, err := js.Stream(ctx, names.Events)
	if err != nil {
		return nil, fmt.Errorf("open event stream %s: %w", names.Events, err)
	}
	blobs, err := js.Stream(ctx, names.Blobs)
	if err != nil {
		return nil, fmt.Errorf("open blob stream %s: %w", names.Blobs, err)
	}
	sources, err := js.Stream(ctx, names.Sources)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		sources, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open source stream %s: %w", names.Sources, err)
	}
	return &Reader{
		nc: nc, js: js, names: names, events: events, blobs: blobs, sources: sources,
		srcTrees:    map[revisionKey]domain.Tree{},
		PastStates:  DefaultPastStates,
		Workers:     DefaultWorkers(),
		BlobFetch:   DefaultBlobFetch,
		IdleTimeout: 5 * time.Second,
	}, nil
}

// Streams returns the names of the streams the Reader reads.
func (r *Reader) Streams() Streams { return r.names }

// EventSubject is the subject of a session's history.
func EventSubject(tenant, session string) string { return eventPrefix + tenant + "." + session }

// TenantFilter matches every history of a tenant.
func TenantFilter(tenant string) string { return eventPrefix + tenant + ".*" }

// AllFilter matches every history.
const AllFilter = eventPrefix + ">"

func blobSubject(h domain.Hash) string { return blobPrefix + h.String() }

// splitSubject returns the tenant and session of an event subject.
func splitSubject(subject string) (tenant, session string, ok bool) {
	rest, ok := strings.CutPrefix(subject, eventPrefix)
	if !ok {
		return "", "", false
	}
	tenant, session, ok = strings.Cut(rest, ".")
	if !ok || tenant == "" || session == "" || strings.Contains(session, ".") {
		return "", "", false
	}
	return tenant, session, true
}

// Record is one message of the event stream.
type Record struct {
	Position uint64
	Subject  string
	Tenant   string
	Session  string
	Header   nats.Header
	Time     time.Time // when the stream stored it
	Body     []byte

	prepared
}

// Hash is the hash of the record's body: what the next event of the history
// names as its Prev.
func (rec *Record) Hash() domain.Hash { return domain.Sum(rec.Body) }

// prepared is what a replay needs of a record besides its history's state:
// its event decoded and its hash. Computing it does not depend on any other
// record, so a pipelined replay does it on the goroutine that reads.
type prepared struct {
	ready     bool
	event     *domain.Event
	decodeErr error
	hash      domain.Hash
}

// eventPool holds decoded events a replay is done with: a verify decodes
// millions and keeps none, and an Event is the largest of the allocations
// decoding makes (its strings and slices are allocated apart, so that
// whatever a state keeps of them stays).
var eventPool = sync.Pool{New: func() any { return new(domain.Event) }}

func (rec *Record) prepare() {
	e := eventPool.Get().(*domain.Event)
	if err := domain.DecodeEventInto(rec.Body, e); err != nil {
		eventPool.Put(e)
		rec.event, rec.decodeErr = nil, err
	} else {
		rec.event, rec.decodeErr = e, nil
	}
	rec.hash, rec.ready = rec.Hash(), true
}

// release gives the record's event back for reuse: only when nothing kept
// a pointer to it.
func (rec *Record) release() {
	if rec.event != nil {
		eventPool.Put(rec.event)
		rec.event = nil
	}
}

// scanOpts bounds a scan.
type scanOpts struct {
	filters []string
	from    uint64 // first position (0: the first)
	upTo    uint64 // last position (0: the last one at the time of the scan)
}

var errStopScan = errors.New("stop scan")

// scan calls fn for every event message matching the filters, in stream
// order, through one ordered consumer (ephemeral, flow-controlled, restarted
// by the client library on a gap). It ends at the last matching message the
// stream holds when the scan reaches it, or at upTo. fn may return
// errStopScan to end early without an error.
//
// On a replicated stream the consumer may sit on a follower that has not
// applied the newest messages yet. When a scan with an upTo ends short of
// it and the stream leader holds that message on a scanned subject, the
// scan waits a little and goes on from where it stopped, for up to
// replicaCatchUp.
func (r *Reader) scan(ctx context.Context, o scanOpts, fn func(*Record) error) error {
	deadline := time.Now().Add(replicaCatchUp)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		last, done, err := r.scanOnce(ctx, o, fn)
		if err != nil || done || o.upTo == 0 || last >= o.upTo {
			return err
		}
		if !r.leaderHas(ctx, o.upTo, o.filters) {
			return nil // upTo is no message of these subjects: nothing to wait for
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("read %s: the replica serving the scan stayed behind position %d for %v", r.names.Events, o.upTo, replicaCatchUp)
		}
		if last != 0 {
			o.from = last + 1
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// replicaCatchUp bounds how long a scan waits for a lagging replica.
const replicaCatchUp = 10 * time.Second

// leaderHas reports whether the stream leader holds a message at seq on a
// subject that one of the filters matches.
func (r *Reader) leaderHas(ctx context.Context, seq uint64, filters []string) bool {
	m, err := r.leaderGet(ctx, r.names.Events, map[string]any{"seq": seq})
	if err != nil {
		return false
	}
	for _, f := range filters {
		if subjectMatches(f, m.Subject) {
			return true
		}
	}
	return false
}

// subjectMatches matches a subject against a filter with * and > wildcards.
func subjectMatches(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, f := range ft {
		if f == ">" {
			return len(st) > i
		}
		if i >= len(st) || (f != "*" && f != st[i]) {
			return false
		}
	}
	return len(ft) == len(st)
}

// scanOnce is one pass of scan with one consumer. It returns the position
// of the last message it passed to fn and whether fn or upTo ended it.
//
// Messages are taken with a callback (Consume), which runs fn on the
// subscription's own goroutine: the iterator (Messages, Next) costs a
// channel hand-off and two timers per message, a tenth of what a raw read
// costs. This goroutine only watches: it waits for the callback to finish
// the scan, for the context, or for the stream to go quiet.
func (r *Reader) scanOnce(ctx context.Context, o scanOpts, fn func(*Record) error) (last uint64, done bool, err error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: o.filters, DeliverPolicy: jetstream.DeliverAllPolicy}
	if o.from > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = o.from
	}
	cons, err := r.events.OrderedConsumer(ctx, cfg)
	if err != nil {
		return 0, false, fmt.Errorf("create ordered consumer on %s: %w", r.names.Events, err)
	}
	defer func() {
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			r.events.DeleteConsumer(dctx, info.Name) //nolint:errcheck // ordered consumers expire on their own
			cancel()
		}
	}()
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		return 0, false, nil
	}

	// The callback owns the scan's state while it runs; mu hands it over.
	// Once ended is set no further message reaches fn.
	var (
		mu       sync.Mutex
		ended    bool
		result   error
		finished = make(chan struct{})
		progress atomic.Uint64 // messages seen, for the idle watch
		slab     []Record      // records are allocated in slabs: one allocation per 256
	)
	end := func(d bool, e error) { // with mu held
		if !ended {
			ended, done, result = true, d, e
			close(finished)
		}
	}
	handler := func(msg jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if ended {
			return
		}
		progress.Add(1)
		md, err := msg.Metadata()
		if err != nil {
			end(false, fmt.Errorf("read %s: metadata: %w", r.names.Events, err))
			return
		}
		seq := md.Sequence.Stream
		if o.upTo != 0 && seq > o.upTo {
			end(true, nil)
			return
		}
		if len(slab) == 0 {
			slab = make([]Record, 256)
		}
		rec := &slab[0]
		slab = slab[1:]
		*rec = Record{Position: seq, Subject: msg.Subject(), Header: msg.Headers(), Time: md.Timestamp, Body: msg.Data()}
		rec.Tenant, rec.Session, _ = splitSubject(rec.Subject)
		if err := fn(rec); err != nil {
			last = seq
			if errors.Is(err, errStopScan) {
				end(true, nil)
			} else {
				end(false, err)
			}
			return
		}
		last = seq
		if seq == o.upTo {
			end(true, nil)
		} else if md.NumPending == 0 {
			end(false, nil)
		}
	}
	// A closed connection ends the scan at once (other errors make the
	// ordered consumer start over where it was, or show as silence).
	closed := make(chan error, 1)
	onErr := func(_ jetstream.ConsumeContext, err error) {
		if errors.Is(err, jetstream.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionClosed) {
			select {
			case closed <- err:
			default:
			}
		}
	}
	cc, err := cons.Consume(handler, jetstream.PullMaxMessages(4096), jetstream.ConsumeErrHandler(onErr))
	if err != nil {
		return 0, false, fmt.Errorf("consume %s: %w", r.names.Events, err)
	}
	defer cc.Stop()
	stop := func(e error) (uint64, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		end(false, e)
		return last, done, result
	}

	idle := r.IdleTimeout
	if idle <= 0 {
		idle = 5 * time.Second
	}
	const maxIdle = 12 // bounded waits for a message the stream announced
	tick := time.NewTicker(idle)
	defer tick.Stop()
	for waits, seen := 0, uint64(0); ; {
		select {
		case <-finished:
			mu.Lock()
			defer mu.Unlock()
			return last, done, result
		case <-ctx.Done():
			return stop(ctx.Err())
		case err := <-closed:
			return stop(fmt.Errorf("read %s: %w", r.names.Events, err))
		case <-tick.C:
		}
		if n := progress.Load(); n != seen {
			seen, waits = n, 0
			continue
		}
		// Quiet for a whole tick: the announced messages may have been
		// deleted meanwhile, so ask the server whether anything is left.
		info, ierr := cons.Info(ctx)
		if ierr == nil && info.NumPending == 0 {
			return stop(nil)
		}
		if waits++; waits >= maxIdle {
			return stop(fmt.Errorf("read %s: no message for %s", r.names.Events, time.Duration(maxIdle)*idle))
		}
	}
}

// firstEvent returns the first message of a history, or nil when the stream
// has none on its subject.
func (r *Reader) firstEvent(ctx context.Context, tenant, session string) (*Record, error) {
	m, err := r.events.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(EventSubject(tenant, session)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read first event of %s: %w", session, err)
	}
	return &Record{Position: m.Sequence, Subject: m.Subject, Tenant: tenant, Session: session, Header: m.Header, Time: m.Time, Body: m.Data}, nil
}

// maxLineage bounds how many ancestors a history may have: forks of forks
// deeper than this are reported instead of followed.
const maxLineage = 10000

// link is one history of a lineage and the last position of it that counts.
type link struct {
	subject string
	upTo    uint64 // 0: all of it
}

// lineage returns the histories a session's state depends on: the session
// itself and, for a fork, its parent up to the fork position, and so on.
// A first event that does not decode ends the lineage; replay reports it.
func (r *Reader) lineage(ctx context.Context, tenant, session string, upTo uint64) ([]link, error) {
	out := []link{{subject: EventSubject(tenant, session), upTo: upTo}}
	seen := map[string]bool{session: true}
	for id := session; len(out) < maxLineage; {
		rec, err := r.firstEvent(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			if id == session {
				return nil, domain.ErrSessionNotFound
			}
			return out, nil // the replay reports the missing parent
		}
		ev, err := domain.DecodeEvent(rec.Body)
		if err != nil || ev.Type != domain.SessionForked || ev.Created == nil {
			return out, nil
		}
		o := ev.Created.Origin
		if o.Parent == "" || seen[o.Parent] {
			return out, nil
		}
		seen[o.Parent] = true
		out = append(out, link{subject: EventSubject(tenant, o.Parent), upTo: o.Position})
		id = o.Parent
	}
	return nil, fmt.Errorf("session %s has more than %d ancestors", session, maxLineage)
}
