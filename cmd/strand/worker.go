package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/workers"
)

// builtinWorkers are the workers `strand worker` and `strand serve` run.
var builtinWorkers = []string{"summary", "gc", "retention"}

// gcTenant is the subject token of jobs that belong to no tenant (tenants
// cannot start with "_").
const gcTenant = "_system"

// workerFlags configure the built-in workers.
type workerFlags struct {
	names          string
	concurrency    int
	grace, gcEvery time.Duration
	idle, deleteAf time.Duration
	retainEvery    time.Duration
	dryRun         bool
	tenants        string
	once           bool
}

func (wf *workerFlags) declareServe(fs *flag.FlagSet) {
	fs.StringVar(&wf.names, "workers", "summary,gc,retention", "built-in workers to run (comma-separated; none for none)")
	wf.declareCommon(fs, "")
}

func (wf *workerFlags) declareCommon(fs *flag.FlagSet, prefix string) {
	fs.IntVar(&wf.concurrency, prefix+"concurrency", 4, "items handled at once per worker")
	fs.DurationVar(&wf.grace, "gc-grace", time.Hour, "gc: how long an unnamed blob waits before it is condemned, and a condemned one before it is deleted (must exceed the longest request or import)")
	fs.DurationVar(&wf.gcEvery, "gc-every", time.Hour, "gc: how often to collect")
	fs.DurationVar(&wf.idle, "retention-idle", 0, "retention: archive active sessions not updated for this long (0: never)")
	fs.DurationVar(&wf.deleteAf, "retention-delete-after", 0, "retention: delete archived sessions not updated for this long (0: never)")
	fs.DurationVar(&wf.retainEvery, "retention-every", time.Hour, "retention: how often to pass over the tenants")
	fs.BoolVar(&wf.dryRun, "retention-dry-run", false, "retention and gc: only report what would go")
}

func (wf *workerFlags) list() ([]string, error) {
	if wf.names == "" || wf.names == "none" {
		return nil, nil
	}
	var out []string
	for _, n := range strings.Split(wf.names, ",") {
		n = strings.TrimSpace(n)
		if !slices.Contains(builtinWorkers, n) {
			return nil, usagef("unknown worker %q (one of %s)", n, strings.Join(builtinWorkers, ", "))
		}
		out = append(out, n)
	}
	return out, nil
}

func (wf *workerFlags) policy() workers.RetentionPolicy {
	return workers.RetentionPolicy{Idle: wf.idle, DeleteAfter: wf.deleteAf, DryRun: wf.dryRun}
}

// clientSessions is retention's way into the service: the Go client, so a
// retention pass goes through the same checks and policies as anyone.
type clientSessions struct {
	nc    *nats.Conn
	actor string
}

func (c clientSessions) client(tenant string) *client.Client {
	cl := client.NewClient(c.nc, tenant)
	cl.Actor = c.actor
	return cl
}

func (c clientSessions) Oldest(ctx context.Context, tenant, status, cursor string, limit int) ([]workers.SessionInfo, string, error) {
	r, err := c.client(tenant).ListSessions(ctx, client.ListSessionsRequest{Status: status, Sort: "updated", Order: "asc", Cursor: cursor, Limit: limit})
	if err != nil {
		return nil, "", err
	}
	out := make([]workers.SessionInfo, 0, len(r.Sessions))
	for _, s := range r.Sessions {
		out = append(out, workers.SessionInfo{ID: s.ID, Status: s.Status, UpdatedAt: s.UpdatedAt})
	}
	return out, r.NextCursor, nil
}

func (c clientSessions) Archive(ctx context.Context, tenant, id string) error {
	_, err := c.client(tenant).ArchiveSession(ctx, client.SessionRequest{Session: id, Mutation: client.Mutation{RequestID: "retention-archive-" + id}})
	return err
}

func (c clientSessions) Delete(ctx context.Context, tenant, id string) error {
	_, err := c.client(tenant).DeleteSession(ctx, client.SessionRequest{Session: id, Mutation: client.Mutation{RequestID: "retention-delete-" + id}})
	return err
}

// runningWorkers are started workers and their schedules.
type runningWorkers struct {
	cancel  context.CancelFunc
	done    chan struct{}
	workers []*workers.Worker
}

