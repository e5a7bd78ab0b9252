package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/projections"
)

// usageAdapter answers usage.get from the session-views and stats
// projections, the snapshot bucket and the streams' own figures.
type usageAdapter struct {
	js    jetstream.JetStream
	views *projections.Sessions
	stats *projections.Stats
	// snapshots sums a tenant's snapshot documents (streams.Store).
	snapshots func(ctx context.Context, tenant string) (uint64, int, error)
}

// TenantUsage serves usage.get.
func (a usageAdapter) TenantUsage(ctx context.Context, tenant string) (client.UsageReply, error) {
	var r client.UsageReply
	page, err := a.views.Query(ctx, tenant, projections.ListFilter{Counts: true, Limit: 1})
	if err != nil {
		return r, err
	}
	r.SessionsByStatus = map[string]int{}
	for status, n := range page.Counts {
		r.SessionsByStatus[status] = n
		if status != string(domain.StatusDeleted) {
			r.Sessions += int64(n)
		}
	}
	if r.Events, err = a.countEvents(ctx, tenant); err != nil {
		return r, err
	}
	ts, err := a.stats.Tenant(ctx, tenant)
	if err != nil {
		return r, err
	}
	r.ContentBytes = ts.ContentBytes
	r.Storage = client.StorageUsage{EventBytes: ts.EventBytes, Blobs: ts.Blobs, BlobBytes: ts.BlobBytes,
		BlobBytesWritten: ts.BlobBytesWritten}
	if ts.BlobBytes > 0 {
		r.Storage.DedupRatio = float64(ts.BlobBytesWritten) / float64(ts.BlobBytes)
	}
	if r.Storage.SnapshotBytes, r.Storage.Snapshots, err = a.snapshots(ctx, tenant); err != nil {
		return r, err
	}
	if st, err := a.stats.Status(ctx); err == nil {
		r.Behind = st.Lag
	}
	for name, dst := range map[string]*uint64{
		names.EventStream: &r.Deployment.EventBytes, names.BlobStream: &r.Deployment.BlobBytes,
		"KV_" + names.SnapshotBucket: &r.Deployment.SnapshotBytes,
	} {
		s, err := a.js.Stream(ctx, name)
		if err != nil {
			return r, fmt.Errorf("stream %s: %w", name, err)
		}
		*dst = s.CachedInfo().State.Bytes
		if info, err := s.Info(ctx); err == nil {
			*dst = info.State.Bytes
		}
	}
	return r, nil
}

// SessionStats serves session.stats from the stats projection.
func (a viewsAdapter) SessionStats(ctx context.Context, tenant, id, bucket string) (client.SessionStatsReply, uint64, error) {
	s, _, err := a.r.Stats.Session(ctx, tenant, id)
	if err != nil {
		return client.SessionStatsReply{}, 0, err
	}
	width := 24 * time.Hour
	if bucket == "hour" {
		width = time.Hour
	}
	r := client.SessionStatsReply{
		Session: id, Position: s.Applied, Events: s.Events, EventBytes: s.EventBytes, First: s.First, Last: s.Last,
		ByType: s.ByType, ByActor: s.ByActor, Bucket: bucket, Timeline: []client.StatsBucket{},
		FilesChanged: s.FilesChanged, FilesChangedCapped: s.FilesCapped, ContentBytes: s.ContentBytes,
		Approvals: []client.ApprovalTiming{}, MedianApprovalSeconds: s.MedianApprovalSeconds(),
	}
	if r.ByType == nil {
		r.ByType = map[string]int{}
	}
	if r.ByActor == nil {
		r.ByActor = map[string]int{}
	}
	r.Timeline = append(r.Timeline, s.Timeline(width)...)
	r.Approvals = append(r.Approvals, s.Approvals...)
	return r, s.Version, nil
}

// countEvents counts a tenant's events: the pending count of a consumer
// that filters on its subjects, which the server computes without
// delivering anything.
func (a usageAdapter) countEvents(ctx context.Context, tenant string) (uint64, error) {
	s, err := a.js.Stream(ctx, names.EventStream)
	if err != nil {
		return 0, err
	}
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject: names.EventFilter(tenant), AckPolicy: jetstream.AckNonePolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: 10 * time.Second, MemoryStorage: true,
	})
	if err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	defer func() { _ = s.DeleteConsumer(context.Background(), c.CachedInfo().Name) }()
	return c.CachedInfo().NumPending, nil
}

