package mount

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/oklog/ulid/v2"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/domain"
)

// Defaults of Options.
const (
	DefaultFlushInterval = time.Second
	// DefaultTTL is long: a remote change invalidates what it touches in
	// the kernel at once (live.go), and local changes pass through it.
	DefaultTTL = time.Hour
	// ImmutableTTL is the least TTL of a read-only mount at a position,
	// whose tree never changes.
	ImmutableTTL = 24 * time.Hour
)

// Options configure a mount.
type Options struct {
	// Client reaches the service; its Actor is the identity recorded on
	// every event the mount stores.
	Client *client.Client
	// Session is the session's id; At, when set, mounts it read-only as it
	// was at that point (a position or a checkpoint name).
	Session string
	At      string
	// Dir is the mount point, an existing empty directory.
	Dir string
	// Cache is the machine's content cache, shared by every mount and
	// working copy on it.
	Cache *contentcache.Cache
	// StateDir holds the journals of the sessions mounted from this machine
	// and the control sockets of running mounts.
	StateDir string
	// FlushInterval bounds how long a change waits before it is flushed.
	FlushInterval time.Duration
	// TTL is how long the kernel may cache attributes and names (at least
	// ImmutableTTL for a read-only mount).
	TTL time.Duration
	// AllowOther lets other users see the mount (needs user_allow_other in
	// /etc/fuse.conf when not root), with the kernel checking their
	// permissions (default_permissions) against the files' modes; every
	// file shows as the mounting user's.
	AllowOther bool
	// Logger receives conflicts, flush failures and other events.
	Logger *slog.Logger
	// Debug logs every FUSE request.
	Debug bool
	// KeepOpens keeps the kernel sending OPEN, FLUSH and RELEASE for every
	// file (each open and close a round trip) instead of switching to
	// FUSE's no-open mode at the first read-only open (noopen.go), and
	// OPENDIR and RELEASEDIR for every directory instead of switching to
	// no-opendir mode at the first (dirs.go).
	KeepOpens bool
}

// Mount is a mounted session.
type Mount struct {
	opts    Options
	client  *client.Client
	session string
	cache   *blobs
	log     *slog.Logger
	ro      bool
	ttl     time.Duration // of the kernel's caches of attributes and names
	id      string        // prefix of the request ids of this mount's flushes
	uid     uint32
	gid     uint32
	// noOpen: the kernel sends no OPEN, and no RELEASE of any handle,
	// since an open was answered ENOSYS (noopen.go).
	noOpen atomic.Bool

	server     *fuse.Server
	serverDone chan struct{} // closed once the file system is unmounted
	journal    *journal
	ctl        *control

	// mu guards the tree, the pending ops and the figures below it. It is
	// never held while calling into the kernel (notifications) or the
	// service. Lock order: flushMu, then mu, then a staged file's mu.
	mu        sync.Mutex
	root      *entry
	nextIno   uint64
	pending   []*jop             // recorded, not yet flushed
	inflight  []*jop             // being flushed
	conflicts []*jop             // refused by the service; kept until resolved
	replayed  map[string]*staged // staging files of ops replayed from the journal
	position  uint64             // the session's position the view reflects
	flushes   int
	lastFlush time.Time
	lastErr   string

	// chunkStates keeps the hashing states of large files whose staging
	// file went back into the cache, by content: staged again, the file's
	// next snapshot starts from them (staged.take).
	chunkStates *lru.Cache[domain.Hash, chunkStates]
	// hashedBytes counts the bytes of staging files that flushes hashed.
	hashedBytes atomic.Int64

	// prefetchQ holds directories whose small files are to be fetched in
	// the background (prefetch.go).
	prefetchQ chan *prefetchJob
	// pushQ holds fetched contents to put into the kernel's page cache
	// (prefetch.go).
	pushQ chan push
	// treePrefetched is 1 + the position at which the whole tree was
	// last queued for a prefetch (guarded by mu).
	treePrefetched uint64

	settleMu sync.Mutex
	settle   *time.Timer // kicks a flush once writes pause (noopen.go)

	// afterSnapshot, when set (by tests), is called between a flush's
	// snapshot of a file and its uploads, unless the flush holds the file.
	afterSnapshot func(*staged)
	// afterManifest, when set (by tests), is called between syncRemote's
	// read of the head's tree and its use.
	afterManifest func()

	flushMu  sync.Mutex
	kick     chan struct{}
	refresh  chan uint64
	resync   bool // a remote change passed over a file open here: read the head again once it is closed
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	done     chan struct{}
	stopped  sync.Once
	finished sync.Once
	closeErr error
}

