package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/keyring"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// Fuzz targets for what the service reads from callers: request bodies,
// subjects, headers, and the --limits file. FuzzDecode and the parsers run
// without a server; FuzzHandle drives the real handlers on an embedded
// JetStream, one process-wide server per fuzz worker. .ci/fuzz runs each
// briefly: go test ./handlers -run '^$' -fuzz '^FuzzDecode$' -fuzztime 5s.

// fakeRequest is a micro.Request without a connection.
type fakeRequest struct {
	subject string
	data    []byte
	headers nats.Header
}

func (r *fakeRequest) Respond([]byte, ...micro.RespondOpt) error               { return nil }
func (r *fakeRequest) RespondJSON(any, ...micro.RespondOpt) error              { return nil }
func (r *fakeRequest) Error(string, string, []byte, ...micro.RespondOpt) error { return nil }
func (r *fakeRequest) Data() []byte                                            { return r.data }
func (r *fakeRequest) Headers() micro.Headers                                  { return micro.Headers(r.headers) }
func (r *fakeRequest) Subject() string                                         { return r.subject }
func (r *fakeRequest) Reply() string                                           { return "" }

// requestTypes returns a new value of every request body type.
func requestTypes() []any {
	return []any{
		&client.AnnotateRequest{}, &client.ApprovalRequestRequest{}, &client.BatchRequest{}, &client.BusRequest{},
		&client.CacheBatchRequest{}, &client.CacheKeysRequest{}, &client.CachePutRequest{}, &client.CacheRequest{},
		&client.CheckpointListRequest{}, &client.CheckpointRequest{}, &client.CommitGetRequest{}, &client.CommitListRequest{},
		&client.CommitRequest{}, &client.CreateSessionRequest{}, &client.DecideRequest{}, &client.DiffRequest{},
		&client.EventsRequest{}, &client.ForkRequest{}, &client.GetSessionRequest{}, &client.HealthRequest{}, &client.JobRequest{},
		&client.ListSessionsRequest{}, &client.LockListRequest{}, &client.LockRequest{}, &client.ManifestRequest{},
		&client.MergeRequest{}, &client.MkdirRequest{}, &client.NoteRequest{}, &client.NotesRequest{}, &client.PendingRequest{},
		&client.PolicyRequest{}, &client.PromoteRequest{}, &client.ReadRequest{}, &client.RemoveRequest{}, &client.RenameRequest{},
		&client.RestoreRequest{}, &client.SessionRequest{}, &client.SourceCreateRequest{}, &client.SourceImportRequest{},
		&client.SourceRequest{}, &client.SourceUploadRequest{}, &client.SummaryRequest{}, &client.SymlinkRequest{},
		&client.SyncRequest{}, &client.TagRequest{}, &client.UploadRequest{}, &client.WriteRequest{}, &client.XattrRequest{},
		&client.SecretRequest{}, &client.SecretListRequest{}, &client.GroupRequest{}, &client.TenantLogRequest{},
		&struct{}{},
	}
}

var decodeSeeds = []string{
	``, `{}`, ` {} `, `[]`, `null`, `"x"`, `{"session":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}`,
	`{"session":1}`, `{"unknown":true}`, `{} {}`, `{"at":12}`, `{"at":"cp-1"}`, `{"at":-1}`,
	`{"at":1e3}`, `{"at":18446744073709551616}`, `{"content":"aGVsbG8="}`, `{"content":"!!"}`,
	`{"ops":[{"op":"write","path":"a","content":"eA=="}]}`, `{"tags":{"a":"b"},"remove":["c"]}`,
	`{"policy":{"commit":2}}`, `{"details":{"x":[1,2,{}]}}`, `{"since":"2024-01-01T00:00:00Z"}`,
	`{"since":"yesterday"}`, `{"request_id":"r1","expected_position":3,"actor":"a","token":"t"}`,
	`{"lines":"1-2"}`, `{"entries":[{"key":"k","value":"dg=="}]}`, `{"tar":{"blob":"00"}}`,
	`{"session":"` + strings.Repeat("A", 10000) + `"}`, `{"a":` + strings.Repeat("[", 10000),
	"{\"session\":\"\xff\"}",
}

