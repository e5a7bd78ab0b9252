package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams"
)

// tenancy is an embedded server run with a NATS configuration that has
// accounts, the service connected in-process as the STRAND account, and
// tenants that connect over TCP with their own credentials.
type tenancy struct {
	emb   *streams.Embedded
	nc    *nats.Conn // the service's connection (account STRAND)
	store *streams.Store
	svc   *handlers.Service
}

func startTenancy(t *testing.T, config string, opts handlers.Options) *tenancy {
	t.Helper()
	emb, err := streams.StartEmbedded(streams.EmbeddedOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:-1", ConfigFile: config})
	if err != nil {
		t.Fatalf("start embedded server with %s: %v", config, err)
	}
	t.Cleanup(emb.Shutdown)
	if !emb.HasAccounts() {
		t.Fatalf("%s: HasAccounts() = false, want true", config)
	}
	nc, err := emb.Connect()
	if err != nil {
		t.Fatalf("service connect: %v", err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := streams.Open(ctx, nc, streams.Config{}, nil)
	if err != nil {
		t.Fatalf("open store in account STRAND: %v", err)
	}
	t.Cleanup(store.Close)
	opts.Auth.Enabled = true
	svc := handlers.NewService(store, opts)
	if err := svc.Start(nc); err != nil {
		t.Fatalf("start service: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return &tenancy{emb: emb, nc: nc, store: store, svc: svc}
}

// natsErrors collects a connection's asynchronous errors (permission
// violations arrive that way).
type natsErrors struct {
	mu   sync.Mutex
	errs []error
}

func (e *natsErrors) add(_ *nats.Conn, _ *nats.Subscription, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, err)
}

func (e *natsErrors) permissionViolations(contains string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, err := range e.errs {
		if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), contains) {
			n++
		}
	}
	return n
}

// connect opens a TCP connection as a user.
func (e *tenancy) connect(t *testing.T, user, password string) (*nats.Conn, *natsErrors) {
	t.Helper()
	errs := &natsErrors{}
	nc, err := nats.Connect(e.emb.ClientURL(), nats.UserInfo(user, password), nats.Name("test-"+user),
		nats.ErrorHandler(errs.add))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

// served is the number of requests the service's endpoints received, from
// micro's own statistics ($SRV.STATS), asked in the service's account.
func (e *tenancy) served(t *testing.T) uint64 {
	t.Helper()
	msg, err := e.nc.Request("$SRV.STATS."+names.ServiceName, nil, 5*time.Second)
	if err != nil {
		t.Fatalf("micro stats: %v", err)
	}
	var stats struct {
		Endpoints []struct {
			NumRequests uint64 `json:"num_requests"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal(msg.Data, &stats); err != nil {
		t.Fatalf("micro stats: %v", err)
	}
	var n uint64
	for _, ep := range stats.Endpoints {
		n += ep.NumRequests
	}
	return n
}

// eventCount is the number of events of a tenant in the event stream.
func (e *tenancy) eventCount(t *testing.T, tenant string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := e.store.JetStream().Stream(ctx, names.EventStream)
	if err != nil {
		t.Fatalf("event stream: %v", err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(names.EventFilter(tenant)))
	if err != nil {
		t.Fatalf("event stream info: %v", err)
	}
	var n uint64
	for _, k := range info.State.Subjects {
		n += k
	}
	return n
}

// deployPasswords sets the environment that deploy/auth/strand.conf reads
// its passwords from and returns them by user.
func deployPasswords(t *testing.T) map[string]string {
	pw := map[string]string{}
	for user, env := range map[string]string{
		"strand": "STRAND_SERVICE_PASSWORD", "alice": "ACME_ALICE_PASSWORD",
		"bob": "ACME_BOB_PASSWORD", "carol": "GLOBEX_CAROL_PASSWORD",
	} {
		pw[user] = "pw-" + user + "-" + fmt.Sprint(time.Now().UnixNano())
		t.Setenv(env, pw[user])
	}
	return pw
}

// TestTenancy_DeployConfig runs the service with deploy/auth/strand.conf,
// the configuration operators use, and shows that a tenant can reach
// nothing of another tenant, and that NATS (not the service) refuses.
func TestTenancy_DeployConfig(t *testing.T) {
	pw := deployPasswords(t)
	env := startTenancy(t, filepath.Join("..", "deploy", "auth", "strand.conf"), handlers.Options{})
	ctx := t.Context()

	aliceNC, aliceErrs := env.connect(t, "alice", pw["alice"])
	bobNC, _ := env.connect(t, "bob", pw["bob"])
	carolNC, _ := env.connect(t, "carol", pw["carol"])
	alice := client.NewClient(aliceNC, "acme")
	bob := client.NewClient(bobNC, "acme")
	carol := client.NewClient(carolNC, "globex")

	t.Run("WrongPasswordRefused", func(t *testing.T) {
		if nc, err := nats.Connect(env.emb.ClientURL(), nats.UserInfo("alice", "not-"+pw["alice"])); err == nil {
			nc.Close()
			t.Fatal("connect with a wrong password: no error")
		}
	})

	// Each tenant works in its own tenant.
	acmeSess, err := alice.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatalf("alice creates an acme session: %v", err)
	}
	if acmeSess.Session.Owner != "alice" {
		t.Errorf("acme session owner %q, want alice (the authenticated user)", acmeSess.Session.Owner)
	}
	globexSess, err := carol.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatalf("carol creates a globex session: %v", err)
	}
	if _, err := carol.Write(ctx, client.WriteRequest{Session: globexSess.Session.ID, Path: "secret.txt", Content: []byte("globex secret")}); err != nil {
		t.Fatalf("carol writes: %v", err)
	}

	t.Run("OtherTenantRefusedByNATS", func(t *testing.T) {
		before, globexEvents := env.served(t), env.eventCount(t, "globex")
		id := globexSess.Session.ID
		var wg sync.WaitGroup
		for _, tc := range []struct {
			endpoint string
			body     any
		}{
			{"session.get", client.GetSessionRequest{Session: id}},
			{"session.list", client.ListSessionsRequest{}},
			{"fs.read", client.ReadRequest{Session: id, Path: "secret.txt"}},
			{"fs.manifest", client.ManifestRequest{Session: id}},
			{"events.list", client.EventsRequest{Session: id}},
			{"fs.write", client.WriteRequest{Session: id, Path: "x", Content: []byte("acme was here")}},
			{"session.delete", client.SessionRequest{Session: id}},
			{"session.create", client.CreateSessionRequest{}},
		} {
			body, _ := json.Marshal(tc.body)
			wg.Go(func() {
				_, err := aliceNC.Request("strand.v1.globex."+tc.endpoint, body, 500*time.Millisecond)
				// alice may publish only on strand.v1.acme.>: the server
				// drops the request and reports a permissions violation,
				// so the request itself ends without an answer.
				if err == nil {
					t.Errorf("alice -> strand.v1.globex.%s: answered, want refused by NATS", tc.endpoint)
				}
			})
		}
		wg.Wait()
		eventually(t, "permission violations reported to alice", func() string {
			if n := aliceErrs.permissionViolations("strand.v1.globex."); n < 8 {
				return fmt.Sprintf("%d permission violations for strand.v1.globex.*, want 8", n)
			}
			return ""
		})
		if after := env.served(t); after != before {
			t.Errorf("service received %d requests during the attempts, want 0: the refusal must come from NATS", after-before)
		}
		if got := env.eventCount(t, "globex"); got != globexEvents {
			t.Errorf("globex events %d -> %d, want unchanged", globexEvents, got)
		}
	})

	t.Run("NoSubscriptionToOtherTenant", func(t *testing.T) {
		got := make(chan *nats.Msg, 16)
		for _, subj := range []string{"strand.watch.globex.>", "strand.bus.globex.>", "strand.v1.globex.>", "strand.ev.>", ">"} {
			if _, err := aliceNC.ChanSubscribe(subj, got); err != nil {
				t.Fatalf("subscribe %s: %v", subj, err)
			}
		}
		if err := aliceNC.Flush(); err != nil {
			t.Fatalf("flush: %v", err)
		}
		eventually(t, "subscribe violations", func() string {
			if n := aliceErrs.permissionViolations("Subscription"); n < 5 {
				return fmt.Sprintf("%d subscription violations, want 5", n)
			}
			return ""
		})
		// Carol watches her own tenant: once she has the event's live copy
		// and the bus message, the server has routed both, and a round
		// trip on alice's connection after that brings anything it sent
		// her before it.
		seen := make(chan *nats.Msg, 16)
		for _, subj := range []string{names.WatchSubject("globex", globexSess.Session.ID), "strand.bus.globex.>"} {
			sub, err := carolNC.ChanSubscribe(subj, seen)
			if err != nil {
				t.Fatalf("carol subscribes %s: %v", subj, err)
			}
			defer sub.Unsubscribe() //nolint:errcheck
		}
		if err := carolNC.Flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := carol.Write(ctx, client.WriteRequest{Session: globexSess.Session.ID, Path: "more.txt", Content: []byte("more secrets")}); err != nil {
			t.Fatalf("carol writes: %v", err)
		}
		if _, err := carol.BusPublish(ctx, client.BusRequest{Session: globexSess.Session.ID, Topic: "plans", Data: []byte("globex plans")}); err != nil {
			t.Fatalf("carol publishes on the bus: %v", err)
		}
		for n := 0; n < 2; n++ {
			select {
			case <-seen:
			case <-time.After(10 * time.Second):
				t.Fatalf("carol saw %d of her 2 messages (the live event and the bus message)", n)
			}
		}
		if err := aliceNC.Flush(); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			t.Errorf("alice received %s from globex", m.Subject)
		default:
		}
	})

	t.Run("NoJetStreamAPI", func(t *testing.T) {
		for _, subj := range []string{"$JS.API.STREAM.INFO." + names.EventStream, "$JS.API.DIRECT.GET." + names.EventStream, "$KV.strand_session_views.>"} {
			if _, err := aliceNC.Request(subj, nil, 500*time.Millisecond); err == nil {
				t.Errorf("alice -> %s: answered, want refused", subj)
			}
		}
	})

	t.Run("OwnLiveTail", func(t *testing.T) {
		live := make(chan *nats.Msg, 16)
		sub, err := aliceNC.ChanSubscribe(names.WatchSubject("acme", acmeSess.Session.ID), live)
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		defer sub.Unsubscribe()
		if err := aliceNC.Flush(); err != nil {
			t.Fatalf("flush: %v", err)
		}
		if _, err := alice.Write(ctx, client.WriteRequest{Session: acmeSess.Session.ID, Path: "a.txt", Content: []byte("a")}); err != nil {
			t.Fatalf("alice writes: %v", err)
		}
		select {
		case <-live:
		case <-time.After(5 * time.Second):
			t.Fatal("alice's live tail of her own session got nothing")
		}
	})

	t.Run("ForgedRequestInfoReplaced", func(t *testing.T) {
		forged := `{"acc":"GLOBEX","user":"carol"}`
		bobInfo := `{"acc":"ACME","user":"bob"}`
		for name, hdr := range map[string]nats.Header{
			"OtherAccount": {names.HeaderRequestInfo: {forged}},
			"SameAccount":  {names.HeaderRequestInfo: {bobInfo}},
			"Twice":        {names.HeaderRequestInfo: {bobInfo, bobInfo}},
			"LowerCase":    {strings.ToLower(names.HeaderRequestInfo): {bobInfo}},
		} {
			t.Run(name, func(t *testing.T) {
				m := nats.NewMsg(names.Subject("acme", "session", "create"))
				m.Header = hdr
				m.Data = []byte(`{}`)
				resp, err := aliceNC.RequestMsg(m, 5*time.Second)
				if err != nil {
					t.Fatalf("request: %v", err)
				}
				var r client.SessionReply
				if err := json.Unmarshal(resp.Data, &r); err != nil || r.Session.ID == "" {
					t.Fatalf("reply %s: want a session", resp.Data)
				}
				if r.Session.Owner != "alice" || r.Session.Tenant != "acme" {
					t.Errorf("session created with a forged %s: owner %q tenant %q, want alice in acme", names.HeaderRequestInfo, r.Session.Owner, r.Session.Tenant)
				}
				ev, err := alice.Events(ctx, client.EventsRequest{Session: r.Session.ID})
				if err != nil || len(ev.Events) == 0 {
					t.Fatalf("events: %v", err)
				}
				if got := ev.Events[0].Actor; got != "alice" {
					t.Errorf("event actor %q, want alice", got)
				}
			})
		}
	})

	t.Run("ClaimedActor", func(t *testing.T) {
		id := acmeSess.Session.ID
		if _, err := alice.Write(ctx, client.WriteRequest{Session: id, Path: "doc.md", Content: []byte("draft")}); err != nil {
			t.Fatalf("write: %v", err)
		}
		req, err := alice.RequestApproval(ctx, client.ApprovalRequestRequest{Session: id, Reason: "commit"})
		if err != nil {
			t.Fatalf("alice requests approval: %v", err)
		}
		if req.Request.Requester != "alice" {
			t.Fatalf("requester %q, want alice", req.Request.Requester)
		}
		reqID := req.Request.ID
		unchanged := func(what string, fn func() error, want domain.Code) {
			t.Helper()
			before := env.eventCount(t, "acme")
			wantCode(t, what, fn(), want)
			if after := env.eventCount(t, "acme"); after != before {
				t.Errorf("%s: acme events %d -> %d, want unchanged", what, before, after)
			}
		}
		unchanged("alice grants claiming actor bob in the body", func() error {
			_, err := alice.Grant(ctx, client.DecideRequest{Mutation: client.Mutation{Actor: "bob"}, Session: id, Request: reqID})
			return err
		}, domain.CodeForbidden)
		unchanged("alice grants claiming bob in Strand-Actor", func() error {
			impostor := client.NewClient(aliceNC, "acme")
			impostor.Actor = "bob"
			_, err := impostor.Grant(ctx, client.DecideRequest{Session: id, Request: reqID})
			return err
		}, domain.CodeForbidden)
		unchanged("alice grants her own request", func() error {
			_, err := alice.Grant(ctx, client.DecideRequest{Session: id, Request: reqID})
			return err
		}, domain.CodeForbidden)
		// Naming oneself is allowed. (The write makes the request stale;
		// alice asks again.)
		self := client.NewClient(aliceNC, "acme")
		self.Actor = "alice"
		if _, err := self.Write(ctx, client.WriteRequest{Session: id, Path: "note.md", Content: []byte("x")}); err != nil {
			t.Fatalf("alice names herself: %v", err)
		}
		req, err = alice.RequestApproval(ctx, client.ApprovalRequestRequest{Session: id, Reason: "commit"})
		if err != nil {
			t.Fatalf("alice requests approval again: %v", err)
		}
		got, err := bob.Grant(ctx, client.DecideRequest{Session: id, Request: req.Request.ID})
		if err != nil {
			t.Fatalf("bob grants: %v", err)
		}
		if len(got.Request.Grants) != 1 || got.Request.Grants[0].Actor != "bob" {
			t.Errorf("grants %+v, want one by bob", got.Request.Grants)
		}
	})

	t.Run("ServiceAccountHasNoIdentity", func(t *testing.T) {
		// A connection inside STRAND reaches the endpoints without an
		// import, so without Nats-Request-Info: refused.
		inside := client.NewClient(env.nc, "acme")
		inside.Actor = "alice"
		_, err := inside.CreateSession(ctx, client.CreateSessionRequest{})
		wantCode(t, "request from the service's own account", err, domain.CodeForbidden)
	})
}

// accountsOnlyConfig has accounts and imports but no per-user permissions:
// the account boundary alone must keep tenants apart.
const accountsOnlyConfig = `
accounts {
  STRAND {
    jetstream: enabled
    exports: [
      {service: "strand.v1.acme.>", accounts: [ACME]}
      {stream: "strand.watch.acme.>", accounts: [ACME]}
      {stream: "strand.bus.acme.>", accounts: [ACME]}
      {service: "strand.v1.globex.>", accounts: [GLOBEX]}
      {stream: "strand.watch.globex.>", accounts: [GLOBEX]}
      {stream: "strand.bus.globex.>", accounts: [GLOBEX]}
    ]
  }
  ACME {
    users: [{user: mallory, password: mallory-pw}]
    imports: [
      {service: {account: STRAND, subject: "strand.v1.acme.>"}, share: true}
      {stream: {account: STRAND, subject: "strand.watch.acme.>"}}
      {stream: {account: STRAND, subject: "strand.bus.acme.>"}}
    ]
  }
  GLOBEX {
    users: [{user: carol, password: carol-pw}]
    imports: [
      {service: {account: STRAND, subject: "strand.v1.globex.>"}, share: true}
      {stream: {account: STRAND, subject: "strand.watch.globex.>"}}
      {stream: {account: STRAND, subject: "strand.bus.globex.>"}}
    ]
  }
  # Imports without share: the service learns the account, not the user.
  INITECH {
    users: [{user: peter, password: peter-pw}]
    imports: [
      {service: {account: STRAND, subject: "strand.v1.initech.>"}}
    ]
  }
}
`

// TestTenancy_AccountsAlone shows that a user with no permissions at all
// still reaches nothing of another tenant: the request has no responder in
// its account, and subscribing to everything yields only its own tenant.
func TestTenancy_AccountsAlone(t *testing.T) {
	config := strings.Replace(accountsOnlyConfig, `{service: "strand.v1.globex.>", accounts: [GLOBEX]}`,
		`{service: "strand.v1.globex.>", accounts: [GLOBEX]}
      {service: "strand.v1.initech.>", accounts: [INITECH]}`, 1)
	// An nkey user in ACME: the actor is its public key.
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	config = strings.Replace(config, `users: [{user: mallory, password: mallory-pw}]`,
		`users: [{user: mallory, password: mallory-pw}, {nkey: `+pub+`}]`, 1)
	path := filepath.Join(t.TempDir(), "accounts.conf")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	env := startTenancy(t, path, handlers.Options{})
	ctx := t.Context()
	malloryNC, _ := env.connect(t, "mallory", "mallory-pw")
	carolNC, _ := env.connect(t, "carol", "carol-pw")
	mallory := client.NewClient(malloryNC, "acme")
	carol := client.NewClient(carolNC, "globex")

	own, err := mallory.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatalf("mallory creates an acme session: %v", err)
	}
	theirs, err := carol.CreateSession(ctx, client.CreateSessionRequest{})
	if err != nil {
		t.Fatalf("carol creates a globex session: %v", err)
	}

	before := env.served(t)
	for _, endpoint := range []string{"session.get", "session.list", "fs.read", "fs.write", "events.list"} {
		body, _ := json.Marshal(map[string]string{"session": theirs.Session.ID})
		_, err := malloryNC.Request("strand.v1.globex."+endpoint, body, 2*time.Second)
		if !errors.Is(err, nats.ErrNoResponders) {
			t.Errorf("mallory -> strand.v1.globex.%s: %v, want %v", endpoint, err, nats.ErrNoResponders)
		}
	}
	if after := env.served(t); after != before {
		t.Errorf("service received %d requests, want 0", after-before)
	}
	// JetStream is not enabled in ACME: the API answers with an error, or
	// not at all; never with the event stream.
	if m, err := malloryNC.Request("$JS.API.STREAM.INFO."+names.EventStream, nil, 2*time.Second); err == nil && !strings.Contains(string(m.Data), `"error"`) {
		t.Errorf("mallory read the event stream's info: %s", m.Data)
	}

	// Activity in both tenants: mallory's catch-all sees only acme. (It
	// starts after her requests, which it would otherwise answer itself.)
	everything := make(chan *nats.Msg, 64)
	if _, err := malloryNC.ChanSubscribe(">", everything); err != nil {
		t.Fatalf("subscribe >: %v", err)
	}
	if err := malloryNC.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Write(ctx, client.WriteRequest{Session: theirs.Session.ID, Path: "s.txt", Content: []byte("globex")}); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.BusPublish(ctx, client.BusRequest{Session: theirs.Session.ID, Topic: "t", Data: []byte("globex bus")}); err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.Write(ctx, client.WriteRequest{Session: own.Session.ID, Path: "m.txt", Content: []byte("acme")}); err != nil {
		t.Fatal(err)
	}
	sawOwn := false
	deadline := time.After(3 * time.Second)
	for !sawOwn {
		select {
		case m := <-everything:
			if strings.Contains(m.Subject, "globex") || strings.Contains(string(m.Data), "globex") {
				t.Errorf("mallory received %s: %q", m.Subject, m.Data)
			}
			if strings.HasPrefix(m.Subject, "strand.watch.acme.") {
				sawOwn = true
			}
		case <-deadline:
			t.Fatal("mallory's catch-all subscription saw not even her own tenant's live tail")
		}
	}

	t.Run("NkeyUser", func(t *testing.T) {
		nc, err := nats.Connect(env.emb.ClientURL(), nats.Nkey(pub, kp.Sign))
		if err != nil {
			t.Fatalf("connect with nkey: %v", err)
		}
		defer nc.Close()
		r, err := client.NewClient(nc, "acme").CreateSession(ctx, client.CreateSessionRequest{})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if r.Session.Owner != pub {
			t.Errorf("owner %q, want the nkey %q", r.Session.Owner, pub)
		}
	})

	t.Run("ImportWithoutShare", func(t *testing.T) {
		peterNC, _ := env.connect(t, "peter", "peter-pw")
		_, err := client.NewClient(peterNC, "initech").CreateSession(ctx, client.CreateSessionRequest{})
		wantCode(t, "request through an import without share", err, domain.CodeForbidden)
	})
}
