package mcp

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/contentcache"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/workcopy"
)

// RunConfig turns on the run_command tool: a command run in a working copy
// of the session, its changes pushed as events (workcopy.Run, as `strand
// run` does). It is off unless the operator configures it, because it runs
// programs on the machine the server runs on.
type RunConfig struct {
	// Cache is the content cache working copies are checked out from.
	Cache *contentcache.Cache
	// Server is the NATS URL commands see as STRAND_SERVER.
	Server string
	// Secrets the server may give a command as environment variables. A
	// call injects all of them unless it names a subset. Their values are
	// read (and so audited) once per run, through the run's session (its
	// own secrets, else the tenant's), and never reach the model: they are
	// cut out of the output the tool returns.
	Secrets []SecretEnv
	// MaxTimeout bounds a call's timeout (default 10 minutes).
	MaxTimeout time.Duration
	// OutputLimit is how many bytes of output a call returns, its tail
	// (default 64 KiB).
	OutputLimit int
}

// SecretEnv is a secret a run may get: Name in the session's (or its
// tenant's) secrets, as environment variable Env.
type SecretEnv struct {
	Name string
	Env  string
}

const (
	defaultRunTimeout  = 2 * time.Minute
	defaultMaxTimeout  = 10 * time.Minute
	defaultOutputLimit = 64 << 10
	// outputHold is the most output a run keeps before the secrets are cut
	// out and the tail is taken (the rest is counted, not kept).
	outputHold = 1 << 20
)

// RunArgs are the arguments of run_command.
type RunArgs struct {
	Session string   `json:"session" jsonschema:"the session id"`
	Command []string `json:"command" jsonschema:"the program and its arguments, e.g. [\"go\", \"test\", \"./...\"] (not a shell line: use [\"sh\", \"-c\", \"...\"] for one)"`
	Fork    bool     `json:"fork,omitempty" jsonschema:"run on a new fork of the session, so that a failed attempt never touches it"`
	Timeout string   `json:"timeout,omitempty" jsonschema:"stop the command after this long, e.g. 90s (default 2m); its changes are pushed all the same"`
	Secrets []string `json:"secrets,omitempty" jsonschema:"names of the offered secrets to give the command (default: all offered)"`
}

// RunResult answers run_command.
type RunResult struct {
	Session     string `json:"session"`
	Parent      string `json:"parent,omitempty"`
	ExitCode    int    `json:"exit_code"`
	DurationMs  int64  `json:"duration_ms"`
	Position    uint64 `json:"position"`
	Checkpoint  string `json:"checkpoint"`
	Changes     int    `json:"changes"`
	Interrupted bool   `json:"interrupted,omitempty"`
	Output      string `json:"output"`
	// OutputCut is how many bytes of output were left out (its head).
	OutputCut int64 `json:"output_cut,omitempty"`
}

func (s *Server) addRunTool() {
	rc := s.opts.Run
	if rc == nil {
		return
	}
	desc := "Run a command in a working copy of the session (checked out in a temporary folder) and record what it changed as one event; a checkpoint is taken before, so session_restore undoes it. Returns the exit code and the tail of the output (stdout and stderr together). Use it to build and test what you wrote."
	if len(rc.Secrets) > 0 {
		var envs []string
		for _, se := range rc.Secrets {
			envs = append(envs, se.Env+" (secret "+se.Name+")")
		}
		desc += " The command gets these environment variables: " + strings.Join(envs, ", ") + ". Their values are never shown to you: they are replaced by [secret NAME] in the output; do not write them into files, which are recorded."
	}
	add(s, "run_command", "Run a command", desc, destructive, false, s.runCommand)
}

