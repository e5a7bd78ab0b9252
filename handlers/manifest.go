package handlers

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func (s *Service) fsManifest(c *call) (any, error) {
	var req client.ManifestRequest
	id, err := c.decodeSession(&req, &req.Session)
	if err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > client.MaxManifestLimit {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "limit must be between 0 and %d", client.MaxManifestLimit)
	}
	limit := req.Limit
	if limit == 0 {
		limit = client.DefaultManifestLimit
	}
	if req.Encoding == "" {
		req.Encoding = client.ManifestJSON
	}
	if req.Encoding != client.ManifestJSON && req.Encoding != client.ManifestMsgpack {
		return nil, domain.Errorf(domain.CodeInvalidArgument, "encoding must be %q or %q", client.ManifestJSON, client.ManifestMsgpack)
	}
	prefix, err := domain.CleanPath(req.Prefix)
	if err != nil {
		return nil, err
	}
	after, err := domain.CleanPath(req.After)
	if err != nil {
		return nil, err
	}
	sess, err := c.resolveAt(id, req.At)
	if err != nil {
		return nil, err
	}
	if req.At == "" {
		if err := readable(sess); err != nil {
			return nil, err
		}
	}
	if prefix == "" {
		// The whole tree: pages are slices of its encoding, kept by root.
		l := s.listings.get(listingKey{root: sess.Tree.Hash(), encoding: req.Encoding, xattrs: req.Xattrs}, sess.Tree)
		return s.listings.page(l, sess.Position, after, limit)
	}
	walked, next := walkPrefix(sess.Tree, prefix, strings.HasSuffix(req.Prefix, "/"), after, limit)
	if req.Encoding == client.ManifestMsgpack {
		return manifestMsgpack(sess.Position, sess.Tree.Hash(), next, walked, req.Xattrs)
	}
	reply := client.ManifestReply{Entries: make([]client.EntryView, 0, len(walked)), Position: sess.Position, Root: sess.Tree.Hash().String(), NextCursor: next}
	for _, e := range walked {
		reply.Entries = append(reply.Entries, listingView(e, req.Xattrs))
	}
	return reply, nil
}

// walkPrefix lists up to limit entries after the cursor whose paths start
// with prefix. A prefix ending in "/" (dir) names a directory; otherwise it
// may also cut a name short ("src/ma" keeps src/main.go).
func walkPrefix(t domain.Tree, prefix string, dir bool, after string, limit int) (walked []domain.Entry, next string) {
	base := prefix
	if !dir {
		if n := t.Lookup(prefix); n == nil || n.Kind != domain.KindDir {
			if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
				base = prefix[:i]
			} else {
				base = ""
			}
		}
	}
	t.Walk(base, after, func(e domain.Entry) bool {
		if base != prefix && !strings.HasPrefix(e.Path, prefix) {
			return true
		}
		if len(walked) == limit {
			next = walked[limit-1].Path
			return false
		}
		walked = append(walked, e)
		return true
	})
	return walked, next
}

// listingView is an entry as the JSON reply shows it.
func listingView(e domain.Entry, xattrs bool) client.EntryView {
	v := entryView(e.Path, e.Node)
	if xattrs && len(e.Node.Xattrs) > 0 {
		v.Xattrs = e.Node.Xattrs
	}
	return v
}

// manifestEntry is an entry as the MessagePack reply has it.
func manifestEntry(e domain.Entry, xattrs bool) client.ManifestEntry {
	n := e.Node
	me := client.ManifestEntry{Path: e.Path, Kind: n.Kind.String(), Mode: n.Mode, Target: n.Target}
	if n.Kind == domain.KindFile {
		me.Size, me.Hash = n.Size, n.Content
	} else {
		me.Hash = n.Hash()
	}
	if xattrs {
		me.Xattrs = n.Xattrs
	}
	return me
}

