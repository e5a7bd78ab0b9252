package streams_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

type ids struct {
	mu sync.Mutex
	n  int
}

// next returns deterministic, increasing ULID-shaped ids.
func (g *ids) next() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n++
	return fmt.Sprintf("01J%023d", g.n)
}

// openOther opens a second store on the env's connection: another service
// instance on the same streams.
func openOther(t testing.TB, env *streamstest.Env) *streams.Store {
	t.Helper()
	other, err := streams.Open(context.Background(), env.NC, streams.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	return other
}

func meta(g *ids, actor string) domain.Meta {
	return domain.Meta{EventID: g.next(), Actor: actor, Time: time.Unix(1700000000, 0).UTC()}
}

func create(t testing.TB, st *streams.Store, g *ids, tenant string) *domain.Session {
	t.Helper()
	res, err := st.Create(context.Background(), meta(g, "test"), domain.CreateSession{ID: g.next(), Tenant: tenant})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return res.Session
}

func write(t testing.TB, st *streams.Store, g *ids, s *domain.Session, path string, content string) streams.Result {
	t.Helper()
	res, err := st.Change(context.Background(), s.Tenant, s.ID, meta(g, "test"), func(*domain.Session) (domain.Command, error) {
		return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: path, Content: domain.Sum([]byte(content)), Size: int64(len(content))}}}, nil
	})
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return res
}

func TestStore_TwoInstancesShareASession(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	other := openOther(t, env)
	g := &ids{}
	s := create(t, env.Store, g, "acme")

	// Both instances cache the head, then write alternately: every write
	// after the first on each instance starts from a stale cache and must be
	// decided again on the fresh head.
	var positions []uint64
	for i := 0; i < 10; i++ {
		st := env.Store
		if i%2 == 1 {
			st = other
		}
		res := write(t, st, g, s, fmt.Sprintf("f%d", i), "x")
		positions = append(positions, res.Position)
	}
	head, err := other.Head(ctx, "acme", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := head.Tree.Count(); got != 10 {
		t.Fatalf("files after alternating writers: got %d, want 10", got)
	}
	if head.Version != 11 {
		t.Fatalf("version: got %d, want 11", head.Version)
	}
	for i := 1; i < len(positions); i++ {
		if positions[i] <= positions[i-1] {
			t.Fatalf("positions not increasing: %v", positions)
		}
	}
}

func TestStore_ConcurrentWritersNeverLoseAWrite(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	other := openOther(t, env)
	g := &ids{}
	s := create(t, env.Store, g, "acme")
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			st := env.Store
			if w%2 == 1 {
				st = other
			}
			for i := 0; i < 10; i++ {
				_, err := st.Change(ctx, "acme", s.ID, meta(g, "w"), func(*domain.Session) (domain.Command, error) {
					return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: fmt.Sprintf("w%d/%d", w, i), Content: domain.Sum(nil)}}}, nil
				})
				if err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				} else if domain.ErrorCode(err) != domain.CodeConflict {
					t.Errorf("write: %v", err)
				}
			}
		}(w)
	}
	wg.Wait()
	head, err := env.Store.Head(ctx, "acme", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := head.Tree.Count() - 8; got != ok { // 8 directories w0..w7
		t.Fatalf("files: got %d, want %d acknowledged writes", got, ok)
	}
	if head.Version != uint64(ok)+1 {
		t.Fatalf("version: got %d, want %d", head.Version, ok+1)
	}
}

