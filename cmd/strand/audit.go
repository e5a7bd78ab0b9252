package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/strand-dev/strand/audit"
	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// auditFlags are the flags of every audit command: which streams to read.
// Audit commands read the streams over NATS (--server), never the service.
type auditFlags struct {
	prefix, events, blobs, sources string
}

func (m *Main) declareAudit(fs *flag.FlagSet, af *auditFlags) {
	fs.StringVar(&af.prefix, "stream-prefix", m.env("STRAND_STREAM_PREFIX", audit.DefaultStreamPrefix), "read streams PREFIX_EVENTS, PREFIX_BLOBS and PREFIX_SOURCES")
	fs.StringVar(&af.events, "event-stream", "", "event stream name (overrides --stream-prefix)")
	fs.StringVar(&af.blobs, "blob-stream", "", "blob stream name (overrides --stream-prefix)")
	fs.StringVar(&af.sources, "source-stream", "", "source stream name (overrides --stream-prefix)")
}

// open connects and opens a reader on the streams.
func (af *auditFlags) open(ctx context.Context, g *globals) (*audit.Reader, error) {
	names := audit.StreamsWithPrefix(af.prefix)
	if af.events != "" {
		names.Events = af.events
	}
	if af.blobs != "" {
		names.Blobs = af.blobs
	}
	if af.sources != "" {
		names.Sources = af.sources
	}
	if err := g.dial(); err != nil {
		return nil, err
	}
	audit.TuneGC()
	r, err := audit.Open(ctx, g.nc, names)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, &client.Error{Code: domain.CodeNotFound, Message: err.Error()}
	}
	if err != nil {
		return nil, &client.Error{Code: domain.CodeUnavailable, Message: err.Error()}
	}
	return r, nil
}

// auditError shows a failure of the audit itself with its full text: an
// auditor needs the cause, and nothing here is a service's secret.
func auditError(err error) error {
	if err == nil {
		return nil
	}
	var he *client.Error
	var ue *usageError
	if errors.As(err, &he) || errors.As(err, &ue) {
		return err
	}
	code := domain.ErrorCode(err)
	var be *audit.BrokenError
	if errors.As(err, &be) {
		code = domain.CodeInternal
	}
	msg := err.Error()
	var de *domain.Error
	if errors.As(err, &de) && be == nil {
		msg = de.Message
		if de.Code == domain.CodeInternal && de.Err != nil {
			msg = de.Err.Error()
		}
	}
	return &client.Error{Code: code, Message: msg}
}

