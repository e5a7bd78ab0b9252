package mount

import (
	"context"
	"math"
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

// prefetchJob is the small files of one directory, readable at one
// position, that the cache may not hold.
type prefetchJob struct {
	position uint64
	files    []client.FileRef
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
	j.files = append(j.files, client.FileRef{Path: c.src.path, Hash: c.hash.String(), Size: c.size})
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

// dirJob is the job of a directory's small files readable at pos.
// Guarded by mu.
func (m *Mount) dirJob(dir *entry, pos uint64) *prefetchJob {
	var budget int64 = math.MaxInt64
	for _, j := range m.dirJobs(dir, &budget) {
		if j.position == pos {
			return j
		}
	}
	return nil
}

// dirJobs lists a directory's small files, by the position they are
// readable at. Guarded by mu.
func (m *Mount) dirJobs(dir *entry, budget *int64) []*prefetchJob {
	jobs := map[uint64]*prefetchJob{}
	for _, c := range dir.children {
		if !prefetchable(c) {
			continue
		}
		j := jobs[c.src.position]
		if j == nil {
			j = &prefetchJob{position: c.src.position}
			jobs[c.src.position] = j
		}
		j.files = append(j.files, client.FileRef{Path: c.src.path, Hash: c.hash.String(), Size: c.size})
		*budget -= c.size
	}
	out := make([]*prefetchJob, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, j)
	}
	return out
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
