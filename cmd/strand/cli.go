package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// Main is the program: its streams and, for tests, hooks into serve.
type Main struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Ready, when set, is called by serve with the client URL once it
	// serves requests.
	Ready func(url string)
	// ReadyHTTP, when set, is called by serve and gateway with the URL of
	// the HTTP front once it listens.
	ReadyHTTP func(url string)
	// Getenv reads the environment (os.Getenv by default).
	Getenv func(string) string
}

// NewMain returns a Main on the given streams.
func NewMain(stdin io.Reader, stdout, stderr io.Writer) *Main {
	return &Main{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv}
}

// exit codes
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// Run runs one command line and returns the exit code.
func (m *Main) Run(ctx context.Context, args []string) int {
	args = globalsLast(args)
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		m.usage()
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	g := lookupGroup(args[0])
	if g == nil {
		return m.report(usagef("unknown command %q (see strand help)", args[0]))
	}
	if g.run != nil {
		return m.report(g.run(m, ctx, args[1:]))
	}
	if len(args) < 2 || args[1] == "-h" || args[1] == "--help" || args[1] == "help" {
		m.groupUsage(g)
		if len(args) < 2 {
			return exitUsage
		}
		return exitOK
	}
	c := g.lookup(args[1])
	if c == nil {
		return m.report(usagef("unknown command %q %q (see strand %s --help)", args[0], args[1], args[0]))
	}
	return m.report(c.run(m, ctx, args[2:]))
}

func (m *Main) report(err error) int {
	if err == nil {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(m.Stderr, "strand: %s\n", ue.msg)
		return exitUsage
	}
	var ec exitCode
	if errors.As(err, &ec) {
		// strand run: the command's exit code, already reported.
		return int(ec)
	}
	if errors.Is(err, flag.ErrHelp) {
		// Asked for with -h: the flags were printed, and that is no error.
		return exitOK
	}
	fmt.Fprintf(m.Stderr, "strand: %s: %s\n", client.ErrorCode(err), client.ErrorMessage(err))
	return exitError
}

func (m *Main) usage() {
	fmt.Fprintln(m.Stdout, `strand: event-sourced session workspaces on NATS JetStream

Usage:
  strand serve [--data DIR] [--listen HOST:PORT] [--nats URLS] [--replicas N] [--http ADDR]
  strand gateway --nats URLS [--http ADDR]   (the HTTP front alone, next to a cluster)
  strand <group> <command> [arguments] [flags]

Groups:`)
	for _, g := range commands {
		fmt.Fprintf(m.Stdout, "  %-12s %s\n", g.name, g.help)
	}
	fmt.Fprintln(m.Stdout, `
Global flags (anywhere on the line):
  --server URL    NATS server (env STRAND_SERVER, default nats://127.0.0.1:4222)
  --tenant NAME   tenant (env STRAND_TENANT, default "default")
  --actor NAME    who acts (env STRAND_ACTOR); with authentication it must be you or empty
  --user NAME     NATS user (env STRAND_USER), password from env STRAND_PASSWORD or --password
  --creds FILE    NATS credentials file (env STRAND_CREDS)
  --json          print JSON instead of a table`)
}

func (m *Main) groupUsage(g *group) {
	fmt.Fprintf(m.Stdout, "strand %s: %s\n\n", g.name, g.help)
	for _, c := range g.cmds {
		fmt.Fprintf(m.Stdout, "  strand %s %s %s\n      %s\n", g.name, c.name, c.args, c.help)
	}
}

// globals are the flags every client command takes.
type globals struct {
	server, tenant, actor string
	// user, password and creds authenticate to NATS (docs/security.md).
	user, password, creds string
	json                  bool
	timeout               time.Duration
	fs                    *flag.FlagSet
	client                *client.Client
	nc                    *nats.Conn
}

func (m *Main) env(k, def string) string {
	getenv := m.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(k); v != "" {
		return v
	}
	return def
}

func (m *Main) newFlags(name string) (*flag.FlagSet, *globals) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	g := &globals{fs: fs}
	fs.StringVar(&g.server, "server", m.env("STRAND_SERVER", "nats://127.0.0.1:4222"), "NATS server URL(s)")
	fs.StringVar(&g.tenant, "tenant", m.env("STRAND_TENANT", "default"), "tenant")
	fs.StringVar(&g.actor, "actor", m.env("STRAND_ACTOR", ""), "actor recorded in events")
	fs.StringVar(&g.user, "user", m.env("STRAND_USER", ""), "NATS user name")
	// No default from the environment here: flag usage prints defaults.
	fs.StringVar(&g.password, "password", "", "NATS password (prefer env STRAND_PASSWORD: flags show in ps)")
	fs.StringVar(&g.creds, "creds", m.env("STRAND_CREDS", ""), "NATS credentials file (JWT and nkey seed)")
	fs.BoolVar(&g.json, "json", false, "print JSON")
	fs.DurationVar(&g.timeout, "timeout", 30*time.Second, "request timeout")
	return fs, g
}

