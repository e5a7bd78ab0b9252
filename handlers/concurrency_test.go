package handlers_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
)

// TestFS_ConcurrentWrites runs writers at once against one session.
func TestFS_ConcurrentWrites(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()

	t.Run("EightWriters", func(t *testing.T) {
		id := h.session(t)
		before := h.env.LastSeq(t)
		const writers, each = 8, 5
		type result struct {
			pos uint64
			err error
		}
		results := make(chan result, writers*each)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for w := range writers {
			wg.Go(func() {
				<-gate
				for i := range each {
					p := "w" + string(rune('0'+w)) + "/" + string(rune('0'+i))
					r, err := h.c.Write(ctx, client.WriteRequest{Session: id, Path: p, Content: []byte(p)})
					results <- result{r.Position, err}
				}
			})
		}
		close(gate)
		wg.Wait()
		close(results)
		positions := map[uint64]bool{}
		ok := 0
		for r := range results {
			switch {
			case r.err == nil:
				if positions[r.pos] {
					t.Errorf("position %d answered twice", r.pos)
				}
				positions[r.pos] = true
				ok++
			case client.ErrorCode(r.err) == domain.CodeConflict:
			default:
				t.Errorf("concurrent write: %v, want success or conflict", r.err)
			}
		}
		if after := h.env.LastSeq(t); after-before != uint64(ok) {
			t.Errorf("%d writes succeeded but %d events were appended", ok, after-before)
		}
		evs, err := h.c.Events(ctx, client.EventsRequest{Session: id, Limit: 1000})
		if err != nil {
			t.Fatalf("events: %v", err)
		}
		if got := len(evs.Events) - 1; got != ok {
			t.Errorf("session has %d write events, want %d (the successes)", got, ok)
		}
		for _, e := range evs.Events[1:] {
			if !positions[e.Position] {
				t.Errorf("event at %d was not answered to any writer", e.Position)
			}
		}
		if n := len(h.manifest(t, id, "")); n != ok+writers {
			t.Errorf("manifest has %d entries, want %d files and %d dirs", n, ok, writers)
		}
		t.Logf("%d of %d concurrent writes succeeded", ok, writers*each)
	})

	t.Run("TwoInstances", func(t *testing.T) {
		// A second service on its own store shares the queue group: the
		// stores' caches go stale and only the append expectation keeps
		// the writers apart.
		ctx := t.Context()
		second := handlers.NewService(openStore(t, h), handlers.Options{})
		if err := second.Start(h.env.NC); err != nil {
			t.Fatalf("start second service: %v", err)
		}
		defer second.Stop()
		if err := h.env.NC.Flush(); err != nil {
			t.Fatalf("flush: %v", err)
		}
		id := h.session(t)
		before := h.env.LastSeq(t)
		const writers, each = 8, 5
		var mu sync.Mutex
		ok, conflicts := 0, 0
		positions := map[uint64]bool{}
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					p := "w" + string(rune('0'+w)) + "/" + string(rune('0'+i))
					r, err := h.c.Write(ctx, client.WriteRequest{Session: id, Path: p, Content: []byte(p)})
					mu.Lock()
					switch {
					case err == nil:
						if positions[r.Position] {
							t.Errorf("position %d answered twice", r.Position)
						}
						positions[r.Position] = true
						ok++
					case client.ErrorCode(err) == domain.CodeConflict:
						conflicts++
					default:
						t.Errorf("write %s: %v, want success or conflict", p, err)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if after := h.env.LastSeq(t); after-before != uint64(ok) {
			t.Errorf("%d writes succeeded but %d events were appended", ok, after-before)
		}
		if n := len(h.manifest(t, id, "")); n != ok+writers {
			t.Errorf("manifest has %d entries, want %d files and %d dirs", n, ok, writers)
		}
		t.Logf("two instances: %d succeeded, %d conflicts", ok, conflicts)
	})

	t.Run("SameExpectedPosition", func(t *testing.T) {
		id := h.session(t)
		for round := range 10 {
			head, err := h.c.GetSession(ctx, id, "")
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			before := h.env.LastSeq(t)
			errs := make([]error, 2)
			var wg sync.WaitGroup
			gate := make(chan struct{})
			for i := range 2 {
				wg.Go(func() {
					<-gate
					_, errs[i] = h.c.Write(ctx, client.WriteRequest{
						Session: id, Path: "f", Content: []byte{byte(round), byte(i)},
						Mutation: client.Mutation{ExpectedPosition: head.Position},
					})
				})
			}
			close(gate)
			wg.Wait()
			wins := 0
			for i, err := range errs {
				switch {
				case err == nil:
					wins++
				case client.ErrorCode(err) != domain.CodeConflict:
					t.Errorf("round %d writer %d: %v, want success or conflict", round, i, err)
				}
			}
			if wins != 1 {
				t.Errorf("round %d: %d writers at expected_position %d won, want exactly 1 (errors %v)", round, wins, head.Position, errs)
			}
			if after := h.env.LastSeq(t); after != before+1 {
				t.Errorf("round %d: %d events appended, want 1", round, after-before)
			}
		}
	})
}

// TestIdempotency_Concurrent sends the same request from several callers at
// once: it is stored once and every caller gets the same answer.
func TestIdempotency_Concurrent(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	const callers = 8
	run := func(t *testing.T, call func() (uint64, string, error)) {
		t.Helper()
		before := h.env.LastSeq(t)
		type answer struct {
			pos uint64
			id  string
			err error
		}
		answers := make([]answer, callers)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range callers {
			wg.Go(func() {
				<-gate
				pos, id, err := call()
				answers[i] = answer{pos, id, err}
			})
		}
		close(gate)
		wg.Wait()
		for i, a := range answers {
			if a.err != nil {
				t.Errorf("caller %d: %v", i, a.err)
				continue
			}
			if a.pos != answers[0].pos || a.id != answers[0].id {
				t.Errorf("caller %d: got %s at %d, caller 0 got %s at %d", i, a.id, a.pos, answers[0].id, answers[0].pos)
			}
		}
		if after := h.env.LastSeq(t); after != before+1 {
			t.Errorf("%d callers with one request id appended %d events, want 1", callers, after-before)
		}
	}
	t.Run("Create", func(t *testing.T) {
		req := client.CreateSessionRequest{Mutation: client.Mutation{RequestID: "same-create"}}
		run(t, func() (uint64, string, error) {
			r, err := h.c.CreateSession(ctx, req)
			return r.Position, r.Session.ID, err
		})
	})
	t.Run("Write", func(t *testing.T) {
		id := h.session(t)
		req := client.WriteRequest{Mutation: client.Mutation{RequestID: "same-write"}, Session: id, Path: "f", Content: []byte("x")}
		run(t, func() (uint64, string, error) {
			r, err := h.c.Write(ctx, req)
			return r.Position, r.Hash, err
		})
	})
	t.Run("WriteTwoInstances", func(t *testing.T) {
		second := handlers.NewService(openStore(t, h), handlers.Options{})
		if err := second.Start(h.env.NC); err != nil {
			t.Fatalf("start second service: %v", err)
		}
		defer second.Stop()
		if err := h.env.NC.Flush(); err != nil {
			t.Fatalf("flush: %v", err)
		}
		id := h.session(t)
		for round := range 5 {
			req := client.WriteRequest{Mutation: client.Mutation{RequestID: fmt.Sprintf("two-%d", round)}, Session: id, Path: "f", Content: []byte{byte(round)}}
			run(t, func() (uint64, string, error) {
				r, err := h.c.Write(ctx, req)
				return r.Position, r.Hash, err
			})
		}
	})
}
