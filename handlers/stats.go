package handlers

import (
	"slices"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// maxTimelineBuckets bounds the timeline of a long-lived session.
const maxTimelineBuckets = 1000

func (s *Service) sessionStats(c *call) (any, error) {
	var req client.SessionStatsRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	width := 24 * time.Hour
	switch req.Bucket {
	case "", "day":
		req.Bucket = "day"
	case "hour":
		width = time.Hour
	default:
		return nil, domain.Errorf(domain.CodeInvalidArgument, "bucket must be hour or day")
	}
	head, err := s.store.Head(c.ctx, c.tenant, id)
	if err != nil {
		return nil, err
	}
	st := newStatsFold(id, head.Position, req.Bucket, width)
	for from := head.Start; from <= head.Position; {
		evs, err := s.store.Events(c.ctx, c.tenant, id, from, head.Position, client.MaxEventsLimit)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			break
		}
		for _, se := range evs {
			st.add(se.Event)
		}
		from = evs[len(evs)-1].Position + 1
	}
	return st.reply(), nil
}

// statsFold accumulates a session's figures event by event.
type statsFold struct {
	r        client.SessionStatsReply
	width    time.Duration
	buckets  map[time.Time]*client.StatsBucket
	paths    map[string]struct{}
	requests map[string]int // approval id -> index in r.Approvals
}

func newStatsFold(id string, pos uint64, bucket string, width time.Duration) *statsFold {
	return &statsFold{
		r: client.SessionStatsReply{Session: id, Position: pos, Bucket: bucket, ByType: map[string]int{},
			ByActor: map[string]int{}, Timeline: []client.StatsBucket{}, Approvals: []client.ApprovalTiming{}},
		width: width, buckets: map[time.Time]*client.StatsBucket{}, paths: map[string]struct{}{}, requests: map[string]int{},
	}
}

func (f *statsFold) add(e *domain.Event) {
	at := e.At()
	if f.r.Events == 0 {
		f.r.First = at
	}
	f.r.Events++
	f.r.Last = at
	f.r.ByType[string(e.Type)]++
	f.r.ByActor[e.Actor]++
	start := at.Truncate(f.width)
	b := f.buckets[start]
	if b == nil {
		b = &client.StatsBucket{Start: start, ByType: map[string]int{}}
		f.buckets[start] = b
	}
	b.Events++
	b.ByType[string(e.Type)]++
	if e.Type != domain.SessionCreated && e.Type != domain.SessionForked {
		for _, p := range e.Paths() {
			f.paths[p] = struct{}{}
		}
	}
	f.r.ContentBytes += contentBytes(e)
	if a := e.Approval; a != nil {
		f.approval(e, a, at)
	}
}

func (f *statsFold) approval(e *domain.Event, a *domain.ApprovalData, at time.Time) {
	switch e.Type {
	case domain.ApprovalRequested:
		f.requests[a.ID] = len(f.r.Approvals)
		f.r.Approvals = append(f.r.Approvals, client.ApprovalTiming{ID: a.ID, Reason: a.Reason, Requester: e.Actor, RequestedAt: at})
	case domain.ApprovalGranted, domain.ApprovalDenied:
		i, ok := f.requests[a.ID]
		if !ok || f.r.Approvals[i].Decision != "" {
			return // a later grant of the same request: the first counts
		}
		t := &f.r.Approvals[i]
		t.Decision = "granted"
		if e.Type == domain.ApprovalDenied {
			t.Decision = "denied"
		}
		t.DecidedAt, t.Seconds = at, at.Sub(t.RequestedAt).Seconds()
	}
}

func (f *statsFold) reply() client.SessionStatsReply {
	r := f.r
	r.FilesChanged = len(f.paths)
	if r.Events > 0 {
		// Every bucket from the first to the last, so a chart's x axis
		// is time; a history longer than the cap keeps its newest part.
		first := r.First.Truncate(f.width)
		last := r.Last.Truncate(f.width)
		if n := int(last.Sub(first)/f.width) + 1; n > maxTimelineBuckets {
			first = last.Add(-time.Duration(maxTimelineBuckets-1) * f.width)
		}
		for t := first; !t.After(last); t = t.Add(f.width) {
			if b := f.buckets[t]; b != nil {
				r.Timeline = append(r.Timeline, *b)
			} else {
				r.Timeline = append(r.Timeline, client.StatsBucket{Start: t, ByType: map[string]int{}})
			}
		}
	}
	var waits []float64
	for _, a := range r.Approvals {
		if a.Decision == "granted" {
			waits = append(waits, a.Seconds)
		}
	}
	if len(waits) > 0 {
		slices.Sort(waits)
		if n := len(waits); n%2 == 1 {
			r.MedianApprovalSeconds = waits[n/2]
		} else {
			r.MedianApprovalSeconds = (waits[n/2-1] + waits[n/2]) / 2
		}
	}
	return r
}
