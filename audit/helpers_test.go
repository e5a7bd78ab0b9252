package audit_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/audit"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/streams"
	"github.com/strand-dev/strand/streams/streamstest"
)

// chunkSize makes the fixture's larger files chunked blobs.
const chunkSize = 1000

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// fixture is a set of histories built through streams.Store with real
// blobs: tenant acme has session A (writes, a chunked file, mkdir,
// symlinks, a checkpoint, a rename, a recursive remove, a restore, a
// batch), B forked from A at the checkpoint, C forked from B; tenant other
// has D, and E created from revision 1 of source "base".
type fixture struct {
	env           *streamstest.Env
	mu            sync.Mutex
	n             int
	A, B, C, D, E string
	// base is the tree of source base@1; baseBlob the blob holding it.
	base     domain.Tree
	baseBlob domain.Hash
	// pos names positions: "A.cp1", "A.restore", "B.fork"...
	pos map[string]uint64
	// states holds the Store's own state after each event, by position.
	states map[uint64]*domain.Session
}

func (f *fixture) next() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return fmt.Sprintf("01J%023d", f.n)
}

// meta gives each event a distinct time, one minute after the one before.
func (f *fixture) meta(actor string) domain.Meta {
	id := f.next()
	f.mu.Lock()
	n := f.n
	f.mu.Unlock()
	return domain.Meta{EventID: id, Actor: actor, Time: t0.Add(time.Duration(n) * time.Minute)}
}

func (f *fixture) put(t testing.TB, content string) domain.Hash {
	t.Helper()
	h, err := f.env.Store.Blobs.Put(context.Background(), []byte(content))
	if err != nil {
		t.Fatalf("put blob: %v", err)
	}
	return h
}

func (f *fixture) record(name string, res streams.Result) streams.Result {
	if name != "" {
		f.pos[name] = res.Position
	}
	f.states[res.Position] = res.Session
	return res
}

func (f *fixture) change(t testing.TB, name, tenant, id, actor string, cmd domain.Command) streams.Result {
	t.Helper()
	res, err := f.env.Store.Change(context.Background(), tenant, id, f.meta(actor), func(*domain.Session) (domain.Command, error) { return cmd, nil })
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f.record(name, res)
}

func (f *fixture) write(t testing.TB, name, tenant, id, actor, path, content string, mode uint32) streams.Result {
	t.Helper()
	h := f.put(t, content)
	return f.change(t, name, tenant, id, actor, domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpWrite, Path: path, Content: h, Size: int64(len(content)), Mode: mode}}})
}

func (f *fixture) op(t testing.TB, name, tenant, id, actor string, op domain.FileOp) streams.Result {
	t.Helper()
	return f.change(t, name, tenant, id, actor, domain.ChangeFiles{Ops: []domain.FileOp{op}})
}