func explicit(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

func (m *Main) auditVerify(ctx context.Context, args []string) error {
	var af auditFlags
	var session, headsFile, anchorsFile string
	var all bool
	var pastStates, workers int
	var fset *flag.FlagSet
	g, pos, err := m.parseArgs("audit verify", args, func(fs *flag.FlagSet) {
		fset = fs
		m.declareAudit(fs, &af)
		fs.StringVar(&session, "session", "", "verify one session (and its ancestors up to the fork points)")
		fs.BoolVar(&all, "all", false, "verify every session (of --tenant, when given)")
		fs.StringVar(&headsFile, "heads", "", "write every history's head to FILE (JSON lines), to use later as --anchors")
		fs.StringVar(&anchorsFile, "anchors", "", "check heads recorded earlier (JSON lines from --heads)")
		fs.IntVar(&pastStates, "past-states", audit.DefaultPastStates, "past states kept in memory for restores and forks")
		fs.IntVar(&workers, "workers", audit.DefaultWorkers(), "histories folded in parallel (default: one per CPU but one)")
	})
	if err != nil {
		return err
	}
	if err := need(pos, 0, "audit verify [--session S | --all] [--tenant T]"); err != nil {
		return err
	}
	if all && session != "" {
		return usagef("--session and --all exclude each other")
	}
	scope := audit.Scope{Session: session}
	if session != "" || explicit(fset, "tenant") {
		scope.Tenant = g.tenant
	}
	var anchors []audit.Head
	if anchorsFile != "" {
		if anchors, err = readHeads(anchorsFile); err != nil {
			return usagef("--anchors: %v", err)
		}
	}
	r, err := af.open(ctx, g)
	if err != nil {
		return err
	}
	defer g.close()
	r.PastStates, r.Workers = pastStates, workers
	rep, err := r.Verify(ctx, scope, anchors...)
	if err != nil {
		return auditError(err)
	}
	// The tenant logs (settings, groups, secrets) are verified with every
	// tenant-wide or whole-store run.
	if scope.Session == "" {
		tl, err := r.VerifyTenantLogs(ctx, scope.Tenant)
		if err != nil {
			return auditError(err)
		}
		rep.TenantLogs, rep.TenantEntries = tl.Logs, tl.Entries
		rep.Findings = append(rep.Findings, tl.Findings...)
	}
	if headsFile != "" {
		if err := writeHeads(headsFile, rep.Heads); err != nil {
			return err
		}
	}
	if g.json {
		if err := m.printJSON(rep); err != nil {
			return err
		}
	} else {
		what := "every session"
		switch {
		case scope.Session != "":
			what = "session " + scope.Session
		case scope.Tenant != "":
			what = "tenant " + scope.Tenant
		}
		for _, f := range rep.Findings {
			m.printf("FINDING %s/%s position %d version %d: %s: %s\n", f.Tenant, f.Session, f.Position, f.Version, f.Kind, f.Message)
		}
		status := "OK"
		if !rep.OK() {
			status = "FAILED"
		}
		m.printf("%s: %s: %d histories, %d events, %d blobs verified in %s and %s\n",
			status, what, rep.Histories, rep.Events, rep.Blobs, rep.Streams.Events, rep.Streams.Blobs)
		if rep.TenantLogs > 0 {
			m.printf("%d tenant log(s), %d entries verified\n", rep.TenantLogs, rep.TenantEntries)
		}
		if rep.Rebuilds > 0 {
			m.printf("(%d past states were replayed again: raise --past-states to keep more in memory)\n", rep.Rebuilds)
		}
	}
	if !rep.OK() {
		return &client.Error{Code: domain.CodeInternal, Message: fmt.Sprintf("verification failed: %d broken histories", len(rep.Findings))}
	}
	return nil
}

func readHeads(file string) ([]audit.Head, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []audit.Head
	dec := json.NewDecoder(bufio.NewReader(f))
	for dec.More() {
		var h audit.Head
		if err := dec.Decode(&h); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out = append(out, h)
	}
	return out, nil
}

func writeHeads(file string, heads []audit.Head) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, h := range heads {
		if err := enc.Encode(h); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (m *Main) auditReplay(ctx context.Context, args []string) error {
	var af auditFlags
	var at, dir string
	var force bool
	g, pos, err := m.parseArgs("audit replay", args, func(fs *flag.FlagSet) {
		m.declareAudit(fs, &af)
		fs.StringVar(&at, "at", "", "a position, checkpoint name or commit id (default: the last event)")
		fs.StringVar(&dir, "to", "", "directory to write the tree to")
		fs.BoolVar(&force, "force", false, "empty DIR first when it is not empty")
	})
	if err != nil {
		return err
	}
	if err := need(pos, 1, "audit replay SESSION [--at AT] --to DIR [--force]"); err != nil {
		return err
	}
	id, a := splitAt(pos[0])
	if at != "" {
		a = client.At(at)
	}
	if dir == "" {
		return usagef("audit replay needs --to DIR")
	}
	r, err := af.open(ctx, g)
	if err != nil {
		return err
	}
	defer g.close()
	s, err := r.StateAt(ctx, g.tenant, id, string(a))
	if err != nil {
		return auditError(err)
	}
	st, err := r.WriteTree(ctx, s.Tree, dir, audit.WriteOptions{Force: force})
	if errors.Is(err, audit.ErrNotEmpty) {
		return &client.Error{Code: domain.CodeAlreadyExists, Message: err.Error()}
	}
	if err != nil {
		return auditError(err)
	}
	if g.json {
		return m.printJSON(struct {
			Session  string           `json:"session"`
			Position uint64           `json:"position"`
			Root     string           `json:"root"`
			Dir      string           `json:"dir"`
			Wrote    audit.WriteStats `json:"wrote"`
		}{id, s.Position, s.Tree.Hash().String(), dir, st})
	}
	m.printf("wrote %s at position %d (root %s) to %s: %d files (%d bytes), %d directories, %d symlinks\n",
		id, s.Position, s.Tree.Hash(), dir, st.Files, st.Bytes, st.Dirs, st.Symlinks)
	return nil
}

// listFlag collects a repeatable, comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// parseTime reads RFC 3339, a date, or a duration back from now ("2h").
func parseTime(s string, now time.Time) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (RFC 3339, YYYY-MM-DD, or a duration back from now like 2h)", s)
}

func parseTypes(names []string) ([]domain.EventType, error) {
	var out []domain.EventType
	for _, n := range names {
		found := false
		for _, t := range domain.EventTypes {
			if strings.EqualFold(string(t), n) {
				out = append(out, t)
				found = true
				break
			}
		}
		if !found {
			all := make([]string, len(domain.EventTypes))
			for i, t := range domain.EventTypes {
				all[i] = string(t)
			}
			return nil, fmt.Errorf("unknown event type %q (one of %s)", n, strings.Join(all, ", "))
		}
	}
	return out, nil
}

func (m *Main) auditLog(ctx context.Context, args []string) error {
	var af auditFlags
	var types listFlag
	var session, path, since, until string
	var timeline, tenantLog bool
	var fset *flag.FlagSet
	g, pos, err := m.parseArgs("audit log", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&tenantLog, "tenant-log", false, "the tenant log instead (policy, reviewer group and secret changes, secret reads)")
		fset = fs
		m.declareAudit(fs, &af)
		fs.StringVar(&session, "session", "", "one session's events (default: the whole tenant)")
		fs.Var(&types, "type", "only events of these types (repeatable, or comma-separated)")
		fs.StringVar(&path, "path", "", "only events whose operations touch this path (or below, or a directory above)")
		fs.StringVar(&since, "since", "", "only events at or after TIME (RFC 3339, YYYY-MM-DD, or a duration like 24h)")
		fs.StringVar(&until, "until", "", "only events before TIME")
		fs.BoolVar(&timeline, "timeline", false, "print a human timeline instead of JSON lines")
	})
	if err != nil {
		return err
	}
	if err := need(pos, 0, "audit log [--session S] [--actor A] [--type T] [--path P] [--since TIME] [--until TIME] [--timeline]"); err != nil {
		return err
	}
	f := audit.Filter{Session: session}
	// --actor is the global flag; here it filters, and only when given on
	// the command line (STRAND_ACTOR names who acts, not whom to audit).
	if explicit(fset, "actor") {
		f.Actor = g.actor
	}
	if f.Types, err = parseTypes(types); err != nil {
		return usagef("--type: %v", err)
	}
	if path != "" {
		if f.Path, err = domain.CleanPath(path); err != nil {
			return usagef("--path: %s", domain.ErrorMessage(err))
		}
	}
	now := time.Now()
	if since != "" {
		if f.Since, err = parseTime(since, now); err != nil {
			return usagef("--since: %v", err)
		}
	}
	if until != "" {
		if f.Until, err = parseTime(until, now); err != nil {
			return usagef("--until: %v", err)
		}
	}
	r, err := af.open(ctx, g)
	if err != nil {
		return err
	}
	defer g.close()
	out := bufio.NewWriter(m.Stdout)
	defer out.Flush()
	if tenantLog {
		return m.auditTenantLog(ctx, r, g.tenant, f, timeline, out)
	}
	var emit func(audit.Entry) error
	if timeline {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		defer tw.Flush()
		fmt.Fprintln(tw, "TIME\tSESSION\tPOSITION\tACTOR\tTYPE\tDETAIL")
		emit = func(e audit.Entry) error {
			_, err := fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", e.Time.Format("2006-01-02 15:04:05"), e.Session, e.Position, e.Actor, e.Type, entryDetail(e))
			return err
		}
	} else {
		enc := json.NewEncoder(out)
		emit = func(e audit.Entry) error { return enc.Encode(e) }
	}
	return auditError(r.Log(ctx, g.tenant, f, emit))
}

