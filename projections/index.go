package projections

import (
	"sync"
)

// The session index is an in-memory copy of the session views that every
// instance keeps, fed by a watch of the views bucket (the bucket is the
// shared, durable read model; the index only makes it fast to page). It
// answers session.list and the tenant-wide review queue without reading
// the bucket.
//
// Per tenant it keeps, for every status, the views in creation order and
// in update order (olist), a count per status, and posting sets for the
// equality filters (owner, parent, source, tags). A page walks the ordered
// lists of the wanted statuses from the cursor, or, when an equality filter
// selects few views, sorts those few.
//
// Lock order: index.mu only; nothing is called while holding it.

// orders of the index.
const (
	byCreated = 0
	byUpdated = 1
)

type entry struct {
	v    *View
	keys [2]sortKey
}

// posting is the set of views with one owner, parent, source or tag, and
// how many of them have each status (so counts for one equality filter
// cost nothing).
type posting struct {
	set    map[*entry]struct{}
	counts map[string]int
}

type postings map[string]*posting

func (p postings) add(k string, e *entry) {
	s := p[k]
	if s == nil {
		s = &posting{set: map[*entry]struct{}{}, counts: map[string]int{}}
		p[k] = s
	}
	s.set[e] = struct{}{}
	s.counts[e.v.Status]++
}

func (p postings) del(k string, e *entry) {
	s := p[k]
	if s == nil {
		return
	}
	if _, ok := s.set[e]; !ok {
		return
	}
	delete(s.set, e)
	if s.counts[e.v.Status]--; s.counts[e.v.Status] <= 0 {
		delete(s.counts, e.v.Status)
	}
	if len(s.set) == 0 {
		delete(p, k)
	}
}

type tenantIndex struct {
	byID    map[string]*entry
	lists   map[string]*[2]olist
	counts  map[string]int
	post    postings
	pending map[*entry]struct{}
}

func newTenantIndex() *tenantIndex {
	return &tenantIndex{byID: map[string]*entry{}, lists: map[string]*[2]olist{}, counts: map[string]int{},
		post: postings{}, pending: map[*entry]struct{}{}}
}

// posting keys: one per equality a filter can ask for.
func ownerKey(o string) string     { return "o\x00" + o }
func parentKey(p string) string    { return "p\x00" + p }
func sourceKey(s string) string    { return "s\x00" + s }
func tagKey(k, v string) string    { return "t\x00" + k + "\x00" + v }
func tagExistsKey(k string) string { return "k\x00" + k }

func entryPostings(v *View) []string {
	out := make([]string, 0, 3+2*len(v.Tags))
	if v.Owner != "" {
		out = append(out, ownerKey(v.Owner))
	}
	if v.Origin.Parent != "" {
		out = append(out, parentKey(v.Origin.Parent))
	}
	if v.Origin.Source != "" {
		out = append(out, sourceKey(v.Origin.Source))
	}
	for k, val := range v.Tags {
		out = append(out, tagKey(k, val), tagExistsKey(k))
	}
	return out
}

func (t *tenantIndex) add(e *entry) {
	t.byID[e.v.ID] = e
	l := t.lists[e.v.Status]
	if l == nil {
		l = &[2]olist{}
		t.lists[e.v.Status] = l
	}
	l[byCreated].insert(item{e.keys[byCreated], e})
	l[byUpdated].insert(item{e.keys[byUpdated], e})
	t.counts[e.v.Status]++
	for _, k := range entryPostings(e.v) {
		t.post.add(k, e)
	}
	if len(e.v.Pending) > 0 {
		t.pending[e] = struct{}{}
	}
}

func (t *tenantIndex) del(e *entry) {
	delete(t.byID, e.v.ID)
	if l := t.lists[e.v.Status]; l != nil {
		l[byCreated].remove(e.keys[byCreated])
		l[byUpdated].remove(e.keys[byUpdated])
	}
	if t.counts[e.v.Status]--; t.counts[e.v.Status] <= 0 {
		delete(t.counts, e.v.Status)
	}
	for _, k := range entryPostings(e.v) {
		t.post.del(k, e)
	}
	delete(t.pending, e)
}

// index holds every tenant's views.
type index struct {
	mu      sync.RWMutex
	tenants map[string]*tenantIndex
	ready   chan struct{}
	once    sync.Once
}

func newIndex() *index {
	return &index{tenants: map[string]*tenantIndex{}, ready: make(chan struct{})}
}

func (x *index) markReady() { x.once.Do(func() { close(x.ready) }) }

// put adds a view or replaces the one with its id.
func (x *index) put(v *View) {
	e := &entry{v: v, keys: [2]sortKey{{v.CreatedAt.UnixNano(), v.ID}, {v.UpdatedAt.UnixNano(), v.ID}}}
	x.mu.Lock()
	defer x.mu.Unlock()
	t := x.tenants[v.Tenant]
	if t == nil {
		t = newTenantIndex()
		x.tenants[v.Tenant] = t
	}
	if old := t.byID[v.ID]; old != nil {
		t.del(old)
	}
	t.add(e)
}

// remove drops a view.
func (x *index) remove(tenant, id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	t := x.tenants[tenant]
	if t == nil {
		return
	}
	if old := t.byID[id]; old != nil {
		t.del(old)
	}
}