// New mounts a session on opts.Dir. A read-write mount first replays the
// journal a previous mount of the same session on this machine left.
func New(ctx context.Context, opts Options) (*Mount, error) {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := &Mount{
		opts: opts, client: opts.Client, session: opts.Session, log: opts.Logger,
		ro: opts.At != "", id: "mount-" + ulid.Make().String(), nextIno: 1,
		uid: uint32(os.Getuid()), gid: uint32(os.Getgid()),
		ttl: opts.TTL, prefetchQ: make(chan *prefetchJob, 4096), pushQ: make(chan push, 1<<14),
		kick: make(chan struct{}, 1), replayed: map[string]*staged{}, chunkStates: newChunkStates(), refresh: make(chan uint64, 1), done: make(chan struct{}),
	}
	if m.ro && m.ttl < ImmutableTTL {
		m.ttl = ImmutableTTL
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if opts.Cache == nil {
		return nil, errors.New("mount: no content cache")
	}
	b, err := newBlobs(opts.Cache, tmpDir(opts.StateDir))
	if err != nil {
		return nil, err
	}
	m.cache = b
	if err := m.start(ctx); err != nil {
		m.cancel()
		m.wg.Wait()
		m.cache.close()
		if m.journal != nil {
			m.journal.close()
		}
		return nil, err
	}
	return m, nil
}

func (m *Mount) start(ctx context.Context) error {
	if !m.ro {
		j, err := openJournal(filepath.Join(m.opts.StateDir, "journal", m.client.Tenant, m.session), m.opts.Dir)
		if err != nil {
			return err
		}
		m.journal = j
		if err := m.replay(ctx); err != nil {
			return err
		}
		j.startSpares()
	}
	if err := m.load(ctx); err != nil {
		return err
	}
	if !m.ro {
		m.showConflicts()
	}
	if err := m.fuseMount(); err != nil {
		return err
	}
	ctl, err := startControl(m)
	if err != nil {
		_ = m.server.Unmount()
		return err
	}
	m.ctl = ctl
	m.wg.Add(prefetchWorkers + 1)
	for i := 0; i < prefetchWorkers; i++ {
		go m.prefetcher()
	}
	go m.pusher()
	if !m.ro {
		m.wg.Add(3)
		go m.flusher()
		go m.watcher()
		go m.refresher()
	}
	return nil
}

func (m *Mount) fuseMount() error {
	ttl := m.ttl
	root := &node{m: m, e: m.root}
	m.root.node = root
	mo := fuse.MountOptions{
		FsName: "strand:" + m.session, Name: "strand", DirectMount: os.Geteuid() == 0,
		AllowOther: m.opts.AllowOther, Debug: m.opts.Debug, MaxWrite: 1 << 20,
		DisableXAttrs: false, ExplicitDataCacheControl: true,
		// The mount clears set-ID bits and capabilities itself
		// (killpriv.go), which spares a round trip on every write.
		ExtraCapabilities: fuse.CAP_HANDLE_KILLPRIV_V2,
		// Reads answer with bytes in memory (a file's content is read
		// from the cache by the mount): go-fuse would first try to
		// splice each reply through a pipe it then drains, three wasted
		// system calls a read.
		DisableSplice: true,
	}
	if m.ro {
		mo.Options = append(mo.Options, "ro")
	}
	if m.opts.AllowOther {
		// Other users meet the modes as on a local disk: the kernel checks
		// them (the mount itself checks none). Without --allow-other only
		// the mounting user gets in, and owns every file.
		mo.Options = append(mo.Options, "default_permissions")
	}
	fopts := &fs.Options{
		MountOptions: mo, EntryTimeout: &ttl, AttrTimeout: &ttl, NegativeTimeout: &ttl,
		UID: m.uid, GID: m.gid,
		// The modes are the session's, 0000 included (go-fuse would
		// show 0644 or 0755 for it).
		NullPermissions: true,
	}
	// Directories are listed without OPENDIR (dirs.go), as files are
	// read without OPEN (noopen.go), unless KeepOpens.
	raw := &privFS{newDirsFS(fs.NewNodeFS(root, fopts), !m.opts.KeepOpens)}
	srv, err := fuse.NewServer(raw, m.opts.Dir, &fopts.MountOptions)
	if err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.session, m.opts.Dir, err)
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.session, m.opts.Dir, err)
	}
	m.server = srv
	m.serverDone = make(chan struct{})
	go func() {
		srv.Wait()
		close(m.serverDone)
	}()
	return nil
}

