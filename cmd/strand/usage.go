package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/projections"
)

// usageAdapter answers usage.get from the session-views projection and
// the streams' own figures.
type usageAdapter struct {
	js    jetstream.JetStream
	views *projections.Sessions
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
	counters, err := a.contentCounters(ctx)
	if err != nil {
		return r, err
	}
	r.ContentBytes = counters[tenant]
	for _, n := range counters {
		r.Storage.ContentBytes += n
	}
	for name, dst := range map[string]*uint64{
		names.EventStream: &r.Storage.EventBytes, names.BlobStream: &r.Storage.BlobBytes,
		"KV_" + names.SnapshotBucket: &r.Storage.SnapshotBytes,
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
	if r.Storage.BlobBytes > 0 {
		r.Storage.DedupRatio = float64(r.Storage.ContentBytes) / float64(r.Storage.BlobBytes)
	}
	return r, nil
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

// contentCounters reads every tenant's bytes-stored counter (kept only
// while limits are on).
func (a usageAdapter) contentCounters(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	s, err := a.js.Stream(ctx, names.UsageStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(names.UsageSubject("*")))
	if err != nil {
		return nil, err
	}
	for subject := range info.State.Subjects {
		m, err := s.GetLastMsgForSubject(ctx, subject)
		if err != nil {
			return nil, err
		}
		var v struct {
			Value string `json:"val"`
		}
		if err := json.Unmarshal(m.Data, &v); err != nil {
			return nil, fmt.Errorf("counter %s: %w", subject, err)
		}
		n, err := strconv.ParseInt(strings.TrimPrefix(v.Value, "+"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("counter %s: %w", subject, err)
		}
		tenant := strings.TrimSuffix(strings.TrimPrefix(subject, strings.TrimSuffix(names.UsageSubject(""), ".bytes")), ".bytes")
		out[tenant] = n
	}
	return out, nil
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
			[]string{"deployment: event bytes", strconv.FormatUint(r.Storage.EventBytes, 10)},
			[]string{"deployment: blob bytes", strconv.FormatUint(r.Storage.BlobBytes, 10)},
			[]string{"deployment: snapshot bytes", strconv.FormatUint(r.Storage.SnapshotBytes, 10)},
			[]string{"deployment: dedup ratio", strconv.FormatFloat(r.Storage.DedupRatio, 'f', 2, 64)},
		)
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
			{"events", strconv.Itoa(r.Events)},
			{"first", r.First.Format(time.RFC3339)},
			{"last", r.Last.Format(time.RFC3339)},
			{"files changed", strconv.Itoa(r.FilesChanged)},
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
		if r.MedianApprovalSeconds > 0 {
			rows = append(rows, []string{"median time to approval", (time.Duration(r.MedianApprovalSeconds * float64(time.Second))).Round(time.Second).String()})
		}
		m.table([]string{"FIGURE", "VALUE"}, rows)
	})
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
