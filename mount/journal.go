package mount

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/strand-dev/strand/domain"
)

// jop is one local change waiting to be flushed, as the journal records it.
// A write names its staging file, whose content at flush time is what is
// written; the other operations carry everything they need.
type jop struct {
	Op        string `json:"op,omitempty"` // write, chmod, mkdir, remove, rename, symlink, setxattr, rmxattr
	Path      string `json:"path"`
	To        string `json:"to,omitempty"`
	Target    string `json:"target,omitempty"`
	Mode      uint32 `json:"mode,omitempty"`
	Recursive bool   `json:"recursive,omitempty"`
	Name      string `json:"name,omitempty"`
	Value     []byte `json:"value,omitempty"`
	File      string `json:"file,omitempty"`
	// Expect is what the path held on the service when the op was last
	// written down (used when the op is replayed after a crash).
	Expect string `json:"expect,omitempty"`
	// Force sends the op without an expectation: the user chose the local
	// version over a conflicting remote one.
	Force bool `json:"force,omitempty"`
	// Conflict, when set, says why the service refused the change: the op
	// stays in the journal, unflushed, until it is resolved.
	Conflict string `json:"conflict,omitempty"`

	ent *entry // the entry it applies to, while the mount runs
}

// record is one line of the journal file: an op, or (Flushing set) the
// mark that the first Count ops are being flushed under a request id, so
// that a retry after a crash is recognised by the service as the same
// request.
type record struct {
	jop
	Flushing string `json:"flushing,omitempty"`
	Count    int    `json:"count,omitempty"`
}

// journal keeps a mount's unflushed changes on local disk: ops.jsonl, one
// record a line, and files/, the staging files that writes name. Appends
// are written at once, so they survive a crash of the mount process; sync
// makes them durable against a crash of the machine (Flush calls it when
// changes remain that the service refused). A journal belongs to one
// session; a lock file keeps two mounts of it on one machine apart.
type journal struct {
	dir  string
	lock *os.File

	mu  sync.Mutex
	log *os.File
	seq atomic.Uint64

	// spares are empty staging files made ahead of need by a goroutine of
	// their own (startSpares): creating a file costs 0.2-0.5 ms of kernel
	// time on the bench machine's ext4, which a create on the mount would
	// otherwise wait for. A spare left by a crash is named by no op, and
	// the next mount's replay removes it (sweep).
	spares     chan spare
	stopSpares chan struct{}
	sparesDone chan struct{}
	// recycled names staging files given up (discard), emptied, kept to
	// be taken again before any spare: a new file costs an open of one
	// of them instead of a create, and a file given up a rename and a
	// truncate instead of an unlink. Without a journal, ext4 skips every
	// inode freed in the last minute or more on each create, scanning past
	// them: 1,000 creates took 244 ms there after a thousand removals, and
	// 28 ms as renames and truncates of files already there (Python,
	// the bench machine), and the removals slowed every other process's
	// creates on that disk as well.
	recycled chan string
}

// maxRecycled bounds the staging files kept for reuse: a burst of creates
// of content already cached gives back this many after its flush.
const maxRecycled = 1024

// spare is a staging file made ahead of need.
type spare struct {
	id string
	f  *os.File
}

// numSpares is how many staging files are kept ready: a burst of creates
// (an archive extracted, a package installed) takes them while the
// goroutine makes more.
const numSpares = 64

// openJournal opens (making it if need be) the journal in dir for the
// mount on mountDir, and locks it: one read-write mount of a session per
// state folder at a time. The lock file names the mount that holds it,
// for the message a second one gets.
func openJournal(dir, mountDir string) (*journal, error) {
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o700); err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(lock, 4096))
		lock.Close() //nolint:errcheck // failing anyway
		by := "another mount"
		if h := strings.TrimSpace(string(holder)); h != "" {
			by = h
		}
		return nil, domain.Errorf(domain.CodeConflict, "the session is mounted read-write on this machine already (%s; journal %s): unmount it first, "+
			"mount it read-only at a position (SESSION@AT), or give this mount another --state", by, dir)
	}
	// Who holds it: best effort, only for that message.
	if err := lock.Truncate(0); err == nil {
		_, _ = lock.WriteAt(fmt.Appendf(nil, "at %s, process %d\n", mountDir, os.Getpid()), 0)
	}
	log, err := os.OpenFile(filepath.Join(dir, "ops.jsonl"), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		lock.Close() //nolint:errcheck // failing anyway
		return nil, fmt.Errorf("open journal: %w", err)
	}
	j := &journal{dir: dir, lock: lock, log: log}
	entries, _ := os.ReadDir(filepath.Join(dir, "files"))
	for _, e := range entries {
		if n, err := strconv.ParseUint(e.Name(), 10, 64); err == nil && n > j.seq.Load() {
			j.seq.Store(n)
		}
	}
	return j, nil
}

func (j *journal) close() {
	j.endSpares()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.log.Close()  //nolint:errcheck // appends were written already
	j.lock.Close() //nolint:errcheck // releases the lock
}

