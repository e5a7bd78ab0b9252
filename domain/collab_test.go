package domain_test

import (
	"testing"
	"time"

	"github.com/strand-dev/strand/domain"
)

func u64(v uint64) *uint64 { return &v }

func put(k, v string) domain.CacheOp {
	return domain.CacheOp{Op: domain.CachePut, Key: k, Value: []byte(v)}
}

func TestSession_Cache(t *testing.T) {
	l := newLog(t)
	l.create("s")
	s := l.must("s", domain.UpdateCache{Ops: []domain.CacheOp{put("a/1", "x"), put("a/2", "y"), put("b", "z")}})
	e, ok := s.Cache.Get("a/1", l.clock)
	if !ok || string(e.Value) != "x" || e.Rev != s.Version {
		t.Fatalf("get a/1: %+v %v, want x at rev %d", e, ok, s.Version)
	}
	rev := e.Rev

	t.Run("CAS", func(t *testing.T) {
		_, _, err := l.exec("s", domain.UpdateCache{Ops: []domain.CacheOp{put("a/1", "new")}, Expect: []*uint64{u64(rev + 100)}})
		wantCode(t, "cas at a wrong revision", err, domain.CodeConflict)
		_, _, err = l.exec("s", domain.UpdateCache{Ops: []domain.CacheOp{put("a/1", "new")}, Expect: []*uint64{u64(0)}})
		wantCode(t, "create of an existing key", err, domain.CodeConflict)
		s := l.must("s", domain.UpdateCache{Ops: []domain.CacheOp{put("a/1", "new")}, Expect: []*uint64{u64(rev)}})
		if e, _ := s.Cache.Get("a/1", l.clock); string(e.Value) != "new" || e.Rev <= rev {
			t.Fatalf("after cas: %+v", e)
		}
		_, _, err = l.exec("s", domain.UpdateCache{Ops: []domain.CacheOp{put("a/1", "again")}, Expect: []*uint64{u64(rev)}})
		wantCode(t, "cas at the old revision", err, domain.CodeConflict)
		l.must("s", domain.UpdateCache{Ops: []domain.CacheOp{put("fresh", "1")}, Expect: []*uint64{u64(0)}})
	})

	t.Run("BatchIsAllOrNothing", func(t *testing.T) {
		before := l.sessions["s"].head
		_, _, err := l.exec("s", domain.UpdateCache{Ops: []domain.CacheOp{put("c1", "1"), put("c2", "2")}, Expect: []*uint64{nil, u64(7)}})
		wantCode(t, "batch with one bad expectation", err, domain.CodeConflict)
		if _, ok := l.sessions["s"].head.Cache.Get("c1", l.clock); ok || l.sessions["s"].head != before {
			t.Fatalf("a refused batch changed the cache")
		}
	})

	t.Run("Prefix", func(t *testing.T) {
		var keys []string
		s := l.sessions["s"].head
		s.Cache.Keys("a/", "", l.clock, func(k string, _ domain.CacheEntry) bool { keys = append(keys, k); return true })
		if len(keys) != 2 || keys[0] != "a/1" || keys[1] != "a/2" {
			t.Fatalf("keys a/: %v", keys)
		}
		keys = nil
		s.Cache.Keys("a/", "a/1", l.clock, func(k string, _ domain.CacheEntry) bool { keys = append(keys, k); return true })
		if len(keys) != 1 || keys[0] != "a/2" {
			t.Fatalf("keys a/ after a/1: %v", keys)
		}
		s = l.must("s", domain.UpdateCache{Ops: []domain.CacheOp{{Op: domain.CacheDeletePrefix, Key: "a/"}}})
		if _, ok := s.Cache.Get("a/2", l.clock); ok {
			t.Fatalf("a/2 survived delete_prefix")
		}
		if _, ok := s.Cache.Get("b", l.clock); !ok {
			t.Fatalf("b deleted by delete_prefix a/")
		}
		_, _, err := l.exec("s", domain.UpdateCache{Ops: []domain.CacheOp{{Op: domain.CacheDelete, Key: "nope"}}, Strict: true})
		wantCode(t, "strict delete of a missing key", err, domain.CodeNotFound)
	})

	t.Run("TTLFromEventTime", func(t *testing.T) {
		m := l.meta()
		ttl := domain.CacheOp{Op: domain.CachePut, Key: "short", Value: []byte("v"), Expires: m.Time.Add(10 * time.Second).UnixNano()}
		s, _, err := l.execMeta("s", domain.UpdateCache{Ops: []domain.CacheOp{ttl}}, m)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.Cache.Get("short", m.Time.Add(9*time.Second)); !ok {
			t.Fatalf("entry gone before its ttl")
		}
		if _, ok := s.Cache.Get("short", m.Time.Add(10*time.Second)); ok {
			t.Fatalf("entry alive at its expiry")
		}
		// An expired key is absent for a create-only CAS decided later.
		later := l.meta()
		later.Time = m.Time.Add(time.Minute)
		if _, _, err := l.execMeta("s", domain.UpdateCache{Ops: []domain.CacheOp{put("short", "again")}, Expect: []*uint64{u64(0)}}, later); err != nil {
			t.Fatalf("create over an expired key: %v", err)
		}
	})

	t.Run("ForkAndRestore", func(t *testing.T) {
		at := l.sessions["s"].head
		f := l.must("f", domain.ForkSession{ID: "f", Parent: at})
		if f.Cache.Len() != at.Cache.Len() {
			t.Fatalf("fork cache: %d keys, parent %d", f.Cache.Len(), at.Cache.Len())
		}
		l.must("s", domain.UpdateCache{Ops: []domain.CacheOp{put("later", "x")}})
		if _, ok := l.sessions["f"].head.Cache.Get("later", l.clock); ok {
			t.Fatalf("fork sees a later parent key")
		}
		s := l.must("s", domain.RestoreSession{To: at.Position})
		if _, ok := s.Cache.Get("later", l.clock); ok || s.Cache.Len() != at.Cache.Len() {
			t.Fatalf("restore did not bring the cache back")
		}
	})
	if _, err := l.replay(); err != nil {
		t.Fatalf("replay: %v", err)
	}
}