// load reads the session's tree (at the mount's point) into the view.
func (m *Mount) load(ctx context.Context) error {
	sess, err := m.client.GetSession(ctx, m.session, client.At(m.opts.At))
	if err != nil {
		return fmt.Errorf("mount %s: %w", m.session, err)
	}
	at := client.AtPosition(sess.Session.Position)
	entries, pos, err := m.manifest(ctx, at)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.root = &entry{kind: kindDir, mode: 0o755, ino: 1, mtime: sess.Session.UpdatedAt, children: map[string]*entry{}}
	m.position = pos
	for _, v := range entries {
		if err := m.addRemote(v, pos, sess.Session.UpdatedAt); err != nil {
			return err
		}
	}
	return nil
}

// showConflicts puts the local version of each file a conflict kept (a
// write the service refused, its staging file still in the journal) into
// the tree just loaded: the file shows the local version until the
// conflict is settled, after a restart of the mount as before it. A
// conflict whose folder is gone, or whose path is a folder now, shows in
// --status only.
func (m *Mount) showConflicts() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, op := range m.conflicts {
		if op.Op != "write" || op.File == "" {
			continue
		}
		dir, name := splitPath(op.Path)
		parent := lookupPath(m.root, dir)
		if parent == nil || parent.kind != kindDir {
			continue
		}
		e := parent.children[name]
		if e != nil && (e.kind != kindFile || e.staged != nil) {
			continue
		}
		f, err := os.OpenFile(m.journal.filePath(op.File), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close() //nolint:errcheck // unused
			continue
		}
		if e == nil {
			mode := op.Mode & 0o7777
			if mode == 0 {
				mode = 0o644
			}
			e = &entry{kind: kindFile, mode: mode, ino: m.newIno()}
			attach(parent, name, e)
		}
		e.staged = &staged{id: op.File, f: f, all: true}
		e.size, e.mtime = fi.Size(), fi.ModTime()
		// The content the local change was made against, as before the
		// restart: a later local write expects it too, and so conflicts
		// as well rather than replace the remote version unseen.
		e.hash = domain.Hash{}
		if h, err := domain.ParseHash(op.Expect); err == nil {
			e.hash = h
		}
		op.ent = e
	}
}

// manifest lists the whole tree at a point.
func (m *Mount) manifest(ctx context.Context, at client.At) ([]client.EntryView, uint64, error) {
	var out []client.EntryView
	req := client.ManifestRequest{Session: m.session, At: at, Limit: client.MaxManifestLimit, Xattrs: true}
	for {
		page, err := m.client.Manifest(ctx, req)
		if err != nil {
			return nil, 0, fmt.Errorf("list %s: %w", m.session, err)
		}
		out = append(out, page.Entries...)
		if page.NextCursor == "" {
			return out, page.Position, nil
		}
		req.After, req.At = page.NextCursor, client.AtPosition(page.Position)
	}
}

// addRemote adds an entry of the service's tree (parents come first in a
// manifest). Guarded by mu.
func (m *Mount) addRemote(v client.EntryView, pos uint64, at time.Time) error {
	e, err := m.entryOf(v, pos, at)
	if err != nil {
		return err
	}
	dir, name := splitPath(v.Path)
	parent := lookupPath(m.root, dir)
	if parent == nil || parent.kind != kindDir {
		return fmt.Errorf("manifest of %s: %q comes before its directory", m.session, v.Path)
	}
	attach(parent, name, e)
	return nil
}

func (m *Mount) entryOf(v client.EntryView, pos uint64, at time.Time) (*entry, error) {
	k, ok := kindOf(v.Kind)
	if !ok {
		return nil, fmt.Errorf("manifest of %s: %q has unknown kind %q", m.session, v.Path, v.Kind)
	}
	e := &entry{kind: k, mode: v.Mode & 0o7777, target: v.Target, xattrs: v.Xattrs, mtime: at, ino: m.newIno(),
		src: source{path: v.Path, position: pos}}
	if k == kindDir {
		e.children = map[string]*entry{}
	}
	if k == kindFile {
		h, err := domain.ParseHash(v.Hash)
		if err != nil {
			return nil, fmt.Errorf("manifest of %s: %q: %w", m.session, v.Path, err)
		}
		e.hash, e.size, e.stored = h, v.Size, e.mode
	}
	return e, nil
}

// newIno returns a fresh inode number. Guarded by mu.
func (m *Mount) newIno() uint64 {
	m.nextIno++
	return m.nextIno
}

// Wait blocks until the file system is unmounted and the mount has stopped.
func (m *Mount) Wait() { <-m.done }

// Close flushes what is pending, unmounts and stops. A change the service
// refuses stays in the journal for the next mount.
func (m *Mount) Close() error {
	err := m.shutdown()
	m.finish()
	return err
}