// load returns the recorded ops, and the request id and count of a flush
// that was under way when the last mount stopped.
func (j *journal) load() (ops []*jop, flushing string, count int, err error) {
	data, err := os.ReadFile(filepath.Join(j.dir, "ops.jsonl"))
	if err != nil {
		return nil, "", 0, fmt.Errorf("read journal: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			break // a torn last line: the append it held never returned
		}
		if r.Flushing != "" {
			flushing, count = r.Flushing, r.Count
			continue
		}
		op := r.jop
		ops = append(ops, &op)
	}
	return ops, flushing, count, nil
}

// append records ops.
func (j *journal) append(ops ...*jop) error {
	var buf bytes.Buffer
	for _, op := range ops {
		b, err := json.Marshal(record{jop: *op})
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.log.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// markFlushing records that the first count ops are being flushed as
// request id.
func (j *journal) markFlushing(id string, count int) error {
	b, _ := json.Marshal(record{Flushing: id, Count: count})
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.log.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// sync makes the appends durable.
func (j *journal) sync() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.log.Sync()
}

// rewrite replaces the journal with ops (what is left after a flush): a new
// file renamed over the old one. It is not fsynced: the journal is what
// survives a crash of the mount process (the page cache keeps it); what
// must survive a crash of the machine is what fsync sent to the service,
// and conflicts, which Flush makes durable with sync.
func (j *journal) rewrite(ops []*jop) error {
	var buf bytes.Buffer
	for _, op := range ops {
		b, err := json.Marshal(record{jop: *op})
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	name := filepath.Join(j.dir, "ops.jsonl")
	tmp := name + ".new"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	log, err := os.OpenFile(name, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	j.log.Close() //nolint:errcheck // replaced
	j.log = log
	return nil
}

// filePath is where staging file id lives.
func (j *journal) filePath(id string) string { return filepath.Join(j.dir, "files", id) }

// newFile returns a new, empty staging file: a recycled one, else a spare
// when one is ready.
func (j *journal) newFile() (string, *os.File, error) {
recycled:
	for {
		select {
		case id := <-j.recycled:
			// One removed meanwhile (a sweep) fails to open: take another.
			if f, err := os.OpenFile(j.filePath(id), os.O_RDWR|os.O_TRUNC, 0); err == nil {
				return id, f, nil
			}
		default:
			break recycled
		}
	}
	select {
	case s := <-j.spares:
		return s.id, s.f, nil
	default:
	}
	return j.createFile()
}

// discard gives up a staging file that no op names any more (closed by
// the caller): kept for reuse under a new id (so that no journal line
// written before can name it), emptied, while fewer than maxRecycled
// wait; removed otherwise.
func (j *journal) discard(id string) {
	if j.recycled == nil || len(j.recycled) >= cap(j.recycled) {
		j.removeFile(id)
		return
	}
	next := strconv.FormatUint(j.seq.Add(1), 10)
	if err := os.Rename(j.filePath(id), j.filePath(next)); err != nil {
		j.removeFile(id)
		return
	}
	if err := os.Truncate(j.filePath(next), 0); err != nil {
		j.removeFile(next)
		return
	}
	select {
	case j.recycled <- next:
	default:
		j.removeFile(next)
	}
}

// startSpares keeps numSpares staging files ready until close. Call it
// after replay (whose sweep would remove them).
func (j *journal) startSpares() {
	j.spares = make(chan spare, numSpares)
	j.recycled = make(chan string, maxRecycled)
	j.stopSpares, j.sparesDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(j.sparesDone)
		for {
			id, f, err := j.createFile()
			if err != nil {
				return // newFile creates its own and reports the error
			}
			select {
			case j.spares <- spare{id, f}:
			case <-j.stopSpares:
				f.Close() //nolint:errcheck // empty, never used
				j.removeFile(id)
				return
			}
		}
	}()
}

// endSpares stops making spares and removes those not taken, and the
// recycled files.
func (j *journal) endSpares() {
	if j.stopSpares == nil {
		return
	}
	close(j.stopSpares)
	<-j.sparesDone
	j.stopSpares = nil
	for {
		select {
		case s := <-j.spares:
			s.f.Close() //nolint:errcheck // empty, never used
			j.removeFile(s.id)
		case id := <-j.recycled:
			j.removeFile(id)
		default:
			return
		}
	}
}

// sweep removes every staging file but those in keep: after a replay, what
// a crashed mount left (spares, files of ops that were flushed).
func (j *journal) sweep(keep map[string]bool) {
	entries, _ := os.ReadDir(filepath.Join(j.dir, "files"))
	for _, e := range entries {
		if !keep[e.Name()] {
			j.removeFile(e.Name())
		}
	}
}

// createFile creates a staging file.
func (j *journal) createFile() (string, *os.File, error) {
	id := strconv.FormatUint(j.seq.Add(1), 10)
	f, err := os.OpenFile(j.filePath(id), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return "", nil, fmt.Errorf("staging file: %w", err)
	}
	return id, f, nil
}

// removeFile removes a staging file no op names any more.
func (j *journal) removeFile(id string) {
	if err := os.Remove(j.filePath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return
	}
}
