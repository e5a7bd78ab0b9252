package workcopy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/domain"
)

// RunOptions describe one run of a command on a session.
type RunOptions struct {
	// Session is the session to work on (with Fork: to fork).
	Session string
	// Fork runs on a new fork of Session, so a failed attempt never
	// touches it.
	Fork bool
	// CheckpointBefore names the checkpoint taken before the command runs
	// (default "run-<unix time>").
	CheckpointBefore string
	// Dir is the working copy: checked out there when empty or missing,
	// pulled when it already is a working copy of the session. Empty: a
	// temporary directory, removed once its changes are pushed.
	Dir string
	// PushEvery, when positive, pushes the changes every so often while
	// the command runs, so that watchers see progress.
	PushEvery time.Duration
	// Command and its arguments.
	Command []string
	// Env is added to the command's environment (after os.Environ and the
	// STRAND_SESSION, STRAND_SERVER and STRAND_TENANT the run sets).
	Env []string
	// Server is the NATS URL the command sees as STRAND_SERVER.
	Server string
	// Stdin, Stdout and Stderr are the command's (nil: nothing). Log hears
	// what the run itself does (nil: nothing).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Log            io.Writer
	// Grace is how long an interrupted command has to exit after SIGINT
	// before it is killed (default 10 s).
	Grace time.Duration
	// Tag, when set, is added to a fork's tags as run=Tag.
	Tag string
	// ForkAt is the point of Session to fork (default: its head).
	ForkAt client.At
	// ForkRequestID, when set, makes the fork idempotent: a run made again
	// with the same id (a work item delivered twice) works on the same fork.
	ForkRequestID string
}

// RunOutcome is what a run did. It is also the health report's details.
type RunOutcome struct {
	Session string `json:"session"`
	// Parent is the forked session (with Fork).
	Parent     string   `json:"parent,omitempty"`
	Dir        string   `json:"dir,omitempty"`
	Command    []string `json:"command"`
	ExitCode   int      `json:"exit_code"`
	DurationMs int64    `json:"duration_ms"`
	// Position is the session's position after the last push.
	Position   uint64 `json:"position"`
	Checkpoint string `json:"checkpoint"`
	Pushes     int    `json:"pushes"`
	Changes    int    `json:"changes"`
	// Interrupted is true when the run was stopped (Ctrl-C) before the
	// command exited on its own.
	Interrupted bool `json:"interrupted,omitempty"`
	// Error says why the run failed around the command (it could not
	// start, a push failed).
	Error string `json:"error,omitempty"`
}

// ExitStartFailed is the exit code of a command that could not start.
const ExitStartFailed = 127

// Run checkpoints the session (after forking it, with Fork), checks it out
// (or pulls an existing working copy), runs the command there, pushes its
// changes when it exits (and every PushEvery while it runs), and records
// the exit code, the duration and the command as the session's health
// report. When ctx ends (Ctrl-C), the command gets SIGINT, and what it
// changed is pushed all the same. The error is about the run, not the
// command: a command that fails is an outcome with its exit code.
func Run(ctx context.Context, c *client.Client, cache *contentcache.Cache, o RunOptions) (RunOutcome, error) {
	out := RunOutcome{Session: o.Session, Command: o.Command, Dir: o.Dir}
	if len(o.Command) == 0 {
		return out, domain.Errorf(domain.CodeInvalidArgument, "no command to run")
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "strand run: "+format+"\n", args...)
		}
	}
	if o.Fork {
		tags := map[string]string{}
		if o.Tag != "" {
			tags["run"] = o.Tag
		}
		f, err := c.Fork(ctx, client.ForkRequest{Mutation: client.Mutation{RequestID: o.ForkRequestID}, Session: o.Session, At: o.ForkAt, Tags: tags})
		if err != nil {
			return out, fmt.Errorf("fork %s: %w", o.Session, err)
		}
		out.Parent, out.Session = o.Session, f.Session.ID
		logf("forked %s as %s", o.Session, out.Session)
	}
	s, err := c.GetSession(ctx, out.Session, "")
	if err != nil {
		return out, err
	}
	head := strconv.FormatUint(s.Session.Position, 10)
	out.Checkpoint = o.CheckpointBefore
	if out.Checkpoint == "" {
		// Named after the position it names, so that two runs from the
		// same state share it.
		out.Checkpoint = "before-run-" + head
	}
	// The request id makes a run made again from the same state (a work
	// item delivered twice) find its checkpoint rather than fail on it.
	_, err = c.CreateCheckpoint(ctx, client.CheckpointRequest{
		Mutation: client.Mutation{RequestID: "run-" + out.Session + "-" + head + "-" + out.Checkpoint},
		Session:  out.Session, Name: out.Checkpoint, At: client.AtPosition(s.Session.Position), Note: "before: " + strings.Join(o.Command, " "),
	})
	if err != nil && !(o.CheckpointBefore == "" && client.ErrorCode(err) == domain.CodeAlreadyExists) {
		return out, fmt.Errorf("checkpoint before the run: %w", err)
	}
	temp := o.Dir == ""
	if temp {
		d, err := os.MkdirTemp("", "strand-run-")
		if err != nil {
			return out, err
		}
		out.Dir = d
	}
	w, err := prepare(ctx, c, cache, out.Session, out.Dir)
	if err != nil {
		return out, err
	}
	out.Dir, out.Position = w.Dir, w.Head.Position
	logf("%s at %d in %s", out.Session, out.Position, out.Dir)

	start := time.Now()
	code, interrupted, runErr := w.runCommand(ctx, o, &out, logf)
	out.ExitCode, out.Interrupted, out.DurationMs = code, interrupted, time.Since(start).Milliseconds()
	if runErr != nil {
		out.Error = runErr.Error()
	}
	// The command is over; what follows must happen even after Ctrl-C.
	after, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	res, err := w.Push(after, PushOptions{Force: true})
	if err != nil {
		out.Error = strings.TrimPrefix(out.Error+"; ", "; ") + "push: " + err.Error()
		return out, fmt.Errorf("push after the run (the changes stay in %s): %w", out.Dir, err)
	}
	if res.Changes > 0 {
		out.Pushes++
		out.Changes += res.Changes
	}
	out.Position = res.Position
	if interrupted {
		logf("interrupted: pushed %d changes, %s at %d", res.Changes, out.Session, out.Position)
	}
	if err := w.report(after, out); err != nil {
		return out, err
	}
	if temp {
		_ = os.RemoveAll(out.Dir)
		out.Dir = ""
	}
	return out, nil
}

