package handlers_test

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func TestEvents_List(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	other := h.session(t)
	want := []uint64{h.env.LastSeq(t) - 1} // the create of id
	// Interleave another session's events so positions have gaps.
	for i := range 24 {
		w := h.write(t, id, fmt.Sprintf("f%02d", i), "x")
		want = append(want, w.Position)
		h.write(t, other, "o", fmt.Sprint(i))
	}
	first, err := h.c.Events(ctx, client.EventsRequest{Session: id, Limit: 1})
	if err != nil || len(first.Events) != 1 || first.Events[0].Type != string(domain.SessionCreated) {
		t.Fatalf("first event: got %s, %v; want SessionCreated", asJSON(first.Events), err)
	}
	want[0] = first.Events[0].Position

	collect := func(req client.EventsRequest) []client.EventView {
		t.Helper()
		var out []client.EventView
		for pages := 0; ; pages++ {
			if pages > 100 {
				t.Fatalf("events %s: no end after 100 pages", asJSON(req))
			}
			r, err := h.c.Events(ctx, req)
			if err != nil {
				t.Fatalf("events %s: %v", asJSON(req), err)
			}
			if req.Limit > 0 && len(r.Events) > req.Limit {
				t.Errorf("events %s: page of %d", asJSON(req), len(r.Events))
			}
			out = append(out, r.Events...)
			if r.NextFrom == 0 {
				return out
			}
			if n := len(r.Events); n == 0 || r.NextFrom <= r.Events[n-1].Position {
				t.Fatalf("events %s: next_from %d does not move past the page", asJSON(req), r.NextFrom)
			}
			req.From = r.NextFrom
		}
	}
	positions := func(evs []client.EventView) []uint64 {
		out := make([]uint64, len(evs))
		for i, e := range evs {
			out[i] = e.Position
		}
		return out
	}

	for _, limit := range []int{0, 1, 7, 25, 1000} {
		got := collect(client.EventsRequest{Session: id, Limit: limit})
		if !slices.Equal(positions(got), want) {
			t.Errorf("limit %d: got positions %v, want %v", limit, positions(got), want)
		}
	}

	t.Run("Envelope", func(t *testing.T) {
		evs := collect(client.EventsRequest{Session: id})
		for i, e := range evs {
			if e.Session != id || e.Tenant != "acme" || e.Version != uint64(i+1) || e.ID == "" || e.Hash == "" || e.Root == "" || e.Time.IsZero() {
				t.Errorf("event %d: got %s, want session %s tenant acme version %d with id, hash, root, time", i, asJSON(e), id, i+1)
			}
			if i > 0 && e.Prev != evs[i-1].Hash {
				t.Errorf("event %d: prev %s, want the previous event's hash %s", i, e.Prev, evs[i-1].Hash)
			}
			if i > 0 && (e.Type != string(domain.FileWritten) || len(e.Ops) != 1 || e.Ops[0].Path != fmt.Sprintf("f%02d", i-1) || e.Ops[0].Hash != sha("x")) {
				t.Errorf("event %d: got %s, want FileWritten of f%02d", i, asJSON(e), i-1)
			}
		}
	})

	t.Run("From", func(t *testing.T) {
		got := collect(client.EventsRequest{Session: id, From: want[10], Limit: 4})
		if !slices.Equal(positions(got), want[10:]) {
			t.Errorf("from %d: got %v, want %v", want[10], positions(got), want[10:])
		}
		// A from between two of the session's positions starts at the next.
		got = collect(client.EventsRequest{Session: id, From: want[10] + 1})
		if !slices.Equal(positions(got), want[11:]) {
			t.Errorf("from %d: got %v, want %v", want[10]+1, positions(got), want[11:])
		}
		got = collect(client.EventsRequest{Session: id, From: want[len(want)-1] + 1})
		if len(got) != 0 {
			t.Errorf("from past the head: got %v, want none", positions(got))
		}
	})

	t.Run("At", func(t *testing.T) {
		for _, limit := range []int{0, 3} {
			got := collect(client.EventsRequest{Session: id, At: client.AtPosition(want[12]), Limit: limit})
			if !slices.Equal(positions(got), want[:13]) {
				t.Errorf("at %d limit %d: got %v, want %v", want[12], limit, positions(got), want[:13])
			}
		}
		got := collect(client.EventsRequest{Session: id, At: client.AtPosition(want[12]), From: want[5], Limit: 3})
		if !slices.Equal(positions(got), want[5:13]) {
			t.Errorf("from %d at %d: got %v, want %v", want[5], want[12], positions(got), want[5:13])
		}
		if _, err := h.c.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "mid", At: client.AtPosition(want[3])}); err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
		got = collect(client.EventsRequest{Session: id, At: "mid"})
		if !slices.Equal(positions(got), want[:4]) {
			t.Errorf("at mid: got %v, want %v", positions(got), want[:4])
		}
	})
}

