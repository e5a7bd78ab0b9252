package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strand-dev/strand/client"
)

// multiFlag collects a repeated flag.
type multiFlag []string

func (f *multiFlag) String() string     { return strings.Join(*f, ",") }
func (f *multiFlag) Set(v string) error { *f = append(*f, v); return nil }

func parseTags(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	tags := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("tag %q must be key=value", kv)
		}
		tags[k] = v
	}
	return tags, nil
}

// mutationFlags declares --request-id and --expect-position.
type mutationFlags struct {
	requestID string
	expect    uint64
	token     string
}

func (mf *mutationFlags) declare(fs *flag.FlagSet) {
	fs.StringVar(&mf.requestID, "request-id", "", "idempotency key: a retry with the same id is applied once")
	fs.Uint64Var(&mf.expect, "expect-position", 0, "refuse unless the session's head is at this position")
	fs.StringVar(&mf.token, "token", "", "lease token (lock acquire) for locked paths")
}

func (mf *mutationFlags) mutation() client.Mutation {
	return client.Mutation{RequestID: mf.requestID, ExpectedPosition: mf.expect, Token: mf.token}
}

func (m *Main) printSession(g *globals, r client.SessionReply) error {
	if g.json {
		return m.printJSON(r)
	}
	s := r.Session
	rows := [][]string{
		{"id", s.ID}, {"tenant", s.Tenant}, {"status", s.Status}, {"owner", s.Owner},
		{"position", strconv.FormatUint(s.Position, 10)}, {"version", strconv.FormatUint(s.Version, 10)},
		{"root", s.Root}, {"created", s.CreatedAt.Format(time.RFC3339)}, {"updated", s.UpdatedAt.Format(time.RFC3339)},
	}
	if o := s.Origin; o != nil {
		if o.Parent != "" {
			rows = append(rows, []string{"origin", fmt.Sprintf("%s@%d", o.Parent, o.Position)})
		} else {
			rows = append(rows, []string{"origin", fmt.Sprintf("source %s@%d", o.Source, o.Revision)})
		}
	}
	if len(s.Tags) > 0 {
		rows = append(rows, []string{"tags", formatTags(s.Tags)})
	}
	for _, cp := range s.Checkpoints {
		rows = append(rows, []string{"checkpoint", fmt.Sprintf("%s -> %d", cp.Name, cp.Position)})
	}
	m.table([]string{"FIELD", "VALUE"}, rows)
	return nil
}

func formatTags(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + tags[k]
	}
	return strings.Join(parts, ",")
}

