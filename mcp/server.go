package mcp

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// Version is reported to clients as the server's version: that of this
// package's tools and their schemas.
const Version = "1.0.0"

// Options configure a Server.
type Options struct {
	// Session pins the server to one session: tools take no session
	// argument and none reaches another session.
	Session string
	// Actor, when set, is the actor of every request.
	Actor string
	// ServerActor sends no actor at all, so that the service records the
	// identity it authenticated (identity enforced from NATS credentials).
	ServerActor bool
	// Log receives the server's own problems (nil: discarded).
	Log *slog.Logger
	// Run, when set, offers the run_command tool (tools_run.go).
	Run *RunConfig
}

// Server is an MCP server on a Strand client.
type Server struct {
	c    *client.Client
	opts Options
	sdk  *sdk.Server
	log  *slog.Logger

	// mu guards files, the resources listed for a pinned session.
	mu    sync.Mutex
	files map[string]string // path -> content hash
}

// New returns a server on a client. A pinned session must exist.
func New(ctx context.Context, c *client.Client, opts Options) (*Server, error) {
	s := &Server{c: c, opts: opts, log: opts.Log, files: map[string]string{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.Session != "" {
		r, err := c.GetSession(ctx, opts.Session, "")
		if err != nil {
			return nil, fmt.Errorf("session %s: %w", opts.Session, err)
		}
		s.opts.Session = r.Session.ID
	}
	s.sdk = sdk.NewServer(&sdk.Implementation{Name: "strand", Title: "Strand sessions", Version: Version}, &sdk.ServerOptions{
		Instructions: s.instructions(),
		Logger:       s.log,
		Capabilities: &sdk.ServerCapabilities{
			Tools:     &sdk.ToolCapabilities{ListChanged: false},
			Resources: &sdk.ResourceCapabilities{ListChanged: true, Subscribe: true},
		},
		SubscribeHandler:   func(context.Context, *sdk.SubscribeRequest) error { return nil },
		UnsubscribeHandler: func(context.Context, *sdk.UnsubscribeRequest) error { return nil },
	})
	s.addTools()
	s.addResources()
	return s, nil
}

// SDK returns the underlying SDK server.
func (s *Server) SDK() *sdk.Server { return s.sdk }

// Session is the pinned session ("" when not pinned).
func (s *Server) Session() string { return s.opts.Session }

// Run serves one client over a transport (stdio: &sdk.StdioTransport{})
// until it disconnects or ctx ends. A pinned server follows its session's
// head meanwhile (resources.go).
func (s *Server) Run(ctx context.Context, t sdk.Transport) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.Follow(ctx); err != nil {
		return err
	}
	return s.sdk.Run(ctx, t)
}

// HTTPHandler serves the streamable HTTP transport. Call Follow first for
// resource notifications.
func (s *Server) HTTPHandler() http.Handler {
	return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s.sdk }, nil)
}

func (s *Server) instructions() string {
	var b strings.Builder
	b.WriteString("Strand keeps a file tree per session; every change is an event, so nothing is lost and any earlier state can be read (at: a position or checkpoint name) or restored.\n")
	if s.opts.Session != "" {
		fmt.Fprintf(&b, "This server is pinned to session %s: tools take no session argument.\n", s.opts.Session)
	} else {
		b.WriteString("Every tool takes the session id as its session argument; fork a session (session_fork) to work without touching the original.\n")
	}
	b.WriteString("Flow: read and search before you change; edit_file with the hash read_file gave; checkpoint_create before a risky change (session_restore goes back); diff to review your work; review_request to ask a person for approval, review_status to see the answer.")
	return b.String()
}

// actor is who a tool call acts as.
func (s *Server) actor(req *sdk.CallToolRequest) string {
	switch {
	case s.opts.Actor != "":
		return s.opts.Actor
	case s.opts.ServerActor || req == nil:
		return ""
	}
	ci := req.ClientInfo()
	if ci == nil {
		return ""
	}
	return clientActor(ci.Name)
}

// clientActor makes an actor of a client name: trimmed, without control
// characters, at most domain.MaxActorBytes.
func clientActor(name string) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.TrimSpace(name))
	for len(name) > domain.MaxActorBytes {
		name = name[:len(name)-1]
	}
	return strings.ToValidUTF8(name, "")
}

// session picks the session a call acts on: the pinned one, or the
// argument.
func (s *Server) session(arg string) (string, error) {
	if s.opts.Session != "" {
		return s.opts.Session, nil
	}
	if arg == "" {
		return "", &client.Error{Code: domain.CodeInvalidArgument, Message: "session is required: give the id of the session to work in (session_list finds one, session_create makes one)"}
	}
	return arg, nil
}

// addTools registers every tool (fewer on a pinned server).
func (s *Server) addTools() {
	s.addSessionTools()
	s.addFileTools()
	s.addSearchTool()
	s.addHistoryTools()
	s.addReviewTools()
	s.addStateTools()
	s.addRunTool()
}
