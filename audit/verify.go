package audit

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/strand-dev/strand/domain"
)

// Kind classifies a finding.
type Kind string

// The kinds of findings.
const (
	// KindDecode: the message body is not an event envelope.
	KindDecode Kind = "decode"
	// KindSubject: the subject is not a history's, or the envelope names
	// another session or tenant than its subject.
	KindSubject Kind = "subject"
	// KindHeader: a Strand header contradicts the envelope.
	KindHeader Kind = "header"
	// KindVersion: versions are not 1, 2, 3... in stream order: an event
	// is missing (a gap) or two are out of order.
	KindVersion Kind = "version"
	// KindChain: an event's prev is not the hash of the event before it.
	KindChain Kind = "chain"
	// KindFork: a fork's first event does not chain to its parent's event
	// at the fork position, or that state does not exist.
	KindFork Kind = "fork"
	// KindBlob: content an event names is missing, damaged, or of another
	// size than the event records; or content inside the event (inline)
	// does not match the hash and size the event records for it.
	KindBlob Kind = "blob"
	// KindSource: the source revision a session starts from is missing or
	// damaged.
	KindSource Kind = "source"
	// KindRoot: replay gives another Merkle root than the event records.
	KindRoot Kind = "root"
	// KindReplay: the event cannot be applied to the state before it.
	KindReplay Kind = "replay"
	// KindAnchor: the history disagrees with a head recorded earlier: the
	// event at the anchored version has another hash, or the history no
	// longer reaches that version.
	KindAnchor Kind = "anchor"
)

// Head is the last event of a history: what an auditor records to compare
// with later (an anchor), since the hash chain cannot protect the last
// event of a history by itself.
type Head struct {
	Tenant   string `json:"tenant"`
	Session  string `json:"session"`
	Position uint64 `json:"position"`
	Version  uint64 `json:"version"`
	Hash     string `json:"hash"`
}

