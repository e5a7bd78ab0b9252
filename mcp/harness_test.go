package mcp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/handlers"
	"github.com/strand-dev/strand/mcp"
	"github.com/strand-dev/strand/names"
	"github.com/strand-dev/strand/projections"
	"github.com/strand-dev/strand/streams/streamstest"
)

const tenant = "acme"

// env is a Strand service on an embedded JetStream and a client of it.
type env struct {
	c *client.Client
}

func startEnv(t *testing.T) *env {
	t.Helper()
	return startEnvWith(t, handlers.Options{})
}

// startEnvWith starts the env with service options (the session lister is
// always the projection's).
func startEnvWith(t *testing.T, opts handlers.Options) *env {
	t.Helper()
	e := streamstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	views, err := projections.OpenSessions(ctx, e.Store.JetStream(), names.EventStream, names.EventFilter("*"), 1, nil)
	if err != nil {
		t.Fatalf("open session views: %v", err)
	}
	if err := views.Start(ctx); err != nil {
		t.Fatalf("start session views: %v", err)
	}
	t.Cleanup(views.Stop)
	opts.Lister = sessionLister{views}
	svc := handlers.NewService(e.Store, opts)
	if err := svc.Start(e.NC); err != nil {
		t.Fatalf("start service: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return &env{c: client.NewClient(e.NC, tenant)}
}

// transports are the ways a test connects: stdio (newline-delimited
// JSON-RPC over pipes, as an agent that starts `strand mcp` speaks it) and
// streamable HTTP.
var transports = []string{"stdio", "http"}

// connect starts an MCP server on the env and connects the SDK's own
// client to it over a transport, as client name.
func (e *env) connect(t *testing.T, transport, name string, opts mcp.Options, copts *sdk.ClientOptions) (*sdk.ClientSession, *mcp.Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, err := mcp.New(ctx, e.c, opts)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	client := sdk.NewClient(&sdk.Implementation{Name: name, Version: "1.0"}, copts)
	var ct sdk.Transport
	switch transport {
	case "stdio":
		cr, sw := io.Pipe()
		sr, cw := io.Pipe()
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx, &sdk.IOTransport{Reader: sr, Writer: sw}) }()
		t.Cleanup(func() {
			cancel()
			_ = cw.Close()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("server did not stop")
			}
		})
		ct = &sdk.IOTransport{Reader: cr, Writer: cw}
	case "http":
		if err := srv.Follow(ctx); err != nil {
			t.Fatalf("follow: %v", err)
		}
		hs := httptest.NewServer(srv.HTTPHandler())
		t.Cleanup(hs.Close)
		ct = &sdk.StreamableClientTransport{Endpoint: hs.URL, MaxRetries: -1}
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	cs, err := client.Connect(ctx, ct, nil)
	if err != nil {
		t.Fatalf("connect over %s: %v", transport, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs, srv
}

// callOK calls a tool, fails the test on a tool error, and decodes the
// structured result into out (when not nil). It returns the text result.
func callOK(t *testing.T, cs *sdk.ClientSession, name string, args map[string]any, out any) string {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s(%v): %v", name, args, err)
	}
	text := resultText(res)
	if res.IsError {
		t.Fatalf("%s(%v): tool error %s", name, args, text)
	}
	if out != nil {
		b, err := json.Marshal(res.StructuredContent)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: structured content %s: %v", name, b, err)
		}
	}
	return text
}

// callErr calls a tool that must fail with a tool error of code, whose text
// says what to do next.
func callErr(t *testing.T, cs *sdk.ClientSession, name string, args map[string]any, code string) string {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s(%v): protocol error %v, want a tool error %s", name, args, err, code)
	}
	text := resultText(res)
	if !res.IsError {
		t.Fatalf("%s(%v): got success %q, want tool error %s", name, args, text, code)
	}
	if !strings.HasPrefix(text, code+": ") || !strings.Contains(text, "\nNext: ") {
		t.Fatalf("%s(%v): got error %q, want %q and a next step", name, args, text, code+": ...")
	}
	return text
}

func resultText(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// sessionLister serves session.list from the session-views projection, as
// cmd/strand wires it (the tests cannot import cmd).
type sessionLister struct{ *projections.Sessions }

func (l sessionLister) ListSessions(ctx context.Context, tenant string, req client.ListSessionsRequest) (client.ListSessionsReply, error) {
	views, next, err := l.List(ctx, tenant, projections.ListFilter{Status: req.Status, Tags: req.Tags, After: req.Cursor, Limit: req.Limit})
	if err != nil {
		return client.ListSessionsReply{}, err
	}
	out := client.ListSessionsReply{Sessions: []client.SessionView{}, NextCursor: next}
	for _, v := range views {
		out.Sessions = append(out.Sessions, client.SessionView{ID: v.ID, Tenant: v.Tenant, Status: v.Status, Tags: v.Tags, Position: v.Position, Root: v.Root})
	}
	return out, nil
}
