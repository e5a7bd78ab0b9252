package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/workcopy"
)

const runUsage = "run SESSION [--fork] [--count N] [--checkpoint-before NAME] [--dir DIR] [--push-every D] [--secret NAME[=ENV]]... -- COMMAND [ARGS...]"

// exitCode makes strand exit with a code of its own choosing (the run's
// command's), having said what it had to say.
type exitCode int

func (e exitCode) Error() string { return "exit status " + strconv.Itoa(int(e)) }

// cmdRun is strand run: the agent-runner primitive (workcopy.Run).
func (m *Main) cmdRun(ctx context.Context, args []string) error {
	flags, command := args, []string(nil)
	for i, a := range args {
		if a == "--" {
			flags, command = args[:i], args[i+1:]
			break
		}
	}
	var cf cacheFlags
	var o workcopy.RunOptions
	var count int
	var secrets multiFlag
	g, pos, err := m.parseArgs("run", flags, func(fs *flag.FlagSet) {
		fs.Var(&secrets, "secret", "give the command secret NAME (the session's own, else the tenant's) as environment variable ENV (default NAME); repeatable; each read is audited")
		m.declareCache(fs, &cf)
		fs.BoolVar(&o.Fork, "fork", false, "run on a new fork of SESSION, so a failed attempt never touches it")
		fs.IntVar(&count, "count", 1, "with --fork: run this many forks in parallel and print a table of the outcomes")
		fs.StringVar(&o.CheckpointBefore, "checkpoint-before", "", "name of the checkpoint taken before the run (default before-run-<position>)")
		fs.StringVar(&o.Dir, "dir", "", "working copy to use (checked out when empty, pulled when it is one; default: a temporary one)")
		fs.DurationVar(&o.PushEvery, "push-every", 0, "push the changes this often while the command runs")
	})
	if err != nil {
		return err
	}
	if len(pos) != 1 || len(command) == 0 {
		return usagef("usage: strand %s", runUsage)
	}
	if count < 1 || count > 64 {
		return usagef("--count must be between 1 and 64")
	}
	if count > 1 && !o.Fork {
		return usagef("--count needs --fork: parallel runs each work on a fork of their own")
	}
	cache, err := cf.open()
	if err != nil {
		return err
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	o.Session, o.Command, o.Server = pos[0], command, g.server
	if o.Env, err = m.secretEnv(ctx, g, pos[0], secrets); err != nil {
		return err
	}
	o.Stdin, o.Stdout, o.Stderr, o.Log = m.Stdin, m.Stdout, m.Stderr, m.Stderr
	if count == 1 {
		out, err := workcopy.Run(ctx, g.client, cache, o)
		if err != nil {
			return err
		}
		if err := m.printRuns([]workcopy.RunOutcome{out}, g.json); err != nil {
			return err
		}
		if out.ExitCode != 0 {
			return exitCode(out.ExitCode)
		}
		return nil
	}
	return m.runMany(ctx, g, o, count, cache)
}

// runMany runs count forks at once; each command's output lines are
// prefixed with its number. strand exits 0 when every command did, else
// with the first non-zero exit code in run order.
func (m *Main) runMany(ctx context.Context, g *globals, o workcopy.RunOptions, count int, cache *contentcache.Cache) error {
	outs := make([]workcopy.RunOutcome, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range count {
		oi := o
		oi.Tag = strconv.Itoa(i+1) + "/" + strconv.Itoa(count)
		if o.Dir != "" {
			oi.Dir = o.Dir + "-" + strconv.Itoa(i+1)
		}
		prefix := "[" + strconv.Itoa(i+1) + "] "
		stdout := &prefixWriter{w: m.Stdout, prefix: prefix, mu: &mu}
		stderr := &prefixWriter{w: m.Stderr, prefix: prefix, mu: &mu}
		oi.Stdout, oi.Stderr = stdout, stderr
		oi.Log = oi.Stderr
		oi.Stdin = nil
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = workcopy.Run(ctx, g.client, cache, oi)
			if errs[i] != nil {
				outs[i].Error = errs[i].Error()
			}
			stdout.flush()
			stderr.flush()
		}()
	}
	wg.Wait()
	if err := m.printRuns(outs, g.json); err != nil {
		return err
	}
	for i, out := range outs {
		if errs[i] != nil {
			return fmt.Errorf("run %d: %w", i+1, errs[i])
		}
		if out.ExitCode != 0 {
			return exitCode(out.ExitCode)
		}
	}
	return errors.Join(errs...)
}

func (m *Main) printRuns(outs []workcopy.RunOutcome, asJSON bool) error {
	if asJSON {
		if len(outs) == 1 {
			return m.printJSON(outs[0])
		}
		return m.printJSON(outs)
	}
	var rows [][]string
	for i, o := range outs {
		state := "passed"
		switch {
		case o.Error != "":
			state = "error: " + o.Error
		case o.Interrupted:
			state = "interrupted"
		case o.ExitCode != 0:
			state = "failed"
		}
		rows = append(rows, []string{strconv.Itoa(i + 1), o.Session, strconv.FormatUint(o.Position, 10), strconv.Itoa(o.ExitCode),
			(time.Duration(o.DurationMs) * time.Millisecond).String(), strconv.Itoa(o.Changes), state})
	}
	m.table([]string{"RUN", "SESSION", "POSITION", "EXIT", "DURATION", "CHANGES", "RESULT"}, rows)
	return nil
}

// prefixWriter writes each line with a prefix, whole lines at a time, so
// that parallel runs' output does not interleave mid-line.
type prefixWriter struct {
	w      io.Writer
	prefix string
	mu     *sync.Mutex
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		p.mu.Lock()
		_, err := fmt.Fprintf(p.w, "%s%s", p.prefix, p.buf[:i+1])
		p.mu.Unlock()
		p.buf = p.buf[i+1:]
		if err != nil {
			return 0, err
		}
	}
}

// flush writes a last line that had no newline.
func (p *prefixWriter) flush() {
	if len(p.buf) > 0 {
		_, _ = p.Write([]byte("\n"))
	}
}

// secretEnv reads the secrets a run asked for through SESSION (its own,
// else its tenant's) and returns them as ENV=VALUE entries. Values go
// nowhere else: not to the output, not to the health report.
func (m *Main) secretEnv(ctx context.Context, g *globals, session string, specs []string) ([]string, error) {
	var env []string
	for _, spec := range specs {
		name, envName, err := secretSpec(spec)
		if err != nil {
			return nil, err
		}
		r, err := g.client.GetSecret(ctx, client.SecretRequest{Session: sessionOnly(session), Name: name})
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", name, err)
		}
		env = append(env, envName+"="+r.Value)
	}
	return env, nil
}

// secretSpec parses a --secret flag: NAME, or NAME=ENV to name the
// environment variable differently.
func secretSpec(spec string) (name, env string, err error) {
	name, env, ok := strings.Cut(spec, "=")
	if !ok {
		env = name
	}
	if name == "" || env == "" || strings.ContainsAny(env, "=\x00") {
		return "", "", usagef("--secret %q: want NAME or NAME=ENV", spec)
	}
	return name, env, nil
}

func sessionOnly(s string) string {
	id, _ := splitAt(s)
	return id
}
