package projections

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// The stats projection folds every event into the figures of its session
// (SessionStats, key s.<tenant>.<session>), a small copy of the figures a
// tenant's usage sums (SessionTotals, key t.<tenant>.<session>), and one
// key per distinct blob content a tenant's events name
// (b.<tenant>.<sha256 hex>, value its size). Session records carry the
// number of the session's last event folded, like the session views, so a
// redelivered event changes nothing and an early one waits (ErrGap). A
// totals key is written from its session record after it, with the same
// number, so a crash between the two is repaired by the redelivery. Blob
// keys are created before the record and never change, so a retry only
// finds them there. Every instance keeps the per-tenant sums in memory,
// fed by a watch of the totals and blob keys (tenantTotals).

// Bounds of one session's record (the whole record is one KV value).
const (
	// MaxStatsBuckets bounds the hourly and the daily timeline: the newest
	// buckets with events are kept.
	MaxStatsBuckets = 1000
	// MaxStatsPaths bounds the distinct paths a record keeps to count files
	// changed; past it the count is a lower bound (FilesCapped).
	MaxStatsPaths = 20000
)

// SessionStats is the stats read model of one session.
type SessionStats struct {
	Tenant  string `json:"tenant"`
	Session string `json:"session"`
	// Version is the number of the session's last event folded; Applied
	// its position; Gen the generation that wrote the record.
	Version uint64 `json:"version"`
	Applied uint64 `json:"applied"`
	Gen     uint64 `json:"gen,omitempty"`

	Events int `json:"events"`
	// EventBytes is what the session's events take in a file-stored
	// stream: each message's subject, headers and body plus the file
	// store's 30 or 34 bytes of framing.
	EventBytes int64                `json:"event_bytes"`
	First      time.Time            `json:"first,omitzero"`
	Last       time.Time            `json:"last,omitzero"`
	ByType     map[string]int       `json:"by_type,omitempty"`
	ByActor    map[string]int       `json:"by_actor,omitempty"`
	Hours      []domain.StatsBucket `json:"hours,omitempty"`
	Days       []domain.StatsBucket `json:"days,omitempty"`
	// Paths are the sorted 64-bit FNV-1a hashes of the paths events
	// changed, 8 bytes each: FilesChanged counts them.
	Paths        []byte `json:"paths,omitempty"`
	FilesChanged int    `json:"files_changed"`
	FilesCapped  bool   `json:"files_capped,omitempty"`
	// ContentBytes is the file content written, every write counted;
	// BlobBytesWritten the part of it that went to the blob store (not
	// inline in the event).
	ContentBytes     int64                   `json:"content_bytes"`
	BlobBytesWritten int64                   `json:"blob_bytes_written"`
	Approvals        []domain.ApprovalTiming `json:"approvals,omitempty"`
}

// SessionTotals are the figures of a session that a tenant's usage sums.
type SessionTotals struct {
	Version          uint64 `json:"version"`
	Gen              uint64 `json:"gen,omitempty"`
	Events           int64  `json:"events"`
	EventBytes       int64  `json:"event_bytes"`
	ContentBytes     int64  `json:"content_bytes"`
	BlobBytesWritten int64  `json:"blob_bytes_written"`
}

func (s *SessionStats) totals() SessionTotals {
	return SessionTotals{Version: s.Version, Gen: s.Gen, Events: int64(s.Events), EventBytes: s.EventBytes,
		ContentBytes: s.ContentBytes, BlobBytesWritten: s.BlobBytesWritten}
}

func statsKey(tenant, id string) string           { return "s." + tenant + "." + id }
func totalsKey(tenant, id string) string          { return "t." + tenant + "." + id }
func blobKey(tenant string, h domain.Hash) string { return "b." + tenant + "." + h.String() }

// Stats is the session-stats projection.
type Stats struct {
	*readModel
	// cache holds the record bodies this instance wrote last, decoded
	// afresh for every event so no two folds share a map.
	cache *lru.Cache[string, cachedBody]
	tot   *tenantTotals
}

type cachedBody struct {
	body []byte
	rev  uint64
}

