package projections

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// readModel is what the session views and the stats share: the bucket
// the projection writes, a watch of that bucket that keeps this instance's
// in-memory part of it (the list index, the tenant sums), and the runner
// that folds events into it. Starting runs the watch first, so an instance
// reads from its memory as soon as it folds; stopping stops the runner
// (other instances carry on), then the watch.
//
// Lock order: readModel.mu alone; it guards runner and the watch's fields
// and is never held while a fold or the watch runs.
type readModel struct {
	js       jetstream.JetStream
	stream   string
	filter   string
	replicas int
	kv       jetstream.KeyValue
	log      *slog.Logger

	mu          sync.Mutex
	runner      *Runner
	watchCancel context.CancelFunc
	watchDone   chan struct{}
}

// openReadModel provisions a read model's bucket (history 1, file
// storage).
func openReadModel(ctx context.Context, js jetstream.JetStream, stream, filter string, replicas int, log *slog.Logger, bucket, description string) (*readModel, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv, err := ensureBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: description,
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("provision bucket %s: %w", bucket, err)
	}
	return &readModel{js: js, stream: stream, filter: filter, replicas: replicas, kv: kv, log: log}, nil
}

// startWatch watches the keys of the bucket that filters match (every key
// when there are none) and hands the watcher to consume, on a goroutine of
// its own, until stopWatch. A second call while it runs does nothing.
func (m *readModel) startWatch(filters []string, consume func(w jetstream.KeyWatcher)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.watchCancel != nil {
		return nil
	}
	wctx, cancel := context.WithCancel(context.Background())
	var w jetstream.KeyWatcher
	var err error
	if len(filters) == 0 {
		w, err = m.kv.WatchAll(wctx)
	} else {
		w, err = m.kv.WatchFiltered(wctx, filters)
	}
	if err != nil {
		cancel()
		return fmt.Errorf("watch %s: %w", m.kv.Bucket(), err)
	}
	done := make(chan struct{})
	m.watchCancel, m.watchDone = cancel, done
	go func() {
		defer close(done)
		defer func() { _ = w.Stop() }()
		consume(w)
	}()
	return nil
}

// stopWatch ends the watch and waits for its goroutine.
func (m *readModel) stopWatch() {
	m.mu.Lock()
	cancel, done := m.watchCancel, m.watchDone
	m.watchCancel = nil
	m.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// run starts the watch with startWatch, then joins the projection's
// consumer; the watch stops again when joining fails.
func (m *readModel) run(ctx context.Context, spec Spec, startWatch func(ctx context.Context) error) error {
	if err := startWatch(ctx); err != nil {
		return err
	}
	r, err := StartRunner(ctx, m.js, m.stream, m.replicas, spec, m.log)
	if err != nil {
		m.stopWatch()
		return err
	}
	m.mu.Lock()
	m.runner = r
	m.mu.Unlock()
	return nil
}

// stop stops folding (other instances carry on), then the watch.
func (m *readModel) stop() {
	m.mu.Lock()
	r := m.runner
	m.runner = nil
	m.mu.Unlock()
	if r != nil {
		r.Stop()
	}
	m.stopWatch()
}