func TestCheckpoint(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	w1 := h.write(t, id, "a.txt", "one")
	w2 := h.write(t, id, "a.txt", "two")

	head, err := h.c.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "head", Note: "at the head", Mutation: client.Mutation{Actor: "carol"}})
	if err != nil {
		t.Fatalf("create at head: %v", err)
	}
	h.wantHead(t, "checkpoint create", head.Position)
	if c := head.Checkpoint; c.Name != "head" || c.Position != w2.Position || c.Note != "at the head" || c.Actor != "carol" || c.CreatedPosition != head.Position || c.CreatedAt.IsZero() {
		t.Errorf("create at head: got %s, want head at %d by carol, created at %d", asJSON(c), w2.Position, head.Position)
	}
	past, err := h.c.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "v1.0-rc_1", At: client.AtPosition(w1.Position)})
	if err != nil {
		t.Fatalf("create at a position: %v", err)
	}
	h.wantHead(t, "checkpoint create at", past.Position)
	alias, err := h.c.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "alias", At: "head"})
	if err != nil {
		t.Fatalf("create at a checkpoint: %v", err)
	}
	if alias.Checkpoint.Position != w2.Position {
		t.Errorf("checkpoint at head: got position %d, want %d", alias.Checkpoint.Position, w2.Position)
	}

	list, err := h.c.ListCheckpoints(ctx, client.CheckpointListRequest{Session: id})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	names := func(cs []client.CheckpointView) []string {
		var out []string
		for _, c := range cs {
			out = append(out, fmt.Sprintf("%s@%d", c.Name, c.Position))
		}
		return out
	}
	wantList := []string{fmt.Sprintf("v1.0-rc_1@%d", w1.Position), fmt.Sprintf("alias@%d", w2.Position), fmt.Sprintf("head@%d", w2.Position)}
	if got := names(list.Checkpoints); !slices.Equal(got, wantList) {
		t.Errorf("list: got %v, want %v (by position, then name)", got, wantList)
	}
	if list.Position != alias.Position {
		t.Errorf("list: got position %d, want %d", list.Position, alias.Position)
	}
	if got := h.read(t, id, "a.txt", "v1.0-rc_1"); got != "one" {
		t.Errorf("read at v1.0-rc_1: got %q, want one", got)
	}

	del, err := h.c.DeleteCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "head"})
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	h.wantHead(t, "checkpoint delete", del.Position)
	if del.Checkpoint.Name != "head" || del.Checkpoint.Position != w2.Position {
		t.Errorf("delete: got %s, want the deleted checkpoint head at %d", asJSON(del.Checkpoint), w2.Position)
	}
	list, _ = h.c.ListCheckpoints(ctx, client.CheckpointListRequest{Session: id})
	if got := names(list.Checkpoints); !slices.Equal(got, wantList[:2]) {
		t.Errorf("list after delete: got %v, want %v", got, wantList[:2])
	}
	_, err = h.c.Read(ctx, client.ReadRequest{Session: id, Path: "a.txt", At: "head"})
	wantCode(t, "read at a deleted checkpoint", err, domain.CodeNotFound)

	// The name can be used again, and the list in the past is the past's.
	if _, err := h.c.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "head"}); err != nil {
		t.Fatalf("create again: %v", err)
	}
	then, err := h.c.ListCheckpoints(ctx, client.CheckpointListRequest{Session: id, At: client.AtPosition(past.Position)})
	if err != nil {
		t.Fatalf("list at %d: %v", past.Position, err)
	}
	if got := names(then.Checkpoints); !slices.Equal(got, []string{wantList[0], wantList[2]}) {
		t.Errorf("list at %d: got %v, want %v", past.Position, got, []string{wantList[0], wantList[2]})
	}
}