// OpenStats provisions the stats bucket and returns the projection; Start
// runs it.
func OpenStats(ctx context.Context, js jetstream.JetStream, stream, filter string, replicas int, log *slog.Logger) (*Stats, error) {
	m, err := openReadModel(ctx, js, stream, filter, replicas, log, names.StatsBucket,
		"Strand session figures and tenant usage (a projection of the event stream)")
	if err != nil {
		return nil, err
	}
	cache, _ := lru.New[string, cachedBody](4096)
	return &Stats{readModel: m, cache: cache, tot: newTenantTotals()}, nil
}

// Spec describes the projection to the runtime.
func (p *Stats) Spec() Spec {
	return Spec{
		Name: "stats", Durable: names.StatsConsumer, Description: "session figures and tenant usage", Filter: p.filter,
		Apply: p.apply, ApplyBatch: p.applyBatch, Sweep: p.sweep,
		// Figures for dashboards and usage: a second late is nothing, and
		// a session's record (its paths, its timelines) is written once
		// a second under a steady flow instead of once per write.
		Linger: time.Second,
	}
}

// Start starts the watch that keeps the tenant sums, then joins the
// projection's consumer.
func (p *Stats) Start(ctx context.Context) error {
	return p.run(ctx, p.Spec(), p.StartTotals)
}

// StartTotals starts the watch of the totals and blob keys without folding
// events (an instance that only serves reads). Start calls it.
func (p *Stats) StartTotals(context.Context) error {
	return p.startWatch([]string{"t.>", "b.>"}, p.tot.watch)
}

// Stop stops folding (other instances carry on) and the watch.
func (p *Stats) Stop() { p.stop() }

// Session returns a session's record; ok is false when no event of it is
// folded yet.
func (p *Stats) Session(ctx context.Context, tenant, id string) (SessionStats, bool, error) {
	s, rev, err := p.load(ctx, statsKey(tenant, id), false)
	return s, rev != 0, err
}

// Status reports the projection's position and lag.
func (p *Stats) Status(ctx context.Context) (Status, error) {
	return StatusOf(ctx, p.js, p.stream, p.Spec())
}

func (p *Stats) load(ctx context.Context, key string, cached bool) (SessionStats, uint64, error) {
	var s SessionStats
	body, rev := []byte(nil), uint64(0)
	if c, ok := p.cache.Get(key); ok && cached {
		body, rev = c.body, c.rev
	} else {
		entry, err := p.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return s, 0, nil
		}
		if err != nil {
			return s, 0, err
		}
		body, rev = entry.Value(), entry.Revision()
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return s, 0, fmt.Errorf("stats %s: %w", key, err)
	}
	return s, rev, nil
}

func (p *Stats) apply(ctx context.Context, d Delivery) error {
	_, tenant, id, version, decErr := eventOf(d)
	if decErr != nil {
		p.log.Error("session stats: undecodable event stepped over", "seq", d.Seq, "subject", d.Subject, "err", decErr)
		if id == "" || version == 0 {
			return nil
		}
	}
	key := statsKey(tenant, id)
	cached := true
	for attempt := 0; attempt < 20; attempt++ {
		s, rev, err := p.load(ctx, key, cached)
		if err != nil {
			return err
		}
		if s.Gen > d.Gen {
			return ErrStaleGeneration
		}
		if s.Gen < d.Gen {
			s = SessionStats{} // an older generation's record: fold again from event 1
		}
		if s.Version >= version {
			// Folded already: a redelivery, perhaps after a crash before
			// the totals were written.
			return p.syncTotals(ctx, tenant, id, s)
		}
		steps := []Delivery{d}
		if s.Version+1 != version {
			if cached {
				cached = false
				continue
			}
			if steps, err = fillGap(ctx, p.js, p.stream, p.log, "session stats", s.Applied, s.Version, d, version); err != nil || len(steps) == 0 {
				return cmp.Or(err, ErrGap)
			}
		}
		for _, step := range steps {
			ev, _, _, n, _ := eventOf(step)
			if ev != nil {
				if err := p.claimBlobs(ctx, tenant, ev); err != nil {
					return err
				}
				foldStats(&s, ev)
			}
			s.EventBytes += storedSize(step)
			s.Version, s.Applied = n, step.Seq
		}
		s.Tenant, s.Session, s.Gen = tenant, id, d.Gen
		body, err := json.Marshal(s)
		if err != nil {
			return err
		}
		if rev == 0 {
			rev, err = p.kv.Create(ctx, key, body)
		} else {
			rev, err = p.kv.Update(ctx, key, body, rev)
		}
		if err == nil {
			p.cache.Add(key, cachedBody{body, rev})
			if err := p.syncTotals(ctx, tenant, id, s); err != nil {
				return err
			}
			if steps[len(steps)-1].Seq != d.Seq {
				return ErrGap // a longer gap than one read fills: folded part of it
			}
			return nil
		}
		p.cache.Remove(key)
		cached = false
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return err
		}
	}
	return fmt.Errorf("stats %s: too many concurrent updates", key)
}