// shutdown flushes, unmounts and stops the background work; finish then
// closes the control socket and lets Wait return. They are apart so that
// the control socket can answer an unmount request in between.
func (m *Mount) shutdown() error {
	m.stopped.Do(func() {
		if !m.ro {
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			m.closeErr = m.Flush(fctx)
			cancel()
		}
		if err := m.unmount(); err != nil && m.closeErr == nil {
			m.closeErr = err
		}
		m.cancel()
		m.wg.Wait()
		if !m.ro {
			// What the kernel handed over until the unmount is in the
			// journal now; send it.
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			if err := m.Flush(fctx); err != nil && m.closeErr == nil {
				m.closeErr = err
			}
			cancel()
			m.journal.close()
		}
		m.cache.close()
	})
	return m.closeErr
}

func (m *Mount) finish() {
	m.finished.Do(func() {
		if m.ctl != nil {
			m.ctl.close()
		}
		close(m.done)
	})
}

func (m *Mount) unmount() error {
	var err error
	for i := 0; i < 50; i++ {
		select {
		case <-m.serverDone:
			return nil // unmounted from outside already
		default:
		}
		if err = m.server.Unmount(); err == nil {
			<-m.serverDone
			return nil
		}
		// Busy: a process holds a file open. Retry for a while.
		select {
		case <-m.serverDone:
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("unmount %s: %w", m.opts.Dir, err)
}

// Serve runs until the file system is unmounted (strand unmount, umount,
// fusermount3 -u) or ctx ends, then closes the mount.
func (m *Mount) Serve(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-m.serverDone:
	case <-m.done:
		return m.closeErr
	}
	err := m.Close()
	return err
}

// Status is what `strand mount --status` shows.
type Status struct {
	Session   string     `json:"session"`
	Tenant    string     `json:"tenant"`
	Dir       string     `json:"dir"`
	At        string     `json:"at,omitempty"`
	ReadOnly  bool       `json:"read_only"`
	Position  uint64     `json:"position"`
	Pending   int        `json:"pending"`
	Conflicts []Conflict `json:"conflicts,omitempty"`
	Flushes   int        `json:"flushes"`
	LastFlush *time.Time `json:"last_flush,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	Cache     CacheStats `json:"cache"`
	PID       int        `json:"pid"`
}

// Conflict is a local change the service refused because the path changed
// meanwhile.
type Conflict struct {
	Op     string `json:"op"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Status returns the mount's figures.
func (m *Mount) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{Session: m.session, Tenant: m.client.Tenant, Dir: m.opts.Dir, At: m.opts.At, ReadOnly: m.ro,
		Position: m.position, Pending: len(m.pending) + len(m.inflight), Flushes: m.flushes, LastError: m.lastErr,
		Cache: m.cache.stats(), PID: os.Getpid()}
	if !m.lastFlush.IsZero() {
		t := m.lastFlush
		s.LastFlush = &t
	}
	for _, c := range m.conflicts {
		s.Conflicts = append(s.Conflicts, Conflict{Op: c.Op, Path: c.Path, Reason: c.Conflict})
	}
	return s
}

// fetcher returns how to read an entry's content from the service.
func (m *Mount) fetcher(src source, size int64) func(w io.Writer) error {
	return func(w io.Writer) error {
		ctx, cancel := context.WithTimeout(m.ctx, 10*time.Minute)
		defer cancel()
		at := client.AtPosition(src.position)
		for off := int64(0); ; {
			r, err := m.client.Read(ctx, client.ReadRequest{Session: m.session, Path: src.path, At: at, Offset: off})
			if err != nil {
				return err
			}
			if _, err := w.Write(r.Content); err != nil {
				return err
			}
			off += int64(len(r.Content))
			if r.EOF || off >= r.Size {
				return nil
			}
			if len(r.Content) == 0 {
				return fmt.Errorf("read %s: no progress at offset %d", src.path, off)
			}
		}
	}
}

// socketPath is where the control socket of a mount on dir listens: in the
// state folder, or, when that path is too long for a unix socket (108
// bytes), in a folder of the user's own under the temporary folder.
func socketPath(stateDir, dir string) string {
	sum := sha256.Sum256([]byte(stateDir + "\x00" + dir))
	name := hex.EncodeToString(sum[:8]) + ".sock"
	if p := filepath.Join(stateDir, "mounts", name); len(p) < 100 {
		return p
	}
	return filepath.Join(os.TempDir(), "strand-mounts-"+strconv.Itoa(os.Getuid()), name)
}

func (m *Mount) requestID() string {
	m.flushes++
	return m.id + "-" + strconv.Itoa(m.flushes)
}

var errReadOnly = errors.New("read-only mount")
