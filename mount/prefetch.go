package mount

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// prefetchMax is the largest file a directory's prefetch brings along.
const prefetchMax = 256 << 10

// prefetchWorkers is how many directories are prefetched at once, each in
// one or a few fs.read_batch requests.
const prefetchWorkers = 4

// prefetchJob is the small files of one directory, readable at one
// position, that the cache may not hold.
type prefetchJob struct {
	position uint64
	files    []client.FileRef
}

// missed is called when a read finds its content neither in the cache
// nor being fetched: tools that read one file of a tree (tar, grep, a
// build) tend to read the rest. The small files of the file's directory
// are fetched at once, together (the read waits for them); the rest of
// the tree is queued for fetching in the background, every directory in
// name order (the order in which tools walk a tree), once per position of
// the view and up to half of the cache's bound. The jobs run
// prefetchWorkers at a time; a read of a file being fetched waits for it
// rather than fetching it again. A full queue drops jobs (their files are
// fetched when read). Listing a directory or stat'ing files fetches
// nothing.
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
	budget := m.cache.cc.MaxBytes() / 2
	if m.treePrefetched == m.position+1 {
		return
	}
	m.treePrefetched = m.position + 1 // +1: position 0 (an empty session) counts too
	var walk func(d *entry)
	walk = func(d *entry) {
		if budget <= 0 {
			return
		}
		m.prefetchDir(d, &budget)
		for _, name := range d.sortedNames() {
			if c := d.children[name]; c.kind == kindDir {
				walk(c)
			}
		}
	}
	walk(m.root)
}

// prefetchDir queues a directory's small files, once per position of the
// view. Guarded by mu.
func (m *Mount) prefetchDir(dir *entry, budget *int64) {
	if dir == nil || dir.prefetched == m.position+1 || *budget <= 0 {
		return
	}
	dir.prefetched = m.position + 1
	for _, j := range m.dirJobs(dir, budget) {
		select {
		case m.prefetchQ <- j:
		default:
			return
		}
	}
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
		if c.kind != kindFile || c.staged != nil || c.size > prefetchMax || c.src.path == "" || c.hash.IsZero() {
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