func TestSession_Restore(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	w1 := h.write(t, id, "a.txt", "one")
	if _, err := h.c.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "one"}); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	h.write(t, id, "b.txt", "b")
	w3 := h.write(t, id, "a.txt", "three")

	steps := []struct {
		to    client.At
		root  string
		a     string
		files []string
	}{
		{client.AtPosition(w1.Position), w1.Root, "one", []string{"a.txt"}},
		{client.AtPosition(w3.Position), w3.Root, "three", []string{"a.txt", "b.txt"}}, // a restore can be undone
		{"one", w1.Root, "one", []string{"a.txt"}},
	}
	for _, s := range steps {
		r, err := h.c.Restore(ctx, client.RestoreRequest{Session: id, To: s.to})
		if err != nil {
			t.Fatalf("restore to %q: %v", s.to, err)
		}
		h.wantHead(t, "restore", r.Position)
		if r.Session.Root != s.root {
			t.Errorf("restore to %q: got root %s, want %s", s.to, r.Session.Root, s.root)
		}
		if got := h.read(t, id, "a.txt", ""); got != s.a {
			t.Errorf("restore to %q: a.txt is %q, want %q", s.to, got, s.a)
		}
		if got := h.manifest(t, id, ""); !slices.Equal(got, s.files) {
			t.Errorf("restore to %q: files %v, want %v", s.to, got, s.files)
		}
	}
	// A restore keeps the tags and checkpoints of the head: it moves the
	// tree only.
	g, err := h.c.GetSession(ctx, id, "")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(g.Session.Checkpoints) != 1 || g.Session.Version != 8 {
		t.Errorf("after restores: got %d checkpoints version %d, want 1 and 8", len(g.Session.Checkpoints), g.Session.Version)
	}
	// Writes continue from the restored tree.
	h.write(t, id, "c.txt", "c")
	if got := h.manifest(t, id, ""); !slices.Equal(got, []string{"a.txt", "c.txt"}) {
		t.Errorf("write after restore: files %v, want a.txt c.txt", got)
	}
}

// pastAnswers is every read a caller can make at one point of a session.
type pastAnswers struct {
	Get         client.SessionReply
	Read        client.ReadReply
	ReadErr     string
	Manifest    client.ManifestReply
	Events      client.EventsReply
	Checkpoints client.CheckpointListReply
}

func (h *harness) pastAnswers(t *testing.T, id string, at client.At) pastAnswers {
	t.Helper()
	ctx := t.Context()
	var a pastAnswers
	var err error
	if a.Get, err = h.c.GetSession(ctx, id, at); err != nil {
		t.Fatalf("get at %q: %v", at, err)
	}
	if a.Read, err = h.c.Read(ctx, client.ReadRequest{Session: id, Path: "src/a.txt", At: at}); err != nil {
		a.ReadErr = err.Error() // the file may be gone at this point
	}
	if a.Manifest, err = h.c.Manifest(ctx, client.ManifestRequest{Session: id, At: at}); err != nil {
		t.Fatalf("manifest at %q: %v", at, err)
	}
	if a.Events, err = h.c.Events(ctx, client.EventsRequest{Session: id, At: at}); err != nil {
		t.Fatalf("events at %q: %v", at, err)
	}
	if a.Checkpoints, err = h.c.ListCheckpoints(ctx, client.CheckpointListRequest{Session: id, At: at}); err != nil {
		t.Fatalf("checkpoints at %q: %v", at, err)
	}
	return a
}

