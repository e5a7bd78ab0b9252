package streams

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/strand-dev/strand/domain"
)

// snapshotFormat is bumped when snapshotDoc changes incompatibly; a snapshot
// of another format is ignored (snapshots are a cache).
const snapshotFormat = 1

type snapshotRef struct {
	Format   int    `msgpack:"f"`
	Blob     []byte `msgpack:"b"`
	Position uint64 `msgpack:"p"`
	Version  uint64 `msgpack:"v"`
	// Size is the document's size, so that summing a tenant's snapshot
	// bytes reads the references alone (references written before it have
	// none: their document is looked up).
	Size int64 `msgpack:"s,omitempty"`
}

type snapshotDoc struct {
	ID          string            `msgpack:"id"`
	Tenant      string            `msgpack:"tenant"`
	Origin      domain.Origin     `msgpack:"origin"`
	Owner       string            `msgpack:"owner"`
	Tags        map[string]string `msgpack:"tags"`
	Status      string            `msgpack:"status"`
	CreatedAt   int64             `msgpack:"created"`
	UpdatedAt   int64             `msgpack:"updated"`
	Position    uint64            `msgpack:"pos"`
	Start       uint64            `msgpack:"start"`
	Version     uint64            `msgpack:"ver"`
	LastHash    []byte            `msgpack:"last"`
	Root        []byte            `msgpack:"root"`
	Checkpoints []snapCheckpoint  `msgpack:"cps"`
	RecentIDs   []string          `msgpack:"rids"`
	RecentPos   []uint64          `msgpack:"rpos"`
	Entries     []snapEntry       `msgpack:"entries"`

	// The review and collaboration state, inlined under the keys domain
	// gives them (notes, approvals, commits, policy, locks, health); the
	// cache is stored as its keys and entries.
	domain.ReviewState
	domain.CollabState
	CacheKeys    []string            `msgpack:"ckeys,omitempty"`
	CacheEntries []domain.CacheEntry `msgpack:"cvals,omitempty"`
}

type snapCheckpoint struct {
	Name     string `msgpack:"n"`
	Position uint64 `msgpack:"p"`
	Note     string `msgpack:"note"`
	Actor    string `msgpack:"a"`
	Created  int64  `msgpack:"t"`
	At       uint64 `msgpack:"at"`
}

type snapEntry struct {
	Path    string            `msgpack:"p"`
	Kind    uint8             `msgpack:"k"`
	Mode    uint32            `msgpack:"m"`
	Size    int64             `msgpack:"s,omitempty"`
	Content []byte            `msgpack:"h,omitempty"`
	Target  string            `msgpack:"t,omitempty"`
	Xattrs  map[string][]byte `msgpack:"x,omitempty"`
	// Data is an inline file's content (design record 0009). Snapshots
	// and tree blobs written before it have none, and need none.
	Data []byte `msgpack:"d,omitempty"`
}

func snapshotKey(tenant, id string, version uint64) string {
	return tenant + "." + id + "." + strconv.FormatUint(version, 10)
}

// maybeSnapshot queues a snapshot when a session reached a multiple of the
// snapshot interval. It never blocks the writer: a full queue skips one.
func (st *Store) maybeSnapshot(s *domain.Session) {
	if s.Version%st.cfg.SnapshotEvery != 0 {
		return
	}
	select {
	case st.snapq <- s:
	default:
		st.log.Warn("snapshot queue full; skipped", "session", s.ID, "version", s.Version)
	}
}

func (st *Store) snapshotLoop() {
	defer close(st.snapDone)
	for s := range st.snapq {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := st.WriteSnapshot(ctx, s); err != nil {
			st.log.Warn("snapshot failed", "session", s.ID, "version", s.Version, "err", err)
		}
		cancel()
	}
}

func encodeSnapshot(s *domain.Session) ([]byte, error) {
	doc := snapshotDoc{
		ID: s.ID, Tenant: s.Tenant, Origin: s.Origin, Owner: s.Owner, Tags: s.Tags,
		Status: string(s.Status), CreatedAt: s.CreatedAt.UnixNano(), UpdatedAt: s.UpdatedAt.UnixNano(),
		Position: s.Position, Start: s.Start, Version: s.Version,
		LastHash: s.LastHash.Bytes(), Root: s.Tree.Hash().Bytes(),
		ReviewState: s.ReviewState, CollabState: s.CollabState,
	}
	s.Cache.All(func(k string, e domain.CacheEntry) bool {
		doc.CacheKeys = append(doc.CacheKeys, k)
		doc.CacheEntries = append(doc.CacheEntries, e)
		return true
	})
	for cp := range s.Checkpoints.All() {
		doc.Checkpoints = append(doc.Checkpoints, snapCheckpoint{
			Name: cp.Name, Position: cp.Position, Note: cp.Note, Actor: cp.Actor,
			Created: cp.CreatedAt.UnixNano(), At: cp.At,
		})
	}
	doc.RecentIDs, doc.RecentPos = s.RecentRequestList()
	doc.Entries = treeEntries(s.Tree)
	return msgpack.Marshal(&doc)
}