// manifestMsgpack encodes a manifest page in its MessagePack form
// (client.EncodeManifest).
func manifestMsgpack(position uint64, root domain.Hash, next string, walked []domain.Entry, xattrs bool) (any, error) {
	entries := make([]client.ManifestEntry, len(walked))
	for i, e := range walked {
		entries[i] = manifestEntry(e, xattrs)
	}
	var buf bytes.Buffer
	buf.Grow(len(entries) * 80)
	if err := client.EncodeManifest(&buf, position, root, next, entries); err != nil {
		return nil, domain.Wrap(err, "manifest")
	}
	return encodedReply{contentType: client.ManifestContentType, body: buf.Bytes()}, nil
}

// DefaultListingCacheBytes bounds the encoded listings the service keeps.
const DefaultListingCacheBytes = 64 << 20

// listingKey names a whole tree's listing. A root hash names the tree's
// whole content (paths, kinds, modes, hashes, xattrs), so a listing never
// goes stale and serves every session and position with that root.
type listingKey struct {
	root     domain.Hash
	encoding string
	xattrs   bool
}

// listing is the encoding of a tree's entries in tree order, grown as far
// as pages have been asked for: each entry is walked and encoded once,
// and a page is a slice of the encoding.
type listing struct {
	key  listingKey
	tree domain.Tree

	mu sync.Mutex
	// paths holds the listed paths one after the other, and pathEnds[i]
	// is where path i ends in it: no pointer per entry, so a listing of
	// 100,000 entries is a few objects to the garbage collector, not
	// 100,000 (its marking was most of a page's cost in bench row 4).
	paths    []byte
	pathEnds []int
	// ends[i] is where entry i's encoding ends in body.
	ends []int
	body []byte
	done bool
	// size is what the cache counted of this listing.
	size int64
}

// listings is the service's cache of listings, bounded by bytes.
type listings struct {
	mu    sync.Mutex
	lru   *simplelru.LRU[listingKey, *listing]
	bytes int64
	max   int64
}

func newListings(maxBytes int64) *listings {
	c := &listings{max: maxBytes}
	// The entry count is bounded by bytes below, not by the LRU itself.
	l, err := simplelru.NewLRU(1<<30, func(_ listingKey, v *listing) { c.bytes -= v.size })
	if err != nil {
		panic(err) // only for a size <= 0
	}
	c.lru = l
	return c
}

// get returns the listing of a tree, new and empty if the cache has none.
func (c *listings) get(key listingKey, tree domain.Tree) *listing {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.lru.Get(key); ok {
		return l
	}
	l := &listing{key: key, tree: tree}
	if c.max > 0 {
		c.lru.Add(key, l)
	}
	return l
}

// grew counts bytes a listing added, and evicts the least recently used
// listings beyond the bound.
func (c *listings) grew(l *listing, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.lru.Peek(l.key); !ok || cur != l {
		return // evicted meanwhile, or never kept
	}
	l.size += n
	c.bytes += n
	for c.bytes > c.max && c.lru.Len() > 0 {
		c.lru.RemoveOldest()
	}
}

