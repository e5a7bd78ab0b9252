package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/projections"
	"github.com/strand-dev/strand/streams"
)

// readModels are the projections a serve instance runs
// (projections.ReadModels), with the event stream they fold.
type readModels struct {
	stream string
	*projections.ReadModels
}

// openReadModels opens (without starting) every projection of the event
// stream, configured as serve runs them (projections.OpenReadModels, with
// the store's retry).
func openReadModels(ctx context.Context, js jetstream.JetStream, replicas int, shareSyncs bool, log *slog.Logger) (*readModels, error) {
	m, err := projections.OpenReadModels(ctx, js, replicas, shareSyncs, streams.Retry, log)
	if err != nil {
		return nil, err
	}
	return &readModels{stream: names.EventStream, ReadModels: m}, nil
}

// options serves the read endpoints from the projections.
func (r *readModels) options(o *handlers.Options) {
	a := viewsAdapter{r}
	o.Lister, o.Reviews, o.Activity, o.Projections, o.Stats = a, a, a, a, a
}

// viewsAdapter answers the service's read-model questions.
type viewsAdapter struct{ r *readModels }

func (a viewsAdapter) ListSessions(ctx context.Context, tenant string, req client.ListSessionsRequest) (client.ListSessionsReply, error) {
	page, err := a.r.Views.Query(ctx, tenant, projections.ListFilter{
		Status: req.Status, Tags: req.Tags, Owner: req.Owner, Parent: req.Parent, Source: req.Source,
		UpdatedSince: req.UpdatedSince, After: req.Cursor, Limit: req.Limit, Sort: req.Sort, Order: req.Order,
		Counts: req.Counts,
	})
	if err != nil {
		return client.ListSessionsReply{}, err
	}
	out := client.ListSessionsReply{Sessions: make([]client.SessionView, 0, len(page.Views)), NextCursor: page.Next, Counts: page.Counts}
	for _, v := range page.Views {
		sv := client.SessionView{
			ID: v.ID, Tenant: v.Tenant, Status: v.Status, Owner: v.Owner, Tags: v.Tags,
			CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, Position: v.Position, Start: v.Start,
			Version: v.Version, Root: v.Root,
		}
		if o := v.Origin; o.Parent != "" || o.Source != "" {
			sv.Origin = &client.OriginView{Source: o.Source, Revision: o.Revision, Parent: o.Parent, Position: o.Position}
		}
		out.Sessions = append(out.Sessions, sv)
	}
	return out, nil
}

// CommitSession finds the session of a commit id.
func (a viewsAdapter) CommitSession(ctx context.Context, tenant, commit string) (string, error) {
	return a.r.Views.CommitSession(ctx, tenant, commit)
}

// PendingReviews serves the tenant-wide review queue.
func (a viewsAdapter) PendingReviews(ctx context.Context, tenant, group string) (client.PendingReply, error) {
	items, err := a.r.Views.Pending(ctx, tenant, group)
	if err != nil {
		return client.PendingReply{}, err
	}
	out := client.PendingReply{Requests: []client.ApprovalView{}}
	for _, it := range items {
		out.Requests = append(out.Requests, client.ApprovalView{
			ID: it.ID, Session: it.Session, Reason: it.Reason, Group: it.Group, Requester: it.Requester,
			Root: it.Root, Required: it.Required, State: domain.ApprovalPending, Grants: []client.DecisionView{},
			CreatedAt: it.CreatedAt, Position: it.Position,
		})
	}
	return out, nil
}

// ActivityList serves activity.list from the feed.
func (a viewsAdapter) ActivityList(ctx context.Context, tenant string, req client.ActivityRequest) (client.ActivityReply, error) {
	page, err := a.r.Activity.List(ctx, tenant, req.Limit, req.Before)
	if err != nil {
		return client.ActivityReply{}, err
	}
	out := client.ActivityReply{Entries: make([]client.ActivityEntry, 0, len(page.Entries)), NextBefore: page.Before}
	for _, e := range page.Entries {
		out.Entries = append(out.Entries, client.ActivityEntry(e))
	}
	return out, nil
}

// ProjectionStatus serves projections.status.
func (a viewsAdapter) ProjectionStatus(ctx context.Context) ([]client.ProjectionStatus, error) {
	return projectionStatus(ctx, a.r.Views.JetStream(), a.r.stream, a.r.Specs())
}

func projectionStatus(ctx context.Context, js jetstream.JetStream, stream string, specs []projections.Spec) ([]client.ProjectionStatus, error) {
	out := make([]client.ProjectionStatus, 0, len(specs))
	for _, spec := range specs {
		st, err := projections.StatusOf(ctx, js, stream, spec)
		if err != nil {
			return nil, err
		}
		out = append(out, client.ProjectionStatus{
			Name: st.Name, Stream: st.Stream, Consumer: st.Consumer, Generation: st.Generation, State: st.State,
			Position: st.Position, Delivered: st.Delivered, Lag: st.Lag, Pending: st.Pending, AckPending: st.AckPending,
			Waiting: st.Waiting, Holder: st.Holder, Renewed: st.Renewed, StreamLast: st.StreamLast, Target: st.RebuildTarget,
			Since: st.Since, Error: st.Error,
		})
	}
	return out, nil
}

func (m *Main) projectionsStatus(ctx context.Context, args []string) error {
	g, _, err := m.dialArgs("projections status", args, 0, "projections status", nil)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Projections(ctx)
	return m.show(g, r, err, func() { m.printProjections(r.Projections) })
}