func comparePast(t *testing.T, what string, got, want pastAnswers) {
	t.Helper()
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			t.Errorf("%s: %s\ngot  %s\nwant %s", what, g.Type().Field(i).Name, asJSON(g.Field(i).Interface()), asJSON(w.Field(i).Interface()))
		}
	}
}

// TestTimeTravel_ReadsArePinned reads a session at a position and at a
// checkpoint, changes it in every way, and reads again: the answers stay the
// same, also from a fresh service that has nothing cached.
func TestTimeTravel_ReadsArePinned(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	h.write(t, id, "src/a.txt", "first")
	h.write(t, id, "README", "readme")
	pinned := h.write(t, id, "src/a.txt", "second")
	if _, err := h.c.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "pin", Note: "pinned"}); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	if _, err := h.c.TagSession(ctx, client.TagRequest{Session: id, Set: map[string]string{"k": "v"}}); err != nil {
		t.Fatalf("tag: %v", err)
	}
	tagged := h.env.LastSeq(t)

	points := []client.At{client.AtPosition(pinned.Position), "pin", client.AtPosition(tagged)}
	before := map[client.At]pastAnswers{}
	for _, at := range points {
		before[at] = h.pastAnswers(t, id, at)
	}
	if string(before["pin"].Read.Content) != "second" || before["pin"].Get.Position != pinned.Position {
		t.Fatalf("at pin: got %q at %d, want second at %d", before["pin"].Read.Content, before["pin"].Get.Position, pinned.Position)
	}
	comparePast(t, "at pin and at its position", before["pin"], before[client.AtPosition(pinned.Position)])
	if got := before[client.AtPosition(tagged)].Get.Session.Tags["k"]; got != "v" {
		t.Errorf("at %d: tag k is %q, want v", tagged, got)
	}

	changes := []struct {
		name string
		do   func() error
	}{
		{"Write", func() error {
			_, err := h.c.Write(ctx, client.WriteRequest{Session: id, Path: "src/a.txt", Content: []byte("third")})
			return err
		}},
		{"Batch", func() error {
			_, err := h.c.Batch(ctx, client.BatchRequest{Session: id, Ops: []client.BatchOp{
				{Op: "write", Path: "src/b.txt", Content: []byte("b")}, {Op: "rename", Path: "README", To: "README.md"},
			}})
			return err
		}},
		{"Tag", func() error {
			_, err := h.c.TagSession(ctx, client.TagRequest{Session: id, Set: map[string]string{"k": "changed"}})
			return err
		}},
		{"Restore", func() error {
			_, err := h.c.Restore(ctx, client.RestoreRequest{Session: id, To: client.AtPosition(pinned.Position - 2)})
			return err
		}},
		{"RemoveFile", func() error {
			_, err := h.c.Remove(ctx, client.RemoveRequest{Session: id, Path: "src/a.txt"})
			return err
		}},
		{"AnotherCheckpoint", func() error {
			_, err := h.c.CreateCheckpoint(ctx, client.CheckpointRequest{Session: id, Name: "later"})
			return err
		}},
		{"Fork", func() error {
			_, err := h.c.Fork(ctx, client.ForkRequest{Session: id, At: "pin"})
			return err
		}},
		{"Archive", func() error {
			_, err := h.c.ArchiveSession(ctx, client.SessionRequest{Session: id})
			return err
		}},
	}
	for _, c := range changes {
		if err := c.do(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, at := range points {
			comparePast(t, fmt.Sprintf("after %s, at %q", c.name, at), h.pastAnswers(t, id, at), before[at])
		}
	}
	if _, err := h.c.Read(ctx, client.ReadRequest{Session: id, Path: "src/a.txt"}); client.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("head read of the removed file: %v, want not_found", err)
	}

	// The final state too: a fresh service rebuilds it from the stream,
	// restore included, to the same answers.
	final := client.AtPosition(h.env.LastSeq(t)) // the archive
	points = append(points, final)
	before[final] = h.pastAnswers(t, id, final)
	if before[final].Get.Session.Status != "archived" {
		t.Fatalf("at %q: status %q, want archived", final, before[final].Get.Session.Status)
	}

	h.restart(t)
	for _, at := range points {
		comparePast(t, fmt.Sprintf("fresh service, at %q", at), h.pastAnswers(t, id, at), before[at])
	}
}

