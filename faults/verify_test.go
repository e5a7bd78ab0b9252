package faults_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/streams"
)

// history is one session's events as stored, read back and checked.
type history struct {
	Session string
	Events  []streams.StoredEvent
	Head    *domain.Session
	// ByRequest maps a request id to the positions of the events that
	// carry it (more than one would be a duplicate).
	ByRequest map[string][]uint64
	// ByPath maps a path to the positions of the events whose operations
	// name it.
	ByPath map[string][]uint64
	// ByContent maps a content hash to the positions of the events that
	// write it.
	ByContent map[domain.Hash][]uint64
}

// Event returns the event at a position, or nil.
func (h *history) Event(pos uint64) *streams.StoredEvent {
	for i := range h.Events {
		if h.Events[i].Position == pos {
			return &h.Events[i]
		}
	}
	return nil
}

// audit reads each session's history through a store that has never seen
// it (no cache, and no snapshot is used) and checks what an audit verify
// checks: versions are 1, 2, 3... without a gap; each event's prev is the
// hash of the event before it (the first one's is zero: these sessions are
// not forks); and the replay to the head, which domain.Evolve checks
// against the Merkle root every event records, succeeds and ends at the
// last event's root.
func audit(t *testing.T, ctx context.Context, nc *nats.Conn, replicas int, tenant string, sessions []string) map[string]*history {
	t.Helper()
	// SnapshotEvery so large that no snapshot is ever looked up: the
	// replay starts from the first event.
	fresh, err := streams.Open(ctx, nc, streams.Config{Replicas: replicas, SnapshotEvery: 1 << 50}, nil)
	if err != nil {
		t.Fatalf("audit: open a fresh store: %v", err)
	}
	defer fresh.Close()
	out := map[string]*history{}
	for _, id := range sessions {
		h, err := auditSession(ctx, fresh, tenant, id)
		if err != nil {
			t.Errorf("audit of session %s: %v", id, err)
			continue
		}
		out[id] = h
	}
	return out
}

func auditSession(ctx context.Context, st *streams.Store, tenant, id string) (*history, error) {
	head, err := st.Head(ctx, tenant, id)
	if err != nil {
		return nil, fmt.Errorf("replay to the head: %w", err)
	}
	evs, err := st.Events(ctx, tenant, id, 1, head.Position, 1<<30)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	if len(evs) == 0 {
		return nil, fmt.Errorf("no events")
	}
	h := &history{Session: id, Events: evs, Head: head, ByRequest: map[string][]uint64{}, ByPath: map[string][]uint64{},
		ByContent: map[domain.Hash][]uint64{}}
	var prevHash domain.Hash
	for i, se := range evs {
		ev := se.Event
		if ev.Session != id || ev.Tenant != tenant {
			return nil, fmt.Errorf("event at %d belongs to %s/%s", se.Position, ev.Tenant, ev.Session)
		}
		if ev.Version != uint64(i+1) {
			return nil, fmt.Errorf("event at %d has version %d, want %d (versions must be contiguous)", se.Position, ev.Version, i+1)
		}
		if i > 0 && se.Position <= evs[i-1].Position {
			return nil, fmt.Errorf("event at %d follows one at %d", se.Position, evs[i-1].Position)
		}
		prev, ok := domain.HashFromBytes(ev.Prev)
		if !ok || prev != prevHash {
			return nil, fmt.Errorf("event at %d (version %d) has prev %x, want the hash of the event before it, %s", se.Position, ev.Version, ev.Prev, prevHash)
		}
		if domain.Sum(se.Body) != se.Hash {
			return nil, fmt.Errorf("event at %d: hash does not match its body", se.Position)
		}
		prevHash = se.Hash
		if ev.RequestID != "" {
			h.ByRequest[ev.RequestID] = append(h.ByRequest[ev.RequestID], se.Position)
		}
		for _, o := range ev.Ops {
			h.ByPath[o.Path] = append(h.ByPath[o.Path], se.Position)
			if c, ok := domain.HashFromBytes(o.Content); ok && o.Kind == domain.OpWrite {
				h.ByContent[c] = append(h.ByContent[c], se.Position)
			}
		}
	}
	last := evs[len(evs)-1]
	if head.Position != last.Position || head.Version != last.Event.Version || head.LastHash != last.Hash {
		return nil, fmt.Errorf("head at %d version %d, last event at %d version %d", head.Position, head.Version, last.Position, last.Event.Version)
	}
	if root, ok := domain.HashFromBytes(last.Event.Root); !ok || root != head.Tree.Hash() {
		return nil, fmt.Errorf("replayed root %s, last event records %x", head.Tree.Hash(), last.Event.Root)
	}
	return h, nil
}
