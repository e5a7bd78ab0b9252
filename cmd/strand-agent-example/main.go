// Command strand-agent-example is an agent worker built on the same worker
// runtime as Strand's built-in workers, and nothing else an outside program
// could not use: it pulls tasks from strand.work.<tenant>.tasks and, with
// the code of strand run, forks the task's baseline session, checks the
// fork out into a temporary working copy, runs the task's command there,
// pushes what it changed as one event and records the exit code as the
// fork's health; then it checkpoints, asks reviewers for approval to
// commit, waits for their decision, and commits when they grant it. A
// command that fails ends the task with the failed attempt kept in its fork.
//
// Tasks name commands to run on this machine: the task queue must be
// writable only by whoever may run commands here.
//
//	strand-agent-example [--server URL] [--tenant T] [--actor NAME] [--concurrency N]
//
// A task (publish it with any NATS client, e.g. the nats CLI):
//
//	nats pub strand.work.default.tasks '{"id":"t1","baseline":"<session>",
//	  "command":["sh","-c","echo hello > README.md && go test ./..."],"message":"add a README"}'
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/workers"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil, nil)
	stop()
	os.Exit(code)
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// TaskSubject is where the agent takes its tasks from.
func TaskSubject(tenant string) string { return names.WorkSubject(tenant, "tasks") }

// run runs the agent until ctx ends. done, when set, hears every outcome;
// ready, when set, is called once the agent pulls tasks.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, done func(Outcome), ready func()) int {
	fs := flag.NewFlagSet("strand-agent-example", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", env("STRAND_SERVER", "nats://127.0.0.1:4222"), "NATS server URL(s)")
	tenant := fs.String("tenant", env("STRAND_TENANT", "default"), "tenant")
	actor := fs.String("actor", env("STRAND_ACTOR", "agent-example"), "who the agent acts as")
	concurrency := fs.Int("concurrency", 2, "tasks worked on at once")
	poll := fs.Duration("poll", time.Second, "how often to look at a request while waiting for its decision")
	cacheFlag := fs.String("cache", env(contentcache.EnvDir, ""), "content cache folder (default ~/.cache/strand/content)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	nc, err := nats.Connect(*server, nats.Name("strand-agent-example"), nats.MaxReconnects(-1))
	if err != nil {
		fmt.Fprintf(stderr, "strand-agent-example: connect to %s: %v\n", *server, err)
		return 1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintf(stderr, "strand-agent-example: %v\n", err)
		return 1
	}
	c := client.NewClient(nc, *tenant)
	c.Actor = *actor
	cacheDir := *cacheFlag
	if cacheDir == "" {
		if cacheDir, err = contentcache.DefaultDir(); err != nil {
			fmt.Fprintf(stderr, "strand-agent-example: %v\n", err)
			return 1
		}
	}
	cache, err := contentcache.Open(cacheDir, 0)
	if err != nil {
		fmt.Fprintf(stderr, "strand-agent-example: %v\n", err)
		return 1
	}
	a := &Agent{Client: c, Cache: cache, Server: *server, Poll: *poll, Log: log, Done: done}
	w, err := workers.Start(ctx, js, workers.Config{
		Name: "tasks_" + *tenant, Stream: names.WorkStream, Filter: TaskSubject(*tenant),
		Concurrency: *concurrency, MaxDeliver: 5, Log: log,
	}, a.Handle)
	if err != nil {
		fmt.Fprintf(stderr, "strand-agent-example: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "strand-agent-example: taking tasks from %s as %s\n", TaskSubject(*tenant), *actor)
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	w.Stop()
	return 0
}