func TestStore_IdempotentRetry(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	g := &ids{}
	s := create(t, env.Store, g, "acme")
	m := meta(g, "test")
	m.RequestID = "req-1"
	cmd := func(*domain.Session) (domain.Command, error) {
		return domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpMkdir, Path: "d"}}}, nil
	}
	first, err := env.Store.Change(ctx, "acme", s.ID, m, cmd)
	if err != nil {
		t.Fatal(err)
	}
	before := env.LastSeq(t)
	// A retry on this instance, and on a fresh instance that never saw it.
	fresh, err := streams.Open(ctx, env.NC, streams.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	for name, st := range map[string]*streams.Store{"same": env.Store, "fresh": fresh} {
		m2 := m
		m2.EventID = g.next()
		again, err := st.Change(ctx, "acme", s.ID, m2, cmd)
		if err != nil {
			t.Fatalf("%s: retry: %v", name, err)
		}
		if !again.Replayed || again.Position != first.Position {
			t.Fatalf("%s: retry: got position %d replayed %v, want %d replayed", name, again.Position, again.Replayed, first.Position)
		}
	}
	if after := env.LastSeq(t); after != before {
		t.Fatalf("retries appended: last sequence %d -> %d", before, after)
	}
}

func TestStore_SnapshotsAreACache(t *testing.T) {
	env := streamstest.Start(t, streamstest.Options{Config: streams.Config{SnapshotEvery: 50}})
	ctx := context.Background()
	g := &ids{}
	s := create(t, env.Store, g, "acme")
	rng := rand.New(rand.NewPCG(1, 2))
	var positions []uint64
	roots := map[uint64]domain.Hash{}
	for i := 0; i < 420; i++ {
		res := write(t, env.Store, g, s, fmt.Sprintf("d%d/f%d", rng.IntN(10), rng.IntN(40)), fmt.Sprint(i))
		positions = append(positions, res.Position)
		roots[res.Position] = res.Session.Tree.Hash()
	}
	env.Store.Close() // flush the background snapshot writer

	kv, err := env.Store.JetStream().KeyValue(ctx, names.SnapshotBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil || len(keys) < 8 {
		t.Fatalf("snapshots written: got %d keys (err %v), want 8", len(keys), err)
	}
	check := func(name string) {
		st, err := streams.Open(ctx, env.NC, streams.Config{SnapshotEvery: 50}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		for _, p := range []uint64{positions[0], positions[48], positions[49], positions[50], positions[217], positions[len(positions)-1]} {
			got, err := st.At(ctx, "acme", s.ID, p)
			if err != nil {
				t.Fatalf("%s: at %d: %v", name, p, err)
			}
			if got.Tree.Hash() != roots[p] {
				t.Fatalf("%s: at %d: root %s, want %s", name, p, got.Tree.Hash(), roots[p])
			}
		}
	}
	check("with snapshots")
	if err := env.Store.JetStream().DeleteKeyValue(ctx, names.SnapshotBucket); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.JetStream().CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: names.SnapshotBucket}); err != nil {
		t.Fatal(err)
	}
	check("without snapshots")
}