// parse parses flags anywhere among the positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			// The flag package has printed the problem and the flags.
			return nil, &usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseArgs parses the command line with the command's flags. It does not
// connect, so that a mistake in the command line is reported as one (exit 2)
// whether or not a server is reachable; call dial once the arguments are
// checked.
func (m *Main) parseArgs(name string, args []string, declare func(fs *flag.FlagSet)) (*globals, []string, error) {
	fs, g := m.newFlags(name)
	if declare != nil {
		declare(fs)
	}
	pos, err := parse(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if err := domain.ValidTenant(g.tenant); err != nil {
		return nil, nil, usagef("--tenant: %s", domain.ErrorMessage(err))
	}
	if g.password == "" {
		g.password = m.env("STRAND_PASSWORD", "")
	}
	return g, pos, nil
}

// dialArgs is the common start of a client command: parseArgs, exactly n
// positional arguments (usage says how the line should read), then dial.
// The caller closes g.
func (m *Main) dialArgs(name string, args []string, n int, usage string, declare func(fs *flag.FlagSet)) (*globals, []string, error) {
	g, pos, err := m.parseArgs(name, args, declare)
	if err != nil {
		return nil, nil, err
	}
	if err := need(pos, n, usage); err != nil {
		return nil, nil, err
	}
	if err := g.dial(); err != nil {
		return nil, nil, err
	}
	return g, pos, nil
}

// show is the common end of a client command, given its call's reply r and
// error: the error if the call failed, else r as JSON with --json, else
// what human prints.
func (m *Main) show(g *globals, r any, err error, human func()) error {
	if err != nil {
		return err
	}
	if g.json {
		return m.printJSON(r)
	}
	human()
	return nil
}

// dial connects to the server and makes the client.
func (g *globals) dial() error {
	// A lost connection is taken up again for as long as the command runs
	// (a follow, a mount, `strand run`, the MCP server); a request in
	// flight meanwhile ends at its timeout, unavailable.
	opts := []nats.Option{nats.Name("strand-cli"), nats.Timeout(5 * time.Second),
		nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}
	if g.creds != "" {
		opts = append(opts, nats.UserCredentials(g.creds))
	}
	if g.user != "" {
		opts = append(opts, nats.UserInfo(g.user, g.password))
	}
	nc, err := nats.Connect(g.server, opts...)
	if err != nil {
		return &client.Error{Code: domain.CodeUnavailable, Message: fmt.Sprintf("connect to %s: %v", redactURLs(g.server), err)}
	}
	g.nc = nc
	g.client = client.NewClient(nc, g.tenant)
	g.client.Actor = g.actor
	g.client.Timeout = g.timeout
	return nil
}

func (g *globals) close() {
	if g != nil && g.nc != nil {
		g.nc.Close()
	}
}

// printJSON prints v as indented JSON.
func (m *Main) printJSON(v any) error {
	enc := json.NewEncoder(m.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints rows as an aligned table.
func (m *Main) table(header []string, rows [][]string) {
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func need(pos []string, n int, usage string) error {
	if len(pos) != n {
		return usagef("usage: strand %s", usage)
	}
	return nil
}

// splitAt splits SESSION@AT.
func splitAt(s string) (string, client.At) {
	id, at, _ := strings.Cut(s, "@")
	return id, client.At(at)
}

// openInput opens file for reading, or returns r (standard input) when
// file is empty or "-"; the function closes what it opened.
func openInput(r io.Reader, file string) (io.Reader, func(), error) {
	if file != "" && file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, nil, err
		}
		return f, func() { _ = f.Close() }, nil
	}
	return r, func() {}, nil
}

// valueFlags are the global flags that take a value.
var valueFlags = map[string]bool{"server": true, "tenant": true, "actor": true, "timeout": true, "user": true, "password": true, "creds": true}

// globalsLast moves global flags written before the command
// (strand --json --tenant acme session list) after it, where every command
// parses them.
func globalsLast(args []string) []string {
	var lead []string
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-h" && args[i] != "--help" && args[i] != "--" {
		name := strings.TrimLeft(args[i], "-")
		lead = append(lead, args[i])
		i++
		if !strings.Contains(name, "=") && valueFlags[name] && i < len(args) {
			lead = append(lead, args[i])
			i++
		}
	}
	if len(lead) == 0 || i == len(args) {
		return args
	}
	rest := args[i:]
	// Before a "--" (strand run ... -- COMMAND): what follows is not ours.
	if j := slices.Index(rest, "--"); j >= 0 {
		return slices.Concat(rest[:j], lead, rest[j:])
	}
	return append(append([]string{}, rest...), lead...)
}
