package web

import (
	"net/http"
	"time"

	"github.com/strand-dev/strand/client"
)

// statsData is a session's figures page: session.stats as charts with
// their numbers.
type statsData struct {
	ID       string
	Bucket   string
	R        client.SessionStatsReply
	Types    chart
	Actors   chart
	Timeline timeChart
	// Median is the median wait of granted approvals, for people.
	Median string
}

// statsPage shows a session's figures: events by type and actor, events
// over time (per hour or per day), files changed and the wait of each
// approval request, from the stats projection.
func (a *App) statsPage(w http.ResponseWriter, r *http.Request) {
	c, ok := a.client(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	bucket := r.URL.Query().Get("bucket")
	if bucket == "" {
		bucket = "day"
	}
	st, err := c.SessionStats(r.Context(), client.SessionStatsRequest{Session: id, Bucket: bucket})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	d := statsData{ID: id, Bucket: st.Bucket, R: st}
	types := map[string]int{}
	for t, n := range st.ByType {
		types[evLabel(client.EventView{Type: t})] += n
	}
	d.Types = newChart("Events by type", types, nil)
	d.Actors = newChart("Events by actor", st.ByActor, nil)
	unit := 24 * time.Hour
	if st.Bucket == "hour" {
		unit = time.Hour
	}
	pts := make([]point, 0, len(st.Timeline))
	for _, b := range st.Timeline {
		pts = append(pts, point{At: b.Start, N: b.Events})
	}
	if len(pts) > maxColumns {
		pts = pts[len(pts)-maxColumns:]
	}
	d.Timeline = newTimeChart("Events", pts, unit)
	if st.MedianApprovalSeconds > 0 {
		d.Median = waitText(st.MedianApprovalSeconds)
	}
	a.render(w, r, c, "stats", "Figures of "+shortID(id), d)
}

// waitText says a wait in seconds the way people read it.
func waitText(seconds float64) string {
	return time.Duration(seconds * float64(time.Second)).Round(time.Second).String()
}

// usageData is the tenant usage page.
type usageData struct {
	U        client.UsageReply
	Statuses chart
	Stored   chart
	Requests chart
}

// usagePage shows the tenant's usage (usage.get): its sessions by status,
// the bytes its data takes in each store, how much content addressing
// saves it, and its requests by endpoint.
func (a *App) usagePage(w http.ResponseWriter, r *http.Request) {
	c, ok := a.client(w, r)
	if !ok {
		return
	}
	u, err := c.Usage(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	d := usageData{U: u}
	counts := map[string]int{}
	for _, s := range statuses {
		counts[s] = u.SessionsByStatus[s]
	}
	d.Statuses = newChart("Sessions by status", counts, func(s string) string { return "/?status=" + s })
	d.Stored = newByteChart("Stored bytes of the tenant", map[string]int64{
		"events": u.Storage.EventBytes, "blobs": u.Storage.BlobBytes, "snapshots": int64(u.Storage.SnapshotBytes),
	})
	reqs := map[string]int{}
	for e, n := range u.Requests {
		reqs[e] = int(n)
	}
	d.Requests = newChart("Requests by endpoint (all instances)", reqs, nil)
	a.render(w, r, c, "usage", "Usage", d)
}

// newByteChart is a bar chart of byte counts, labelled in KiB, MiB, GiB.
func newByteChart(title string, values map[string]int64) chart {
	ints := map[string]int{}
	for k, v := range values {
		ints[k] = int(v)
	}
	c := newChart(title, ints, nil)
	for i := range c.Bars {
		c.Bars[i].Text = humanBytes(int64(c.Bars[i].Value))
	}
	c.TotalText = humanBytes(int64(c.Total))
	return c
}