func decodeSnapshot(b []byte) (*domain.Session, error) {
	var doc snapshotDoc
	if err := domain.DecodeMsgpack(b, &doc); err != nil {
		return nil, err
	}
	tree, err := entriesTree(doc.Entries)
	if err != nil {
		return nil, err
	}
	root, _ := domain.HashFromBytes(doc.Root)
	if tree.Hash() != root {
		return nil, fmt.Errorf("snapshot tree hash %s, recorded %s", tree.Hash(), root)
	}
	last, _ := domain.HashFromBytes(doc.LastHash)
	s := &domain.Session{
		ID: doc.ID, Tenant: doc.Tenant, Origin: doc.Origin, Owner: doc.Owner, Tags: doc.Tags,
		Status: domain.Status(doc.Status), CreatedAt: time.Unix(0, doc.CreatedAt).UTC(),
		UpdatedAt: time.Unix(0, doc.UpdatedAt).UTC(), Tree: tree,
		Position: doc.Position, Start: doc.Start, Version: doc.Version, LastHash: last,
	}
	for _, cp := range doc.Checkpoints {
		s.Checkpoints = s.Checkpoints.With(domain.Checkpoint{
			Name: cp.Name, Position: cp.Position, Note: cp.Note, Actor: cp.Actor,
			CreatedAt: time.Unix(0, cp.Created).UTC(), At: cp.At,
		})
	}
	if len(doc.RecentIDs) != len(doc.RecentPos) {
		return nil, fmt.Errorf("snapshot: %d recent request ids with %d positions", len(doc.RecentIDs), len(doc.RecentPos))
	}
	s.RestoreRecentRequests(doc.RecentIDs, doc.RecentPos)
	if len(doc.CacheKeys) != len(doc.CacheEntries) {
		return nil, fmt.Errorf("snapshot cache: %d keys, %d entries", len(doc.CacheKeys), len(doc.CacheEntries))
	}
	s.ReviewState, s.CollabState = doc.ReviewState, doc.CollabState
	s.Cache = domain.NewCache(doc.CacheKeys, doc.CacheEntries)
	// MessagePack keeps instants, not zones: give back the UTC the events use.
	s.ReviewState.ToUTC()
	s.CollabState.ToUTC()
	return s, nil
}

// WriteSnapshot stores a snapshot of a state: its body in the blob store (so
// a large tree is chunked like any content), its reference in the bucket
// under the session and version.
func (st *Store) WriteSnapshot(ctx context.Context, s *domain.Session) error {
	body, err := encodeSnapshot(s)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	h, err := st.Blobs.Put(ctx, body)
	if err != nil {
		return fmt.Errorf("store snapshot body: %w", err)
	}
	ref, _ := msgpack.Marshal(snapshotRef{Format: snapshotFormat, Blob: h[:], Position: s.Position, Version: s.Version,
		Size: int64(len(body))})
	if _, err := st.snaps.Put(ctx, snapshotKey(s.Tenant, s.ID, s.Version), ref); err != nil {
		return fmt.Errorf("store snapshot ref: %w", err)
	}
	return nil
}

// loadSnapshot returns the newest usable snapshot at or before version, or
// nil. Any failure only costs a longer replay.
func (st *Store) loadSnapshot(ctx context.Context, tenant, id string, version uint64) *domain.Session {
	every := st.cfg.SnapshotEvery
	for v, tries := version/every*every, 0; v > 0 && tries < 3; v, tries = v-every, tries+1 {
		entry, err := st.snaps.Get(ctx, snapshotKey(tenant, id, v))
		if err != nil {
			continue
		}
		var ref snapshotRef
		if err := domain.DecodeMsgpack(entry.Value(), &ref); err != nil || ref.Format != snapshotFormat {
			continue
		}
		h, ok := domain.HashFromBytes(ref.Blob)
		if !ok {
			continue
		}
		body, err := st.Blobs.Get(ctx, h)
		if err != nil {
			st.log.Warn("snapshot body unreadable", "session", id, "version", v, "err", err)
			continue
		}
		s, err := decodeSnapshot(body)
		if err != nil || s.ID != id || s.Tenant != tenant || s.Version != v || s.Position != ref.Position {
			st.log.Warn("snapshot unusable", "session", id, "version", v, "err", err)
			continue
		}
		return s
	}
	return nil
}