// cmdUsage prints the tenant's usage: strand usage [--json].
func (m *Main) cmdUsage(ctx context.Context, args []string) error {
	g, _, err := m.dialArgs("usage", args, 0, "usage", nil)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Usage(ctx)
	return m.show(g, r, err, func() {
		rows := [][]string{
			{"tenant", r.Tenant},
			{"sessions", strconv.FormatInt(r.Sessions, 10)},
		}
		for _, st := range sortedCounts(r.SessionsByStatus) {
			rows = append(rows, []string{"  " + st, strconv.Itoa(r.SessionsByStatus[st])})
		}
		rows = append(rows,
			[]string{"events", strconv.FormatUint(r.Events, 10)},
			[]string{"content bytes", strconv.FormatInt(r.ContentBytes, 10)},
			[]string{"event bytes", strconv.FormatInt(r.Storage.EventBytes, 10)},
			[]string{"blobs", strconv.FormatInt(r.Storage.Blobs, 10)},
			[]string{"blob bytes", strconv.FormatInt(r.Storage.BlobBytes, 10)},
			[]string{"blob bytes written", strconv.FormatInt(r.Storage.BlobBytesWritten, 10)},
			[]string{"dedup ratio", strconv.FormatFloat(r.Storage.DedupRatio, 'f', 2, 64)},
			[]string{"snapshots", strconv.Itoa(r.Storage.Snapshots)},
			[]string{"snapshot bytes", strconv.FormatUint(r.Storage.SnapshotBytes, 10)},
			[]string{"deployment: event bytes", strconv.FormatUint(r.Deployment.EventBytes, 10)},
			[]string{"deployment: blob bytes", strconv.FormatUint(r.Deployment.BlobBytes, 10)},
			[]string{"deployment: snapshot bytes", strconv.FormatUint(r.Deployment.SnapshotBytes, 10)},
		)
		if r.Behind > 0 {
			rows = append(rows, []string{"events not yet counted", strconv.FormatUint(r.Behind, 10)})
		}
		for _, e := range sortedCounts(r.Requests) {
			rows = append(rows, []string{"requests " + e, strconv.FormatUint(r.Requests[e], 10)})
		}
		m.table([]string{"FIGURE", "VALUE"}, rows)
	})
}

// sessionStats prints a session's figures: strand session stats SESSION.
func (m *Main) sessionStats(ctx context.Context, args []string) error {
	var bucket string
	g, pos, err := m.dialArgs("session stats", args, 1, "session stats SESSION [--bucket hour|day]", func(fs *flag.FlagSet) {
		fs.StringVar(&bucket, "bucket", "day", "timeline bucket: hour or day")
	})
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.SessionStats(ctx, client.SessionStatsRequest{Session: pos[0], Bucket: bucket})
	return m.show(g, r, err, func() {
		rows := [][]string{
			{"position", strconv.FormatUint(r.Position, 10)},
			{"events", strconv.Itoa(r.Events)},
			{"event bytes", strconv.FormatInt(r.EventBytes, 10)},
			{"first", r.First.Format(time.RFC3339)},
			{"last", r.Last.Format(time.RFC3339)},
			{"files changed", filesChanged(r)},
			{"content bytes", strconv.FormatInt(r.ContentBytes, 10)},
		}
		for _, t := range sortedCounts(r.ByType) {
			rows = append(rows, []string{"type " + t, strconv.Itoa(r.ByType[t])})
		}
		for _, a := range sortedCounts(r.ByActor) {
			rows = append(rows, []string{"actor " + a, strconv.Itoa(r.ByActor[a])})
		}
		for _, a := range r.Approvals {
			v := "pending"
			if a.Decision != "" {
				v = fmt.Sprintf("%s after %s", a.Decision, (time.Duration(a.Seconds * float64(time.Second))).Round(time.Second))
			}
			rows = append(rows, []string{"approval " + a.ID + " (" + a.Reason + ")", v})
		}
		if r.Behind > 0 {
			rows = append(rows, []string{"events not yet counted", strconv.FormatUint(r.Behind, 10)})
		}
		if r.MedianApprovalSeconds > 0 {
			rows = append(rows, []string{"median time to approval", (time.Duration(r.MedianApprovalSeconds * float64(time.Second))).Round(time.Second).String()})
		}
		m.table([]string{"FIGURE", "VALUE"}, rows)
	})
}

// filesChanged prints the count, marked as a lower bound when capped.
func filesChanged(r client.SessionStatsReply) string {
	if r.FilesChangedCapped {
		return "at least " + strconv.Itoa(r.FilesChanged)
	}
	return strconv.Itoa(r.FilesChanged)
}

// sortedCounts returns a count map's keys, largest count first.
func sortedCounts[V int | uint64](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