func TestSession_Locks(t *testing.T) {
	const tok, other = "token-0123456789", "token-abcdefghij"
	l := newLog(t)
	l.create("s")
	l.must("s", batch(write("src/a.go", "a"), write("src/b.go", "b"), write("docs/r.md", "r"), mkdir("empty")))
	l.must("s", domain.AcquireLock{Path: "src", Subtree: true, Token: tok, TTL: time.Minute})

	refused := []struct {
		name string
		cmd  domain.ChangeFiles
	}{
		{"WriteBelow", one(write("src/a.go", "x"))},
		{"NewFileBelow", one(write("src/new.go", "x"))},
		{"Mkdir", one(mkdir("src/sub"))},
		{"Remove", one(remove("src/a.go", false))},
		{"RemoveAncestor", domain.ChangeFiles{Ops: []domain.FileOp{{Kind: domain.OpRemove, Path: "src", Recursive: true}}}},
		{"RenameOut", one(rename("src/a.go", "docs/a.go"))},
		{"RenameIn", one(rename("docs/r.md", "src/r.md"))},
		{"Symlink", one(symlink("src/l", "a.go"))},
		{"Xattr", one(domain.FileOp{Kind: domain.OpSetXattr, Path: "src/a.go", Name: "user.x", Value: []byte("1")})},
		{"InsideBatch", batch(write("docs/ok.md", "fine"), write("src/b.go", "x"))},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := l.exec("s", tc.cmd)
			wantCode(t, tc.name+" without token", err, domain.CodeLocked)
			bad := tc.cmd
			bad.Token = other
			_, _, err = l.exec("s", bad)
			wantCode(t, tc.name+" with another token", err, domain.CodeLocked)
		})
	}
	l.must("s", one(write("docs/free.md", "not locked")))
	withToken := one(write("src/a.go", "mine"))
	withToken.Token = tok
	l.must("s", withToken)

	_, _, err := l.exec("s", domain.AcquireLock{Path: "src/a.go", Token: other})
	wantCode(t, "acquire inside a locked subtree", err, domain.CodeLocked)
	_, _, err = l.exec("s", domain.AcquireLock{Path: "", Subtree: true, Token: other})
	wantCode(t, "acquire above a lock", err, domain.CodeLocked)
	_, _, err = l.exec("s", domain.RenewLock{Path: "src", Token: other})
	wantCode(t, "renew with another token", err, domain.CodeForbidden)
	_, _, err = l.exec("s", domain.RestoreSession{To: l.positions("s")[1]})
	wantCode(t, "restore under a lease", err, domain.CodeLocked)

	// A lease stops counting at its expiry, judged from the event's time.
	late := l.meta()
	late.Time = l.sessions["s"].head.UpdatedAt.Add(2 * time.Minute)
	if _, _, err := l.execMeta("s", one(write("src/a.go", "after expiry")), late); err != nil {
		t.Fatalf("write after the lease expired: %v", err)
	}
	late2 := l.meta()
	late2.Time = late.Time.Add(time.Second)
	s, _, err := l.execMeta("s", domain.AcquireLock{Path: "src/a.go", Token: other, TTL: time.Minute}, late2)
	if err != nil {
		t.Fatalf("acquire after expiry: %v", err)
	}
	if _, ok := s.LockAt("src"); ok {
		t.Fatalf("expired lease still listed")
	}
	late3 := l.meta()
	late3.Time = late2.Time.Add(time.Second)
	late3.Actor = "admin"
	s, _, err = l.execMeta("s", domain.ReleaseLock{Path: "src/a.go", Force: true}, late3)
	if err != nil || len(s.Locks) != 0 {
		t.Fatalf("force release: %v %v", err, s.Locks)
	}
	if _, err := l.replay(); err != nil {
		t.Fatalf("replay: %v", err)
	}
}