func (s *Server) runCommand(ctx context.Context, c *call, in RunArgs) (string, RunResult, error) {
	rc := s.opts.Run
	session, err := s.session(in.Session)
	if err != nil {
		return "", RunResult{}, err
	}
	if in.Fork && s.opts.Session != "" {
		return "", RunResult{}, &client.Error{Code: domain.CodeForbidden, Message: "this server is pinned to session " + s.opts.Session + ": a run may not fork it into another"}
	}
	if len(in.Command) == 0 || in.Command[0] == "" {
		return "", RunResult{}, invalid("command is required: the program and its arguments, e.g. [\"make\", \"test\"]")
	}
	for _, a := range in.Command {
		if strings.IndexByte(a, 0) >= 0 {
			return "", RunResult{}, invalid("command arguments may not contain NUL bytes")
		}
	}
	maxTimeout := rc.MaxTimeout
	if maxTimeout <= 0 {
		maxTimeout = defaultMaxTimeout
	}
	timeout := defaultRunTimeout
	if in.Timeout != "" {
		if timeout, err = time.ParseDuration(in.Timeout); err != nil || timeout <= 0 {
			return "", RunResult{}, invalid("timeout %q: want a positive duration such as 90s or 5m", in.Timeout)
		}
		if timeout > maxTimeout {
			return "", RunResult{}, invalid("timeout %s is longer than this server allows (%s)", timeout, maxTimeout)
		}
	}
	offered, err := rc.pick(in.Secrets)
	if err != nil {
		return "", RunResult{}, err
	}
	// The secrets are read through the session named (before any fork): a
	// fork does not inherit its parent's own secrets.
	env := make([]string, 0, len(offered))
	values := make([]secretValue, 0, len(offered))
	for _, se := range offered {
		r, err := s.c.GetSecret(ctx, client.SecretRequest{Mutation: c.mutation(), Session: session, Name: se.Name})
		if err != nil {
			return "", RunResult{}, fmt.Errorf("secret %s: %w", se.Name, err)
		}
		env = append(env, se.Env+"="+r.Value)
		values = append(values, secretValue{name: se.Name, value: r.Value})
	}
	out := &tailBuffer{max: outputHold}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	o, err := workcopy.Run(runCtx, s.c, rc.Cache, workcopy.RunOptions{
		Session: session, Fork: in.Fork, Command: in.Command, Env: env, Server: rc.Server,
		Stdout: out, Stderr: out, Grace: 5 * time.Second, Tag: "mcp",
	})
	limit := rc.OutputLimit
	if limit <= 0 {
		limit = defaultOutputLimit
	}
	text, cut := out.result(values, limit)
	res := RunResult{Session: o.Session, Parent: o.Parent, ExitCode: o.ExitCode, DurationMs: o.DurationMs, Position: o.Position,
		Checkpoint: o.Checkpoint, Changes: o.Changes, Interrupted: o.Interrupted, Output: text, OutputCut: cut}
	if err != nil {
		// The error is about the run (a checkout or push that failed); its
		// text comes from the service, not the command, but the command
		// may have named a path: cut the values out all the same.
		return "", RunResult{}, redactErr(err, values)
	}
	var b strings.Builder
	state := "exited " + fmt.Sprint(o.ExitCode)
	if o.Interrupted {
		state = "stopped after " + timeout.String()
	}
	fmt.Fprintf(&b, "%s %s in %s; %d changes recorded, %s at %d (checkpoint %s before)\n", strings.Join(in.Command, " "), state,
		(time.Duration(o.DurationMs) * time.Millisecond).Round(time.Millisecond), o.Changes, o.Session, o.Position, o.Checkpoint)
	if o.Parent != "" {
		fmt.Fprintf(&b, "ran on fork %s of %s\n", o.Session, o.Parent)
	}
	if cut > 0 {
		fmt.Fprintf(&b, "[first %d bytes of output left out]\n", cut)
	}
	b.WriteString(text)
	return redact(b.String(), values), res, nil
}

// pick gives the offered secrets a call asked for (all when it named none).
func (rc *RunConfig) pick(names []string) ([]SecretEnv, error) {
	if len(names) == 0 {
		return rc.Secrets, nil
	}
	var out []SecretEnv
	for _, n := range names {
		i := slices.IndexFunc(rc.Secrets, func(se SecretEnv) bool { return se.Name == n })
		if i < 0 {
			var offered []string
			for _, se := range rc.Secrets {
				offered = append(offered, se.Name)
			}
			return nil, &client.Error{Code: domain.CodeForbidden, Message: fmt.Sprintf("secret %q is not offered by this server (offered: %s)", n, strings.Join(offered, ", "))}
		}
		out = append(out, rc.Secrets[i])
	}
	return out, nil
}

// secretValue is a secret's value, to cut out of what the model sees.
type secretValue struct{ name, value string }

// redact replaces every secret value in s by [secret NAME], longest values
// first so that a value inside another is not half replaced.
func redact(s string, values []secretValue) string {
	sorted := slices.Clone(values)
	slices.SortFunc(sorted, func(a, b secretValue) int { return len(b.value) - len(a.value) })
	for _, v := range sorted {
		if v.value != "" {
			s = strings.ReplaceAll(s, v.value, "[secret "+v.name+"]")
		}
	}
	return s
}

// redactErr is err with the secret values cut out of its text, keeping
// its code.
func redactErr(err error, values []secretValue) error {
	code := client.ErrorCode(err)
	if code == "" {
		code = domain.CodeInternal
	}
	return &client.Error{Code: code, Message: redact(err.Error(), values)}
}

// tailBuffer keeps the last max bytes written to it (stdout and stderr of
// a command, written from two goroutines) and counts the rest.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	dropped int64
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.dropped += int64(over)
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// result is the output with the secrets cut out, at most limit bytes of
// its tail, and how many bytes were left out before it.
func (t *tailBuffer) result(values []secretValue, limit int) (string, int64) {
	t.mu.Lock()
	b, dropped := slices.Clone(t.buf), t.dropped
	t.mu.Unlock()
	if dropped > 0 {
		// The cut may have split a value: drop a head that is the end of
		// one, so that no fragment of a value survives.
		for _, v := range values {
			for k := len(v.value) - 1; k > 0; k-- {
				if bytes.HasPrefix(b, []byte(v.value[len(v.value)-k:])) {
					b, dropped = b[k:], dropped+int64(k)
					break
				}
			}
		}
	}
	s := strings.ToValidUTF8(redact(string(b), values), "\uFFFD")
	if len(s) > limit {
		cut := len(s) - limit
		for cut < len(s) && !isRuneStart(s[cut]) {
			cut++
		}
		dropped += int64(cut)
		s = s[cut:]
	}
	return s, dropped
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