func bigContent(n int, seed byte) string {
	var b strings.Builder
	for i := range n {
		b.WriteByte('a' + byte(i*7+int(seed))%26)
	}
	return b.String()
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	env := streamstest.Start(t, streamstest.Options{Config: streams.Config{ChunkSize: chunkSize}})
	f := &fixture{env: env, pos: map[string]uint64{}, states: map[uint64]*domain.Session{}}
	ctx := context.Background()
	create := func(name, tenant, actor string) string {
		id := f.next()
		res, err := env.Store.Create(ctx, f.meta(actor), domain.CreateSession{ID: id, Tenant: tenant, Owner: actor})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		f.record(name, res)
		return id
	}
	f.A = create("A.create", "acme", "alice")
	f.write(t, "A.main1", "acme", f.A, "alice", "src/main.go", "package main // v1\n", 0)
	f.write(t, "A.big", "acme", f.A, "alice", "docs/big.bin", bigContent(3500, 1), 0o600)
	f.op(t, "A.mkdir", "acme", f.A, "alice", domain.FileOp{Kind: domain.OpMkdir, Path: "empty", Mode: 0o700})
	f.op(t, "A.link", "acme", f.A, "alice", domain.FileOp{Kind: domain.OpSymlink, Path: "link", Target: "src/main.go"})
	f.op(t, "A.abs", "acme", f.A, "alice", domain.FileOp{Kind: domain.OpSymlink, Path: "docs/top", Target: "/src"})
	f.write(t, "A.run", "acme", f.A, "alice", "bin/run.sh", "#!/bin/sh\necho run\n", 0o755)
	f.change(t, "A.cp1", "acme", f.A, "alice", domain.CreateCheckpoint{Name: "cp1"})
	f.pos["A.cp1.at"] = f.pos["A.run"]
	f.op(t, "A.rename", "acme", f.A, "bob", domain.FileOp{Kind: domain.OpRename, Path: "docs/big.bin", To: "docs/big2.bin"})
	f.write(t, "A.main2", "acme", f.A, "bob", "src/main.go", "package main // v2\n", 0)
	f.op(t, "A.rmbin", "acme", f.A, "bob", domain.FileOp{Kind: domain.OpRemove, Path: "bin", Recursive: true})
	f.change(t, "A.restore", "acme", f.A, "carol", domain.RestoreSession{To: f.pos["A.cp1.at"]})
	util := f.put(t, "package main // util\n")
	f.change(t, "A.batch", "acme", f.A, "carol", domain.ChangeFiles{Batch: true, Ops: []domain.FileOp{
		{Kind: domain.OpWrite, Path: "src/util.go", Content: util, Size: int64(len("package main // util\n"))},
		{Kind: domain.OpRename, Path: "src/main.go", To: "cmd/main.go"},
	}})

	fork := func(name, parent string, at uint64, actor string) string {
		id := f.next()
		res, err := env.Store.Fork(ctx, "acme", parent, at, f.meta(actor), domain.ForkSession{ID: id, Owner: actor})
		if err != nil {
			t.Fatalf("fork: %v", err)
		}
		f.record(name, res)
		return id
	}
	f.B = fork("B.fork", f.A, f.pos["A.cp1.at"], "dave")
	f.write(t, "B.b", "acme", f.B, "dave", "b.txt", "from B\n", 0)
	f.C = fork("C.fork", f.B, 0, "erin")
	f.write(t, "C.c", "acme", f.C, "erin", "c.txt", bigContent(2500, 2), 0)
	f.op(t, "C.unlink", "acme", f.C, "erin", domain.FileOp{Kind: domain.OpRemove, Path: "link"})
	f.op(t, "C.chmod", "acme", f.C, "erin", domain.FileOp{Kind: domain.OpChmod, Path: "empty", Mode: 0o750})
	f.write(t, "A.after", "acme", f.A, "alice", "after.txt", "after the forks\n", 0)

	f.D = create("D.create", "other", "olga")
	f.write(t, "D.x", "other", f.D, "olga", "x", "x\n", 0)

	// A source revision: a tree stored as a blob, its files as blobs.
	var base domain.Tree
	for _, e := range []struct{ path, content string }{{"README", "base readme\n"}, {"lib/a.txt", bigContent(1500, 3)}} {
		h := f.put(t, e.content)
		var err error
		if base, err = base.Put(e.path, domain.NewFile(h, int64(len(e.content)), 0o644, nil)); err != nil {
			t.Fatal(err)
		}
	}
	treeBlob, err := env.Store.PutTree(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	f.base, f.baseBlob = base, treeBlob
	if _, err := env.Store.CreateSource(ctx, domain.SourceEvent{Type: domain.SourceCreated, Tenant: "other", Source: "base", Actor: "olga", Time: t0.UnixNano()}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.ChangeSource(ctx, "other", "base", "", func(s *domain.Source) (*domain.SourceEvent, error) {
		return &domain.SourceEvent{Type: domain.RevisionAdded, Actor: "olga", Time: t0.UnixNano(), Revision: &domain.Revision{
			Number: uint64(len(s.Revisions)) + 1, Root: base.Hash().Bytes(), Tree: treeBlob[:], Files: 2,
			Origin: domain.RevisionOrigin{Kind: "dir", Path: "/srv/base"},
		}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	f.E = f.next()
	res, err := env.Store.Create(ctx, f.meta("olga"), domain.CreateSession{ID: f.E, Tenant: "other", Owner: "olga",
		Origin: domain.Origin{Source: "base", Revision: 1}, Base: base})
	if err != nil {
		t.Fatalf("create from source: %v", err)
	}
	f.record("E.create", res)
	f.write(t, "E.y", "other", f.E, "olga", "lib/b.txt", "from E\n", 0)
	return f
}

// reader opens an audit reader on the named streams of the fixture's server.
func (f *fixture) reader(t testing.TB, names audit.Streams) *audit.Reader {
	t.Helper()
	r, err := audit.Open(context.Background(), f.env.NC, names)
	if err != nil {
		t.Fatalf("open reader: %v", err)
	}
	return r
}

func js(t testing.TB, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	j, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// copyStream republishes every message of stream src, in order, into a new
// stream dst on the same server, keeping subjects, headers and sequences:
// dst listens on a private subject and a subject transform stores each
// message under its original subject. edit may change or replace the
// message for a sequence (the list it returns is published instead).
func copyStream(t testing.TB, nc *nats.Conn, src, dst string, edit func(seq uint64, m *nats.Msg) []*nats.Msg) {
	t.Helper()
	ctx := context.Background()
	j := js(t, nc)
	in := "tamper." + dst
	if _, err := j.CreateStream(ctx, jetstream.StreamConfig{
		Name: dst, Subjects: []string{in + ".>"}, Storage: jetstream.FileStorage,
		SubjectTransform: &jetstream.SubjectTransformConfig{Source: in + ".>", Destination: ">"},
	}); err != nil {
		t.Fatalf("create %s: %v", dst, err)
	}
	s, err := j.Stream(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*nats.Msg
	var seqs []uint64
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("copy %s: get %d: %v", src, seq, err)
		}
		m := nats.NewMsg(raw.Subject)
		for k, v := range raw.Header {
			if !strings.HasPrefix(k, "Nats-") {
				m.Header[k] = v
			}
		}
		m.Data = raw.Data
		out := []*nats.Msg{m}
		if edit != nil {
			out = edit(seq, m)
		}
		for _, o := range out {
			o.Subject = in + "." + o.Subject
			msgs = append(msgs, o)
			seqs = append(seqs, seq)
		}
	}
	for i, m := range msgs {
		ack, err := j.PublishMsg(ctx, m)
		if err != nil {
			t.Fatalf("copy %s: publish: %v", src, err)
		}
		if edit == nil && ack.Sequence != seqs[i] {
			t.Fatalf("copy %s: message %d stored at %d", src, seqs[i], ack.Sequence)
		}
	}
}

// deleteMsg removes one message from a stream, as an operator with
// `nats stream rmm` could.
func deleteMsg(t testing.TB, nc *nats.Conn, stream string, seq uint64) {
	t.Helper()
	s, err := js(t, nc).Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(context.Background(), seq); err != nil {
		t.Fatalf("delete %d from %s: %v", seq, stream, err)
	}
}

// blobSeq returns the sequence of a blob's message in a stream.
func blobSeq(t testing.TB, nc *nats.Conn, stream string, h domain.Hash) uint64 {
	t.Helper()
	s, err := js(t, nc).Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), "strand.blob."+h.String())
	if err != nil {
		t.Fatalf("blob %s in %s: %v", h, stream, err)
	}
	return m.Sequence
}

func verify(t testing.TB, r *audit.Reader, scope audit.Scope, anchors ...audit.Head) *audit.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := r.Verify(ctx, scope, anchors...)
	if err != nil {
		t.Fatalf("verify %+v: %v", scope, err)
	}
	return rep
}
