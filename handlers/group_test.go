package handlers_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
)

// reviewers runs the service with identity on and three users of tenant
// acme (alice, bob, mallory), each with a client on their own connection.
func reviewers(t *testing.T) (*tenancy, map[string]*client.Client) {
	t.Helper()
	config := strings.Replace(accountsOnlyConfig, `{service: "strand.v1.globex.>", accounts: [GLOBEX]}`,
		`{service: "strand.v1.globex.>", accounts: [GLOBEX]}
      {service: "strand.v1.initech.>", accounts: [INITECH]}`, 1)
	config = strings.Replace(config, `users: [{user: mallory, password: mallory-pw}]`,
		`users: [{user: mallory, password: mallory-pw}, {user: alice, password: alice-pw}, {user: bob, password: bob-pw}]`, 1)
	path := filepath.Join(t.TempDir(), "accounts.conf")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startTenancy(t, path, handlers.Options{})
	clients := map[string]*client.Client{}
	for _, u := range []string{"alice", "bob", "mallory"} {
		nc, _ := e.connect(t, u, u+"-pw")
		clients[u] = client.NewClient(nc, "acme")
	}
	return e, clients
}

func TestGroup_OnlyMembersDecide(t *testing.T) {
	_, c := reviewers(t)
	ctx := t.Context()
	g, err := c["alice"].SetGroup(ctx, client.GroupRequest{Name: "leads", Members: []string{"bob", "bob"}})
	if err != nil || strings.Join(g.Group.Members, ",") != "bob" {
		t.Fatalf("set group = %+v, %v; want members [bob]", g, err)
	}
	s, err := c["alice"].CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := s.Session.ID
	request := func(group string) string {
		t.Helper()
		r, err := c["alice"].RequestApproval(ctx, client.ApprovalRequestRequest{Session: id, Reason: "commit", Group: group})
		if err != nil {
			t.Fatalf("request to %s: %v", group, err)
		}
		return r.Request.ID
	}

	t.Run("Member", func(t *testing.T) {
		r := request("leads")
		_, err := c["mallory"].Grant(ctx, client.DecideRequest{Session: id, Request: r})
		wantCode(t, "grant by a non-member", err, domain.CodeForbidden)
		_, err = c["mallory"].Deny(ctx, client.DecideRequest{Session: id, Request: r})
		wantCode(t, "deny by a non-member", err, domain.CodeForbidden)
		if _, err := c["bob"].Grant(ctx, client.DecideRequest{Session: id, Request: r}); err != nil {
			t.Fatalf("grant by a member: %v", err)
		}
	})
	t.Run("UnconfiguredGroup", func(t *testing.T) {
		r := request("ops")
		_, err := c["bob"].Grant(ctx, client.DecideRequest{Session: id, Request: r})
		wantCode(t, "grant for a group with no members", err, domain.CodeForbidden)
	})
	t.Run("DefaultGroupIsOpenUntilConfigured", func(t *testing.T) {
		r := request("")
		if _, err := c["mallory"].Grant(ctx, client.DecideRequest{Session: id, Request: r}); err != nil {
			t.Fatalf("grant in the unconfigured default group: %v", err)
		}
		if _, err := c["alice"].SetGroup(ctx, client.GroupRequest{Name: "default", Members: []string{"bob"}}); err != nil {
			t.Fatal(err)
		}
		r = request("")
		_, err := c["mallory"].Grant(ctx, client.DecideRequest{Session: id, Request: r})
		wantCode(t, "grant in a configured default group by a non-member", err, domain.CodeForbidden)
	})
	t.Run("MembershipChangesAreLogged", func(t *testing.T) {
		if _, err := c["alice"].DeleteGroup(ctx, client.GroupRequest{Name: "default"}); err != nil {
			t.Fatal(err)
		}
		log, err := c["alice"].TenantLog(ctx, client.TenantLogRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range log.Events {
			got = append(got, string(e.Type)+":"+e.Group.Name+":"+e.Actor)
		}
		want := "GroupSet:leads:alice GroupSet:default:alice GroupDeleted:default:alice"
		if strings.Join(got, " ") != want {
			t.Fatalf("tenant log = %v, want %s", got, want)
		}
	})
}

func TestGroup_BadInput(t *testing.T) {
	h := start(t)
	ctx := t.Context()
	for name, req := range map[string]client.GroupRequest{
		"NoName":        {Members: []string{"a"}},
		"BadName":       {Name: "a.b"},
		"NULMember":     {Name: "g", Members: []string{"a\x00b"}},
		"EmptyMember":   {Name: "g", Members: []string{""}},
		"NewlineMember": {Name: "g", Members: []string{"a\nb"}},
	} {
		_, err := h.c.SetGroup(ctx, req)
		wantCode(t, name, err, domain.CodeInvalidArgument)
	}
	_, err := h.c.SetGroup(ctx, client.GroupRequest{Name: "g", Members: make([]string, domain.MaxGroupMembers+1)})
	wantCode(t, "too many members", err, domain.CodeTooLarge)
	_, err = h.c.GetGroup(ctx, client.GroupRequest{Name: "nobody"})
	wantCode(t, "unknown group", err, domain.CodeNotFound)
	_, err = h.c.DeleteGroup(ctx, client.GroupRequest{Name: "nobody"})
	wantCode(t, "delete unknown group", err, domain.CodeNotFound)
	if log, _ := h.c.TenantLog(ctx, client.TenantLogRequest{}); len(log.Events) != 0 {
		t.Fatalf("refused requests left %d tenant log entries", len(log.Events))
	}
}

// TestPolicy_TenantChangesAreAudited shows that a tenant-wide policy change
// is an entry of the tenant log with its actor, and that the gate a commit
// passed (policy and approvals, per group) is recorded in the commit.
func TestPolicy_TenantChangesAreAudited(t *testing.T) {
	h := start(t)
	ctx := t.Context()
	pol := domain.Policy{"commit": 1, "commit:leads": 1, "commit:security": 1}
	if _, err := h.c.SetPolicy(ctx, client.PolicyRequest{Policy: pol, Mutation: client.Mutation{Actor: "root"}}); err != nil {
		t.Fatal(err)
	}
	log, err := h.c.TenantLog(ctx, client.TenantLogRequest{})
	if err != nil || len(log.Events) != 1 || log.Events[0].Type != domain.TenantPolicySet || log.Events[0].Actor != "root" || log.Events[0].Policy["commit:leads"] != 1 {
		t.Fatalf("tenant log = %s, %v; want one TenantPolicySet by root", asJSON(log), err)
	}
	got, err := h.c.GetPolicy(ctx, client.PolicyRequest{})
	if err != nil || got.Tenant["commit:security"] != 1 {
		t.Fatalf("policy.get = %+v, %v", got, err)
	}
	h.restart(t) // the policy is the fold of the log, not a cache
	if got, _ := h.c.GetPolicy(ctx, client.PolicyRequest{}); got.Tenant["commit:security"] != 1 {
		t.Fatalf("policy after restart = %+v", got)
	}

	id := h.session(t)
	h.write(t, id, "a.txt", "one\ntwo\n")
	commit := func() error {
		_, err := h.c.CreateCommit(ctx, client.CommitRequest{Session: id, Message: "m", Mutation: client.Mutation{Actor: "alice"}})
		return err
	}
	grant := func(group string) string {
		r, err := h.c.RequestApproval(ctx, client.ApprovalRequestRequest{Session: id, Reason: "commit", Group: group, Mutation: client.Mutation{Actor: "alice"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.c.Grant(ctx, client.DecideRequest{Session: id, Request: r.Request.ID, Mutation: client.Mutation{Actor: "bob"}}); err != nil {
			t.Fatal(err)
		}
		return r.Request.ID
	}
	leads := grant("leads")
	wantCode(t, "commit with the leads' grant only", commit(), domain.CodeApprovalRequired)
	security := grant("security")
	if err := commit(); err != nil {
		t.Fatalf("commit with both groups' grants: %v", err)
	}
	l, err := h.c.ListCommits(ctx, client.CommitListRequest{Session: id})
	if err != nil || len(l.Commits) != 1 {
		t.Fatalf("commits = %+v, %v", l, err)
	}
	cm := l.Commits[0]
	wantApprovals := []string{leads, security}
	if strings.Join(cm.Approvals, ",") != strings.Join(sorted(wantApprovals), ",") {
		t.Errorf("commit approvals = %v, want %v", cm.Approvals, sorted(wantApprovals))
	}
	if asJSON(cm.Gate) != asJSON(pol) {
		t.Errorf("commit gate = %s, want %s", asJSON(cm.Gate), asJSON(pol))
	}
	h.restart(t)
	if l2, _ := h.c.ListCommits(ctx, client.CommitListRequest{Session: id}); asJSON(l2.Commits[0].Gate) != asJSON(pol) {
		t.Errorf("commit gate after replay = %s", asJSON(l2.Commits[0].Gate))
	}
	if cm.Summary == nil || len(cm.Summary.Files) != 1 || cm.Summary.Files[0].Path != "a.txt" || cm.Summary.Files[0].LinesAdded != 2 {
		t.Errorf("commit summary files = %s, want a.txt +2", asJSON(cm.Summary))
	}
}

func sorted(s []string) []string {
	out := append([]string{}, s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestSummary_FilesPaged(t *testing.T) {
	h := start(t)
	ctx := t.Context()
	id := h.session(t)
	h.write(t, id, "keep.txt", "k\n")
	base, err := h.c.Fork(ctx, client.ForkRequest{Session: id})
	if err != nil {
		t.Fatal(err)
	}
	f := base.Session.ID
	for _, p := range []string{"b.txt", "a.txt", "c/d.txt"} {
		if _, err := h.c.Write(ctx, client.WriteRequest{Session: f, Path: p, Content: []byte("x\ny\n")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.c.Rename(ctx, client.RenameRequest{Session: f, From: "keep.txt", To: "kept.txt"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	req := client.SummaryRequest{Session: f, Limit: 3}
	for {
		r, err := h.c.Summary(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if r.Summary.FilesTotal != 4 {
			t.Fatalf("files_total = %d, want 4", r.Summary.FilesTotal)
		}
		for _, fc := range r.Summary.Files {
			got = append(got, fc.Change+":"+fc.From+">"+fc.Path)
		}
		if r.NextOffset == 0 {
			break
		}
		req.Offset = r.NextOffset
	}
	want := "added:>a.txt added:>b.txt added:>c/d.txt renamed:keep.txt>kept.txt"
	if strings.Join(got, " ") != want {
		t.Fatalf("files = %v, want %s", got, want)
	}
	_, err = h.c.Summary(ctx, client.SummaryRequest{Session: f, Limit: domain.MaxSummaryFiles + 1})
	wantCode(t, "limit over the cap", err, domain.CodeInvalidArgument)
}