func TestBlobs_StoreOnceAndChunk(t *testing.T) {
	env := streamstest.Start(t, streamstest.Options{Config: streams.Config{ChunkSize: 1000}})
	ctx := context.Background()
	b := env.Store.Blobs
	msgs := func() uint64 { return blobState(t, env).Msgs }
	small := []byte("hello")
	h1, err := b.Put(ctx, small)
	if err != nil || h1 != domain.Sum(small) {
		t.Fatalf("put small: %v %s", err, h1)
	}
	n := msgs()
	if _, err := b.Put(ctx, small); err != nil {
		t.Fatal(err)
	}
	if got := msgs(); got != n {
		t.Fatalf("identical content stored again: %d -> %d messages", n, got)
	}
	big := make([]byte, 4500)
	for i := range big {
		big[i] = byte(i * 7)
	}
	h2, err := b.Put(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, h2)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("get chunked: err %v, equal %v", err, bytes.Equal(got, big))
	}
	for _, r := range [][2]int64{{0, 10}, {995, 10}, {1000, 1000}, {4490, 100}, {4500, 5}, {1234, 3000}} {
		part, err := b.ReadAt(ctx, h2, r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		end := min(r[0]+r[1], int64(len(big)))
		if !bytes.Equal(part, big[min(r[0], end):end]) {
			t.Fatalf("ReadAt(%d, %d): got %d bytes, want %d", r[0], r[1], len(part), end-r[0])
		}
	}
	info, err := b.Stat(ctx, h2)
	if err != nil || info.Size != 4500 || len(info.Chunks) != 5 {
		t.Fatalf("stat: %+v %v, want size 4500 in 5 chunks", info, err)
	}
	// Chunks uploaded separately assemble to the same content.
	var chunks []domain.Hash
	for off := 0; off < len(big); off += 1000 {
		h, err := b.Put(ctx, big[off:min(off+1000, len(big))])
		if err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, h)
	}
	h3, size, err := b.PutChunks(ctx, chunks, h2, domain.Hash{})
	if err != nil || h3 != h2 || size != 4500 {
		t.Fatalf("put chunks: %s %d %v", h3, size, err)
	}
	if _, _, err := b.PutChunks(ctx, chunks, h1, domain.Hash{}); domain.ErrorCode(err) != domain.CodeInvalidArgument {
		t.Fatalf("put chunks with a wrong hash: got %v, want invalid_argument", err)
	}
	if _, err := b.Get(ctx, domain.Sum([]byte("never stored"))); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("get missing: got %v, want not_found", err)
	}
}

func TestStore_ForkChainLoadsCold(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	g := &ids{}
	s := create(t, env.Store, g, "acme")
	cur := s
	var want []domain.Hash
	var chain []*domain.Session
	for depth := 0; depth < 6; depth++ {
		res := write(t, env.Store, g, cur, fmt.Sprintf("level%d", depth), "x")
		fork, err := env.Store.Fork(ctx, "acme", cur.ID, res.Position, meta(g, "t"), domain.ForkSession{ID: g.next()})
		if err != nil {
			t.Fatal(err)
		}
		if fork.Session.Tree.Hash() != res.Session.Tree.Hash() {
			t.Fatalf("fork at %d: root %s, parent %s", res.Position, fork.Session.Tree.Hash(), res.Session.Tree.Hash())
		}
		// the parent moves on; the fork must not see it
		write(t, env.Store, g, cur, "after-fork", "y")
		cur = fork.Session
		chain = append(chain, cur)
	}
	for _, f := range chain {
		warm, err := env.Store.Head(ctx, "acme", f.ID)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, warm.Tree.Hash())
	}
	cold, err := streams.Open(ctx, env.NC, streams.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cold.Close()
	for i, f := range chain {
		got, err := cold.Head(ctx, "acme", f.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Tree.Hash() != want[i] || got.Tree.Lookup(fmt.Sprintf("level%d", i)) == nil {
			t.Fatalf("fork depth %d: root %s, want %s", i, got.Tree.Hash(), want[i])
		}
	}
}

// TestStore_ReplayChecksRoot appends an event whose chain is right and
// whose recorded root is not: a cold load folds without computing the roots
// in between, and must still refuse the state whose root it cannot confirm.
func TestStore_ReplayChecksRoot(t *testing.T) {
	env := streamstest.Start(t)
	ctx := context.Background()
	g := &ids{}
	s := create(t, env.Store, g, "acme")
	var last streams.Result
	for i := range 5 {
		last = write(t, env.Store, g, s, fmt.Sprintf("f%d", i), "x")
	}
	head, err := env.Store.Head(ctx, "acme", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	ev, _, err := domain.Execute(head, domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpMkdir, Path: "forged"}}}, meta(g, "mallory"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev.Root = bytes.Repeat([]byte{7}, 32)
	body, err := ev.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(names.EventSubject("acme", s.ID))
	m.Header.Set(names.HeaderType, string(ev.Type))
	m.Header.Set(names.HeaderVersion, strconv.FormatUint(ev.Version, 10))
	m.Data = body
	if _, err := env.Store.JetStream().PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}

	fresh, err := streams.Open(ctx, env.NC, streams.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if got, err := fresh.Head(ctx, "acme", s.ID); domain.ErrorCode(err) != domain.CodeInternal {
		t.Fatalf("head after a forged root: %v, %v; want an internal error", got, err)
	}
	before, err := fresh.At(ctx, "acme", s.ID, last.Position)
	if err != nil || before.Tree.Count() != 5 {
		t.Fatalf("state before the forged event: %v, %v; want the 5 files", before, err)
	}
}

// TestStore_CatchUpFromCachedHead checks that an instance whose cached head
// is a few events behind (another instance appended) reads just the missing
// events one by one, with no consumer (the JetStream API requests are seen
// on the wire), and ends in the same state as the writer; further behind,
// it replays the events after its cached head with one batched direct get,
// still no consumer. Once caught up, its head is confirmed with one
// request that asks for the event after it (the reply has none), not for
// the last event itself. The single reads are direct gets on one server
// (eventget.go) and go to the stream leader where the store is told to
// (as on a replicated stream): both are checked.
func TestStore_CatchUpFromCachedHead(t *testing.T) {
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			testCatchUpFromCachedHead(t, direct)
		})
	}
}

