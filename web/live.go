package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// heartbeat keeps an idle event stream open through proxies.
const heartbeat = 25 * time.Second

// liveEvent is the data of a "moved" server-sent event.
type liveEvent struct {
	Position uint64 `json:"position"`
	Type     string `json:"type"`
	Actor    string `json:"actor,omitempty"`
}

// live streams the events of a session after position from as
// server-sent events, so that an open page learns that the session moved
// (app.js then reloads it, or offers to when a form is being filled in).
func (a *App) live(w http.ResponseWriter, r *http.Request) {
	c, ok := a.client(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	from, err := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
	if err != nil {
		a.fail(w, r, domain.Errorf(domain.CodeInvalidArgument, "from must be a position"))
		return
	}
	// Refuse an unknown session before the stream starts (no 200 then).
	if _, err := c.GetSession(r.Context(), id, ""); err != nil {
		a.fail(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var mu sync.Mutex
	send := func(chunk string) error {
		mu.Lock()
		defer mu.Unlock()
		if _, err := fmt.Fprint(w, chunk); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := send(": live\n\n"); err != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	var beats sync.WaitGroup
	// The heartbeat must stop writing before the handler returns.
	defer beats.Wait()
	defer cancel()
	beats.Add(1)
	go func() {
		defer beats.Done()
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if send(": beat\n\n") != nil {
					return
				}
			}
		}
	}()
	err = c.Watch(ctx, id, from+1, func(e client.EventView) error {
		b, err := json.Marshal(liveEvent{Position: e.Position, Type: e.Type, Actor: e.Actor})
		if err != nil {
			return err
		}
		return send("event: moved\nid: " + strconv.FormatUint(e.Position, 10) + "\ndata: " + string(b) + "\n\n")
	})
	if err != nil && !errors.Is(err, ctx.Err()) {
		a.opts.Log.Debug("live stream ended", "session", id, "err", err)
	}
}