// applyBatch folds a batch of events (in stream order): each session's
// events in memory, its record written once, then its totals, with the
// sessions of the batch written concurrently. From the first event that
// does not follow on, or for every event of a session whose write lost a
// race, events go through apply one by one (which reloads the record).
func (p *Stats) applyBatch(ctx context.Context, ds []Delivery) []error {
	errs := make([]error, len(ds))
	type decoded struct {
		ev      *domain.Event
		tenant  string
		id      string
		version uint64
	}
	evs := make([]decoded, len(ds))
	byKey := map[string][]int{}
	var keys []string
	for i, d := range ds {
		ev, tenant, id, version, decErr := eventOf(d)
		if decErr != nil {
			p.log.Error("session stats: undecodable event stepped over", "seq", d.Seq, "subject", d.Subject, "err", decErr)
			if id == "" || version == 0 {
				continue
			}
		}
		evs[i] = decoded{ev, tenant, id, version}
		key := statsKey(tenant, id)
		if _, ok := byKey[key]; !ok {
			keys = append(keys, key)
		}
		byKey[key] = append(byKey[key], i)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, statsWriters)
	for _, key := range keys {
		idx := byKey[key]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			first := evs[idx[0]]
			folded, rest, err := p.foldGroup(ctx, key, first.tenant, first.id, ds, idx,
				func(i int) (*domain.Event, uint64) { return evs[i].ev, evs[i].version })
			for _, i := range folded {
				errs[i] = err
			}
			if errors.Is(err, errStatsRace) {
				rest = append(folded, rest...)
			} else if err != nil {
				for _, i := range rest {
					errs[i] = err
				}
				return
			}
			for _, i := range rest {
				errs[i] = p.apply(ctx, ds[i])
			}
		}()
	}
	wg.Wait()
	return errs
}

// statsWriters bounds the records of one batch written at once.
const statsWriters = 16

// errStatsRace is foldGroup's: another instance wrote the record meanwhile.
var errStatsRace = errors.New("session stats changed meanwhile")

// foldGroup folds one session's events of a batch into its record and
// writes it once (then its totals). folded are the events it applied or
// found applied, rest those left for apply; err applies to folded
// (errStatsRace: the record changed meanwhile, apply them again).
func (p *Stats) foldGroup(ctx context.Context, key, tenant, id string, ds []Delivery, idx []int, event func(int) (*domain.Event, uint64)) (folded, rest []int, err error) {
	gen := ds[idx[0]].Gen
	s, rev, err := p.load(ctx, key, true)
	if err != nil {
		return nil, idx, err
	}
	if s.Gen > gen {
		return nil, idx, ErrStaleGeneration
	}
	if s.Gen < gen {
		s = SessionStats{}
	}
	changed := false
	for n, i := range idx {
		ev, version := event(i)
		if s.Version >= version {
			folded = append(folded, i) // a redelivery
			continue
		}
		if s.Version+1 != version {
			rest = idx[n:]
			break
		}
		if ev != nil {
			if err := p.claimBlobs(ctx, tenant, ev); err != nil {
				return folded, idx[n:], err
			}
			foldStats(&s, ev)
		}
		s.Tenant, s.Session = tenant, id
		s.EventBytes += storedSize(ds[i])
		s.Version, s.Applied, s.Gen = version, ds[i].Seq, gen
		folded, changed = append(folded, i), true
	}
	if changed {
		body, err := json.Marshal(s)
		if err != nil {
			return folded, rest, err
		}
		if rev == 0 {
			rev, err = p.kv.Create(ctx, key, body)
		} else {
			rev, err = p.kv.Update(ctx, key, body, rev)
		}
		if err != nil {
			p.cache.Remove(key)
			if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				return folded, rest, errStatsRace
			}
			return folded, rest, err
		}
		p.cache.Add(key, cachedBody{body, rev})
	}
	if s.Version == 0 {
		return folded, rest, nil
	}
	return folded, rest, p.syncTotals(ctx, tenant, id, s)
}