func testCatchUpFromCachedHead(t *testing.T, direct bool) {
	env := streamstest.Start(t)
	ctx := context.Background()
	other := openOther(t, env)
	if got := other.DirectReads(); !got {
		t.Fatal("a store on one server reads heads through the leader; want direct gets")
	}
	if !direct {
		streams.LeaderReads(other)
	}
	creates, err := env.NC.SubscribeSync("$JS.API.CONSUMER.CREATE.>")
	if err != nil {
		t.Fatal(err)
	}
	gets := watchEventGets(t, env)
	g := &ids{}
	s := create(t, env.Store, g, "acme")
	write(t, env.Store, g, s, "keep/a.txt", "kept")
	if _, err := other.Head(ctx, "acme", s.ID); err != nil {
		t.Fatal(err)
	}
	// The first event after the cached head is read to confirm it, then
	// up to 8 more one by one.
	for _, behind := range []int{1, 3, 9, 10} {
		t.Run(strconv.Itoa(behind), func(t *testing.T) {
			for i := 0; i < behind; i++ {
				write(t, env.Store, g, s, fmt.Sprintf("f%d", i), fmt.Sprint(behind, i))
			}
			want, err := env.Store.Head(ctx, "acme", s.ID)
			if err != nil {
				t.Fatal(err)
			}
			gets.drain()
			before, _, _ := creates.Pending()
			head, err := other.Head(ctx, "acme", s.ID)
			if err != nil {
				t.Fatal(err)
			}
			after, _, _ := creates.Pending()
			got := gets.drain()
			if head.Position != want.Position || head.Tree.Hash() != want.Tree.Hash() || head.LastHash != want.LastHash || head.Version != want.Version {
				t.Fatalf("caught up to %d v%d %s, want %d v%d %s", head.Position, head.Version, head.Tree.Hash(), want.Position, want.Version, want.Tree.Hash())
			}
			if consumers, batches := after-before, len(got.batched); consumers != 0 || (batches == 1) != (behind > 9) || batches > 1 {
				t.Fatalf("%d events behind: %d consumers created, %d batched direct gets; want no consumer, and one batched get only beyond 9 behind", behind, consumers, batches)
			}
			if direct && len(got.leader) != 0 || !direct && len(got.direct) != 0 {
				t.Fatalf("%d events behind: single reads %d direct, %d through the leader; want all %s", behind, len(got.direct), len(got.leader), map[bool]string{true: "direct", false: "through the leader"}[direct])
			}

			again, err := other.Head(ctx, "acme", s.ID)
			if err != nil || again != head {
				t.Fatalf("head again: %v, %v; want the same state", again, err)
			}
			got = gets.drain()
			single := append(got.direct, got.leader...)
			if len(single) != 1 || len(got.batched) != 0 {
				t.Fatalf("head confirmed with %d requests (%d batched), want 1: %q", len(single), len(got.batched), single)
			}
			if want := fmt.Sprintf(`{"seq":%d,"next_by_subj":"%s"}`, head.Position+1, names.EventSubject("acme", s.ID)); single[0] != want {
				t.Fatalf("head confirmed with %s, want %s", single[0], want)
			}
		})
	}
}

