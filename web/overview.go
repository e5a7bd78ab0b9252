package web

import (
	"cmp"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/strand-dev/strand/client"
)

// overviewEvents is how many of the tenant's newest events the overview
// folds (the activity feed keeps a bounded tail per tenant anyway).
const overviewEvents = client.MaxActivityLimit

// overviewData is the tenant overview page: what the read models say about
// the tenant, as charts with their numbers.
type overviewData struct {
	Statuses chart
	Groups   chart
	Types    chart
	Actors   chart
	Hours    timeChart
	Recent   []client.ActivityEntry
	Oldest   map[string]time.Time
	Window   string
}

// chart is a horizontal bar chart: a table of labels and numbers whose
// bars are drawn in SVG with widths computed here (no script, no inline
// style: the page's Content-Security-Policy allows neither).
type chart struct {
	Title string
	Bars  []bar
	Total int
	// TotalText, when set, shows Total (bytes in words).
	TotalText string
}

type bar struct {
	Label string
	Value int
	// Text, when set, shows Value (bytes in words).
	Text  string
	Width int // of the bar, out of barWidth
	Link  string
}

const barWidth = 240

func newChart(title string, values map[string]int, link func(string) string) chart {
	c := chart{Title: title}
	top := 0
	for _, v := range values {
		top = max(top, v)
		c.Total += v
	}
	for _, k := range slices.Sorted(maps.Keys(values)) {
		b := bar{Label: k, Value: values[k]}
		if top > 0 {
			b.Width = max(values[k]*barWidth/top, min(values[k], 1)*2)
		}
		if link != nil {
			b.Link = link(k)
		}
		c.Bars = append(c.Bars, b)
	}
	slices.SortStableFunc(c.Bars, func(x, y bar) int { return cmp.Compare(y.Value, x.Value) })
	return c
}

// timeChart is a column chart of counts per hour.
type timeChart struct {
	Title   string
	Columns []column
	Height  int
	Width   int
}

type column struct {
	Label  string
	Value  int
	X, Y   int
	Height int
}

const (
	columnWidth  = 14
	columnGap    = 3
	columnHeight = 120
	maxColumns   = 72
)

// point is a count at a time, for a column chart.
type point struct {
	At time.Time
	N  int
}

// activityPoints counts the feed's entries per hour, or per minute when
// they span less than two hours: one point per unit from the oldest to the
// newest (at most maxColumns, the newest kept).
func activityPoints(entries []client.ActivityEntry) ([]point, time.Duration) {
	if len(entries) == 0 {
		return nil, time.Hour
	}
	unit := time.Hour
	if entries[0].Time.Sub(entries[len(entries)-1].Time) < 2*time.Hour {
		unit = time.Minute
	}
	newest := entries[0].Time.UTC().Truncate(unit)
	oldest := entries[len(entries)-1].Time.UTC().Truncate(unit)
	n := min(int(newest.Sub(oldest)/unit)+1, maxColumns)
	pts := make([]point, n)
	for i := range pts {
		pts[i].At = newest.Add(-time.Duration(n-1-i) * unit)
	}
	for _, e := range entries {
		if i := n - 1 - int(newest.Sub(e.Time.UTC().Truncate(unit))/unit); i >= 0 && i < n {
			pts[i].N++
		}
	}
	return pts, unit
}

// newTimeChart draws points as columns, labelled for their unit.
func newTimeChart(what string, pts []point, unit time.Duration) timeChart {
	format, per := "Jan 2 15:00", "hour"
	switch {
	case unit < time.Hour:
		format, per = "15:04", "minute"
	case unit >= 24*time.Hour:
		format, per = "Jan 2", "day"
	}
	tc := timeChart{Title: what + " per " + per, Height: columnHeight}
	top := 0
	for _, p := range pts {
		top = max(top, p.N)
	}
	for i, p := range pts {
		h := 0
		if top > 0 {
			h = max(p.N*(columnHeight-4)/top, min(p.N, 1)*2)
		}
		tc.Columns = append(tc.Columns, column{Label: p.At.UTC().Format(format), Value: p.N,
			X: i * (columnWidth + columnGap), Y: columnHeight - h, Height: h})
	}
	tc.Width = len(pts) * (columnWidth + columnGap)
	return tc
}

// overviewPage shows the tenant at a glance: sessions by status (the
// session-views read model), requests waiting by reviewer group (the
// review queue), and its recent events by type, actor and hour (the
// activity feed).
func (a *App) overviewPage(w http.ResponseWriter, r *http.Request) {
	c, ok := a.client(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	var (
		list    client.ListSessionsReply
		pending client.PendingReply
		feed    client.ActivityReply
	)
	err := all(
		func() (err error) {
			list, err = c.ListSessions(ctx, client.ListSessionsRequest{Limit: 1, Counts: true})
			return err
		},
		func() (err error) { pending, err = c.Pending(ctx, client.PendingRequest{}); return err },
		func() (err error) {
			feed, err = c.Activity(ctx, client.ActivityRequest{Limit: overviewEvents})
			return err
		},
	)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	d := overviewData{Oldest: map[string]time.Time{}}
	counts := map[string]int{}
	for _, s := range statuses {
		counts[s] = list.Counts[s]
	}
	d.Statuses = newChart("Sessions by status", counts, func(s string) string { return "/?status=" + s })
	groups := map[string]int{}
	for _, p := range pending.Requests {
		g := p.Group
		if g == "" {
			g = "(no group)"
		}
		groups[g]++
		if o, ok := d.Oldest[g]; !ok || p.CreatedAt.Before(o) {
			d.Oldest[g] = p.CreatedAt
		}
	}
	d.Groups = newChart("Approval requests waiting, by reviewer group", groups, nil)
	types, actors := map[string]int{}, map[string]int{}
	for _, e := range feed.Entries {
		types[evLabel(client.EventView{Type: e.Type})]++
		actor := e.Actor
		if actor == "" {
			actor = "(none)"
		}
		actors[actor]++
	}
	d.Types = newChart("Recent events by type", types, nil)
	d.Actors = newChart("Recent events by actor", actors, nil)
	pts, unit := activityPoints(feed.Entries)
	d.Hours = newTimeChart("Recent events", pts, unit)
	if n := len(feed.Entries); n > 0 {
		d.Window = plural(n, "event", "events") + " since " + shortTime(feed.Entries[n-1].Time)
	}
	d.Recent = feed.Entries[:min(len(feed.Entries), 25)]
	a.render(w, r, c, "overview", "Overview", d)
}
