package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/oklog/ulid/v2"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// secretScope splits [SESSION] NAME [VALUE]: the first argument is a
// session when it is a session id and more arguments follow.
func secretScope(pos []string) (session string, rest []string) {
	if len(pos) >= 2 {
		if _, err := ulid.ParseStrict(pos[0]); err == nil {
			return pos[0], pos[1:]
		}
	}
	return "", pos
}

func (m *Main) secretPut(ctx context.Context, args []string) error {
	var mf mutationFlags
	g, pos, err := m.parseArgs("secret put", args, mf.declare)
	if err != nil {
		return err
	}
	defer g.close()
	session, rest := secretScope(pos)
	if len(rest) < 1 || len(rest) > 2 {
		return usagef("usage: strand secret put [SESSION] NAME [VALUE]")
	}
	var value string
	if len(rest) == 2 {
		value = rest[1]
	} else {
		b, err := io.ReadAll(io.LimitReader(m.Stdin, 1<<20))
		if err != nil {
			return fmt.Errorf("read value: %w", err)
		}
		value = strings.TrimSuffix(string(b), "\n")
	}
	if err := g.dial(); err != nil {
		return err
	}
	r, err := g.client.PutSecret(ctx, client.SecretRequest{Mutation: mf.mutation(), Session: session, Name: rest[0], Value: &value})
	return m.show(g, r, err, func() { m.printf("secret %s (%s) version %d\n", r.Secret.Name, r.Secret.Scope, r.Secret.Version) })
}

func (m *Main) secretGet(ctx context.Context, args []string) error {
	g, pos, err := m.parseArgs("secret get", args, nil)
	if err != nil {
		return err
	}
	defer g.close()
	session, rest := secretScope(pos)
	if len(rest) != 1 {
		return usagef("usage: strand secret get [SESSION] NAME")
	}
	if err := g.dial(); err != nil {
		return err
	}
	r, err := g.client.GetSecret(ctx, client.SecretRequest{Session: session, Name: rest[0]})
	return m.show(g, r, err, func() { m.printf("%s\n", r.Value) })
}

func (m *Main) secretList(ctx context.Context, args []string) error {
	g, pos, err := m.parseArgs("secret list", args, nil)
	if err != nil {
		return err
	}
	defer g.close()
	if len(pos) > 1 {
		return usagef("usage: strand secret list [SESSION]")
	}
	var req client.SecretListRequest
	if len(pos) == 1 {
		req.Session = pos[0]
	}
	if err := g.dial(); err != nil {
		return err
	}
	r, err := g.client.ListSecrets(ctx, req)
	return m.show(g, r, err, func() {
		var rows [][]string
		for _, s := range r.Secrets {
			rows = append(rows, []string{s.Name, s.Scope, strconv.FormatUint(s.Version, 10), strconv.Itoa(s.Size), s.Actor, s.Time.Format("2006-01-02 15:04:05")})
		}
		m.table([]string{"NAME", "SCOPE", "VERSION", "SIZE", "BY", "AT"}, rows)
	})
}

func (m *Main) secretRm(ctx context.Context, args []string) error {
	var mf mutationFlags
	g, pos, err := m.parseArgs("secret rm", args, mf.declare)
	if err != nil {
		return err
	}
	defer g.close()
	session, rest := secretScope(pos)
	if len(rest) != 1 {
		return usagef("usage: strand secret rm [SESSION] NAME")
	}
	if err := g.dial(); err != nil {
		return err
	}
	r, err := g.client.DeleteSecret(ctx, client.SecretRequest{Mutation: mf.mutation(), Session: session, Name: rest[0]})
	return m.show(g, r, err, func() {
		m.printf("deleted secret %s (%s) version %d\n", r.Secret.Name, r.Secret.Scope, r.Secret.Version)
	})
}

func (m *Main) secretRekey(ctx context.Context, args []string) error {
	var mf mutationFlags
	g, _, err := m.dialArgs("secret rekey", args, 0, "secret rekey", mf.declare)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.RekeySecrets(ctx, mf.mutation())
	return m.show(g, r, err, func() { m.printf("resealed %d secret(s) under key %s\n", r.Resealed, r.Key) })
}