// page answers a page of a listing: up to limit entries after the cursor.
// The reply's buffer comes from a pool and goes back to it once sent
// (encodedReply.release).
func (c *listings) page(l *listing, position uint64, after string, limit int) (any, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// One entry more than the page tells whether there is a next page.
	if from := l.after(after); !l.done && l.count() < from+limit+1 {
		grown, err := l.grow(after, limit+1)
		if err != nil {
			return nil, err
		}
		c.grew(l, grown)
	}
	from := l.after(after)
	to := min(from+limit, l.count())
	next := ""
	if to < l.count() {
		next = l.path(to - 1)
	}
	start, end := l.end(from), l.end(to)
	root := l.tree.Hash()
	buf := replyBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	release := func() { replyBuffers.Put(buf) }
	if l.key.encoding == client.ManifestMsgpack {
		buf.Grow(end - start + 128)
		if err := client.EncodeManifestPage(buf, position, root, next, to-from, l.body[start:end]); err != nil {
			release()
			return nil, domain.Wrap(err, "manifest")
		}
		return encodedReply{contentType: client.ManifestContentType, body: buf.Bytes(), release: release}, nil
	}
	// The JSON reply as json.Marshal writes a client.ManifestReply: the
	// entries (each followed by a comma in body), then the other fields in
	// their order.
	buf.Grow(end - start + 160)
	buf.WriteString(`{"entries":[`)
	if end > start {
		buf.Write(l.body[start : end-1])
	}
	buf.WriteString(`]`)
	if next != "" {
		cursor, _ := json.Marshal(next)
		buf.WriteString(`,"next_cursor":`)
		buf.Write(cursor)
	}
	buf.WriteString(`,"position":`)
	buf.WriteString(strconv.FormatUint(position, 10))
	buf.WriteString(`,"root":"`)
	buf.WriteString(root.String())
	buf.WriteString(`"}`)
	return encodedReply{contentType: "application/json", body: buf.Bytes(), release: release}, nil
}

// replyBuffers holds the buffers of manifest replies between requests: a
// page of 10,000 entries is 700 KiB, which every request allocated anew.
var replyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// count returns how many entries are listed.
func (l *listing) count() int { return len(l.pathEnds) }

// path returns the path of entry i.
func (l *listing) path(i int) string {
	from := 0
	if i > 0 {
		from = l.pathEnds[i-1]
	}
	return string(l.paths[from:l.pathEnds[i]])
}

// end returns where the first n entries end in the body.
func (l *listing) end(n int) int {
	if n == 0 {
		return 0
	}
	return l.ends[n-1]
}

// after returns the index of the first listed entry after the cursor.
func (l *listing) after(cursor string) int {
	if cursor == "" {
		return 0
	}
	return sort.Search(l.count(), func(i int) bool { return domain.ComparePaths(l.path(i), cursor) > 0 })
}

// grow walks and encodes the entries after the last one listed until n of
// them come after the cursor, or the tree ends. It returns the bytes
// added.
func (l *listing) grow(cursor string, n int) (int64, error) {
	from := l.after(cursor)
	if cursor != "" && from == l.count() {
		from = -1 // the cursor is beyond what is listed
	}
	last := ""
	if k := l.count(); k > 0 {
		last = l.path(k - 1)
	}
	before, listed, pathsBefore := len(l.body), l.count(), len(l.paths)
	buf := bytes.NewBuffer(l.body)
	var enc *msgpack.Encoder
	if l.key.encoding == client.ManifestMsgpack {
		enc = msgpack.NewEncoder(buf)
	}
	var err error
	l.done = true
	l.tree.Walk("", last, func(e domain.Entry) bool {
		if from >= 0 && l.count() >= from+n {
			l.done = false
			return false
		}
		if enc != nil {
			me := manifestEntry(e, l.key.xattrs)
			err = client.EncodeManifestEntry(enc, &me)
		} else {
			var b []byte
			b, err = json.Marshal(listingView(e, l.key.xattrs))
			buf.Write(b)
			buf.WriteByte(',')
		}
		if err != nil {
			return false
		}
		l.paths = append(l.paths, e.Path...)
		l.pathEnds = append(l.pathEnds, len(l.paths))
		l.ends = append(l.ends, buf.Len())
		if from < 0 && domain.ComparePaths(e.Path, cursor) > 0 {
			from = l.count() - 1
		}
		return true
	})
	l.body = buf.Bytes()
	if err != nil {
		// Drop what the failed entry left after the last whole one.
		l.body, l.done = l.body[:l.end(len(l.ends))], false
		return 0, domain.Wrap(err, "manifest")
	}
	// Besides the encoding: each path's bytes, its end and its entry's.
	return int64(len(l.body)-before) + int64(len(l.paths)-pathsBefore) + int64((l.count()-listed)*(8+8)), nil
}