func (r *runningWorkers) stop() {
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
	for _, w := range r.workers {
		w.Stop()
	}
}

// startWorkers starts the named built-in workers on a store and schedules
// their periodic jobs. tenants lists the tenants retention goes over.
func startWorkers(ctx context.Context, nc *nats.Conn, st *streams.Store, replicas int, nameList []string, wf workerFlags,
	tenants func(context.Context) ([]string, error), log *slog.Logger) (*runningWorkers, error) {
	js := st.JetStream()
	sctx, cancel := context.WithCancel(context.Background())
	r := &runningWorkers{cancel: cancel, done: make(chan struct{})}
	var schedules []func()
	fail := func(err error) (*runningWorkers, error) {
		close(r.done)
		r.stop()
		return nil, err
	}
	for _, name := range nameList {
		cfg := workers.Config{Name: name, Stream: names.WorkStream, Concurrency: wf.concurrency, Log: log}
		var h workers.Handler
		switch name {
		case "summary":
			kv, err := streams.EnsureBucket(ctx, js, workers.SummaryBucketConfig(replicas))
			if err != nil {
				return fail(err)
			}
			cfg.Filter = names.WorkSubject("*", "summary")
			h = workers.NewSummaries(kv).SummaryHandler(st)
		case "gc":
			cfg.Filter, cfg.Concurrency = names.WorkSubject(gcTenant, "gc"), 1
			gc := streams.NewCollector(st, streams.GCConfig{Grace: wf.grace, DryRun: wf.dryRun, Log: log})
			h = func(ctx context.Context, it *workers.Item) error {
				_, err := gc.Run(ctx)
				return err
			}
			every := wf.gcEvery
			schedules = append(schedules, func() {
				workers.Every(sctx, js, names.WorkSubject(gcTenant, "gc"), every, func() []byte { return nil }, log)
			})
		case "retention":
			cfg.Filter = names.WorkSubject("*", "retention")
			ret := &workers.Retention{API: clientSessions{nc: nc, actor: "strand-retention"}, Policy: wf.policy()}
			h = ret.RetentionHandler(func(rep workers.RetentionReport) {
				if len(rep.Archived)+len(rep.Deleted)+len(rep.Skipped) > 0 {
					log.Info("retention", "tenant", rep.Tenant, "dry_run", rep.DryRun, "archived", len(rep.Archived),
						"deleted", len(rep.Deleted), "skipped", len(rep.Skipped))
				}
			})
			if wf.idle > 0 || wf.deleteAf > 0 {
				every, body := wf.retainEvery, retentionBody(wf.policy())
				schedules = append(schedules, func() { scheduleRetention(sctx, js, every, body, tenants, log) })
			}
		}
		w, err := workers.Start(ctx, js, cfg, h)
		if err != nil {
			return fail(err)
		}
		r.workers = append(r.workers, w)
	}
	go func() {
		defer close(r.done)
		done := make(chan struct{}, len(schedules))
		for _, s := range schedules {
			go func() { s(); done <- struct{}{} }()
		}
		for range schedules {
			<-done
		}
	}()
	return r, nil
}

func retentionBody(p workers.RetentionPolicy) []byte {
	b, _ := json.Marshal(p)
	return b
}