func (m *Main) printProjections(ps []client.ProjectionStatus) {
	rows := make([][]string, 0, len(ps))
	for _, p := range ps {
		state := p.State
		if p.Error != "" {
			state += " (" + p.Error + ")"
		}
		rows = append(rows, []string{p.Name, strconv.FormatUint(p.Generation, 10), state,
			strconv.FormatUint(p.Position, 10), strconv.FormatUint(p.StreamLast, 10), strconv.FormatUint(p.Lag, 10),
			strconv.Itoa(p.AckPending), strconv.Itoa(p.Waiting), folder(p), p.Consumer})
	}
	m.table([]string{"NAME", "GEN", "STATE", "POSITION", "STREAM LAST", "LAG", "ACK PENDING", "PULLERS", "FOLDED BY", "CONSUMER"}, rows)
}

// folder is the instance that folds a projection, host:pid, with how long
// ago it renewed its lease; "-" when none holds it.
func folder(p client.ProjectionStatus) string {
	if p.Holder == "" {
		return "-"
	}
	who := p.Holder
	if i := strings.LastIndexByte(who, ':'); i > 0 {
		who = who[:i] // the unique suffix
	}
	return fmt.Sprintf("%s (%s ago)", who, time.Since(p.Renewed).Round(100*time.Millisecond))
}

// projectionsRebuild rebuilds one projection through JetStream directly:
// rebuilding is an operator's act, not something a tenant's subject
// should reach. While it waits it also runs the projection itself, so a
// rebuild finishes even when no service runs.
func (m *Main) projectionsRebuild(ctx context.Context, args []string) error {
	var noWait bool
	var replicas int
	g, pos, err := m.dialArgs("projections rebuild", args, 1, "projections rebuild NAME", func(fs *flag.FlagSet) {
		fs.BoolVar(&noWait, "no-wait", false, "return once the new generation's consumer exists")
		fs.IntVar(&replicas, "replicas", 0, "replicas of the control bucket if it must be created (default: the event stream's)")
	})
	if err != nil {
		return err
	}
	defer g.close()
	js, err := jetstream.New(g.nc)
	if err != nil {
		return err
	}
	if replicas == 0 {
		s, err := js.Stream(ctx, names.EventStream)
		if err != nil {
			return &client.Error{Code: domain.CodeUnavailable, Message: fmt.Sprintf("event stream: %v", err)}
		}
		replicas = s.CachedInfo().Config.Replicas
	}
	models, err := openReadModels(ctx, js, replicas, false, nil)
	if err != nil {
		return err
	}
	var spec *projections.Spec
	var nameList []string
	for _, s := range models.Specs() {
		nameList = append(nameList, s.Name)
		if s.Name == pos[0] {
			spec = &s
		}
	}
	if spec == nil {
		return usagef("unknown projection %q (one of %s)", pos[0], strings.Join(nameList, ", "))
	}
	st, err := projections.Rebuild(ctx, js, names.EventStream, replicas, *spec, false, nil)
	if err != nil {
		return err
	}
	if !noWait {
		fmt.Fprintf(m.Stderr, "strand: rebuilding %s into generation %d up to position %d\n", spec.Name, st.Generation, st.RebuildTarget)
		r, err := projections.StartRunner(ctx, js, names.EventStream, replicas, *spec, nil)
		if err != nil {
			return err
		}
		defer r.Stop()
		last := time.Now()
		st, err = projections.Finish(ctx, js, names.EventStream, *spec, func(s projections.Status) {
			if time.Since(last) > 2*time.Second {
				last = time.Now()
				fmt.Fprintf(m.Stderr, "strand: %s at %d of %d\n", s.Name, s.Position, s.RebuildTarget)
			}
		})
		if err != nil {
			return err
		}
	}
	ps, err := projectionStatus(ctx, js, names.EventStream, []projections.Spec{*spec})
	if err != nil {
		return err
	}
	if g.json {
		return m.printJSON(client.ProjectionsReply{Projections: ps})
	}
	m.printProjections(ps)
	return nil
}

// cmdActivity lists the tenant's recent events.
func (m *Main) cmdActivity(ctx context.Context, args []string) error {
	var req client.ActivityRequest
	g, _, err := m.dialArgs("activity", args, 0, "activity [--limit N] [--before POS]", func(fs *flag.FlagSet) {
		fs.IntVar(&req.Limit, "limit", 0, "entries per page (default 50)")
		fs.Uint64Var(&req.Before, "before", 0, "list entries below this position (the next page's --before)")
	})
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Activity(ctx, req)
	return m.show(g, r, err, func() {
		rows := make([][]string, 0, len(r.Entries))
		for _, e := range r.Entries {
			detail := strings.Join(e.Paths, " ")
			if e.Detail != "" {
				detail = strings.TrimSpace(e.Detail + " " + detail)
			}
			rows = append(rows, []string{strconv.FormatUint(e.Position, 10), e.Time.Format(time.RFC3339), e.Session, e.Type, e.Actor, detail})
		}
		m.table([]string{"POSITION", "TIME", "SESSION", "TYPE", "ACTOR", "DETAIL"}, rows)
		if r.NextBefore != 0 {
			fmt.Fprintf(m.Stdout, "next page: --before %d\n", r.NextBefore)
		}
	})
}
