package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/metrics"
	"github.com/strand-dev/strand/mount"
)

// mountDirs are the cache and state folders of the mount commands.
type mountDirs struct{ cache, state string }

func (m *Main) mountDirFlags(fs *flag.FlagSet, d *mountDirs) {
	fs.StringVar(&d.cache, "cache", defaultCacheDir(), "content cache folder, shared by every mount and working copy on the machine (env "+contentcache.EnvDir+")")
	fs.StringVar(&d.state, "state", m.env("STRAND_STATE", defaultStateDir()), "journals and control sockets of mounts (env STRAND_STATE)")
}

func defaultCacheDir() string {
	d, err := contentcache.DefaultDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "strand-content")
	}
	return d
}

func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "strand")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "strand")
	}
	return filepath.Join(os.TempDir(), "strand-state")
}

// cmdMount mounts a session, or with --status, --flush or --resolve talks
// to a running mount.
func (m *Main) cmdMount(ctx context.Context, args []string) error {
	var dirs mountDirs
	var status, flush, allowOther, debug bool
	var resolve, keep, cacheSize, metricsAddr string
	var interval, ttl time.Duration
	g, pos, err := m.parseArgs("mount", args, func(fs *flag.FlagSet) {
		m.mountDirFlags(fs, &dirs)
		fs.BoolVar(&status, "status", false, "show a running mount's session, position, pending changes, conflicts and cache figures")
		fs.BoolVar(&flush, "flush", false, "flush a running mount's pending changes now")
		fs.StringVar(&resolve, "resolve", "", "settle the conflict on this path of a running mount (with --keep)")
		fs.StringVar(&keep, "keep", "", "with --resolve: local (send the local change again, replacing the remote one) or remote (drop the local change)")
		fs.StringVar(&cacheSize, "cache-size", "2G", "bound of the content cache (bytes, or with K, M, G)")
		fs.DurationVar(&interval, "flush-interval", mount.DefaultFlushInterval, "longest time a change waits before it is flushed")
		fs.DurationVar(&ttl, "ttl", mount.DefaultTTL, "how long the kernel caches attributes and names")
		fs.BoolVar(&allowOther, "allow-other", false, "let other users see the mount, their access checked against the files' modes (user_allow_other in /etc/fuse.conf when not root)")
		fs.BoolVar(&debug, "debug", false, "log every FUSE request")
		fs.StringVar(&metricsAddr, "metrics", "", "serve the mount's Prometheus metrics on this address (a bare port listens on 127.0.0.1)")
	})
	if err != nil {
		return err
	}
	if status || flush || resolve != "" {
		if err := need(pos, 1, "mount --status|--flush|--resolve PATH --keep local|remote DIR"); err != nil {
			return err
		}
		return m.mountControl(ctx, g, dirs, pos[0], status, flush, resolve, keep)
	}
	if err := need(pos, 2, "mount SESSION[@AT] DIR"); err != nil {
		return err
	}
	max, err := parseSize(cacheSize)
	if err != nil {
		return usagef("--cache-size: %v", err)
	}
	id, at := splitAt(pos[0])
	dir, err := filepath.Abs(pos[1])
	if err != nil {
		return err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return &client.Error{Code: domain.CodeInvalidArgument, Message: fmt.Sprintf("mount point %s is not a directory", dir)}
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	cache, err := contentcache.Open(dirs.cache, max)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(m.Stderr, nil))
	mt, err := mount.New(ctx, mount.Options{
		Client: g.client, Session: id, At: string(at), Dir: dir, Cache: cache, StateDir: dirs.state,
		FlushInterval: interval, TTL: ttl, AllowOther: allowOther, Logger: logger, Debug: debug,
	})
	if err != nil {
		return err
	}
	st := mt.Status()
	mode := "read-write, following the head"
	if st.ReadOnly {
		mode = "read-only at " + string(at)
	}
	if metricsAddr != "" {
		stop, err := m.serveLocalMetrics(ctx, "mount", metricsAddr, metrics.NewMountCollector(id, g.client.Tenant, mountFigures(mt)))
		if err != nil {
			_ = mt.Close()
			return err
		}
		defer stop()
	}
	fmt.Fprintf(m.Stdout, "mounted %s at %s (position %d, %s); strand unmount %s to stop\n", id, dir, st.Position, mode, dir)
	return mt.Serve(ctx)
}