// prepare checks out the session into dir, or pulls it when dir already is
// a working copy of that session.
func prepare(ctx context.Context, c *client.Client, cache *contentcache.Cache, session, dir string) (*Copy, error) {
	if IsWorkingCopy(dir) {
		w, err := Open(dir, c, cache)
		if err != nil {
			return nil, err
		}
		if w.Head.Session != session {
			return nil, domain.Errorf(domain.CodeInvalidArgument, "%s is a working copy of %s, not %s", dir, w.Head.Session, session)
		}
		pr, err := w.Pull(ctx)
		if err != nil {
			return nil, err
		}
		if len(pr.Conflicts) > 0 {
			return nil, domain.Errorf(domain.CodeConflict, "pulling %s into %s left conflicts:\n%s", session, dir, ConflictSummary(pr.Conflicts))
		}
		return w, nil
	}
	return Checkout(ctx, c, cache, session, "", dir, CheckoutOptions{})
}

// runCommand runs the command in the working copy, pushing every
// PushEvery, and stops it with SIGINT (then SIGKILL after the grace) when
// ctx ends.
func (w *Copy) runCommand(ctx context.Context, o RunOptions, out *RunOutcome, logf func(string, ...any)) (int, bool, error) {
	cmd := exec.Command(o.Command[0], o.Command[1:]...)
	cmd.Dir = w.Dir
	cmd.Env = append(os.Environ(), "STRAND_SESSION="+out.Session, "STRAND_TENANT="+w.Head.Tenant)
	if o.Server != "" {
		cmd.Env = append(cmd.Env, "STRAND_SERVER="+o.Server)
	}
	cmd.Env = append(cmd.Env, o.Env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	// A group of its own: the run decides when the command is interrupted,
	// and signals everything it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return ExitStartFailed, false, fmt.Errorf("start %s: %w", o.Command[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var tick <-chan time.Time
	if o.PushEvery > 0 {
		t := time.NewTicker(o.PushEvery)
		defer t.Stop()
		tick = t.C
	}
	grace := o.Grace
	if grace <= 0 {
		grace = 10 * time.Second
	}
	interrupted := false
	var kill <-chan time.Time
	for {
		select {
		case err := <-done:
			return exitCode(err), interrupted, nil
		case <-tick:
			res, err := w.Push(ctx, PushOptions{Force: true})
			if err != nil {
				logf("push while running: %v", err)
				continue
			}
			if res.Changes > 0 {
				out.Pushes++
				out.Changes += res.Changes
				logf("pushed %d changes, %s at %d", res.Changes, out.Session, res.Position)
			}
		case <-ctx.Done():
			if !interrupted {
				interrupted = true
				logf("interrupted: stopping %s", o.Command[0])
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
				kill = time.After(grace)
				tick = nil
			}
		case <-kill:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			kill = nil
		}
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return 128 + int(st.Signal())
		}
		return ee.ExitCode()
	}
	return 1
}

// report records the outcome as the session's health report.
func (w *Copy) report(ctx context.Context, out RunOutcome) error {
	details, err := json.Marshal(out)
	if err != nil {
		return err
	}
	passing := out.ExitCode == 0 && !out.Interrupted
	summary := fmt.Sprintf("exit %d after %s: %s", out.ExitCode, time.Duration(out.DurationMs)*time.Millisecond, strings.Join(out.Command, " "))
	if out.Interrupted {
		summary = "interrupted, " + summary
	}
	if len(summary) > 500 {
		summary = summary[:500]
	}
	err = w.followed(ctx, func(m client.Mutation) (uint64, error) {
		r, err := w.client.ReportHealth(ctx, client.HealthRequest{Mutation: m, Session: out.Session, Passing: &passing, Summary: summary, Details: details})
		return r.Position, err
	})
	if err != nil {
		return fmt.Errorf("report health: %w", err)
	}
	return nil
}