// eventGets sees the requests that read the event stream's messages one
// at a time or in batches: direct gets (single or batched) and gets
// through the stream leader.
type eventGets struct {
	t                    *testing.T
	nc                   *nats.Conn
	directSub, leaderSub *nats.Subscription
}

// seenGets are the bodies of the requests seen, by kind.
type seenGets struct {
	direct, batched, leader []string
}

// watchEventGets subscribes to the event stream's gets. The store's other
// streams (snapshots, request ids) are read in the background too and
// are not counted.
func watchEventGets(t *testing.T, env *streamstest.Env) *eventGets {
	t.Helper()
	g := &eventGets{t: t, nc: env.NC}
	var err error
	if g.directSub, err = env.NC.SubscribeSync("$JS.API.DIRECT.GET." + names.EventStream); err != nil {
		t.Fatal(err)
	}
	if g.leaderSub, err = env.NC.SubscribeSync("$JS.API.STREAM.MSG.GET." + names.EventStream); err != nil {
		t.Fatal(err)
	}
	if err := env.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	return g
}

// drain returns the requests seen since the last drain. A flush first:
// the server may send a request's reply before its copy to these
// subscriptions, so a request that was answered may still be on its way.
func (g *eventGets) drain() seenGets {
	g.t.Helper()
	if err := g.nc.Flush(); err != nil {
		g.t.Fatal(err)
	}
	var out seenGets
	for {
		m, err := g.directSub.NextMsg(0)
		if err != nil {
			break
		}
		if bytes.Contains(m.Data, []byte(`"batch"`)) {
			out.batched = append(out.batched, string(m.Data))
		} else {
			out.direct = append(out.direct, string(m.Data))
		}
	}
	for {
		m, err := g.leaderSub.NextMsg(0)
		if err != nil {
			break
		}
		out.leader = append(out.leader, string(m.Data))
	}
	return out
}