// entryDetail is the timeline's DETAIL column: the event's one-line
// summary (domain.Event.Summary), the same the API's event view carries.
func entryDetail(e audit.Entry) string {
	if e.Error != "" {
		return "UNREADABLE: " + e.Error
	}
	return e.Summary
}

func (m *Main) auditBlame(ctx context.Context, args []string) error {
	var af auditFlags
	g, pos, err := m.parseArgs("audit blame", args, func(fs *flag.FlagSet) { m.declareAudit(fs, &af) })
	if err != nil {
		return err
	}
	if err := need(pos, 2, "audit blame SESSION PATH"); err != nil {
		return err
	}
	p, err := domain.CleanPath(pos[1])
	if err != nil {
		return usagef("PATH: %s", domain.ErrorMessage(err))
	}
	r, err := af.open(ctx, g)
	if err != nil {
		return err
	}
	defer g.close()
	changes, err := r.Blame(ctx, g.tenant, pos[0], p)
	if err != nil {
		return auditError(err)
	}
	if g.json {
		if changes == nil {
			changes = []audit.Change{}
		}
		return m.printJSON(changes)
	}
	rows := make([][]string, 0, len(changes))
	for _, c := range changes {
		detail := ""
		switch {
		case c.RestoredTo != 0:
			detail = "back to position " + strconv.FormatUint(c.RestoredTo, 10)
		case c.From != "":
			detail = c.From + " -> " + c.To
		case c.Path != "":
			detail = "via " + c.Path
		}
		after := "gone"
		if c.After.Kind != "" {
			after = c.After.Kind + " " + c.After.Mode
			if c.After.Kind == "file" {
				after += fmt.Sprintf(" %d B %s", c.After.Size, c.After.Hash[:12])
			}
			if c.After.Target != "" {
				after += " -> " + c.After.Target
			}
		}
		session := c.Session
		if session == pos[0] {
			session = ""
		}
		rows = append(rows, []string{strconv.FormatUint(c.Position, 10), c.Time.Format(time.RFC3339), c.Actor, c.Kind, detail, after, session})
	}
	m.table([]string{"POSITION", "TIME", "ACTOR", "KIND", "DETAIL", "AFTER", "IN (ANCESTOR)"}, rows)
	return nil
}

