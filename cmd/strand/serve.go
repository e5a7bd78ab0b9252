package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/keyring"
	"github.com/strand-dev/strand/streams"
)

type serveConfig struct {
	data       string
	listen     string
	natsURLs   string
	replicas   int
	noFsync    bool
	logLevel   string
	snapEvery  uint64
	busHistory int
	busMaxAge  time.Duration
	reqWindow  time.Duration
	maxPayload int
}

func (m *Main) runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	var c serveConfig
	fs.StringVar(&c.data, "data", m.env("STRAND_DATA", "./strand-data"), "data folder of the embedded server")
	fs.StringVar(&c.listen, "listen", m.env("STRAND_LISTEN", "127.0.0.1:4222"), "client address of the embedded server")
	fs.StringVar(&c.natsURLs, "nats", m.env("STRAND_NATS", ""), "connect to these NATS servers instead of embedding one (comma-separated)")
	fs.IntVar(&c.replicas, "replicas", 0, "replicas of every stream and bucket (default 1 embedded, 3 with --nats)")
	fs.BoolVar(&c.noFsync, "no-fsync", false, "embedded: do not fsync every write (faster, loses acknowledged writes on a crash)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.Uint64Var(&c.snapEvery, "snapshot-every", 500, "write a snapshot every N events of a session")
	fs.IntVar(&c.busHistory, "bus-history", 100, "messages each bus topic keeps for late subscribers")
	fs.DurationVar(&c.busMaxAge, "bus-max-age", 24*time.Hour, "how long bus messages are kept")
	secretKey := fs.String("secret-key", m.env("STRAND_SECRET_KEY_FILE", ""), "file of the keys that seal secrets (\"ID BASE64\" lines, newest first); STRAND_SECRET_KEY holds the same lines inline; embedded default: DATA/secret.key, made on first start")
	fs.DurationVar(&c.reqWindow, "request-window", streams.DefaultRequestWindow, "how long an applied request id is recognised, so a retry is answered as the first time")
	allowDirImport := fs.Bool("allow-dir-import", false, "let source.import read directories and git repositories by path on this host")
	stateMemory := fs.String("state-memory", fmt.Sprintf("%dM", streams.DefaultStateMemory>>20), "live heap above which the session-state caches drop their least recently used states (bytes, or with K, M, G)")
	stateIdle := fs.Duration("state-idle", streams.DefaultStateIdle, "drop a cached session state (head, past state, frames) unused this long (0: keep it until --state-memory needs the room)")
	memLimit := fs.String("memory-limit", "auto", "soft memory limit of the Go runtime: the collector runs sooner as the process nears it (\"auto\": twice --state-memory; \"off\": none; or bytes, or with K, M, G); GOMEMLIMIT in the environment wins")
	pprofAddr := fs.String("pprof", "", "serve the Go runtime's profiles (/debug/pprof/) on this address, apart from the HTTP front (\"\": off)")
	var wf workerFlags
	wf.declareServe(fs)
	var sec securityFlags
	sec.declare(fs, m)
	var hf httpFlags
	hf.declare(fs, m)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("serve takes no arguments")
	}
	if err := sec.check(m, c.natsURLs != ""); err != nil {
		return err
	}
	stateBytes, err := parseSize(*stateMemory)
	if err != nil {
		return usagef("--state-memory: %v", err)
	}
	if *stateIdle < 0 {
		return usagef("--state-idle: %s is negative (0 turns it off)", *stateIdle)
	}
	limitBytes, setLimit, err := memoryLimit(*memLimit, stateBytes)
	if err != nil {
		return usagef("--memory-limit: %v", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return usagef("--log-level: %v", err)
	}
	log := slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: level}))
	limit, limitFrom, restoreLimit := setMemoryLimit(limitBytes, setLimit)
	defer restoreLimit()
	log.Info("memory", "state_memory", formatBytes(stateBytes), "memory_limit", formatBytes(limit), "memory_limit_from", limitFrom)
	if *pprofAddr != "" {
		addr, stop, err := startPprof(*pprofAddr, log)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(m.Stdout, "strand: profiles on http://%s/debug/pprof/\n", addr)
	}

	var nc *nats.Conn
	var emb *streams.Embedded
	url := c.natsURLs
	if c.natsURLs == "" {
		if c.replicas == 0 {
			c.replicas = 1
		}
		dir, err := filepath.Abs(c.data)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("data folder: %w", err)
		}
		emb, err = streams.StartEmbedded(streams.EmbeddedOptions{DataDir: dir, Listen: c.listen, SyncAlways: !c.noFsync, ConfigFile: sec.config})
		if err != nil {
			return err
		}
		defer emb.Shutdown()
		url = emb.ClientURL()
		if nc, err = emb.Connect(); err != nil {
			return fmt.Errorf("connect to embedded server: %w", err)
		}
	} else {
		if c.replicas == 0 {
			c.replicas = 3
		}
		nc, err = nats.Connect(c.natsURLs, append([]nats.Option{nats.Name("strand-serve"), nats.MaxReconnects(-1),
			nats.ReconnectWait(250 * time.Millisecond)}, sec.natsOptions()...)...)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", redactURLs(c.natsURLs), err)
		}
	}
	defer nc.Close()

	startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cfg := streams.Config{Replicas: c.replicas, SnapshotEvery: c.snapEvery, BusHistory: c.busHistory, BusMaxAge: c.busMaxAge, RequestWindow: c.reqWindow, StateMemory: uint64(stateBytes), StateIdle: *stateIdle}
	if *stateIdle == 0 {
		cfg.StateIdle = -1 // off
	}
	if emb != nil && !c.noFsync {
		// Many writers at once share fsyncs through atomic batches.
		cfg.GroupCommitMin = streams.DefaultGroupCommitMin
	}
	store, err := streams.Open(startCtx, nc, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	workerNames, err := wf.list()
	if err != nil {
		return err
	}
	// Projections (cmd/strand/projections.go) and built-in workers
	// (worker.go) run beside the service in every instance, sharing their
	// consumers with the other instances.
	models, err := openReadModels(startCtx, store.JetStream(), c.replicas, c.replicas > 1 || cfg.GroupCommitMin > 0, log)
	if err != nil {
		return err
	}
	if err := models.Start(startCtx); err != nil {
		return err
	}
	defer models.Stop()
	views := models.Views
	ring, err := m.secretRing(*secretKey, c.data, emb != nil)
	if err != nil {
		return err
	}
	if ring == nil {
		log.Warn("no secret key: secret endpoints answer unavailable (give --secret-key or STRAND_SECRET_KEY)")
	}
	svcOpts := handlers.Options{Log: log, AllowDirImport: *allowDirImport, Secrets: ring}
	models.options(&svcOpts)
	svcOpts.Usage = usageAdapter{js: store.JetStream(), views: models.Views, stats: models.Stats, snapshots: store.SnapshotBytes}
	if err := sec.apply(&svcOpts, emb, views); err != nil {
		return err
	}
	log.Info("security", "identity_from_nats", svcOpts.Auth.Enabled, "limits", svcOpts.Limits != nil)
	// Design record 0021: direct gets where the event stream has one copy.
	log.Info("reads at the head", "direct_get", store.DirectReads())
	background, err := startWorkers(startCtx, nc, store, c.replicas, workerNames, wf, views.Tenants, log)
	if err != nil {
		return err
	}
	defer background.stop()
	svc := handlers.NewService(store, svcOpts)
	if err := svc.Start(nc); err != nil {
		return err
	}
	// The endpoints' subscriptions reach the server asynchronously; a round
	// trip makes sure they are in place before we say that we serve, or a
	// client that acts on "serving on" may find no responders.
	if err := nc.FlushTimeout(30 * time.Second); err != nil {
		return fmt.Errorf("register endpoints: %w", err)
	}
	var front *httpServer
	if hf.addr != "" {
		o := hf.options(url, log)
		// With accounts, anonymous requests would be refused by NATS
		// anyway; refusing them first answers 401 without a connect.
		o.RequireAuth = o.RequireAuth || (emb != nil && emb.HasAccounts()) || svcOpts.Auth.Enabled
		reg, err := deploymentMetrics(store.JetStream(), viewsAdapter{models}.ProjectionStatus, log)
		if err != nil {
			return err
		}
		if err := registerCacheMetrics(reg, store.CacheStats); err != nil {
			return err
		}
		if err := registerAppendMetrics(reg, store.AppendStats); err != nil {
			return err
		}
		if err := registerBlobBatchMetrics(reg, store.Blobs.BatchStats); err != nil {
			return err
		}
		o.Registry, o.Gatherer = reg, reg
		if front, err = startFront(hf.addr, o, log); err != nil {
			return err
		}
		defer front.stop()
		fmt.Fprintf(m.Stdout, "strand: HTTP on %s\n", front.URL())
		if m.ReadyHTTP != nil {
			m.ReadyHTTP(front.URL())
		}
	}
	where := redactURLs(strings.TrimSpace(url))
	if emb != nil {
		fmt.Fprintf(m.Stdout, "strand: serving on %s (embedded nats-server, data %s, fsync %v)\n", where, c.data, !c.noFsync)
	} else {
		fmt.Fprintf(m.Stdout, "strand: serving on %s (%d replicas)\n", where, c.replicas)
	}
	if m.Ready != nil {
		m.Ready(url)
	}
	<-ctx.Done()
	log.Info("shutting down")
	if front != nil {
		front.stop()
	}
	background.stop()
	if err := svc.Stop(); err != nil {
		log.Warn("stop service", "err", err)
	}
	return nil
}

// secretRing loads the keys that seal secrets: --secret-key, else
// STRAND_SECRET_KEY, else (embedded only) DATA/secret.key, made with a new
// random key and mode 0600 on first start. Nil: no key, secrets off.
func (m *Main) secretRing(file, data string, embedded bool) (*keyring.Ring, error) {
	switch {
	case file != "":
		return keyring.Load(file)
	case m.env("STRAND_SECRET_KEY", "") != "":
		r, err := keyring.Parse(m.env("STRAND_SECRET_KEY", ""))
		if err != nil {
			return nil, fmt.Errorf("STRAND_SECRET_KEY: %w", err)
		}
		return r, nil
	case embedded:
		return keyring.LoadOrCreate(filepath.Join(data, "secret.key"))
	}
	return nil, nil
}