func (m *Main) sessionCreate(ctx context.Context, args []string) error {
	var tags multiFlag
	var owner, source string
	var mf mutationFlags
	g, pos, err := m.parseArgs("session create", args, func(fs *flag.FlagSet) {
		fs.Var(&tags, "tag", "tag key=value (repeatable)")
		fs.StringVar(&owner, "owner", "", "owner (default: the actor)")
		fs.StringVar(&source, "source", "", "start from a source: NAME[@REV]")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	if err := need(pos, 0, "session create [--tag k=v]..."); err != nil {
		return err
	}
	t, err := parseTags(tags)
	if err != nil {
		return err
	}
	req := client.CreateSessionRequest{Mutation: mf.mutation(), Owner: owner, Tags: t}
	if source != "" {
		name, rev, _ := strings.Cut(source, "@")
		req.Source = name
		if rev != "" {
			if req.Revision, err = strconv.ParseUint(rev, 10, 64); err != nil {
				return usagef("--source: revision %q is not a number", rev)
			}
		}
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.CreateSession(ctx, req)
	if err != nil {
		return err
	}
	return m.printSession(g, r)
}

func (m *Main) sessionGet(ctx context.Context, args []string) error {
	var at string
	g, pos, err := m.parseArgs("session get", args, func(fs *flag.FlagSet) {
		fs.StringVar(&at, "at", "", "a position or checkpoint name")
	})
	if err != nil {
		return err
	}
	if err := need(pos, 1, "session get SESSION[@AT] [--at AT]"); err != nil {
		return err
	}
	id, a := splitAt(pos[0])
	if at != "" {
		a = client.At(at)
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.GetSession(ctx, id, a)
	if err != nil {
		return err
	}
	return m.printSession(g, r)
}

func (m *Main) sessionList(ctx context.Context, args []string) error {
	var tags multiFlag
	var req client.ListSessionsRequest
	g, pos, err := m.parseArgs("session list", args, func(fs *flag.FlagSet) {
		fs.StringVar(&req.Status, "status", "", "only this status")
		fs.Var(&tags, "tag", "only sessions with tag key=value (repeatable; key= for any value)")
		fs.StringVar(&req.Owner, "owner", "", "only this owner")
		fs.StringVar(&req.Parent, "parent", "", "only forks of this session")
		fs.StringVar(&req.Cursor, "cursor", "", "continue after this cursor")
		fs.IntVar(&req.Limit, "limit", 0, "page size")
		fs.StringVar(&req.Sort, "sort", "", "created (default) or updated")
		fs.StringVar(&req.Order, "order", "", "asc (default) or desc")
		fs.BoolVar(&req.Counts, "counts", false, "also count the matching sessions per status")
	})
	if err != nil {
		return err
	}
	if err := need(pos, 0, "session list [--status S] [--tag k=v]"); err != nil {
		return err
	}
	if req.Tags, err = parseTags(tags); err != nil {
		return err
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.ListSessions(ctx, req)
	return m.show(g, r, err, func() {
		rows := make([][]string, 0, len(r.Sessions))
		for _, s := range r.Sessions {
			rows = append(rows, []string{s.ID, s.Status, s.Owner, strconv.FormatUint(s.Position, 10), s.UpdatedAt.Format(time.RFC3339), formatTags(s.Tags)})
		}
		m.table([]string{"ID", "STATUS", "OWNER", "POSITION", "UPDATED", "TAGS"}, rows)
		if r.NextCursor != "" {
			fmt.Fprintf(m.Stdout, "next page: --cursor %s\n", r.NextCursor)
		}
		if len(r.Counts) > 0 {
			fmt.Fprintf(m.Stdout, "counts: %s\n", formatTags(intMap(r.Counts)))
		}
	})
}

func (m *Main) sessionArchive(ctx context.Context, args []string) error {
	return m.sessionSimple(ctx, "archive", args, (*client.Client).ArchiveSession)
}

func (m *Main) sessionDelete(ctx context.Context, args []string) error {
	return m.sessionSimple(ctx, "delete", args, (*client.Client).DeleteSession)
}

func (m *Main) sessionSimple(ctx context.Context, verb string, args []string, fn func(*client.Client, context.Context, client.SessionRequest) (client.SessionReply, error)) error {
	var mf mutationFlags
	g, pos, err := m.dialArgs("session "+verb, args, 1, "session "+verb+" SESSION", mf.declare)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := fn(g.client, ctx, client.SessionRequest{Mutation: mf.mutation(), Session: pos[0]})
	if err != nil {
		return err
	}
	return m.printSession(g, r)
}

func (m *Main) sessionTag(ctx context.Context, args []string) error {
	var remove multiFlag
	var mf mutationFlags
	g, pos, err := m.parseArgs("session tag", args, func(fs *flag.FlagSet) {
		fs.Var(&remove, "remove", "tag key to remove (repeatable)")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	if len(pos) < 1 {
		return usagef("usage: strand session tag SESSION k=v... [--remove k]...")
	}
	set, err := parseTags(pos[1:])
	if err != nil {
		return err
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.TagSession(ctx, client.TagRequest{Mutation: mf.mutation(), Session: pos[0], Set: set, Remove: remove})
	if err != nil {
		return err
	}
	return m.printSession(g, r)
}

func (m *Main) sessionFork(ctx context.Context, args []string) error {
	var at, owner string
	var tags multiFlag
	var mf mutationFlags
	var inherit bool
	g, pos, err := m.parseArgs("session fork", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&inherit, "inherit-secrets", false, "copy the session's own secrets to the fork")
		fs.StringVar(&at, "at", "", "fork at this position or checkpoint (default: the head)")
		fs.StringVar(&owner, "owner", "", "owner of the fork (default: the actor)")
		fs.Var(&tags, "tag", "tag key=value (repeatable)")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	if err := need(pos, 1, "session fork SESSION [--at AT]"); err != nil {
		return err
	}
	id, a := splitAt(pos[0])
	if at != "" {
		a = client.At(at)
	}
	t, err := parseTags(tags)
	if err != nil {
		return err
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Fork(ctx, client.ForkRequest{Mutation: mf.mutation(), Session: id, At: a, Owner: owner, Tags: t, InheritSecrets: inherit})
	if err != nil {
		return err
	}
	return m.printSession(g, r)
}

func (m *Main) sessionRestore(ctx context.Context, args []string) error {
	var to string
	var mf mutationFlags
	g, pos, err := m.parseArgs("session restore", args, func(fs *flag.FlagSet) {
		fs.StringVar(&to, "to", "", "a position or checkpoint name")
		mf.declare(fs)
	})
	if err != nil {
		return err
	}
	if err := need(pos, 1, "session restore SESSION --to AT"); err != nil {
		return err
	}
	if to == "" {
		return usagef("usage: strand session restore SESSION --to AT")
	}
	if err := g.dial(); err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.Restore(ctx, client.RestoreRequest{Mutation: mf.mutation(), Session: pos[0], To: client.At(to)})
	if err != nil {
		return err
	}
	return m.printSession(g, r)
}

func intMap(m map[string]int) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = strconv.Itoa(v)
	}
	return out
}