func TestSession_Xattrs(t *testing.T) {
	l := newLog(t)
	l.create("s")
	l.must("s", one(write("a", "1")))
	before := l.sessions["s"].head.Tree.Hash()
	s := l.must("s", one(domain.FileOp{Kind: domain.OpSetXattr, Path: "a", Name: "user.tag", Value: []byte("v")}))
	if s.Tree.Hash() == before {
		t.Fatalf("xattr did not change the Merkle root")
	}
	s = l.must("s", one(rename("a", "b")))
	if string(s.Tree.Lookup("b").Xattrs["user.tag"]) != "v" {
		t.Fatalf("xattr did not move with the rename")
	}
	s = l.must("s", one(write("b", "2")))
	if string(s.Tree.Lookup("b").Xattrs["user.tag"]) != "v" {
		t.Fatalf("xattr lost on rewrite")
	}
	_, _, err := l.exec("s", one(domain.FileOp{Kind: domain.OpRemoveXattr, Path: "b", Name: "user.none"}))
	wantCode(t, "remove a missing xattr", err, domain.CodeNotFound)
	_, _, err = l.exec("s", one(domain.FileOp{Kind: domain.OpSetXattr, Path: "b", Name: ""}))
	wantCode(t, "empty xattr name", err, domain.CodeInvalidArgument)
	s = l.must("s", one(domain.FileOp{Kind: domain.OpRemoveXattr, Path: "b", Name: "user.tag"}))
	if len(s.Tree.Lookup("b").Xattrs) != 0 {
		t.Fatalf("xattr not removed")
	}
	if _, err := l.replay(); err != nil {
		t.Fatalf("replay: %v", err)
	}
}
