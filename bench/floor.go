package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// floorWorkers is how many requests the floor service handles at once, as
// many as row 1's most clients (the service's own pool is larger).
const floorWorkers = 64

// floorService is the least a service reached over NATS request/reply can
// do for a write: it takes each request on the service's connection,
// appends the request's body as it came to a subject of the bench stream
// named by the request's last subject token, expecting that subject's last
// sequence (as an append expects its session's head), and answers with
// the stored sequence. Nothing is decoded, checked or hashed, and no
// state is kept but each subject's last sequence. Rows 1 and 9 measure
// Strand against it: the substrate's cost of a write made through a
// service, which no service's code can go below, so floor/raw bounds what
// strand/raw can reach with this design.
type floorService struct {
	js      jetstream.JetStream
	prefix  string // of the stored subjects
	subject string // of the requests, prefix of a key token
	sub     *nats.Subscription
	work    chan *nats.Msg
	done    chan struct{}
	wg      sync.WaitGroup

	mu   sync.Mutex
	last map[string]uint64
}

// startFloor starts the floor service on e's service connection.
func (r *Runner) startFloor(e *Env) (*floorService, error) {
	js, err := jetstream.New(e.NC)
	if err != nil {
		return nil, err
	}
	_, prefix := r.benchStream(kindRaw)
	f := &floorService{js: js, prefix: prefix + "floor.", subject: "strandbench." + r.Tenant + ".floor.",
		work: make(chan *nats.Msg, floorWorkers), done: make(chan struct{}), last: map[string]uint64{}}
	f.sub, err = e.NC.Subscribe(f.subject+"*", func(m *nats.Msg) {
		select {
		case f.work <- m:
		case <-f.done:
		}
	})
	if err != nil {
		return nil, err
	}
	if err := e.NC.Flush(); err != nil {
		_ = f.sub.Unsubscribe()
		return nil, err
	}
	for range floorWorkers {
		f.wg.Go(f.serve)
	}
	return f, nil
}

func (f *floorService) serve() {
	for {
		var m *nats.Msg
		select {
		case m = <-f.work:
		case <-f.done:
			return
		}
		key := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		f.mu.Lock()
		last := f.last[key]
		f.mu.Unlock()
		pm := nats.NewMsg(f.prefix + key)
		pm.Data = m.Data
		ack, err := f.js.PublishMsg(context.Background(), pm, jetstream.WithExpectLastSequencePerSubject(last))
		if err != nil {
			_ = m.Respond([]byte("error: " + err.Error()))
			continue
		}
		f.mu.Lock()
		f.last[key] = ack.Sequence
		f.mu.Unlock()
		_ = m.Respond(strconv.AppendUint(nil, ack.Sequence, 10))
	}
}

// write sends body as one write to key's subject through the floor
// service, on the callers' connection.
func (f *floorService) write(ctx context.Context, nc *nats.Conn, key string, body []byte) error {
	resp, err := nc.RequestWithContext(ctx, f.subject+key, body)
	if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(string(resp.Data), 10, 64); err != nil {
		return fmt.Errorf("floor service: %s", resp.Data)
	}
	return nil
}

// stop stops the service once its callers are done.
func (f *floorService) stop() {
	_ = f.sub.Unsubscribe()
	close(f.done)
	f.wg.Wait()
}