func (m *Main) mountControl(ctx context.Context, g *globals, dirs mountDirs, dir string, status, flush bool, resolve, keep string) error {
	c, err := mount.Dial(dirs.state, dir)
	if err != nil {
		return &client.Error{Code: domain.CodeNotFound, Message: fmt.Sprintf("%s: %v", dir, err)}
	}
	switch {
	case resolve != "":
		n, err := c.Resolve(ctx, strings.TrimPrefix(resolve, "/"), keep)
		if err != nil {
			return &client.Error{Code: domain.CodeInvalidArgument, Message: err.Error()}
		}
		fmt.Fprintf(m.Stdout, "resolved %d change(s) on %s, keeping the %s version\n", n, resolve, keep)
		return nil
	case flush:
		if _, err := c.Flush(ctx); err != nil {
			return &client.Error{Code: domain.CodeUnavailable, Message: err.Error()}
		}
	}
	s, err := c.Status(ctx)
	if err != nil {
		return &client.Error{Code: domain.CodeUnavailable, Message: err.Error()}
	}
	if g.json {
		return m.printJSON(s)
	}
	last := "never"
	if s.LastFlush != nil {
		last = s.LastFlush.Format(time.RFC3339)
	}
	rows := [][]string{
		{"session", s.Session}, {"tenant", s.Tenant}, {"dir", s.Dir}, {"read-only", strconv.FormatBool(s.ReadOnly)},
		{"position", strconv.FormatUint(s.Position, 10)}, {"pending", strconv.Itoa(s.Pending)},
		{"conflicts", strconv.Itoa(len(s.Conflicts))}, {"flushes", strconv.Itoa(s.Flushes)}, {"last flush", last},
		{"cache", fmt.Sprintf("%s: %d of %d bytes; this mount: %d hits, %d misses, %d bytes fetched",
			s.Cache.Dir, s.Cache.Bytes, s.Cache.MaxBytes, s.Cache.Hits, s.Cache.Misses, s.Cache.FetchedBytes)},
	}
	if s.LastError != "" {
		rows = append(rows, []string{"last error", s.LastError})
	}
	for _, c := range s.Conflicts {
		rows = append(rows, []string{"conflict", c.Op + " " + c.Path + ": " + c.Reason})
	}
	m.table([]string{"FIELD", "VALUE"}, rows)
	return nil
}

// cmdUnmount flushes and unmounts a running mount; with no mount process
// left (it crashed) it detaches the mount point, and the journal is sent by
// the next mount of the session.
func (m *Main) cmdUnmount(ctx context.Context, args []string) error {
	var dirs mountDirs
	_, pos, err := m.parseArgs("unmount", args, func(fs *flag.FlagSet) { m.mountDirFlags(fs, &dirs) })
	if err != nil {
		return err
	}
	if err := need(pos, 1, "unmount DIR"); err != nil {
		return err
	}
	c, err := mount.Dial(dirs.state, pos[0])
	if err == nil {
		err = c.Unmount(ctx)
	}
	if err == nil {
		return nil
	}
	if !errors.Is(err, mount.ErrNotMounted) {
		return &client.Error{Code: domain.CodeUnavailable, Message: err.Error()}
	}
	if err := mount.ForceUnmount(pos[0]); err != nil {
		return &client.Error{Code: domain.CodeNotFound, Message: err.Error()}
	}
	fmt.Fprintf(m.Stderr, "strand: no mount process answered; %s detached (its journal is replayed by the next mount of the session)\n", pos[0])
	return nil
}

// parseSize reads a byte count such as 512M or 4G.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive size", s)
	}
	return n * mult, nil
}
