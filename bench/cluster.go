package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams"
)

// Stream kinds of the bench's own streams.
const (
	kindRaw    = "RAW"
	kindProj   = "PROJ"
	kindReview = "REVIEW"
	kindFeed   = "FEED"
	kindWork   = "WORK"
)

// benchStream names a stream of the bench's own, unique to the run's
// tenant, and the subject prefix it captures.
func (r *Runner) benchStream(kind string) (name, prefix string) {
	t := strings.ToUpper(strings.ReplaceAll(r.Tenant, "-", "_"))
	return "STRANDBENCH_" + t + "_" + kind, "strandbench." + r.Tenant + "." + strings.ToLower(kind) + "."
}

// ensureBenchStream creates (or empties) a bench stream.
func (r *Runner) ensureBenchStream(ctx context.Context, e *Env, kind string) (jetstream.Stream, string, error) {
	name, prefix := r.benchStream(kind)
	cfg := jetstream.StreamConfig{
		Name: name, Subjects: []string{prefix + ">"}, Storage: jetstream.FileStorage,
		Replicas: e.Replicas, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardNew,
		Duplicates: time.Minute, Description: "strand bench scratch stream (safe to delete)",
		AllowAtomicPublish: true,
	}
	if kind == kindFeed {
		// As the service's feed: the newest entries per tenant.
		cfg.MaxMsgsPerSubject, cfg.Discard = streams.FeedPerTenant, jetstream.DiscardOld
	}
	s, err := e.JS.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, "", fmt.Errorf("bench stream %s: %w", name, err)
	}
	return s, prefix, nil
}

// dialCluster connects to an existing cluster. The store provisions the
// streams as strand serve does, with the replicas they already have, so
// that nothing about them changes.
func (r *Runner) dialCluster(ctx context.Context) (*Env, error) {
	e := &Env{Name: "cluster"}
	connect := func(name string) (*nats.Conn, error) {
		nc, err := nats.Connect(r.Opts.NATS, nats.Name(name), nats.Timeout(5*time.Second),
			nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
		if err != nil {
			return nil, fmt.Errorf("connect to %s: %w", r.Opts.NATS, err)
		}
		e.closers = append(e.closers, nc.Close)
		return nc, nil
	}
	nc, err := connect("strand-bench-service")
	if err != nil {
		return nil, err
	}
	cnc, err := connect("strand-bench-client")
	if err != nil {
		e.Close()
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		e.Close()
		return nil, err
	}
	replicas := r.Opts.Replicas
	if s, err := js.Stream(ctx, names.EventStream); err == nil {
		replicas = s.CachedInfo().Config.Replicas
		// The run ends by purging its tenant: refuse one that has data.
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(names.EventSubject(r.Tenant, ">")))
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("stream %s: %w", names.EventStream, err)
		}
		if len(info.State.Subjects) > 0 {
			e.Close()
			return nil, fmt.Errorf("tenant %s already has %d sessions on this cluster; the bench purges its tenant when it ends, so give it an unused one", r.Tenant, len(info.State.Subjects))
		}
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		e.Close()
		return nil, fmt.Errorf("stream %s: %w", names.EventStream, err)
	}
	if ping, err := micro.ControlSubject(micro.PingVerb, names.ServiceName, ""); err == nil {
		if _, err := nc.Request(ping, nil, time.Second); err == nil {
			e.shared = true
		}
	}
	e.Replicas = max(replicas, 1)
	if r.Opts.Replicas > 0 {
		e.Replicas = r.Opts.Replicas
	}
	if err := e.open(ctx, nc, cnc, streams.Config{Replicas: max(replicas, 1), NoGroupCommit: r.Opts.NoGroupCommit}, r.Tenant); err != nil {
		e.Close()
		return nil, err
	}
	service := "a service instance of the bench's own"
	if e.shared {
		service = "the strand service instances already running"
	}
	r.progressf("cluster %s: tenant %s, %d replicas, requests to %s", r.Opts.NATS, r.Tenant, e.Replicas, service)
	return e, nil
}

// cleanCluster removes what the run wrote under its tenant: its own
// streams, its events, snapshots and session views. Blobs stay: they are
// shared by content, and the blob collector removes those nothing names.
func (r *Runner) cleanCluster(ctx context.Context, e *Env) {
	for _, kind := range []string{kindRaw, kindProj, kindReview, kindFeed, kindWork} {
		name, _ := r.benchStream(kind)
		if err := e.JS.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			r.progressf("cleanup: delete stream %s: %v", name, err)
		}
	}
	purge := map[string]string{
		names.EventStream:            names.EventSubject(r.Tenant, ">"),
		"KV_" + names.SnapshotBucket: "$KV." + names.SnapshotBucket + "." + r.Tenant + ".>",
		"KV_" + names.SessionsBucket: "$KV." + names.SessionsBucket + "." + r.Tenant + ".>",
	}
	for stream, subject := range purge {
		s, err := e.JS.Stream(ctx, stream)
		if err != nil {
			continue
		}
		if err := s.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
			r.progressf("cleanup: purge %s from %s: %v", subject, stream, err)
		}
	}
	r.progressf("cleanup: removed tenant %s (blobs are left to the collector)", r.Tenant)
}
