package mount

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// prefetchMax is the largest file a directory's prefetch brings along.
const prefetchMax = 1 << 20

// prefetchWorkers is how many directories are prefetched at once, each in
// one or a few fs.read_batch requests.
const prefetchWorkers = 4

// prefetchJob is small files readable at one position that the cache may
// not hold, and their entries by content hash.
type prefetchJob struct {
	position uint64
	files    []client.FileRef
	entries  map[string][]*entry
}

// add adds a file. Guarded by the mount's mu.
func (j *prefetchJob) add(c *entry) {
	h := c.hash.String()
	if j.entries == nil {
		j.entries = map[string][]*entry{}
	}
	if len(j.entries[h]) == 0 {
		j.files = append(j.files, client.FileRef{Path: c.src.path, Hash: h, Size: c.size})
	}
	j.entries[h] = append(j.entries[h], c)
}

// prefetchFirstFiles is the size, in files, of the first job of a tree's
// prefetch; each next job is twice the one before, up to a whole
// fs.read_batch (client.MaxReadBatchPaths files, or prefetchJobBytes).
// A small first job comes back soon, so the reader that is about to need
// it waits little; large jobs later cost few round trips: a cold read of
// 10,000 files is about twenty requests instead of one per directory (200).
const prefetchFirstFiles = 64

// prefetchJobBytes bounds the content of one job: about one reply's worth
// (client.FetchContent splits what does not fit).
const prefetchJobBytes = 4 << 20

// missed is called when a read finds its content neither in the cache
// nor being fetched: tools that read one file of a tree (tar, grep, a
// build) tend to read the rest. The small files of the file's directory
// are fetched at once, together (the read waits for them); the rest of
// the tree is queued for fetching in the background, in name order (the
// order in which tools walk a tree), in jobs of growing size that take
// files of several directories, once per position of the view and up to
// half of the cache's bound. The jobs run prefetchWorkers at a time; a
// read of a file being fetched waits for it rather than fetching it
// again. A full queue drops jobs (their files are fetched when read).
// Listing a directory or stat'ing files fetches nothing.
func (m *Mount) missed(e *entry) {
	m.mu.Lock()
	dir := e.parent
	var job *prefetchJob
	if dir != nil {
		job = m.dirJob(dir, e.src.position)
		dir.prefetched = m.position + 1
	}
	m.prefetchTree()
	m.mu.Unlock()
	if job != nil {
		m.prefetch(job, client.DefaultFetchInflight)
	}
}

// prefetchTree queues the tree for a prefetch. Guarded by mu.
func (m *Mount) prefetchTree() {
	if m.treePrefetched == m.position+1 {
		return
	}
	m.treePrefetched = m.position + 1 // +1: position 0 (an empty session) counts too
	q := treeQueue{m: m, budget: m.cache.cc.MaxBytes() / 2, size: prefetchFirstFiles, open: map[uint64]*prefetchJob{}, bytes: map[uint64]int64{}}
	var walk func(d *entry)
	walk = func(d *entry) {
		if q.budget <= 0 || q.full {
			return
		}
		if d.prefetched != m.position+1 {
			d.prefetched = m.position + 1
			for _, name := range d.sortedNames() {
				q.add(d.children[name])
			}
		}
		for _, name := range d.sortedNames() {
			if c := d.children[name]; c.kind == kindDir {
				walk(c)
			}
		}
	}
	walk(m.root)
	q.flush()
}

// treeQueue cuts a tree's small files, in walk order, into jobs of
// growing size, one open job per position. Guarded by the mount's mu.
type treeQueue struct {
	m      *Mount
	budget int64
	size   int // files of the next job
	open   map[uint64]*prefetchJob
	bytes  map[uint64]int64
	full   bool // the queue refused a job: stop
}

func (q *treeQueue) add(c *entry) {
	if !prefetchable(c) || q.budget <= 0 || q.full {
		return
	}
	pos := c.src.position
	j := q.open[pos]
	if j == nil {
		j = &prefetchJob{position: pos}
		q.open[pos] = j
	}
	j.add(c)
	q.bytes[pos] += c.size
	q.budget -= c.size
	if len(j.files) >= q.size || q.bytes[pos] >= prefetchJobBytes {
		q.send(j)
		delete(q.open, pos)
		delete(q.bytes, pos)
		q.size = min(2*q.size, client.MaxReadBatchPaths)
	}
}

func (q *treeQueue) send(j *prefetchJob) {
	select {
	case q.m.prefetchQ <- j:
	default:
		q.full = true
	}
}

// flush queues the jobs still open, in the order of their positions.
func (q *treeQueue) flush() {
	pos := make([]uint64, 0, len(q.open))
	for p := range q.open {
		pos = append(pos, p)
	}
	slices.Sort(pos)
	for _, p := range pos {
		if !q.full {
			q.send(q.open[p])
		}
	}
}

