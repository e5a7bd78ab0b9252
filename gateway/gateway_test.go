package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
	"github.com/strand-dev/strand/gateway"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/streams/streamstest"
)

// front is a service on an embedded JetStream and a gateway in front of
// it, served by an httptest server.
type front struct {
	srv *httptest.Server
	gw  *gateway.Gateway
	nc  *client.Client
}

func startFront(t *testing.T) *front {
	t.Helper()
	env := streamstest.Start(t)
	svc := handlers.NewService(env.Store, handlers.Options{})
	if err := svc.Start(env.NC); err != nil {
		t.Fatalf("start service: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := env.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Options{URLs: env.Server.ClientURL(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); _ = gw.Close() })
	return &front{srv: srv, gw: gw, nc: client.NewClient(env.NC, "default")}
}

// post sends a JSON body to a route and decodes the reply into out (when
// not nil); it returns the status and the raw body.
func (f *front) post(t *testing.T, path, body string, out any) (int, []byte) {
	t.Helper()
	resp, err := http.Post(f.srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("POST %s: decode %s: %v", path, data, err)
		}
	}
	return resp.StatusCode, data
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var eb client.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	return eb.Error.Code
}

func (f *front) createSession(t *testing.T) string {
	t.Helper()
	var sr client.SessionReply
	if st, body := f.post(t, "/v1/default/session/create", `{"actor":"alice"}`, &sr); st != http.StatusOK {
		t.Fatalf("session/create: %d %s", st, body)
	}
	return sr.Session.ID
}

func TestGateway_Routes(t *testing.T) {
	f := startFront(t)
	id := f.createSession(t)

	t.Run("SameReplyAsNATS", func(t *testing.T) {
		var viaHTTP client.SessionReply
		if st, body := f.post(t, "/v1/default/session/get", `{"session":"`+id+`"}`, &viaHTTP); st != http.StatusOK {
			t.Fatalf("session/get: %d %s", st, body)
		}
		viaNATS, err := f.nc.GetSession(context.Background(), id, "")
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(viaHTTP)
		b, _ := json.Marshal(viaNATS)
		if !bytes.Equal(a, b) {
			t.Errorf("session/get over HTTP = %s, over NATS = %s", a, b)
		}
	})

	// The MessagePack manifest passes through with its own Content-Type
	// and decodes to the same page as the JSON one.
	t.Run("ManifestMsgpack", func(t *testing.T) {
		var viaJSON client.ManifestReply
		if st, body := f.post(t, "/v1/default/fs/manifest", `{"session":"`+id+`"}`, &viaJSON); st != http.StatusOK {
			t.Fatalf("fs/manifest: %d %s", st, body)
		}
		resp, err := http.Post(f.srv.URL+"/v1/default/fs/manifest", "application/json", strings.NewReader(`{"session":"`+id+`","encoding":"msgpack"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != client.ManifestContentType {
			t.Fatalf("fs/manifest msgpack: %d %s, want 200 %s", resp.StatusCode, ct, client.ManifestContentType)
		}
		viaMsgpack, err := client.DecodeManifest(data)
		if err != nil {
			t.Fatalf("decode msgpack manifest: %v", err)
		}
		a, _ := json.Marshal(viaJSON)
		b, _ := json.Marshal(viaMsgpack)
		if !bytes.Equal(a, b) {
			t.Errorf("manifest as msgpack = %s, as JSON = %s", b, a)
		}
	})

	// Every row of the endpoint table answers over HTTP with the
	// service's own JSON: an empty body is refused by the handler itself
	// (invalid_argument and friends), never by a missing route.
	t.Run("EveryEndpoint", func(t *testing.T) {
		for _, e := range client.Endpoints {
			path := strings.NewReplacer("{tenant}", "default", "{p2}", "tenant").Replace(gateway.Route(e))
			st, body := f.post(t, path, `{"session":"not-an-id"}`, nil)
			if st == http.StatusOK {
				continue // a few endpoints ignore or accept that body
			}
			code := errorCode(t, body)
			if strings.Contains(string(body), "no route") || code == "" {
				t.Errorf("POST %s: %d %s, want an answer of the service", path, st, body)
			}
			if st != client.StatusOf(domain.Code(code)) {
				t.Errorf("POST %s: status %d for code %s, want %d", path, st, code, client.StatusOf(domain.Code(code)))
			}
		}
	})

	cases := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"UnknownSession", "/v1/default/session/get", `{"session":"01J0000000000000000000000Z"}`, 404, "not_found"},
		{"MalformedJSON", "/v1/default/session/get", `{"session":`, 400, "invalid_argument"},
		{"UnknownField", "/v1/default/session/get", `{"sesion":"x"}`, 400, "invalid_argument"},
		{"NotAnObject", "/v1/default/session/get", `[1,2]`, 400, "invalid_argument"},
		{"NULInPath", "/v1/default/fs/read", `{"session":"` + id + `","path":"a\u0000b"}`, 400, "invalid_argument"},
		{"Traversal", "/v1/default/fs/read", `{"session":"` + id + `","path":"../../etc/passwd"}`, 400, "invalid_argument"},
		{"UnknownRoute", "/v1/default/session/explode", `{}`, 404, "not_found"},
		{"BadTenant", "/v1/a.b/session/list", `{}`, 400, "invalid_argument"},
		{"WildcardTenant", "/v1/%3E/session/list", `{}`, 400, "invalid_argument"},
		{"StaleExpectation", "/v1/default/fs/mkdir", `{"session":"` + id + `","path":"d","expected_position":999}`, 409, "conflict"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, body := f.post(t, tc.path, tc.body, nil)
			if st != tc.status || errorCode(t, body) != tc.code {
				t.Errorf("POST %s %s: %d %s, want %d %s", tc.path, tc.body, st, body, tc.status, tc.code)
			}
		})
	}

	t.Run("TooLarge", func(t *testing.T) {
		// One byte over the server's max_payload (8 MiB embedded).
		big := `{"session":"` + id + `","path":"x","content":"` + strings.Repeat("A", 8<<20) + `"}`
		st, body := f.post(t, "/v1/default/fs/write", big, nil)
		if st != http.StatusRequestEntityTooLarge || errorCode(t, body) != "too_large" {
			t.Errorf("8 MiB body: %d %s, want 413 too_large", st, truncate(body))
		}
	})

	t.Run("WrongMethod", func(t *testing.T) {
		resp, err := http.Get(f.srv.URL + "/v1/default/session/list")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Errorf("GET session/list: %d (Allow %q), want 405 (Allow POST)", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

func TestGateway_Files(t *testing.T) {
	f := startFront(t)
	id := f.createSession(t)
	// Larger than several chunks and than NATS's max_payload: it can only
	// travel in pieces.
	content := make([]byte, 3<<20+12345)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	url := f.srv.URL + "/v1/default/files/" + id + "/dir/big.bin"
	req, _ := http.NewRequest(http.MethodPut, url+"?mode=600", bytes.NewReader(content))
	req.Header.Set(names.HeaderActor, "alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var cr client.ChangeReply
	if err := json.NewDecoder(resp.Body).Decode(&cr); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if cr.Size != int64(len(content)) {
		t.Errorf("PUT reply size %d, want %d", cr.Size, len(content))
	}

	resp, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %d %v", resp.StatusCode, err)
	}
	if !bytes.Equal(got, content) {
		t.Errorf("GET returned %d bytes, not the %d written", len(got), len(content))
	}
	if et := resp.Header.Get("ETag"); et != `"`+cr.Hash+`"` {
		t.Errorf("ETag %s, want %q", et, cr.Hash)
	}
	_, read, err := f.nc.ReadAll(context.Background(), id, "dir/big.bin", "")
	if err != nil || read.Mode != 0o600 || read.Hash != cr.Hash {
		t.Errorf("over NATS: mode %o hash %s err %v, want 600 %s", read.Mode, read.Hash, err, cr.Hash)
	}

	t.Run("Small", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, f.srv.URL+"/v1/default/files/"+id+"/small.txt", strings.NewReader("hello\n"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		data, _, err := f.nc.ReadAll(context.Background(), id, "small.txt", "")
		if err != nil || string(data) != "hello\n" {
			t.Errorf("small.txt = %q, %v; want hello", data, err)
		}
	})
	t.Run("StaleExpectedHash", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, f.srv.URL+"/v1/default/files/"+id+"/small.txt?expected_hash="+strings.Repeat("0", 64), strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 409 || errorCode(t, body) != "conflict" {
			t.Errorf("stale expected_hash: %d %s, want 409 conflict", resp.StatusCode, body)
		}
	})
	t.Run("Missing", func(t *testing.T) {
		resp, err := http.Get(f.srv.URL + "/v1/default/files/" + id + "/nope")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET missing file: %d, want 404", resp.StatusCode)
		}
	})
}

func TestGateway_EventsWatch(t *testing.T) {
	f := startFront(t)
	id := f.createSession(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/v1/default/events/watch?session="+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("watch: %d %s", resp.StatusCode, ct)
	}
	events := make(chan client.EventView, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var e client.EventView
				if json.Unmarshal([]byte(data), &e) == nil {
					events <- e
				}
			}
		}
		close(events)
	}()
	next := func() client.EventView {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			return e
		case <-ctx.Done():
			t.Fatal("no event in time")
		}
		return client.EventView{}
	}
	if e := next(); e.Type != "SessionCreated" {
		t.Errorf("first event %s, want SessionCreated (the history first)", e.Type)
	}
	if st, body := f.post(t, "/v1/default/fs/mkdir", `{"session":"`+id+`","path":"live"}`, nil); st != 200 {
		t.Fatalf("mkdir: %d %s", st, body)
	}
	if e := next(); e.Type != "DirectoryMade" {
		t.Errorf("live event %s, want DirectoryMade", e.Type)
	}

	t.Run("UnknownSession", func(t *testing.T) {
		resp, err := http.Get(f.srv.URL + "/v1/default/events/watch?session=01J0000000000000000000000Z")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("watch of an unknown session: %d, want 404 before any stream", resp.StatusCode)
		}
	})
}

// TestGateway_RetryAfter: an unavailable answer carries its retry hint as
// HTTP's Retry-After (seconds) and Strand-Retry-After (milliseconds): the
// gateway's own (no service answers) and the service's (the rate limit,
// passed through with Strand-Not-Applied).
func TestGateway_RetryAfter(t *testing.T) {
	env := streamstest.Start(t)
	gw, err := gateway.New(gateway.Options{URLs: env.Server.ClientURL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); _ = gw.Close() })
	post := func() *http.Response {
		t.Helper()
		resp, err := http.Post(srv.URL+"/v1/acme/session/create", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := post()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || resp.Header.Get(names.HeaderRetryAfter) != "1000" {
		t.Errorf("no service: %s, Retry-After %q, %s %q; want 503, 1, 1000", resp.Status,
			resp.Header.Get("Retry-After"), names.HeaderRetryAfter, resp.Header.Get(names.HeaderRetryAfter))
	}

	svc := handlers.NewService(env.Store, handlers.Options{Limits: &handlers.LimitsConfig{
		Tenants: map[string]handlers.Limits{"acme": {RequestsPerSecond: 0.1, Burst: 1}}}})
	if err := svc.Start(env.NC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := env.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	if resp := post(); resp.StatusCode != http.StatusOK {
		t.Fatalf("first request within the burst: %s", resp.Status)
	}
	resp = post()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || resp.Header.Get(names.HeaderNotApplied) != "true" {
		t.Errorf("rate limited: %s, Retry-After %q, %s %q; want 503 with both", resp.Status,
			resp.Header.Get("Retry-After"), names.HeaderNotApplied, resp.Header.Get(names.HeaderNotApplied))
	}
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 || n > 10 {
		t.Errorf("rate limited at 0.1/s: Retry-After %q, want 1..10 seconds", resp.Header.Get("Retry-After"))
	}
}