// syncTotals writes a session's totals from its record unless they are
// there already (same generation, same or a later event).
func (p *Stats) syncTotals(ctx context.Context, tenant, id string, s SessionStats) error {
	key := totalsKey(tenant, id)
	want := s.totals()
	body, err := json.Marshal(want)
	if err != nil {
		return err
	}
	for attempt := 0; attempt < 20; attempt++ {
		var have SessionTotals
		entry, err := p.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = p.kv.Create(ctx, key, body)
		case err != nil:
			return err
		default:
			if json.Unmarshal(entry.Value(), &have) == nil && (have.Gen > want.Gen || (have.Gen == want.Gen && have.Version >= want.Version)) {
				return nil
			}
			_, err = p.kv.Update(ctx, key, body, entry.Revision())
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return err
		}
	}
	return fmt.Errorf("totals %s: too many concurrent updates", key)
}

// claimBlobs records, once per tenant and content, the size of each blob
// the event names. Every key is created once and never changes, so a
// retried event finds its keys there.
func (p *Stats) claimBlobs(ctx context.Context, tenant string, ev *domain.Event) error {
	for _, op := range ev.Ops {
		if op.Kind != domain.OpWrite || op.Inline() {
			continue
		}
		h, ok := domain.HashFromBytes(op.Content)
		if !ok || h.IsZero() {
			continue
		}
		key := blobKey(tenant, h)
		if _, ok := p.cache.Get(key); ok {
			continue
		}
		_, err := p.kv.Create(ctx, key, []byte(strconv.FormatInt(op.Size, 10)))
		if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("blob key %s: %w", key, err)
		}
		p.cache.Add(key, cachedBody{})
	}
	return nil
}

// storedSize is what a delivered event takes in a file-stored stream (the
// nats-server file store's record: 22 bytes of length, sequence, time and
// subject length, the subject, 4 bytes of header length and the headers
// when there are any, the body, an 8-byte checksum).
func storedSize(d Delivery) int64 {
	n := int64(22 + len(d.Subject) + len(d.Data) + 8)
	if len(d.Header) > 0 {
		n += 4 + headerSize(d.Header)
	}
	return n
}

// headerSize is the length of a header block as NATS encodes it.
func headerSize(h nats.Header) int64 {
	n := int64(len("NATS/1.0\r\n") + len("\r\n"))
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + len(": ") + len(v) + len("\r\n"))
		}
	}
	return n
}

// foldStats adds one event to a session's figures.
func foldStats(s *SessionStats, e *domain.Event) {
	at := e.At()
	if s.Events == 0 {
		s.First = at
	}
	s.Events++
	s.Last = at
	if s.ByType == nil {
		s.ByType = map[string]int{}
	}
	if s.ByActor == nil {
		s.ByActor = map[string]int{}
	}
	s.ByType[string(e.Type)]++
	s.ByActor[e.Actor]++
	s.Hours = addToBucket(s.Hours, at.Truncate(time.Hour), e.Type)
	s.Days = addToBucket(s.Days, at.Truncate(24*time.Hour), e.Type)
	if e.Type != domain.SessionCreated && e.Type != domain.SessionForked {
		for _, path := range e.Paths() {
			s.addPath(path)
		}
	}
	for _, op := range e.Ops {
		if op.Kind == domain.OpWrite && op.Size > 0 {
			s.ContentBytes += op.Size
			if !op.Inline() {
				s.BlobBytesWritten += op.Size
			}
		}
	}
	if a := e.Approval; a != nil {
		s.foldApproval(e, a, at)
	}
}

// addToBucket counts an event in the bucket starting at start, keeping the
// newest MaxStatsBuckets buckets (events arrive in time order, give or
// take a clock step back, which lands in an older bucket).
func addToBucket(bs []domain.StatsBucket, start time.Time, t domain.EventType) []domain.StatsBucket {
	i, found := slices.BinarySearchFunc(bs, start, func(b domain.StatsBucket, t time.Time) int { return b.Start.Compare(t) })
	if !found {
		bs = slices.Insert(bs, i, domain.StatsBucket{Start: start, ByType: map[string]int{}})
	}
	bs[i].Events++
	bs[i].ByType[string(t)]++
	if len(bs) > MaxStatsBuckets {
		bs = slices.Delete(bs, 0, len(bs)-MaxStatsBuckets)
	}
	return bs
}

