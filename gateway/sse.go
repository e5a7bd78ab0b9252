package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
)

// The live tails, as server-sent events (text/event-stream): a session's
// events (the stored history from a position, then live, as the Go
// client's Watch delivers them) and a bus topic's messages.
const (
	EventsWatchRoute  = APIPrefix + "{tenant}/events/watch"
	BusSubscribeRoute = APIPrefix + "{tenant}/bus/subscribe"
)

// keepAlive is how often an idle stream sends a comment, so that proxies
// do not close it.
const keepAlive = 25 * time.Second

func (g *Gateway) streamRoutes() {
	g.mux.Handle("GET "+EventsWatchRoute, g.metrics.instrument("events.watch", http.HandlerFunc(g.serveEventsWatch)))
	g.mux.Handle("GET "+BusSubscribeRoute, g.metrics.instrument("bus.subscribe", http.HandlerFunc(g.serveBusSubscribe)))
}

// sse writes server-sent events.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, rc: http.NewResponseController(w)}
	_ = s.rc.Flush()
	return s
}

// send writes one event with a JSON body.
func (s *sse) send(event, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if id != "" {
		if _, err := fmt.Fprintf(s.w, "id: %s\n", id); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", event, data); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *sse) comment(text string) error {
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return err
	}
	return s.rc.Flush()
}

// serveEventsWatch streams a session's events from ?from= (or after the
// Last-Event-ID a reconnecting EventSource sends), each as an "event"
// event whose id is its position.
func (g *Gateway) serveEventsWatch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	session := q.Get("session")
	var from uint64
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, domain.Errorf(domain.CodeInvalidArgument, "from must be a position"))
			return
		}
		from = n
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, domain.Errorf(domain.CodeInvalidArgument, "Last-Event-ID must be a position"))
			return
		}
		from = n + 1
	}
	cl, err := g.clientCall(r, false)
	if err != nil {
		writeError(w, err)
		return
	}
	defer cl.done()
	// One request first, so that a bad session or tenant answers with an
	// error status rather than an empty stream.
	if _, err := cl.c.Events(cl.ctx, client.EventsRequest{Session: session, Limit: 1}); err != nil {
		writeError(w, cl.err(err))
		return
	}
	s := startSSE(w)
	events := make(chan client.EventView)
	errc := make(chan error, 1)
	go func() {
		errc <- cl.c.Watch(cl.ctx, session, from, func(e client.EventView) error {
			select {
			case events <- e:
				return nil
			case <-cl.ctx.Done():
				return cl.ctx.Err()
			}
		})
	}()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case e := <-events:
			if err := s.send("event", strconv.FormatUint(e.Position, 10), e); err != nil {
				return
			}
		case err := <-errc:
			if r.Context().Err() == nil {
				_ = s.send("error", "", errorBodyOf(cl.err(err)))
			}
			return
		case <-tick.C:
			if err := s.comment("keep-alive"); err != nil {
				return
			}
		}
	}
}

// serveBusSubscribe streams the live messages of a bus topic
// (?session=&topic=), each as a "message" event; bus.replay gives the
// retained history.
func (g *Gateway) serveBusSubscribe(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	session, topic := q.Get("session"), q.Get("topic")
	cl, err := g.clientCall(r, false)
	if err != nil {
		writeError(w, err)
		return
	}
	defer cl.done()
	// Check the session and topic through the service (and so the
	// credentials' tenant) before subscribing.
	if _, err := cl.c.BusReplay(cl.ctx, client.BusRequest{Session: session, Topic: topic, Limit: 1}); err != nil {
		writeError(w, cl.err(err))
		return
	}
	msgs := make(chan *nats.Msg, 256)
	sub, err := cl.c.BusSubscribe(session, topic, func(m *nats.Msg) {
		select {
		case msgs <- m:
		default: // a reader too slow for the topic loses messages, as on NATS
		}
	})
	if err != nil {
		writeError(w, cl.err(err))
		return
	}
	defer sub.Unsubscribe() //nolint:errcheck // best effort on the way out
	s := startSSE(w)
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case m := <-msgs:
			v := client.BusMessageView{Time: time.Now().UTC(), Actor: m.Header.Get(names.HeaderActor), Data: m.Data}
			if md, err := m.Metadata(); err == nil {
				v.Sequence, v.Time = md.Sequence.Stream, md.Timestamp.UTC()
			}
			if v.Data == nil {
				v.Data = []byte{}
			}
			if err := s.send("message", "", v); err != nil {
				return
			}
		case <-tick.C:
			if err := s.comment("keep-alive"); err != nil {
				return
			}
		}
	}
}

func errorBodyOf(err error) client.ErrorBody {
	code, msg := client.ErrorCode(err), domain.ErrorMessage(err)
	var ce *client.Error
	if errors.As(err, &ce) {
		msg = ce.Message
	}
	return client.ErrorBody{Error: client.ErrorDetail{Code: string(code), Message: msg}}
}