func TestSession_Fork(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := t.Context()
	parent := h.session(t)
	w1 := h.write(t, parent, "a.txt", "one")
	if _, err := h.c.CreateCheckpoint(ctx, client.CheckpointRequest{Session: parent, Name: "cp"}); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	w2 := h.write(t, parent, "a.txt", "two")
	h.write(t, parent, "b.txt", "b")
	headPos := h.env.LastSeq(t)

	tests := []struct {
		name    string
		at      client.At
		origin  uint64
		a       string
		entries []string
	}{
		{"AtHead", "", headPos, "two", []string{"a.txt", "b.txt"}},
		{"AtCheckpoint", "cp", w1.Position, "one", []string{"a.txt"}},
		{"AtPosition", client.AtPosition(w2.Position), w2.Position, "two", []string{"a.txt"}},
	}
	forks := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := h.c.Fork(ctx, client.ForkRequest{Session: parent, At: tt.at, Owner: "dave", Tags: map[string]string{"fork": tt.name}})
			if err != nil {
				t.Fatalf("fork at %q: %v", tt.at, err)
			}
			h.wantHead(t, "fork", r.Position)
			f := r.Session
			forks[tt.name] = f.ID
			if f.ID == parent || f.Origin == nil || f.Origin.Parent != parent || f.Origin.Position != tt.origin || f.Start != r.Position || f.Version != 1 || f.Owner != "dave" || f.Tags["fork"] != tt.name {
				t.Errorf("fork at %q: got %s, want origin %s@%d, start %d, version 1, owner dave", tt.at, asJSON(f), parent, tt.origin, r.Position)
			}
			g, err := h.c.GetSession(ctx, f.ID, "")
			if err != nil {
				t.Fatalf("get fork: %v", err)
			}
			if g.Session.Origin == nil || *g.Session.Origin != *f.Origin || g.Session.Status != "active" {
				t.Errorf("get fork: got %s, want origin %s", asJSON(g.Session), asJSON(f.Origin))
			}
			if got := h.read(t, f.ID, "a.txt", ""); got != tt.a {
				t.Errorf("fork at %q: a.txt %q, want %q", tt.at, got, tt.a)
			}
			if got := h.manifest(t, f.ID, ""); !slices.Equal(got, tt.entries) {
				t.Errorf("fork at %q: entries %v, want %v", tt.at, got, tt.entries)
			}
			evs, err := h.c.Events(ctx, client.EventsRequest{Session: f.ID})
			if err != nil {
				t.Fatalf("events: %v", err)
			}
			if len(evs.Events) != 1 || evs.Events[0].Type != string(domain.SessionForked) || evs.Events[0].Origin == nil || evs.Events[0].Origin.Position != tt.origin {
				t.Errorf("fork events: got %s, want one SessionForked from %d", asJSON(evs.Events), tt.origin)
			}
		})
	}

	t.Run("Independent", func(t *testing.T) {
		child := forks["AtHead"]
		h.write(t, parent, "a.txt", "parent's")
		h.write(t, child, "a.txt", "child's")
		h.write(t, child, "only-child", "c")
		if got := h.read(t, parent, "a.txt", ""); got != "parent's" {
			t.Errorf("parent a.txt: got %q", got)
		}
		if got := h.read(t, child, "a.txt", ""); got != "child's" {
			t.Errorf("child a.txt: got %q", got)
		}
		if got := h.manifest(t, parent, ""); !slices.Equal(got, []string{"a.txt", "b.txt"}) {
			t.Errorf("parent entries: got %v", got)
		}
		if got := h.manifest(t, child, ""); !slices.Equal(got, []string{"a.txt", "b.txt", "only-child"}) {
			t.Errorf("child entries: got %v", got)
		}
		// The fork has its own checkpoints and history.
		cps, err := h.c.ListCheckpoints(ctx, client.CheckpointListRequest{Session: child})
		if err != nil || len(cps.Checkpoints) != 0 {
			t.Errorf("fork checkpoints: got %s, %v; want none", asJSON(cps.Checkpoints), err)
		}
		_, err = h.c.Restore(ctx, client.RestoreRequest{Session: child, To: client.AtPosition(w1.Position)})
		wantCode(t, "restore a fork to its parent's position", err, domain.CodeNotFound)
	})

	t.Run("Depth5", func(t *testing.T) {
		chain := []string{h.session(t)}
		h.write(t, chain[0], "level0", "0")
		h.write(t, chain[0], "shared", "from 0")
		for i := 1; i <= 5; i++ {
			r, err := h.c.Fork(ctx, client.ForkRequest{Session: chain[i-1]})
			if err != nil {
				t.Fatalf("fork level %d: %v", i, err)
			}
			chain = append(chain, r.Session.ID)
			h.write(t, r.Session.ID, fmt.Sprintf("level%d", i), fmt.Sprint(i))
			h.write(t, r.Session.ID, "shared", fmt.Sprintf("from %d", i))
			// A parent write after the fork is not seen below.
			h.write(t, chain[i-1], "late", "late")
		}
		check := func(t *testing.T) {
			for i, id := range chain {
				want := []string{}
				for j := 0; j <= i; j++ {
					want = append(want, fmt.Sprintf("level%d", j))
				}
				if i < 5 {
					want = append([]string{"late"}, want...)
				}
				want = append(want, "shared")
				if got := h.manifest(t, id, ""); !slices.Equal(got, want) {
					t.Errorf("level %d: entries %v, want %v", i, got, want)
				}
				if got := h.read(t, id, "shared", ""); got != fmt.Sprintf("from %d", i) {
					t.Errorf("level %d: shared %q, want from %d", i, got, i)
				}
				for j := 0; j <= i; j++ {
					if got := h.read(t, id, fmt.Sprintf("level%d", j), ""); got != fmt.Sprint(j) {
						t.Errorf("level %d: level%d is %q, want %d", i, j, got, j)
					}
				}
			}
		}
		check(t)
		h.restart(t)
		t.Run("FreshService", check)
	})

	t.Run("ParentDeleted", func(t *testing.T) {
		p := h.session(t)
		h.write(t, p, "kept.txt", "kept")
		f, err := h.c.Fork(ctx, client.ForkRequest{Session: p})
		if err != nil {
			t.Fatalf("fork: %v", err)
		}
		ff, err := h.c.Fork(ctx, client.ForkRequest{Session: f.Session.ID})
		if err != nil {
			t.Fatalf("fork of fork: %v", err)
		}
		if _, err := h.c.DeleteSession(ctx, client.SessionRequest{Session: p}); err != nil {
			t.Fatalf("delete parent: %v", err)
		}
		_, err = h.c.GetSession(ctx, p, "")
		wantCode(t, "get deleted parent", err, domain.CodeNotFound)
		check := func(t *testing.T) {
			for _, id := range []string{f.Session.ID, ff.Session.ID} {
				if got := h.read(t, id, "kept.txt", ""); got != "kept" {
					t.Errorf("fork %s: kept.txt %q, want kept", id, got)
				}
				g, err := h.c.GetSession(ctx, id, "")
				if err != nil || g.Session.Status != "active" {
					t.Errorf("fork %s: get %s, %v; want active", id, asJSON(g.Session), err)
				}
			}
			w, err := h.c.Write(ctx, client.WriteRequest{Session: f.Session.ID, Path: "new.txt", Content: []byte("n")})
			if err != nil {
				t.Fatalf("write to fork of a deleted parent: %v", err)
			}
			if got := h.read(t, f.Session.ID, "new.txt", client.AtPosition(w.Position)); got != "n" {
				t.Errorf("new.txt: got %q", got)
			}
			if _, err := h.c.Fork(ctx, client.ForkRequest{Session: ff.Session.ID}); err != nil {
				t.Errorf("fork below a deleted parent: %v", err)
			}
		}
		check(t)
		h.restart(t)
		t.Run("FreshService", check)
	})
}
