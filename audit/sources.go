package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/domain"
)

// The source layout (written by streams/sources.go and streams/treeblob.go):
// one subject per source, strand.src.<tenant>.<name>, each message one
// domain.SourceEvent in MessagePack; a revision names its tree by the hash
// of a blob that holds the tree's entries in tree order.
const treeFormat = 1

type treeDoc struct {
	Format  int         `msgpack:"f"`
	Root    []byte      `msgpack:"root"`
	Entries []treeEntry `msgpack:"entries"`
}

type treeEntry struct {
	Path    string            `msgpack:"p"`
	Kind    uint8             `msgpack:"k"`
	Mode    uint32            `msgpack:"m"`
	Size    int64             `msgpack:"s,omitempty"`
	Content []byte            `msgpack:"h,omitempty"`
	Target  string            `msgpack:"t,omitempty"`
	Xattrs  map[string][]byte `msgpack:"x,omitempty"`
	// Data is an inline file's content (design record 0009).
	Data []byte `msgpack:"d,omitempty"`
}

type revisionKey struct {
	tenant, source string
	revision       uint64
}

// SourceError says why the revision a session starts from cannot be read:
// the source, the revision or its tree is missing or damaged.
type SourceError struct {
	Source   string
	Revision uint64
	Reason   string
}

func (e *SourceError) Error() string {
	return fmt.Sprintf("source %s@%d: %s", e.Source, e.Revision, e.Reason)
}

// maxSourceEvents bounds the events read for one source.
const maxSourceEvents = 1 << 20

// SourceTree returns the tree of a source revision (0: the latest), read
// from the source stream and the blob stream and checked against the root
// the revision records. A *SourceError reports a missing or damaged one.
func (r *Reader) SourceTree(ctx context.Context, tenant, source string, rev uint64) (domain.Tree, error) {
	key := revisionKey{tenant, source, rev}
	if rev != 0 {
		r.srcMu.Lock()
		t, ok := r.srcTrees[key]
		r.srcMu.Unlock()
		if ok {
			return t, nil
		}
	}
	bad := func(format string, args ...any) error {
		return &SourceError{Source: source, Revision: rev, Reason: fmt.Sprintf(format, args...)}
	}
	if r.sources == nil {
		return domain.Tree{}, bad("stream %s does not exist", r.names.Sources)
	}
	subj := sourcePrefix + tenant + "." + source
	var src *domain.Source
	seq := uint64(1)
	for range maxSourceEvents {
		m, err := r.sources.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return domain.Tree{}, fmt.Errorf("read source %s: %w", source, err)
		}
		var e domain.SourceEvent
		if err := domain.DecodeMsgpack(m.Data, &e); err != nil {
			return domain.Tree{}, bad("event at %d does not decode", m.Sequence)
		}
		if src, err = domain.ApplySource(src, &e, m.Sequence); err != nil {
			return domain.Tree{}, bad("event at %d: %s", m.Sequence, errText(err))
		}
		seq = m.Sequence + 1
	}
	if src == nil {
		return domain.Tree{}, bad("no such source")
	}
	rv, err := src.Revision(rev)
	if err != nil {
		return domain.Tree{}, bad("%s", errText(err))
	}
	blob, ok1 := domain.HashFromBytes(rv.Tree)
	root, ok2 := domain.HashFromBytes(rv.Root)
	if !ok1 || !ok2 || blob.IsZero() {
		return domain.Tree{}, bad("revision has a bad tree or root hash")
	}
	var buf bytes.Buffer
	if _, err := r.CopyBlob(ctx, blob, &buf); err != nil {
		var be *BlobError
		if errors.As(err, &be) {
			return domain.Tree{}, bad("tree %s", be.Error())
		}
		return domain.Tree{}, err
	}
	t, err := decodeTree(buf.Bytes())
	if err != nil {
		return domain.Tree{}, bad("tree blob %s: %v", blob, err)
	}
	if t.Hash() != root {
		return domain.Tree{}, bad("tree blob %s gives root %s, the revision records %s", blob, t.Hash(), root)
	}
	key.revision = rv.Number
	r.srcMu.Lock()
	if len(r.srcTrees) < 1024 {
		r.srcTrees[key] = t
	}
	r.srcMu.Unlock()
	return t, nil
}

func decodeTree(b []byte) (domain.Tree, error) {
	var doc treeDoc
	if err := domain.DecodeMsgpack(b, &doc); err != nil {
		return domain.Tree{}, fmt.Errorf("does not decode: %w", err)
	}
	if doc.Format != treeFormat {
		return domain.Tree{}, fmt.Errorf("unknown format %d", doc.Format)
	}
	list := make([]domain.Entry, len(doc.Entries))
	for i, e := range doc.Entries {
		var n *domain.Node
		switch domain.Kind(e.Kind) {
		case domain.KindFile:
			h, ok := domain.HashFromBytes(e.Content)
			if !ok {
				return domain.Tree{}, fmt.Errorf("entry %q: bad hash", e.Path)
			}
			if len(e.Data) > 0 && (domain.Sum(e.Data) != h || int64(len(e.Data)) != e.Size) {
				return domain.Tree{}, fmt.Errorf("entry %q: inline content does not hash to %s", e.Path, h)
			}
			n = domain.NewFile(h, e.Size, e.Mode, e.Xattrs)
			n.Data = e.Data
		case domain.KindDir:
			n = domain.NewDir(e.Mode, e.Xattrs)
		case domain.KindSymlink:
			n = domain.NewSymlink(e.Target, e.Xattrs)
		default:
			return domain.Tree{}, fmt.Errorf("entry %q: bad kind", e.Path)
		}
		list[i] = domain.Entry{Path: e.Path, Node: n}
	}
	t, err := domain.Build(list)
	if err != nil {
		return domain.Tree{}, err
	}
	if root, _ := domain.HashFromBytes(doc.Root); t.Hash() != root {
		return domain.Tree{}, fmt.Errorf("entries give root %s, recorded %s", t.Hash(), root)
	}
	return t, nil
}

// sourceBase returns the state a session created from a source starts
// from, and schedules the checks of the tree's file blobs. ok is false when
// the history got a finding instead; err is for failures to read.
func (p *replayer) sourceBase(h *history, rec *Record, ev *domain.Event) (base *domain.Session, ok bool, err error) {
	o := ev.Created.Origin
	t, err := p.r.SourceTree(p.ctx, rec.Tenant, o.Source, o.Revision)
	var se *SourceError
	if errors.As(err, &se) {
		h.fail(rec, ev.Version, KindSource, "starts from %s", se.Error())
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if p.blobs != nil {
		t.Walk("", "", func(e domain.Entry) bool {
			if n := e.Node; n.Kind == domain.KindFile && !n.Content.IsZero() && !n.Inline() {
				p.blobs.check(n.Content, blobRef{
					hash: n.Content, hist: h, position: rec.Position, version: ev.Version, size: n.Size,
					what: fmt.Sprintf("file %s of source %s@%d", e.Path, o.Source, o.Revision),
				})
			}
			return true
		})
	}
	return &domain.Session{Tree: t}, true, nil
}
