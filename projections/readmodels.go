package projections

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/names"
)

// ReadModels are the projections of the event stream that every strand
// serve instance runs beside its service: the session views (with their
// review queue's work items), the activity feed and the stats. strand
// bench runs them the same way to measure what they cost a write.
type ReadModels struct {
	Views    *Sessions
	Activity *Activity
	Stats    *Stats
}

// OpenReadModels opens (without starting) every projection of the event
// stream, configured as strand serve runs them. retry runs their requests
// to other streams (the store's streams.Retry); shareSyncs writes a
// catch-up's views and feed chunks as atomic batches (on where group
// commit is: a cluster, or an embedded server that fsyncs every write).
func OpenReadModels(ctx context.Context, js jetstream.JetStream, replicas int, shareSyncs bool,
	retry func(ctx context.Context, what string, op func(ctx context.Context) error) error, log *slog.Logger) (*ReadModels, error) {
	views, err := OpenSessions(ctx, js, names.EventStream, names.AllEvents, replicas, log)
	if err != nil {
		return nil, err
	}
	views.EmitWork(WorkConfig{Stream: names.WorkStream, Subject: names.WorkSubject, Retry: retry})
	activity := OpenActivity(js, names.EventStream, names.AllEvents, replicas,
		FeedConfig{Stream: names.FeedStream, Subject: names.FeedSubject, Retry: retry}, log)
	if shareSyncs {
		views.ShareSyncs()
		activity.ShareSyncs()
	}
	stats, err := OpenStats(ctx, js, names.EventStream, names.AllEvents, replicas, log)
	if err != nil {
		return nil, err
	}
	return &ReadModels{Views: views, Activity: activity, Stats: stats}, nil
}

// Specs describes each projection to the runtime.
func (r *ReadModels) Specs() []Spec {
	return []Spec{r.Views.Spec(), r.Activity.Spec(), r.Stats.Spec()}
}

// Start starts every projection; on an error none is left running.
func (r *ReadModels) Start(ctx context.Context) error {
	if err := r.Views.Start(ctx); err != nil {
		return err
	}
	if err := r.Activity.Start(ctx); err != nil {
		r.Views.Stop()
		return err
	}
	if err := r.Stats.Start(ctx); err != nil {
		r.Activity.Stop()
		r.Views.Stop()
		return err
	}
	return nil
}

// Stop stops every projection (other instances carry on).
func (r *ReadModels) Stop() {
	r.Stats.Stop()
	r.Activity.Stop()
	r.Views.Stop()
}