// tenantLogLine is one entry of a tenant log as audit log prints it.
type tenantLogLine struct {
	Position uint64                 `json:"position"`
	Tenant   string                 `json:"tenant"`
	Version  uint64                 `json:"version,omitempty"`
	Type     domain.TenantEventType `json:"type,omitempty"`
	Actor    string                 `json:"actor,omitempty"`
	Time     time.Time              `json:"time"`
	ID       string                 `json:"id,omitempty"`
	Hash     string                 `json:"hash"`
	Prev     string                 `json:"prev,omitempty"`
	Policy   domain.Policy          `json:"policy,omitempty"`
	Group    *domain.GroupData      `json:"group,omitempty"`
	Secret   *domain.SecretData     `json:"secret,omitempty"`
	Error    string                 `json:"error,omitempty"`
}

// auditTenantLog prints a tenant's log, read straight from its stream,
// filtered by actor and time (a session or path filter selects nothing).
func (m *Main) auditTenantLog(ctx context.Context, r *audit.Reader, tenant string, f audit.Filter, timeline bool, out io.Writer) error {
	if f.Session != "" || f.Path != "" || len(f.Types) > 0 {
		return usagef("--tenant-log takes --actor, --since and --until only")
	}
	var tw *tabwriter.Writer
	enc := json.NewEncoder(out)
	if timeline {
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		defer tw.Flush()
		fmt.Fprintln(tw, "TIME\tPOSITION\tACTOR\tTYPE\tDETAIL")
	}
	return auditError(r.TenantLog(ctx, tenant, func(en audit.TenantEntry, derr error) error {
		l := tenantLogLine{Position: en.Position, Tenant: en.Tenant, Hash: en.Hash.String()}
		if derr != nil {
			l.Error = derr.Error()
		} else {
			e := en.Event
			if (f.Actor != "" && e.Actor != f.Actor) || (!f.Since.IsZero() && e.At().Before(f.Since)) || (!f.Until.IsZero() && !e.At().Before(f.Until)) {
				return nil
			}
			l.Version, l.Type, l.Actor, l.Time, l.ID = e.Version, e.Type, e.Actor, e.At(), e.ID
			l.Policy, l.Group, l.Secret = e.Policy, e.Group, e.Secret
			if p, ok := domain.HashFromBytes(e.Prev); ok && !p.IsZero() {
				l.Prev = p.String()
			}
		}
		if tw == nil {
			return enc.Encode(l)
		}
		detail := tenantEventDetail(l.Policy, l.Group, l.Secret)
		if l.Error != "" {
			detail = "UNREADABLE: " + l.Error
		}
		_, err := fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", l.Time.Format("2006-01-02 15:04:05"), l.Position, l.Actor, l.Type, detail)
		return err
	}))
}