func TestBlobs_GetMany(t *testing.T) {
	env := streamstest.Start(t, streamstest.Options{Config: streams.Config{ChunkSize: 1000}})
	ctx := context.Background()
	b := env.Store.Blobs
	want := map[domain.Hash][]byte{}
	var hs []domain.Hash
	for i := range 1200 { // more than one batched get
		data := []byte(fmt.Sprintf("blob %d", i))
		if i%100 == 7 {
			data = bytes.Repeat(data, 400) // stored in chunks: read with Get
		}
		h, err := b.Put(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		want[h] = data
		hs = append(hs, h, h) // each hash twice: passed once
	}
	got := map[domain.Hash][]byte{}
	err := b.GetMany(ctx, hs, func(h domain.Hash, data []byte) error {
		if _, ok := got[h]; ok {
			t.Errorf("%s passed twice", h)
		}
		got[h] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d contents, want %d", len(got), len(want))
	}
	for h, data := range want {
		if !bytes.Equal(got[h], data) {
			t.Fatalf("%s: got %d bytes, want %q", h, len(got[h]), data[:min(20, len(data))])
		}
	}
	missing := domain.Sum([]byte("never stored"))
	err = b.GetMany(ctx, []domain.Hash{hs[0], missing}, func(domain.Hash, []byte) error { return nil })
	if domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("a missing blob: got %v, want not_found", err)
	}
}

// TestBlobs_PutMany: many contents stored at once, each distinct one once,
// in atomic batches where group commit is on and one by one where it is
// off; contents the store put before go one by one without a batch;
// contents stored by other means make their batch refused, and then go
// one by one, so the call still stores exactly what was missing.
func TestBlobs_PutMany(t *testing.T) {
	for _, batches := range []bool{true, false} {
		t.Run(fmt.Sprintf("batches=%v", batches), func(t *testing.T) {
			var cfg streams.Config
			cfg.ChunkSize = 1000
			if batches {
				cfg.GroupCommitMin = streams.DefaultGroupCommitMin
			}
			env := streamstest.Start(t, streamstest.Options{Config: cfg})
			ctx := context.Background()
			b := env.Store.Blobs
			last := func() uint64 { return blobState(t, env).LastSeq }
			content := func(i int) []byte { return []byte(fmt.Sprintf("content %d of the batch\n", i)) }
			var first [][]byte
			for i := range 100 {
				first = append(first, content(i), content(i)) // each twice
			}
			big := make([]byte, 3200) // four distinct chunks and an index
			for i := range big {
				big[i] = byte(i * 7 / 3)
			}
			first = append(first, big)
			seq0 := last()
			if err := b.PutMany(ctx, first); err != nil {
				t.Fatal(err)
			}
			if got := last() - seq0; got != 100+5 {
				t.Fatalf("first PutMany stored %d messages, want 105 (100 contents once each, a chunked one in 5)", got)
			}
			st := b.BatchStats()
			if batches && (st.Blobs != 100 || st.Refused != 0) {
				t.Fatalf("batch stats %+v, want the 100 small contents in batches, none refused", st)
			}
			if !batches && st.Batches != 0 {
				t.Fatalf("batch stats %+v, want no batch where group commit is off", st)
			}
			// putRange puts contents [from, to) with PutMany and returns
			// how many messages the stream stored for them.
			putRange := func(from, to int) uint64 {
				var cs [][]byte
				for i := from; i < to; i++ {
					cs = append(cs, content(i))
				}
				seq := last()
				if err := b.PutMany(ctx, cs); err != nil {
					t.Fatal(err)
				}
				return last() - seq
			}
			// Half stored already by this PutMany, half new: the stored
			// half goes one by one (remembered), the new half in a batch.
			if got := putRange(50, 150); got != 50 {
				t.Fatalf("second PutMany stored %d messages, want the 50 new contents", got)
			}
			if st := b.BatchStats(); batches && (st.Blobs != 150 || st.Refused != 0) {
				t.Fatalf("batch stats %+v, want the 50 new contents in a batch and nothing refused", st)
			}
			// Contents stored by other means (another instance: here a
			// single Put, which PutMany does not remember) make their batch
			// refused; the call still stores exactly what is missing.
			for i := 150; i < 160; i++ {
				if _, err := b.Put(ctx, content(i)); err != nil {
					t.Fatal(err)
				}
			}
			if got := putRange(150, 200); got != 40 {
				t.Fatalf("third PutMany stored %d messages, want the 40 new contents", got)
			}
			if batches && b.BatchStats().Refused != 1 {
				t.Fatalf("batch stats %+v: the batch holding contents stored elsewhere was not refused", b.BatchStats())
			}
			for i := range 200 {
				got, err := b.Get(ctx, domain.Sum(content(i)))
				if err != nil || !bytes.Equal(got, content(i)) {
					t.Fatalf("content %d: %q, %v", i, got, err)
				}
			}
			if got, err := b.Get(ctx, domain.Sum(big)); err != nil || !bytes.Equal(got, big) {
				t.Fatalf("chunked content: %v", err)
			}
		})
	}
}

// blobState is the blob stream's state.
func blobState(t *testing.T, env *streamstest.Env) jetstream.StreamState {
	t.Helper()
	ctx := context.Background()
	s, err := env.Store.JetStream().Stream(ctx, names.BlobStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}