// addPath counts a path once.
func (s *SessionStats) addPath(path string) {
	h := fnv.New64a()
	h.Write([]byte(path))
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], h.Sum64())
	n := len(s.Paths) / 8
	i := sort.Search(n, func(j int) bool { return bytes.Compare(s.Paths[j*8:j*8+8], k[:]) >= 0 })
	found := i < n && bytes.Equal(s.Paths[i*8:i*8+8], k[:])
	if found {
		return
	}
	if n >= MaxStatsPaths {
		s.FilesCapped = true
		return
	}
	s.Paths = slices.Insert(s.Paths, i*8, k[:]...)
	s.FilesChanged++
}

func (s *SessionStats) foldApproval(e *domain.Event, a *domain.ApprovalData, at time.Time) {
	switch e.Type {
	case domain.ApprovalRequested:
		s.Approvals = append(s.Approvals, domain.ApprovalTiming{ID: a.ID, Reason: a.Reason, Requester: e.Actor, RequestedAt: at})
	case domain.ApprovalGranted, domain.ApprovalDenied:
		i := slices.IndexFunc(s.Approvals, func(t domain.ApprovalTiming) bool { return t.ID == a.ID })
		if i < 0 || s.Approvals[i].Decision != "" {
			return // a later grant of the same request: the first counts
		}
		t := &s.Approvals[i]
		t.Decision = "granted"
		if e.Type == domain.ApprovalDenied {
			t.Decision = "denied"
		}
		t.DecidedAt, t.Seconds = at, at.Sub(t.RequestedAt).Seconds()
	}
}

// Timeline returns the record's timeline in buckets of an hour or a day,
// oldest first, with the empty buckets between the first and the last
// included (at most MaxStatsBuckets, the newest).
func (s *SessionStats) Timeline(width time.Duration) []domain.StatsBucket {
	src := s.Days
	if width == time.Hour {
		src = s.Hours
	}
	out := []domain.StatsBucket{}
	if len(src) == 0 {
		return out
	}
	first, last := src[0].Start, src[len(src)-1].Start
	if n := int(last.Sub(first)/width) + 1; n > MaxStatsBuckets {
		first = last.Add(-time.Duration(MaxStatsBuckets-1) * width)
	}
	j := 0
	for t := first; !t.After(last); t = t.Add(width) {
		for j < len(src) && src[j].Start.Before(t) {
			j++
		}
		if j < len(src) && src[j].Start.Equal(t) {
			out = append(out, src[j])
		} else {
			out = append(out, domain.StatsBucket{Start: t, ByType: map[string]int{}})
		}
	}
	return out
}

// MedianApprovalSeconds is the median wait of the granted requests (0:
// none granted).
func (s *SessionStats) MedianApprovalSeconds() float64 {
	var waits []float64
	for _, a := range s.Approvals {
		if a.Decision == "granted" {
			waits = append(waits, a.Seconds)
		}
	}
	if len(waits) == 0 {
		return 0
	}
	slices.Sort(waits)
	n := len(waits)
	if n%2 == 1 {
		return waits[n/2]
	}
	return (waits[n/2-1] + waits[n/2]) / 2
}

// sweep deletes the session records and totals that generations older
// than gen wrote and gen did not rewrite. Blob keys hold for every
// generation and stay.
func (p *Stats) sweep(ctx context.Context, gen uint64) error {
	lister, err := p.kv.ListKeysFiltered(ctx, "s.>", "t.>")
	if err != nil {
		return err
	}
	for key := range lister.Keys() {
		e, err := p.kv.Get(ctx, key)
		if err != nil {
			continue
		}
		var g struct {
			Gen uint64 `json:"gen"`
		}
		if json.Unmarshal(e.Value(), &g) == nil && g.Gen >= gen {
			continue
		}
		if err := p.kv.Delete(ctx, key, jetstream.LastRevision(e.Revision())); err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return err
		}
		p.cache.Remove(key)
	}
	return nil
}