// FuzzDecode feeds arbitrary bytes to the strict decoder of every request
// type: it never panics, refuses with invalid_argument, and what it accepts
// survives encoding and decoding again.
func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &call{req: &fakeRequest{data: data}}
		for _, v := range requestTypes() {
			err := c.decode(v)
			if err != nil {
				if domain.ErrorCode(err) != domain.CodeInvalidArgument {
					t.Fatalf("decode %T: code %s, want invalid_argument", v, domain.ErrorCode(err))
				}
				continue
			}
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("decode %T accepted %q, which does not encode again: %v", v, data, err)
			}
			c2 := &call{req: &fakeRequest{data: again}}
			if err := c2.decode(v); err != nil {
				t.Fatalf("decode %T of its own encoding %s: %v", v, again, err)
			}
		}
	})
}

// FuzzParsers covers the small parsers of request fields and subjects.
func FuzzParsers(f *testing.F) {
	for _, s := range []string{
		"", "1", "0", `"09"`, `"007"`, "1-2", "2-1", "-1", "1-", "a-b", "99999999999999999999-1", "cp1",
		"strand.v1.acme.session.create", "strand.v1..x", "strand.v1.*.x", "strand.v1.a.b.c.d",
		"5m", "-5m", "1h30m", "2562047h", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "01arz3ndektsv4rrffq69g5fav",
		"7ZZZZZZZZZZZZZZZZZZZZZZZZZ", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var at client.At
		if err := at.UnmarshalJSON([]byte(s)); err == nil {
			if n, err := strconv.ParseUint(string(at), 10, 64); err != nil {
				_ = domain.ValidCheckpointName(string(at))
			} else if client.AtPosition(n) != at {
				t.Fatalf("At %q: position %d formats as %q", at, n, client.AtPosition(n))
			}
		}
		if a, b, err := parseLines(s); err == nil && s == "" && (a != 0 || b != 0) {
			t.Fatalf("parseLines(\"\") = %d, %d", a, b)
		}
		_, _ = lockTTL(s)
		if id, err := sessionID(s); err == nil {
			if again, err := sessionID(id); err != nil || again != id {
				t.Fatalf("sessionID(%q) = %q, then %q %v", s, id, again, err)
			}
		}
		if tenant, err := tenantOf(s); err == nil {
			if domain.ValidTenant(tenant) != nil || strings.ContainsAny(tenant, ".*>") {
				t.Fatalf("tenantOf(%q) = %q, not a valid tenant", s, tenant)
			}
			_ = endpointOf(s)
		}
		_, _ = parseChunks(strings.Split(s, ","), 4)
	})
}

// FuzzRequestInfo covers the Nats-Request-Info header as the service reads
// it: whatever the value, the answer is an actor equal to the header's user
// or forbidden.
func FuzzRequestInfo(f *testing.F) {
	for _, s := range []string{
		`{"acc":"ACME","user":"alice"}`, `{"acc":"ACME"}`, `{"acc":"acme","user":"x","svc":"STRAND"}`,
		`{"acc":"GLOBEX","user":"bob"}`, `{}`, `null`, `[]`, `{"acc":1}`, `{"user":"a\nb","acc":"ACME"}`,
		`{"acc":"ACME","user":"` + strings.Repeat("u", 300) + `"}`,
	} {
		f.Add(s, "acme")
	}
	f.Fuzz(func(t *testing.T, header, tenant string) {
		for _, a := range []Auth{{Enabled: true}, {Enabled: true, Accounts: map[string][]string{"ACME": {"acme", "other"}}}} {
			r := &fakeRequest{headers: nats.Header{names.HeaderRequestInfo: {header}}}
			actor, err := a.authenticate(r, tenant)
			if err != nil {
				if domain.ErrorCode(err) != domain.CodeForbidden {
					t.Fatalf("authenticate(%q): code %s, want forbidden", header, domain.ErrorCode(err))
				}
				continue
			}
			ri, _ := parseRequestInfo(header)
			if actor != ri.User || validActor(actor) != nil || !a.allows(ri.Account, tenant) {
				t.Fatalf("authenticate(%q, %q) = %q", header, tenant, actor)
			}
		}
	})
}

// FuzzParseLimits covers the --limits file.
func FuzzParseLimits(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"default":{"sessions":10}}`, `{"tenants":{"acme":{"requests_per_second":0.5,"burst":1}}}`,
		`{"default":{"sessions":-1,"bytes_stored":-1,"request_bytes":-1,"requests_per_second":-1,"burst":-1}}`,
		`{"default":{"requests_per_second":1e309}}`, `{"tenants":{"":{}}}`, `{"x":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lc, err := ParseLimits(data)
		if err != nil {
			return
		}
		for _, tenant := range []string{"acme", "other"} {
			l := lc.For(tenant)
			if l.Sessions < -1 || l.BytesStored < -1 || l.RequestBytes < -1 || l.Burst < -1 || (l.RequestsPerSecond < 0 && l.RequestsPerSecond != -1) {
				t.Fatalf("ParseLimits(%s).For(%s) = %+v", data, tenant, l)
			}
		}
		lim := newLimiter(lc, nil, nil, time.Hour, time.Now, nil)
		_ = lim.tenant("acme")
	})
}