// Finding is the first bad event of a history.
type Finding struct {
	Tenant   string `json:"tenant"`
	Session  string `json:"session"`
	Position uint64 `json:"position"`
	// Version is the version the event records (0 when it did not decode).
	Version uint64 `json:"version,omitempty"`
	Kind    Kind   `json:"kind"`
	Message string `json:"message"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s/%s position %d version %d: %s: %s", f.Tenant, f.Session, f.Position, f.Version, f.Kind, f.Message)
}

// Scope selects the histories to verify: one session (and the ancestors it
// was forked from, up to the fork points), every session of a tenant, or,
// with both empty, every session.
type Scope struct {
	Tenant  string `json:"tenant,omitempty"`
	Session string `json:"session,omitempty"`
}

// Report is the outcome of Verify.
type Report struct {
	Streams   Streams `json:"streams"`
	Scope     Scope   `json:"scope"`
	Histories int     `json:"histories"`
	Events    int     `json:"events"`
	Blobs     int     `json:"blobs"`
	// Rebuilds counts past states replayed again because they had been
	// dropped from memory (see Reader.PastStates).
	Rebuilds int `json:"rebuilds"`
	// Findings holds the first bad event of each broken history, ordered
	// by tenant and session.
	Findings []Finding `json:"findings"`
	// Heads holds the last good event of every history, ordered by tenant
	// and session.
	Heads []Head `json:"heads,omitempty"`
	// TenantLogs and TenantEntries count the tenant logs verified
	// (VerifyTenantLogs, which strand audit verify runs unless it verifies
	// one session).
	TenantLogs    int `json:"tenant_logs,omitempty"`
	TenantEntries int `json:"tenant_entries,omitempty"`
}

// OK reports whether nothing was found.
func (rep *Report) OK() bool { return len(rep.Findings) == 0 }

// Verify reads the histories in scope once, in stream order, and checks
// every event: versions 1..n in increasing positions, the hash chain (for a
// fork's first event: to the parent's event at the fork position), that
// every blob it names exists and matches its hash and size, and that replay
// gives the Merkle root it records. Each broken history yields one finding,
// its first bad event. Anchors, heads of an earlier report, are checked
// too: the event at each anchored version must still have the anchored hash.
// The error is for failures to read, not for findings.
func (r *Reader) Verify(ctx context.Context, scope Scope, anchors ...Head) (*Report, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	o, limits, err := r.scopeScan(ctx, scope)
	if err != nil {
		return nil, err
	}
	anchorSet, err := anchorMap(anchors)
	if err != nil {
		return nil, err
	}
	blobs := newBlobChecker(ctx, r)
	workers := r.Workers
	if limits != nil {
		workers = 1 // one lineage: nothing to share out
	}
	workers = max(workers, 1)
	per := r.PastStates
	if workers > 1 {
		per = max(r.PastStates/workers, 1024)
	}
	reps := make([]*replayer, workers)
	for i := range reps {
		reps[i] = r.newReplayer(ctx, per)
		reps[i].limits, reps[i].blobs, reps[i].anchors = limits, blobs, anchorSet
	}
	err = r.foldPipelined(ctx, o, reps)
	blobFindings, nblobs, berr := blobs.wait()
	if err != nil {
		return nil, err
	}
	if berr != nil {
		return nil, berr
	}
	rep := &Report{Streams: r.names, Scope: scope, Blobs: nblobs, Findings: []Finding{}}
	first := map[string]Finding{}
	seen := map[string]bool{}
	for _, p := range reps {
		rep.Rebuilds += *p.rebuilds
		for subj, h := range p.hists {
			seen[subj] = true
			rep.Histories++
			rep.Events += h.events
			if h.finding != nil {
				first[subj] = *h.finding
			}
			if s := h.state; s != nil {
				rep.Heads = append(rep.Heads, Head{Tenant: h.tenant, Session: h.session, Position: s.Position, Version: s.Version, Hash: s.LastHash.String()})
			}
			if a, ok := anchorSet[subj]; ok && h.finding == nil && h.upTo == 0 && (h.state == nil || h.state.Version < a.version) {
				var pos, v uint64
				if h.state != nil {
					pos, v = h.state.Position, h.state.Version
				}
				first[subj] = Finding{Tenant: h.tenant, Session: h.session, Position: pos, Version: v, Kind: KindAnchor,
					Message: fmt.Sprintf("history ends at version %d, the anchor names version %d: events were removed", v, a.version)}
			}
		}
	}
	for subj, a := range anchorSet {
		if !seen[subj] && inScope(scope, a.head) {
			first[subj] = Finding{Tenant: a.head.Tenant, Session: a.head.Session, Kind: KindAnchor,
				Message: fmt.Sprintf("history is gone; the anchor names version %d at position %d", a.version, a.head.Position)}
		}
	}
	for _, f := range blobFindings {
		subj := EventSubject(f.Tenant, f.Session)
		if cur, ok := first[subj]; !ok || f.Position < cur.Position {
			first[subj] = f
		}
	}
	for _, f := range first {
		rep.Findings = append(rep.Findings, f)
	}
	slices.SortFunc(rep.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Session, b.Session), cmp.Compare(a.Position, b.Position))
	})
	slices.SortFunc(rep.Heads, func(a, b Head) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Session, b.Session))
	})
	return rep, nil
}

// anchor is a parsed Head.
type anchor struct {
	head    Head
	version uint64
	hash    domain.Hash
}

func anchorMap(heads []Head) (map[string]anchor, error) {
	if len(heads) == 0 {
		return nil, nil
	}
	m := make(map[string]anchor, len(heads))
	for _, h := range heads {
		hash, err := domain.ParseHash(h.Hash)
		if err != nil || h.Version == 0 || h.Tenant == "" || h.Session == "" {
			return nil, fmt.Errorf("anchor for %s/%s is not a head (tenant, session, version, hash)", h.Tenant, h.Session)
		}
		m[EventSubject(h.Tenant, h.Session)] = anchor{head: h, version: h.Version, hash: hash}
	}
	return m, nil
}

// inScope reports whether a head belongs to the histories a scope names
// (for one session: the session itself).
func inScope(s Scope, h Head) bool {
	switch {
	case s.Session != "":
		return s.Tenant == h.Tenant && s.Session == h.Session
	case s.Tenant != "":
		return s.Tenant == h.Tenant
	}
	return true
}

// scopeScan returns what to read for a scope and, for one session, the
// histories of its lineage with the last position of each that counts.
func (r *Reader) scopeScan(ctx context.Context, scope Scope) (scanOpts, map[string]uint64, error) {
	switch {
	case scope.Session != "":
		if scope.Tenant == "" {
			return scanOpts{}, nil, fmt.Errorf("a session scope needs its tenant")
		}
		links, err := r.lineage(ctx, scope.Tenant, scope.Session, 0)
		if err != nil {
			return scanOpts{}, nil, err
		}
		limits := map[string]uint64{}
		var o scanOpts
		for _, l := range links {
			limits[l.subject] = l.upTo
			o.filters = append(o.filters, l.subject)
		}
		return o, limits, nil
	case scope.Tenant != "":
		return scanOpts{filters: []string{TenantFilter(scope.Tenant)}}, nil, nil
	}
	return scanOpts{filters: []string{AllFilter}}, nil, nil
}

// route picks the worker of a history from its first message: its parent's
// for a fork, a hash of the subject otherwise.
func route(rec *Record, family map[string]int, workers int) int {
	if t := rec.Header.Get(headerType); t == "" || t == string(domain.SessionForked) {
		if ev, err := domain.DecodeEvent(rec.Body); err == nil && ev.Type == domain.SessionForked && ev.Created != nil {
			if w, ok := family[EventSubject(rec.Tenant, ev.Created.Origin.Parent)]; ok {
				return w
			}
		}
	}
	h := fnv.New32a()
	h.Write([]byte(rec.Subject))
	return int(h.Sum32() % uint32(workers))
}
