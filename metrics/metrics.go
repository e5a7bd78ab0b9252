// Package metrics exports a Strand deployment's figures to Prometheus:
// stream sizes, consumer backlogs (worker queue depth, projection lag),
// dead letters, read straight from JetStream when Prometheus scrapes, so
// that every instance reports the same shared numbers and none keeps a
// copy that could go stale. The HTTP front adds its own request figures
// (package gateway); the Go runtime's (GC, memory) come from the standard
// collectors.
package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/strand-dev/strand/client"
)

// Options configure a Collector.
type Options struct {
	// JetStream is the service account's JetStream: the collector lists
	// its streams and their consumers.
	JetStream jetstream.JetStream
	// WorkStream and DeadStream name the work queue and the dead letters.
	WorkStream, DeadStream string
	// Projections reports the projections' lag (nil: not exported; the
	// consumer backlog of their durable consumers still is).
	Projections func(ctx context.Context) ([]client.ProjectionStatus, error)
	// Timeout bounds one scrape's questions to JetStream (default 5s).
	Timeout time.Duration
	Log     *slog.Logger
}

// Collector is a prometheus.Collector of the deployment's figures.
type Collector struct {
	o Options

	streamMsgs, streamBytes, streamConsumers    *prometheus.Desc
	consumerPending, consumerAcks, consumerRedl *prometheus.Desc
	workDepth, deadLetters                      *prometheus.Desc
	projLag, projPosition                       *prometheus.Desc
	up                                          *prometheus.Desc
}

// New returns a collector.
func New(o Options) *Collector {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("strand_"+name, help, labels, nil)
	}
	return &Collector{
		o:               o,
		streamMsgs:      d("stream_messages", "Messages stored in a JetStream stream.", "stream"),
		streamBytes:     d("stream_bytes", "Bytes stored in a JetStream stream (events, blobs, snapshots, ...).", "stream"),
		streamConsumers: d("stream_consumers", "Consumers of a JetStream stream.", "stream"),
		consumerPending: d("consumer_pending", "Messages of a stream a durable consumer has not been delivered yet: a projection's lag or a worker's queue.", "stream", "consumer"),
		consumerAcks:    d("consumer_ack_pending", "Messages delivered to a consumer and not acknowledged yet.", "stream", "consumer"),
		consumerRedl:    d("consumer_redelivered", "Messages a consumer has had redelivered and not acknowledged.", "stream", "consumer"),
		workDepth:       d("work_queue_depth", "Work items waiting in the work queue."),
		deadLetters:     d("dead_letters", "Work items that failed too often and went to the dead-letter stream."),
		projLag:         d("projection_lag", "Events a projection has still to fold.", "projection"),
		projPosition:    d("projection_position", "The position up to which a projection has folded every event.", "projection"),
		up:              d("jetstream_up", "1 when the last scrape could read JetStream, else 0."),
	}
}

var _ prometheus.Collector = (*Collector)(nil)

// Describe sends every descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.streamMsgs, c.streamBytes, c.streamConsumers, c.consumerPending,
		c.consumerAcks, c.consumerRedl, c.workDepth, c.deadLetters, c.projLag, c.projPosition, c.up} {
		ch <- d
	}
}

// Collect reads the figures from JetStream.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.o.Timeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	up := 1.0
	if c.o.JetStream != nil {
		if err := c.collectStreams(ctx, gauge); err != nil {
			c.o.Log.Warn("metrics: read streams", "err", err)
			up = 0
		}
	}
	gauge(c.up, up)
	if c.o.Projections != nil {
		ps, err := c.o.Projections(ctx)
		if err != nil {
			c.o.Log.Warn("metrics: projections status", "err", err)
			return
		}
		for _, p := range ps {
			gauge(c.projLag, float64(p.Lag), p.Name)
			gauge(c.projPosition, float64(p.Position), p.Name)
		}
	}
}

func (c *Collector) collectStreams(ctx context.Context, gauge func(*prometheus.Desc, float64, ...string)) error {
	streams := c.o.JetStream.ListStreams(ctx)
	for si := range streams.Info() {
		name := si.Config.Name
		gauge(c.streamMsgs, float64(si.State.Msgs), name)
		gauge(c.streamBytes, float64(si.State.Bytes), name)
		gauge(c.streamConsumers, float64(si.State.Consumers), name)
		switch name {
		case c.o.WorkStream:
			gauge(c.workDepth, float64(si.State.Msgs))
		case c.o.DeadStream:
			gauge(c.deadLetters, float64(si.State.Msgs))
		}
		if si.State.Consumers == 0 {
			continue
		}
		s, err := c.o.JetStream.Stream(ctx, name)
		if err != nil {
			return err
		}
		consumers := s.ListConsumers(ctx)
		for ci := range consumers.Info() {
			if ci.Config.Durable == "" {
				continue // ephemeral: a reader's, with a random name
			}
			gauge(c.consumerPending, float64(ci.NumPending), name, ci.Name)
			gauge(c.consumerAcks, float64(ci.NumAckPending), name, ci.Name)
			gauge(c.consumerRedl, float64(ci.NumRedelivered), name, ci.Name)
		}
		if err := consumers.Err(); err != nil {
			return err
		}
	}
	return streams.Err()
}

// Registry returns a registry with the Go runtime's collectors (GC,
// memory, goroutines), the process's, and cs.
func Registry(cs ...prometheus.Collector) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	all := append([]prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}, cs...)
	for _, c := range all {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}