// fuzzService is the service FuzzHandle drives, one per fuzz process.
var fuzzService struct {
	svc     *Service
	env     *streamstest.Env
	session string
	byName  map[string]handlerFunc
	names   []string
}

const fuzzTenant = "fuzz"

func startFuzzService(f *testing.F) {
	if fuzzService.svc != nil {
		return
	}
	env := streamstest.Start(f)
	line, err := keyring.NewKeyLine("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	ring, err := keyring.Parse(line)
	if err != nil {
		f.Fatal(err)
	}
	svc := NewService(env.Store, Options{Timeout: 5 * time.Second, MaxInflight: 4, Secrets: ring})
	if err := svc.Start(env.NC); err != nil {
		f.Fatalf("start service: %v", err)
	}
	f.Cleanup(func() {
		_ = svc.Stop()
		fuzzService.svc = nil
	})
	fuzzService.svc, fuzzService.env = svc, env
	fuzzService.byName = map[string]handlerFunc{}
	fuzzService.names = nil
	routes := svc.routes()
	for _, ep := range client.Endpoints {
		name := ep.Path()
		fuzzService.byName[name] = routes[ep]
		fuzzService.names = append(fuzzService.names, name)
	}
	// One session with some content for requests to find.
	var created client.SessionReply
	fuzzCall(f, "session.create", `{}`, &created)
	fuzzService.session = created.Session.ID
	for _, body := range []string{
		`{"session":"@S","path":"a.txt","content":"aGVsbG8K"}`,
		`{"session":"@S","path":"dir/b.txt","content":"d29ybGQK"}`,
		`{"session":"@S","name":"cp1"}`,
	} {
		ep := "fs.write"
		if strings.Contains(body, "cp1") {
			ep = "checkpoint.create"
		}
		fuzzCall(f, ep, body, nil)
	}
}

func fuzzCall(f *testing.F, endpoint, body string, reply any) {
	f.Helper()
	body = strings.ReplaceAll(body, "@S", fuzzService.session)
	r := &fakeRequest{subject: fuzzSubject(endpoint), data: []byte(body), headers: nats.Header{}}
	c := &call{ctx: context.Background(), tenant: fuzzTenant, req: r, svc: fuzzService.svc}
	out, err := fuzzService.byName[endpoint](c)
	if err != nil {
		f.Fatalf("%s %s: %v", endpoint, body, err)
	}
	if reply != nil {
		b, _ := json.Marshal(out)
		_ = json.Unmarshal(b, reply)
	}
}

// fuzzSubject is the subject of an endpoint for the fuzz tenant; a
// trailing scope token (secret.get.*) is the tenant's scope.
func fuzzSubject(endpoint string) string {
	return names.SubjectPrefix + fuzzTenant + "." + strings.Replace(endpoint, "*", names.SecretScopeTenant, 1)
}

// lastSeqs are the last sequences of the streams a rejected request must
// leave alone.
func lastSeqs(t *testing.T) [3]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out [3]uint64
	for i, name := range []string{names.EventStream, names.SourceStream, names.TenantLogStream} {
		s, err := fuzzService.env.Store.JetStream().Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		out[i] = info.State.LastSeq
	}
	return out
}