func (m *Main) printGroup(g *globals, r client.GroupReply) error {
	if g.json {
		return m.printJSON(r)
	}
	m.printf("%s: %s\n", r.Group.Name, strings.Join(r.Group.Members, " "))
	return nil
}

func (m *Main) groupSet(ctx context.Context, args []string) error {
	var mf mutationFlags
	g, pos, err := m.parseArgs("group set", args, mf.declare)
	if err != nil {
		return err
	}
	defer g.close()
	if len(pos) < 1 {
		return usagef("usage: strand group set NAME MEMBER...")
	}
	if err := g.dial(); err != nil {
		return err
	}
	r, err := g.client.SetGroup(ctx, client.GroupRequest{Mutation: mf.mutation(), Name: pos[0], Members: append([]string{}, pos[1:]...)})
	if err != nil {
		return err
	}
	return m.printGroup(g, r)
}

func (m *Main) groupGet(ctx context.Context, args []string) error {
	g, pos, err := m.dialArgs("group get", args, 1, "group get NAME", nil)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.GetGroup(ctx, client.GroupRequest{Name: pos[0]})
	if err != nil {
		return err
	}
	return m.printGroup(g, r)
}

func (m *Main) groupList(ctx context.Context, args []string) error {
	g, _, err := m.dialArgs("group list", args, 0, "group list", nil)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.ListGroups(ctx)
	return m.show(g, r, err, func() {
		var rows [][]string
		for _, gr := range r.Groups {
			rows = append(rows, []string{gr.Name, strings.Join(gr.Members, " ")})
		}
		m.table([]string{"GROUP", "MEMBERS"}, rows)
	})
}

func (m *Main) groupRm(ctx context.Context, args []string) error {
	var mf mutationFlags
	g, pos, err := m.dialArgs("group rm", args, 1, "group rm NAME", mf.declare)
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.DeleteGroup(ctx, client.GroupRequest{Mutation: mf.mutation(), Name: pos[0]})
	if err != nil {
		return err
	}
	return m.printGroup(g, r)
}

func (m *Main) tenantLog(ctx context.Context, args []string) error {
	var from uint64
	var limit int
	g, _, err := m.dialArgs("tenant log", args, 0, "tenant log [--from POS] [--limit N]", func(fs *flag.FlagSet) {
		fs.Uint64Var(&from, "from", 0, "start at this position of the tenant log")
		fs.IntVar(&limit, "limit", 100, "entries per page (at most 1000)")
	})
	if err != nil {
		return err
	}
	defer g.close()
	r, err := g.client.TenantLog(ctx, client.TenantLogRequest{From: from, Limit: limit})
	return m.show(g, r, err, func() {
		var rows [][]string
		for _, e := range r.Events {
			rows = append(rows, []string{strconv.FormatUint(e.Version, 10), e.Time.Format("2006-01-02 15:04:05"), e.Actor, string(e.Type), tenantEventDetail(e.Policy, e.Group, e.Secret)})
		}
		m.table([]string{"N", "AT", "ACTOR", "TYPE", "DETAIL"}, rows)
	})
}

// tenantEventDetail renders the payload of a tenant log entry, for
// strand tenant log and strand audit log --tenant-log alike.
func tenantEventDetail(policy domain.Policy, group *domain.GroupData, secret *domain.SecretData) string {
	switch {
	case policy != nil:
		var parts []string
		for k, v := range policy {
			parts = append(parts, k+"="+strconv.Itoa(v))
		}
		return "policy " + strings.Join(sortedStrings(parts), ",")
	case group != nil:
		return "group " + group.Name + ": " + strings.Join(group.Members, " ")
	case secret != nil:
		s := secret
		scope := "tenant"
		if s.Session != "" {
			scope = "session " + s.Session
		}
		if s.Name == "" {
			return fmt.Sprintf("%d resealed under %s", s.Count, s.Key)
		}
		out := fmt.Sprintf("%s (%s) v%d", s.Name, scope, s.Version)
		if s.Via != "" {
			out += " via " + s.Via
		}
		return out
	}
	return ""
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}
