package web

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// statuses are the filters of the sessions list, in the order shown.
var statuses = []string{"active", "pending_approval", "conflict", "archived", "deleted"}

// sessionsData is the sessions list page.
type sessionsData struct {
	Filter   sessionFilter
	Sessions []client.SessionView
	Counts   []statusCount
	Total    int
	Next     string // link to the next page, empty on the last
	First    string // link to the first page, empty on it
}

type sessionFilter struct {
	Status, Owner, Source, Parent, Tag string
}

type statusCount struct {
	Status string
	Count  int
	Link   string
	On     bool
}

// sessionsPage lists sessions from the session-views read model, newest
// activity first, a page at a time: the cursor of session.list pages
// through any number of sessions at the cost of one page.
func (a *App) sessionsPage(w http.ResponseWriter, r *http.Request) {
	c, ok := a.client(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := sessionFilter{Status: q.Get("status"), Owner: q.Get("owner"), Source: q.Get("source"), Parent: q.Get("parent"), Tag: q.Get("tag")}
	req := client.ListSessionsRequest{
		Status: f.Status, Owner: f.Owner, Source: f.Source, Parent: f.Parent,
		Cursor: q.Get("cursor"), Limit: a.opts.PageSize, Sort: "updated", Order: "desc", Counts: true,
	}
	if f.Tag != "" {
		k, v, ok := strings.Cut(f.Tag, "=")
		if !ok || k == "" {
			a.fail(w, r, domain.Errorf(domain.CodeInvalidArgument, "a tag filter is key=value"))
			return
		}
		req.Tags = map[string]string{k: v}
	}
	list, err := c.ListSessions(r.Context(), req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	d := sessionsData{Filter: f, Sessions: list.Sessions}
	base := "/?" + filterQuery(f, "").Encode()
	for _, s := range statuses {
		n := list.Counts[s]
		d.Total += n
		link := withQuery(base, "status", s, "cursor", "")
		if f.Status == s {
			link = withQuery(base, "status", "", "cursor", "")
		}
		d.Counts = append(d.Counts, statusCount{Status: s, Count: n, Link: link, On: f.Status == s})
	}
	if list.NextCursor != "" {
		d.Next = withQuery("/?"+filterQuery(f, f.Status).Encode(), "cursor", list.NextCursor)
	}
	if req.Cursor != "" {
		d.First = "/?" + filterQuery(f, f.Status).Encode()
	}
	a.render(w, r, c, "sessions", "Sessions", d)
}

func filterQuery(f sessionFilter, status string) url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"status": status, "owner": f.Owner, "source": f.Source, "parent": f.Parent, "tag": f.Tag} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// queueData is the review queue page.
type queueData struct {
	Group  string
	Groups []queueGroup
}

type queueGroup struct {
	Name     string
	Requests []client.ApprovalView
}

// queuePage shows the tenant's pending approval requests by reviewer group
// (the review-queue read model), oldest first: what waits for a decision.
func (a *App) queuePage(w http.ResponseWriter, r *http.Request) {
	c, ok := a.client(w, r)
	if !ok {
		return
	}
	group := r.URL.Query().Get("group")
	p, err := c.Pending(r.Context(), client.PendingRequest{Group: group})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	d := queueData{Group: group}
	byGroup := map[string][]client.ApprovalView{}
	for _, req := range p.Requests {
		byGroup[req.Group] = append(byGroup[req.Group], req)
	}
	for _, g := range slices.Sorted(maps.Keys(byGroup)) {
		d.Groups = append(d.Groups, queueGroup{Name: g, Requests: byGroup[g]})
	}
	a.render(w, r, c, "queue", "Review queue", d)
}