// FuzzHandle sends arbitrary bodies to every endpoint of a real service
// on an embedded JetStream (the request never crosses NATS; handle runs
// as dispatch would run it). A request never panics or hangs, every failure
// carries one of the closed codes, and a refused request appends nothing.
// "@S" in a body stands for an existing session.
func FuzzHandle(f *testing.F) {
	startFuzzService(f)
	seeds := map[string][]string{
		"session.get":       {`{"session":"@S"}`, `{"session":"@S","at":"cp1"}`, `{"session":"@S","at":2}`},
		"session.tag":       {`{"session":"@S","set":{"k":"v"}}`, `{"session":"@S","remove":[""]}`},
		"session.fork":      {`{"session":"@S","at":"cp1"}`},
		"session.restore":   {`{"session":"@S","to":"cp1"}`, `{"session":"@S","to":0}`},
		"fs.write":          {`{"session":"@S","path":"../x","content":"eA=="}`, `{"session":"@S","path":"a.txt","expected_hash":"absent","content":""}`},
		"fs.read":           {`{"session":"@S","path":"a.txt","offset":-1}`, `{"session":"@S","path":"dir","length":99999999999}`},
		"fs.batch":          {`{"session":"@S","ops":[{"op":"mkdir","path":"d"},{"op":"rename","path":"a.txt","to":"d/a"}]}`},
		"fs.symlink":        {`{"session":"@S","path":"l","target":"../../etc/passwd"}`},
		"fs.rename":         {`{"session":"@S","path":"dir","to":"dir/sub"}`},
		"fs.remove":         {`{"session":"@S","path":"","recursive":true}`},
		"fs.manifest":       {`{"session":"@S","prefix":"dir/","limit":-5}`},
		"fs.xattr.set":      {`{"session":"@S","path":"a.txt","name":"user.x","value":"eA=="}`},
		"events.list":       {`{"session":"@S","types":["x"],"limit":100000}`},
		"checkpoint.create": {`{"session":"@S","name":"","position":999}`},
		"diff":              {`{"from":"@S","to":"@S","from_at":1}`},
		"cache.put":         {`{"session":"@S","key":"k","value":"dg==","ttl":"-1s"}`},
		"cache.batch_put":   {`{"session":"@S","entries":[{"key":"a","value":""},{"key":"a","value":""}]}`},
		"lock.acquire":      {`{"session":"@S","path":"dir","ttl":"9999h","token":"short"}`},
		"review.annotate":   {`{"session":"@S","body":"x","path":"a.txt","lines":"3-1"}`},
		"review.request":    {`{"session":"@S","reason":"commit","details":{"a":1}}`},
		"review.grant":      {`{"session":"@S","request":"nope"}`},
		"commit.create":     {`{"session":"@S","message":""}`},
		"merge":             {`{"from":"@S","into":"@S"}`},
		"source.create":     {`{"name":"s.1"}`},
		"source.import":     {`{"name":"s","dir":"/etc"}`},
		"fs.sync":           {`{"session":"@S","tar":{}}`},
		"bus.publish":       {`{"session":"@S","topic":"a..b","data":"eA=="}`},
		"policy.set":        {`{"policy":{"commit":-1}}`, `{"policy":{"commit:lead s":1}}`},
		"secret.put":        {`{"name":"A","value":"v"}`, `{"session":"@S","name":"B","value":"\u0000"}`, `{"name":"../x","value":""}`},
		"secret.get.*":      {`{"name":"A"}`, `{"session":"@S","name":"A"}`},
		"secret.delete":     {`{"name":"nope"}`},
		"group.set":         {`{"name":"leads","members":["a","a",""]}`, `{"name":"a b","members":[]}`},
		"group.delete":      {`{"name":"nope"}`},
		"tenant.log":        {`{"from":0,"limit":-1}`, `{"limit":100000}`},
	}
	nameList := fuzzService.names
	for i, name := range nameList {
		f.Add(uint8(i), []byte(`{}`))
		f.Add(uint8(i), []byte(`{"session":"@S"}`))
		for _, body := range seeds[name] {
			f.Add(uint8(i), []byte(body))
		}
	}
	known := map[domain.Code]bool{}
	for _, c := range domain.Codes {
		known[c] = true
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		name := nameList[int(which)%len(nameList)]
		body = bytes.ReplaceAll(body, []byte("@S"), []byte(fuzzService.session))
		r := &fakeRequest{subject: fuzzSubject(name), data: body, headers: nats.Header{}}
		before := lastSeqs(t)
		done := make(chan error, 1)
		go func() { done <- fuzzService.svc.handle(r, client.Lookup(name), fuzzService.byName[name]) }()
		var err error
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s %q: no answer after 30s", name, body)
		}
		if err == nil {
			return
		}
		code := domain.ErrorCode(err)
		if !known[code] {
			t.Fatalf("%s %q: code %q is not in the closed set", name, body, code)
		}
		if code == domain.CodeInternal && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s %q: internal error %v", name, body, err)
		}
		// Jobs run after their request is answered, and blobs may be stored
		// before a refusal (garbage the collector removes): only the event
		// and source histories must not move.
		if after := lastSeqs(t); after != before {
			t.Fatalf("%s %q refused with %v, but the streams moved %v -> %v", name, body, err, before, after)
		}
	})
}