// scheduleRetention enqueues a retention pass for every tenant once per
// interval, aligned to the interval so that several processes enqueue one.
func scheduleRetention(ctx context.Context, js jetstream.JetStream, every time.Duration, body []byte,
	tenants func(context.Context) ([]string, error), log *slog.Logger) {
	for {
		n := time.Now().UnixNano() / int64(every)
		ts, err := tenants(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("retention: tenants", "err", err)
		}
		for _, t := range ts {
			subj := names.WorkSubject(t, "retention")
			if _, err := workers.Enqueue(ctx, js, subj, body, fmt.Sprintf("%s.%d", subj, n)); err != nil && ctx.Err() == nil {
				log.Warn("retention: schedule", "tenant", t, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(time.Unix(0, (n+1)*int64(every)))):
		}
	}
}

// runWorker is `strand worker [NAME...]`: the built-in workers in a process
// of their own, on the server of --server.
func (m *Main) runWorker(ctx context.Context, args []string) error {
	var wf workerFlags
	g, pos, err := m.parseArgs("worker", args, func(fs *flag.FlagSet) {
		wf.declareCommon(fs, "")
		fs.StringVar(&wf.tenants, "tenants", "", "retention: the tenants to pass over (comma-separated; default --tenant)")
		fs.BoolVar(&wf.once, "once", false, "gc and retention: do one pass now, print what it did, and exit")
		fs.BoolVar(&wf.dryRun, "dry-run", false, "gc and retention: only report what would go")
	})
	if err != nil {
		return err
	}
	wf.names = strings.Join(pos, ",")
	if len(pos) == 0 {
		wf.names = strings.Join(builtinWorkers, ",")
	}
	nameList, err := wf.list()
	if err != nil {
		return err
	}
	tenantList := []string{g.tenant}
	if wf.tenants != "" {
		tenantList = nil
		for _, t := range strings.Split(wf.tenants, ",") {
			if err := domain.ValidTenant(strings.TrimSpace(t)); err != nil {
				return usagef("--tenants: %s", domain.ErrorMessage(err))
			}
			tenantList = append(tenantList, strings.TrimSpace(t))
		}
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	log := slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	js, err := jetstream.New(g.nc)
	if err != nil {
		return err
	}
	s, err := js.Stream(ctx, names.EventStream)
	if err != nil {
		return &client.Error{Code: domain.CodeUnavailable, Message: fmt.Sprintf("no Strand streams on %s: %v", g.server, err)}
	}
	replicas := s.CachedInfo().Config.Replicas
	st, err := streams.Open(ctx, g.nc, streams.Config{Replicas: replicas}, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if wf.once {
		return m.workerOnce(ctx, g, st, nameList, wf, tenantList)
	}
	tenants := func(context.Context) ([]string, error) { return tenantList, nil }
	r, err := startWorkers(ctx, g.nc, st, replicas, nameList, wf, tenants, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "strand: worker running %s on %s\n", strings.Join(nameList, ", "), redactURLs(g.server))
	<-ctx.Done()
	r.stop()
	return nil
}

// workerOnce does one gc or retention pass right away and prints it.
func (m *Main) workerOnce(ctx context.Context, g *globals, st *streams.Store, nameList []string, wf workerFlags, tenants []string) error {
	var out []any
	for _, name := range nameList {
		switch name {
		case "gc":
			rep, err := streams.NewCollector(st, streams.GCConfig{Grace: wf.grace, DryRun: wf.dryRun}).Run(ctx)
			if err != nil {
				return err
			}
			out = append(out, map[string]any{"worker": "gc", "report": rep})
			if !g.json {
				fmt.Fprintf(m.Stdout, "gc: %d blobs (%d bytes), %d named, %d young; condemned %d, waiting %d, kept %d, deleted %d (%d bytes)%s%s\n",
					rep.Blobs, rep.BlobBytes, rep.Named, rep.Young, rep.Condemned, rep.Waiting, rep.Kept, rep.Deleted, rep.DeletedBytes,
					map[bool]string{true: " [dry run]"}[rep.DryRun], map[bool]string{true: " [fenced: " + rep.Fenced + "]"}[rep.Fenced != ""])
			}
		case "retention":
			ret := &workers.Retention{API: clientSessions{nc: g.nc, actor: "strand-retention"}}
			for _, t := range tenants {
				rep, err := ret.Run(ctx, t, wf.policy())
				if err != nil {
					return err
				}
				out = append(out, map[string]any{"worker": "retention", "report": rep})
				if !g.json {
					verb := map[bool]string{true: "would archive", false: "archived"}[rep.DryRun]
					fmt.Fprintf(m.Stdout, "retention %s: %s %d %v; %s %d %v\n", t, verb, len(rep.Archived), rep.Archived,
						strings.Replace(verb, "archive", "delete", 1), len(rep.Deleted), rep.Deleted)
					for id, why := range rep.Skipped {
						fmt.Fprintf(m.Stdout, "  skipped %s: %s\n", id, why)
					}
				}
			}
		default:
			if !g.json {
				fmt.Fprintf(m.Stdout, "%s: nothing to do once (it works on items)\n", name)
			}
		}
	}
	if g.json {
		return m.printJSON(out)
	}
	return nil
}
