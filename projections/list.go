package projections

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strand-dev/strand/domain"
)

// Sort orders of List.
const (
	SortCreated = "created"
	SortUpdated = "updated"
	OrderAsc    = "asc"
	OrderDesc   = "desc"
)

// ListFilter selects and orders sessions.
type ListFilter struct {
	// Status keeps one status; empty keeps every status but deleted.
	Status string
	// Tags keeps sessions that have every tag; an empty value only asks
	// for the key.
	Tags   map[string]string
	Owner  string
	Parent string
	Source string
	// UpdatedSince keeps sessions updated at or after it.
	UpdatedSince *time.Time
	// Sort is created (default) or updated; Order asc (default) or desc.
	Sort  string
	Order string
	// After is the cursor: the next_cursor of the previous page (same
	// sort and order).
	After string
	Limit int
	// Counts asks for the number of sessions per status that match the
	// filter's other conditions (status and cursor aside).
	Counts bool
}

// Page is one page of List.
type Page struct {
	Views []View
	// Next is the cursor of the next page, empty on the last one.
	Next string
	// Counts per status, when asked for.
	Counts map[string]int
}

// postingScan is the size up to which the views an equality filter selects
// are sorted directly instead of walking the ordered lists.
const postingScan = 4096

func (f *ListFilter) normalize() error {
	switch f.Sort {
	case "":
		f.Sort = SortCreated
	case SortCreated, SortUpdated:
	default:
		return domain.Errorf(domain.CodeInvalidArgument, "sort must be created or updated")
	}
	switch f.Order {
	case "":
		f.Order = OrderAsc
	case OrderAsc, OrderDesc:
	default:
		return domain.Errorf(domain.CodeInvalidArgument, "order must be asc or desc")
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	return nil
}

// The cursor is "<sort><order>.<unix nanos>.<id>", e.g. "ca.1700000000000000000.01H…":
// the sort key of the last view of the page, so a page starts exactly after
// it whatever changed in between.
func encodeCursor(sort, order string, k sortKey) string {
	return sort[:1] + order[:1] + "." + strconv.FormatInt(k.t, 10) + "." + k.id
}

func decodeCursor(s, sort, order string) (sortKey, error) {
	bad := domain.Errorf(domain.CodeInvalidArgument, "cursor is not a next_cursor of this sort and order")
	head, rest, ok := strings.Cut(s, ".")
	if !ok || head != sort[:1]+order[:1] {
		return sortKey{}, bad
	}
	ts, id, ok := strings.Cut(rest, ".")
	if !ok || id == "" {
		return sortKey{}, bad
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return sortKey{}, bad
	}
	return sortKey{t, id}, nil
}

// matchOthers applies every condition of f but status and cursor.
func matchOthers(v *View, f *ListFilter) bool {
	for k, want := range f.Tags {
		if got, ok := v.Tags[k]; !ok || (want != "" && got != want) {
			return false
		}
	}
	if f.Owner != "" && v.Owner != f.Owner {
		return false
	}
	if f.Parent != "" && v.Origin.Parent != f.Parent {
		return false
	}
	if f.Source != "" && v.Origin.Source != f.Source {
		return false
	}
	if f.UpdatedSince != nil && v.UpdatedAt.Before(*f.UpdatedSince) {
		return false
	}
	return true
}

func hasOthers(f *ListFilter) bool {
	return len(f.Tags) > 0 || f.Owner != "" || f.Parent != "" || f.Source != "" || f.UpdatedSince != nil
}

// smallestPosting returns the smallest set of views an equality filter
// allows (nil, false when the filter has no equality condition), and
// whether it is the filter's only condition besides status.
func (t *tenantIndex) smallestPosting(f *ListFilter) (*posting, bool, bool) {
	var keys []string
	if f.Owner != "" {
		keys = append(keys, ownerKey(f.Owner))
	}
	if f.Parent != "" {
		keys = append(keys, parentKey(f.Parent))
	}
	if f.Source != "" {
		keys = append(keys, sourceKey(f.Source))
	}
	for k, v := range f.Tags {
		if v == "" {
			keys = append(keys, tagExistsKey(k))
		} else {
			keys = append(keys, tagKey(k, v))
		}
	}
	if len(keys) == 0 {
		return nil, false, false
	}
	best := t.post[keys[0]]
	for _, k := range keys[1:] {
		if s := t.post[k]; s == nil || (best != nil && len(s.set) < len(best.set)) {
			best = s
		}
	}
	if best == nil {
		best = &posting{}
	}
	return best, true, len(keys) == 1 && f.UpdatedSince == nil
}

// query answers one page. f must be normalized.
func (x *index) query(tenant string, f ListFilter) (Page, error) {
	var after *sortKey
	if f.After != "" {
		k, err := decodeCursor(f.After, f.Sort, f.Order)
		if err != nil {
			return Page{}, err
		}
		after = &k
	}
	order := byCreated
	if f.Sort == SortUpdated {
		order = byUpdated
	}
	desc := f.Order == OrderDesc

	x.mu.RLock()
	defer x.mu.RUnlock()
	page := Page{Views: []View{}}
	t := x.tenants[tenant]
	if t == nil {
		if f.Counts {
			page.Counts = map[string]int{}
		}
		return page, nil
	}
	statusOK := func(s string) bool {
		if f.Status != "" {
			return s == f.Status
		}
		return s != string(domain.StatusDeleted)
	}
	beyond := func(k sortKey) bool {
		if after == nil {
			return true
		}
		if desc {
			return k.less(*after)
		}
		return after.less(k)
	}

	var got []item
	posting, equality, only := t.smallestPosting(&f)
	if equality && len(posting.set) <= postingScan {
		for e := range posting.set {
			k := e.keys[order]
			if statusOK(e.v.Status) && beyond(k) && matchOthers(e.v, &f) {
				got = append(got, item{k, e})
			}
		}
		slices.SortFunc(got, func(a, b item) int {
			if a.k == b.k {
				return 0
			}
			if a.k.less(b.k) != desc {
				return -1
			}
			return 1
		})
		if len(got) > f.Limit+1 {
			got = got[:f.Limit+1]
		}
	} else {
		got = t.walk(&f, order, desc, after, statusOK)
	}
	if len(got) > f.Limit {
		got = got[:f.Limit]
		page.Next = encodeCursor(f.Sort, f.Order, got[len(got)-1].k)
	}
	for _, it := range got {
		page.Views = append(page.Views, *it.e.v)
	}
	if f.Counts {
		page.Counts = t.count(&f, posting, equality, only)
	}
	return page, nil
}

// walk merges the ordered lists of the wanted statuses from the cursor and
// keeps up to limit+1 matching views.
func (t *tenantIndex) walk(f *ListFilter, order int, desc bool, after *sortKey, statusOK func(string) bool) []item {
	var since *sortKey
	if order == byUpdated && f.UpdatedSince != nil {
		since = &sortKey{t: f.UpdatedSince.UnixNano()}
	}
	var ws []*walker
	for status, l := range t.lists {
		if !statusOK(status) {
			continue
		}
		ol := &l[order]
		var w *walker
		switch {
		case desc && after != nil:
			w = ol.descBefore(*after, false)
		case desc:
			w = ol.descLast()
		case after != nil && (since == nil || !after.less(*since)):
			w = ol.ascAfter(*after, false)
		case since != nil:
			w = ol.ascAfter(*since, true)
		default:
			w = ol.ascFirst()
		}
		ws = append(ws, w)
	}
	var out []item
	for len(out) <= f.Limit {
		best := -1
		var bi item
		for i, w := range ws {
			it, ok := w.peek()
			if !ok {
				continue
			}
			if best < 0 || (it.k.less(bi.k) != desc) {
				best, bi = i, it
			}
		}
		if best < 0 {
			break
		}
		// Sorted by update time going down, nothing past since can match.
		if desc && since != nil && bi.k.less(*since) {
			break
		}
		ws[best].next()
		if matchOthers(bi.e.v, f) {
			out = append(out, bi)
		}
	}
	return out
}

// count returns the number of views per status matching f's conditions
// other than status: from the kept counts when there are none or just one
// equality, else by looking at the candidates.
func (t *tenantIndex) count(f *ListFilter, posting *posting, equality, only bool) map[string]int {
	if !hasOthers(f) {
		return maps.Clone(t.counts)
	}
	if only {
		out := maps.Clone(posting.counts)
		if out == nil {
			out = map[string]int{}
		}
		return out
	}
	out := map[string]int{}
	if equality {
		for e := range posting.set {
			if matchOthers(e.v, f) {
				out[e.v.Status]++
			}
		}
		return out
	}
	for _, e := range t.byID {
		if matchOthers(e.v, f) {
			out[e.v.Status]++
		}
	}
	return out
}

// Query returns a page of a tenant's sessions from the in-memory index. It
// waits (within ctx) until the index has loaded the bucket.
func (p *Sessions) Query(ctx context.Context, tenant string, f ListFilter) (Page, error) {
	if err := f.normalize(); err != nil {
		return Page{}, err
	}
	select {
	case <-p.idx.ready:
	case <-ctx.Done():
		return Page{}, domain.Errorf(domain.CodeUnavailable, "session views are still loading")
	}
	return p.idx.query(tenant, f)
}

// List returns a page of a tenant's sessions and the cursor of the next
// page (empty on the last): Query without counts.
func (p *Sessions) List(ctx context.Context, tenant string, f ListFilter) ([]View, string, error) {
	page, err := p.Query(ctx, tenant, f)
	if err != nil {
		return nil, "", err
	}
	return page.Views, page.Next, nil
}