// prefetchable reports whether a prefetch brings c along: a small file
// with content on the service, not changed here.
func prefetchable(c *entry) bool {
	return c.kind == kindFile && c.staged == nil && c.size <= prefetchMax && c.src.path != "" && !c.hash.IsZero()
}

// dirJob is the job of a directory's small files readable at pos (nil:
// none). Guarded by mu.
func (m *Mount) dirJob(dir *entry, pos uint64) *prefetchJob {
	j := &prefetchJob{position: pos}
	for _, c := range dir.children {
		if prefetchable(c) && c.src.position == pos {
			j.add(c)
		}
	}
	if len(j.files) == 0 {
		return nil
	}
	return j
}

// prefetcher runs queued prefetch jobs until the mount stops.
func (m *Mount) prefetcher() {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case j := <-m.prefetchQ:
			m.prefetch(j, 1)
		}
	}
}

// prefetch brings a job's files the cache does not hold into it. A
// failure only means that each file is fetched when it is read.
func (m *Mount) prefetch(j *prefetchJob, inflight int) {
	var mu sync.Mutex // FetchContent calls back from several goroutines
	calls := map[string]*fetchCall{}
	var todo []client.FileRef
	for _, f := range j.files {
		h, err := domain.ParseHash(f.Hash)
		if err != nil || m.cache.held(h) {
			continue
		}
		call, ok := m.cache.claim(h)
		if !ok {
			continue // being fetched already
		}
		calls[f.Hash] = call
		todo = append(todo, f)
	}
	if len(todo) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(m.ctx, time.Minute)
	defer cancel()

	err := m.client.FetchContent(ctx, m.session, client.AtPosition(j.position), todo, inflight, func(hash string, data []byte) error {
		h, err := domain.ParseHash(hash)
		if err != nil {
			return err
		}
		m.cache.addFetched(int64(len(data)))
		err = m.cache.keep(h, data)
		mu.Lock()
		call := calls[hash]
		delete(calls, hash)
		mu.Unlock()
		if call != nil {
			m.cache.settle(h, call, nil)
		}
		if err == nil {
			m.queuePush(j.entries[hash], h, data)
		}
		return err
	})
	if err != nil && m.ctx.Err() == nil {
		m.log.Debug("prefetch failed; files are fetched when read", "session", m.session, "err", err)
	}
	// Whatever did not arrive: the waiters fetch it themselves.
	mu.Lock()
	defer mu.Unlock()
	for hash, call := range calls {
		h, _ := domain.ParseHash(hash)
		m.cache.settle(h, call, nil)
	}
}

// push is content to put into the kernel's page cache for some files.
type push struct {
	entries []*entry
	hash    domain.Hash
	data    []byte
}

// queuePush hands fetched content to the pusher. A full queue drops it:
// the files are then read through the mount, as without a push.
//
// Only a read-only mount pushes. On a writable one a local write can land
// between the pusher's check and its store: the kernel holds a written
// page locked until the mount has answered the WRITE, and the store waits
// for that lock, so it overwrites the new bytes with the old content just
// after write(2) returned, and the writer itself could read them back
// until the check after the store drops the pages. No lock of the mount's
// can close that window without deadlocking against the kernel's page
// lock, and a file system that can return what was there before a
// write that has returned is wrong, however briefly.
func (m *Mount) queuePush(es []*entry, h domain.Hash, data []byte) {
	if !m.ro || len(es) == 0 || len(data) == 0 {
		return
	}
	select {
	case m.pushQ <- push{entries: es, hash: h, data: data}:
	default:
	}
}

// pusher puts queued contents into the kernel's page cache until the
// mount stops.
func (m *Mount) pusher() {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case p := <-m.pushQ:
			for _, e := range p.entries {
				m.pushPages(e, p.hash, p.data)
			}
		}
	}
}

// pushPages puts a file's content into the kernel's page cache
// (FUSE_NOTIFY_STORE) when the kernel knows the file, so that reading it
// costs no request at all: a cold read of a tree of small files was one
// READ round trip to the mount per file, which on a loaded machine cost
// several times the reading itself (docs/benchmarks.md, issue 21).
//
// It runs only on the pusher's goroutine, never on one serving a request:
// the store waits for the pages, which a READ of the same file holds until
// its request is answered. A file changed meanwhile (a local write stages
// it, a remote change gives it another hash) must not keep the stored
// pages: the check after the store drops them again, as a remote change
// does (live.go).
func (m *Mount) pushPages(e *entry, h domain.Hash, data []byte) {
	m.mu.Lock()
	n := e.node
	ok := n != nil && e.staged == nil && e.hash == h && e.size == int64(len(data))
	m.mu.Unlock()
	if !ok || n.WriteCache(0, data) != 0 {
		return
	}
	m.mu.Lock()
	changed := e.staged != nil || e.hash != h
	if !changed {
		e.kernelHash = h
	}
	m.mu.Unlock()
	if changed {
		n.NotifyContent(0, 0)
	}
}
