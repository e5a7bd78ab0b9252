package handlers_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
)

func TestCache_CASRace(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	first, err := h.c.CachePut(ctx, client.CachePutRequest{Session: id, Key: "counter", Value: []byte("0")})
	if err != nil {
		t.Fatal(err)
	}
	// Every round, 8 writers try to move the counter from the revision they
	// all read: exactly one may win, the others get conflict.
	rev := first.Entry.Rev
	for round := 1; round <= 5; round++ {
		var wins, conflicts atomic.Int32
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rev
				_, err := h.c.CacheCAS(ctx, client.CachePutRequest{Session: id, Key: "counter", Value: []byte(fmt.Sprint(round)), ExpectedRev: &r})
				switch client.ErrorCode(err) {
				case "":
					wins.Add(1)
				case domain.CodeConflict:
					conflicts.Add(1)
				default:
					t.Errorf("cas: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != 7 {
			t.Fatalf("round %d: %d wins, %d conflicts; want 1 and 7", round, wins.Load(), conflicts.Load())
		}
		got, err := h.c.CacheGet(ctx, client.CacheRequest{Session: id, Key: "counter"})
		if err != nil || string(got.Entry.Value) != fmt.Sprint(round) || got.Entry.Rev <= rev {
			t.Fatalf("round %d: %+v %v", round, got.Entry, err)
		}
		rev = got.Entry.Rev
	}
	zero := uint64(0)
	_, err = h.c.CacheCAS(ctx, client.CachePutRequest{Session: id, Key: "counter", Value: []byte("x"), ExpectedRev: &zero})
	wantErr(t, "create-only cas of an existing key", err, domain.CodeConflict)
}

func TestCache_Operations(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	h := start(t, harnessOptions{service: handlers.Options{Now: clock}})
	ctx := t.Context()
	id := h.session(t)

	put, err := h.c.CacheBatch(ctx, "batch_put", client.CacheBatchRequest{Session: id, Entries: []client.CachePutRequest{
		{Key: "notes/a", Value: []byte("1")}, {Key: "notes/b", Value: []byte("2")}, {Key: "notes/c", Value: []byte("3"), TTL: "1m"}, {Key: "other", Value: []byte("4")},
	}})
	if err != nil || len(put.Entries) != 4 {
		t.Fatalf("batch_put: %+v %v", put, err)
	}
	h.wantHead(t, "batch_put", put.Position)
	keys, err := h.c.CacheKeys(ctx, client.CacheKeysRequest{Session: id, Prefix: "notes/", Limit: 2})
	if err != nil || len(keys.Keys) != 2 || keys.NextCursor != "notes/b" {
		t.Fatalf("keys page 1: %+v %v", keys, err)
	}
	keys, err = h.c.CacheKeys(ctx, client.CacheKeysRequest{Session: id, Prefix: "notes/", After: keys.NextCursor})
	if err != nil || len(keys.Keys) != 1 || keys.Keys[0].Key != "notes/c" {
		t.Fatalf("keys page 2: %+v %v", keys, err)
	}
	bg, err := h.c.CacheBatch(ctx, "batch_get", client.CacheBatchRequest{Session: id, Keys: []string{"notes/a", "missing"}})
	if err != nil || len(bg.Entries) != 1 || string(bg.Entries[0].Value) != "1" || len(bg.Missing) != 1 {
		t.Fatalf("batch_get: %+v %v", bg, err)
	}
	// TTL: judged from the clock at the head, from event time in the past.
	advance(2 * time.Minute)
	if r, err := h.c.CacheExists(ctx, client.CacheRequest{Session: id, Key: "notes/c"}); err != nil || r.Exists {
		t.Fatalf("expired key exists at the head: %+v %v", r, err)
	}
	if r, err := h.c.CacheExists(ctx, client.CacheRequest{Session: id, Key: "notes/c", At: client.AtPosition(put.Position)}); err != nil || !r.Exists {
		t.Fatalf("key at the position that wrote it: %+v %v", r, err)
	}
	st, err := h.c.CacheStats(ctx, client.CacheKeysRequest{Session: id})
	if err != nil || st.Keys != 3 {
		t.Fatalf("stats after expiry: %+v %v", st, err)
	}
	del, err := h.c.CacheBatch(ctx, "delete_prefix", client.CacheBatchRequest{Session: id, Prefix: "notes/"})
	if err != nil || del.Deleted != 2 {
		t.Fatalf("delete_prefix: %+v %v", del, err)
	}
	h.unchanged(t, "bad cache requests", func() {
		_, err := h.c.CacheDelete(ctx, client.CacheRequest{Session: id, Key: "notes/a"})
		wantErr(t, "delete a deleted key", err, domain.CodeNotFound)
		_, err = h.c.CachePut(ctx, client.CachePutRequest{Session: id, Key: "", Value: []byte("x")})
		wantErr(t, "empty key", err, domain.CodeInvalidArgument)
		_, err = h.c.CachePut(ctx, client.CachePutRequest{Session: id, Key: "k", Value: make([]byte, domain.MaxCacheValueBytes+1)})
		wantErr(t, "huge value", err, domain.CodeTooLarge)
		_, err = h.c.CachePut(ctx, client.CachePutRequest{Session: id, Key: "k", TTL: "soon"})
		wantErr(t, "bad ttl", err, domain.CodeInvalidArgument)
		_, err = h.c.CacheCAS(ctx, client.CachePutRequest{Session: id, Key: "k"})
		wantErr(t, "cas without expected_rev", err, domain.CodeInvalidArgument)
		_, err = h.c.CacheGet(ctx, client.CacheRequest{Session: id, Key: "nope"})
		wantErr(t, "get a missing key", err, domain.CodeNotFound)
	})

	// Forks inherit the cache as it was; restores bring it back.
	mark := h.write(t, id, "f", "x").Position
	if _, err := h.c.CachePut(ctx, client.CachePutRequest{Session: id, Key: "late", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	fork, err := h.c.Fork(ctx, client.ForkRequest{Session: id, At: client.AtPosition(mark)})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := h.c.CacheExists(ctx, client.CacheRequest{Session: fork.Session.ID, Key: "late"}); r.Exists {
		t.Fatalf("fork sees a key written after the fork point")
	}
	if r, _ := h.c.CacheExists(ctx, client.CacheRequest{Session: fork.Session.ID, Key: "other"}); !r.Exists {
		t.Fatalf("fork lost a key from before the fork point")
	}
	if _, err := h.c.Restore(ctx, client.RestoreRequest{Session: id, To: client.AtPosition(mark)}); err != nil {
		t.Fatal(err)
	}
	if r, _ := h.c.CacheExists(ctx, client.CacheRequest{Session: id, Key: "late"}); r.Exists {
		t.Fatalf("restore kept a key written after the target")
	}
}

func TestLock_Enforcement(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	h := start(t, harnessOptions{service: handlers.Options{Now: clock}})
	ctx := t.Context()
	id := h.session(t)
	h.write(t, id, "src/a.go", "a")
	h.write(t, id, "docs/r.md", "r")
	alice, bob := h.as("alice"), h.as("bob")
	got, err := alice.Lock(ctx, "acquire", client.LockRequest{Session: id, Path: "src", Subtree: true, TTL: "1m"})
	if err != nil || got.Lock.Token == "" || got.Lock.Owner != "alice" || !got.Lock.Active {
		t.Fatalf("acquire: %+v %v", got, err)
	}
	tok := got.Lock.Token
	_, err = bob.Lock(ctx, "acquire", client.LockRequest{Session: id, Path: "src/a.go"})
	wantErr(t, "contended acquire", err, domain.CodeLocked)

	h.unchanged(t, "writes under bob's missing token", func() {
		for name, fn := range map[string]func() error{
			"write": func() error {
				_, err := bob.Write(ctx, client.WriteRequest{Session: id, Path: "src/a.go", Content: []byte("x")})
				return err
			},
			"mkdir": func() error { _, err := bob.Mkdir(ctx, client.MkdirRequest{Session: id, Path: "src/d"}); return err },
			"remove": func() error {
				_, err := bob.Remove(ctx, client.RemoveRequest{Session: id, Path: "src/a.go"})
				return err
			},
			"rename": func() error {
				_, err := bob.Rename(ctx, client.RenameRequest{Session: id, From: "docs/r.md", To: "src/r.md"})
				return err
			},
			"symlink": func() error {
				_, err := bob.Symlink(ctx, client.SymlinkRequest{Session: id, Path: "src/l", Target: "a.go"})
				return err
			},
			"xattr": func() error {
				_, err := bob.Xattr(ctx, "set", client.XattrRequest{Session: id, Path: "src/a.go", Name: "user.x", Value: []byte("1")})
				return err
			},
			"batch": func() error {
				_, err := bob.Batch(ctx, client.BatchRequest{Session: id, Ops: []client.BatchOp{{Op: "mkdir", Path: "free"}, {Op: "remove", Path: "src", Recursive: true}}})
				return err
			},
			"restore": func() error { _, err := bob.Restore(ctx, client.RestoreRequest{Session: id, To: "1"}); return err },
			"wrong token": func() error {
				_, err := bob.Write(ctx, client.WriteRequest{Mutation: client.Mutation{Token: "not-the-token-at-all"}, Session: id, Path: "src/a.go", Content: []byte("x")})
				return err
			},
		} {
			err := fn()
			if client.ErrorCode(err) != domain.CodeLocked && !(name == "restore" && client.ErrorCode(err) == domain.CodeNotFound) {
				t.Errorf("%s under a lease: got %v, want locked", name, err)
			}
		}
	})
	if _, err := bob.Write(ctx, client.WriteRequest{Session: id, Path: "docs/free.md", Content: []byte("ok")}); err != nil {
		t.Fatalf("write outside the lease: %v", err)
	}
	if _, err := alice.Write(ctx, client.WriteRequest{Mutation: client.Mutation{Token: tok}, Session: id, Path: "src/a.go", Content: []byte("mine")}); err != nil {
		t.Fatalf("write with the token: %v", err)
	}
	_, err = bob.Lock(ctx, "renew", client.LockRequest{Mutation: client.Mutation{Token: "not-the-token-at-all"}, Session: id, Path: "src"})
	wantErr(t, "renew with another token", err, domain.CodeForbidden)

	// The lease runs out without any timer: the next write's time decides.
	advance(2 * time.Minute)
	if _, err := bob.Write(ctx, client.WriteRequest{Session: id, Path: "src/a.go", Content: []byte("after expiry")}); err != nil {
		t.Fatalf("write after the lease expired: %v", err)
	}
	list, err := h.c.Locks(ctx, client.LockListRequest{Session: id})
	if err != nil || len(list.Locks) != 0 {
		t.Fatalf("locks after expiry: %+v %v", list, err)
	}
	// Force release is recorded with its actor.
	b, err := bob.Lock(ctx, "acquire", client.LockRequest{Session: id, Path: "docs"})
	if err != nil {
		t.Fatal(err)
	}
	fr, err := h.as("admin").Lock(ctx, "force_release", client.LockRequest{Session: id, Path: "docs"})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := h.c.Events(ctx, client.EventsRequest{Session: id, Types: []string{"LockReleased"}})
	if err != nil || len(evs.Events) != 1 || evs.Events[0].Actor != "admin" || !evs.Events[0].Lock.Forced || evs.Events[0].Position != fr.Position {
		t.Fatalf("force release event: %+v %v (lock %+v)", evs, err, b)
	}
}

func TestBus_PublishReplaySubscribe(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	got := make(chan *nats.Msg, 10)
	sub, err := h.c.BusSubscribe(id, "chat", func(m *nats.Msg) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := h.env.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	before := h.env.LastSeq(t)
	for i := 0; i < 3; i++ {
		if _, err := h.as("agent").BusPublish(ctx, client.BusRequest{Session: id, Topic: "chat", Data: []byte(fmt.Sprint("m", i))}); err != nil {
			t.Fatal(err)
		}
	}
	// Any NATS client may publish on the plain subject directly.
	if err := h.env.NC.Publish(fmt.Sprintf("strand.bus.acme.%s.chat", id), []byte("direct")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("live subscriber got %d of 4 messages", i)
		}
	}
	if after := h.env.LastSeq(t); after != before {
		t.Fatalf("bus messages became session events: %d -> %d", before, after)
	}
	waitFor(t, "replay of 4 messages", func() bool {
		r, err := h.c.BusReplay(ctx, client.BusRequest{Session: id, Topic: "chat"})
		return err == nil && len(r.Messages) == 4 && string(r.Messages[0].Data) == "m0" && r.Messages[0].Actor == "agent" && string(r.Messages[3].Data) == "direct"
	})
	last, err := h.c.BusReplay(ctx, client.BusRequest{Session: id, Topic: "chat", Limit: 2})
	if err != nil || len(last.Messages) != 2 || string(last.Messages[0].Data) != "m2" {
		t.Fatalf("replay of the last 2: %+v %v", last, err)
	}
	_, err = h.c.BusPublish(ctx, client.BusRequest{Session: id, Topic: "a.*"})
	wantErr(t, "wildcard topic", err, domain.CodeInvalidArgument)
	_, err = h.c.BusPublish(ctx, client.BusRequest{Session: "01J00000000000000000000000", Topic: "chat"})
	wantErr(t, "unknown session", err, domain.CodeNotFound)
}

func TestEvents_FiltersAndWatch(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	h.write(t, id, "src/a.go", "1")
	if _, err := h.as("bob").Write(ctx, client.WriteRequest{Session: id, Path: "docs/x.md", Content: []byte("2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.CachePut(ctx, client.CachePutRequest{Session: id, Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  client.EventsRequest
		want int
	}{
		{client.EventsRequest{Types: []string{"FileWritten"}}, 2},
		{client.EventsRequest{Actor: "bob"}, 1},
		{client.EventsRequest{Path: "src"}, 1},
		{client.EventsRequest{Types: []string{"CacheUpdated", "SessionCreated"}}, 2},
		{client.EventsRequest{Types: []string{"FileWritten"}, Limit: 1}, 1},
	} {
		tc.req.Session = id
		got, err := h.c.Events(ctx, tc.req)
		if err != nil || len(got.Events) != tc.want {
			t.Fatalf("events %+v: got %d (%v), want %d", tc.req, len(got.Events), err, tc.want)
		}
	}
	_, err := h.c.Events(ctx, client.EventsRequest{Session: id, Types: []string{"Nope"}})
	wantErr(t, "unknown type", err, domain.CodeInvalidArgument)

	// The live tail: history first, then new events as they are stored.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := make(chan client.EventView, 100)
	go func() {
		_ = h.c.Watch(wctx, id, 0, func(e client.EventView) error { seen <- e; return nil })
	}()
	var versions []uint64
	deadline := time.After(10 * time.Second)
	for len(versions) < 7 {
		if len(versions) == 4 {
			h.write(t, id, "live1", "x")
			h.write(t, id, "live2", "y")
			h.write(t, id, "live3", "z")
		}
		select {
		case e := <-seen:
			versions = append(versions, e.Version)
		case <-deadline:
			t.Fatalf("watch saw versions %v, want 1..7", versions)
		}
	}
	for i, v := range versions {
		if v != uint64(i+1) {
			t.Fatalf("watch versions %v, want 1..7 in order without repeats", versions)
		}
	}
}
