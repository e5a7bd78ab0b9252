package mcp

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// URIScheme names the session's files as resources:
// strand://SESSION/PATH, or strand://SESSION@AT/PATH for a past position
// or checkpoint.
const URIScheme = "strand"

// maxResources bounds the files a pinned session lists as resources (one
// manifest page); they can all be read by URI whatever the bound.
const maxResources = client.MaxManifestLimit

// URI is the resource URI of a path of a session (at may be empty).
func URI(session, at, p string) string {
	if at != "" {
		session += "@" + at
	}
	return URIScheme + "://" + session + "/" + strings.TrimPrefix(p, "/")
}

// parseURI splits a strand:// URI into session, at and path.
func parseURI(uri string) (session, at, p string, err error) {
	rest, ok := strings.CutPrefix(uri, URIScheme+"://")
	if !ok {
		return "", "", "", invalid("resource %q is not a %s:// URI", uri, URIScheme)
	}
	host, p, ok := strings.Cut(rest, "/")
	if !ok || p == "" {
		return "", "", "", invalid("resource %q names no file: use %s", uri, URI("SESSION", "", "PATH"))
	}
	session, at, _ = strings.Cut(host, "@")
	return session, at, p, nil
}

func (s *Server) addResources() {
	s.sdk.AddResourceTemplate(&sdk.ResourceTemplate{
		Name:        "file",
		Title:       "A file of a session",
		Description: "A file of a session at its head, or at a past position or checkpoint with @AT: strand://SESSION/PATH, strand://SESSION@AT/PATH.",
		URITemplate: URIScheme + "://{session}/{+path}",
	}, s.readResource)
	s.sdk.AddResourceTemplate(&sdk.ResourceTemplate{
		Name:        "file-at",
		Title:       "A file of a session in the past",
		Description: "A file of a session at a position or checkpoint: strand://SESSION@AT/PATH.",
		URITemplate: URIScheme + "://{session}@{at}/{+path}",
	}, s.readResource)
}

// readResource reads a file resource.
func (s *Server) readResource(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
	session, at, p, err := parseURI(req.Params.URI)
	if err != nil {
		return nil, toolError(err)
	}
	if s.opts.Session != "" && !strings.EqualFold(session, s.opts.Session) {
		return nil, toolError(&client.Error{Code: domain.CodeForbidden, Message: "this server is pinned to session " + s.opts.Session})
	}
	data, rr, err := s.load(ctx, session, p, client.At(at))
	if err != nil {
		if he, ok := err.(*client.Error); ok && he.Code == domain.CodeNotFound {
			return nil, sdk.ResourceNotFoundError(req.Params.URI)
		}
		return nil, toolError(err)
	}
	rc := &sdk.ResourceContents{URI: req.Params.URI, MIMEType: mimeType(rr.Path)}
	if utf8.Valid(data) && bytes.IndexByte(data, 0) < 0 {
		rc.Text = string(data)
	} else {
		rc.Blob = data
		if rc.MIMEType == "" || strings.HasPrefix(rc.MIMEType, "text/") {
			rc.MIMEType = "application/octet-stream"
		}
	}
	return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{rc}}, nil
}

func mimeType(p string) string {
	t := mime.TypeByExtension(path.Ext(p))
	if t == "" {
		return "text/plain"
	}
	return t
}

// Follow lists the pinned session's files as resources and keeps them in
// step with its head until ctx ends: a file added or removed changes the
// list (notifications/resources/list_changed), a file whose content
// changes notifies its subscribers (notifications/resources/updated). It
// returns once the first listing is done; without a pinned session it
// does nothing.
func (s *Server) Follow(ctx context.Context) error {
	if s.opts.Session == "" {
		return nil
	}
	head, err := s.sync(ctx)
	if err != nil {
		return err
	}
	moved := make(chan struct{}, 1)
	go s.tail(ctx, head+1, moved)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-moved:
				if _, err := s.sync(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("mcp: follow the session's files", "session", s.opts.Session, "err", err)
				}
			}
		}
	}()
	return nil
}

// tail watches the session's events from a position and signals moved,
// coalescing, at each one. It starts again after an error (the service
// restarting, say) until ctx ends.
func (s *Server) tail(ctx context.Context, from uint64, moved chan<- struct{}) {
	for ctx.Err() == nil {
		err := s.c.Watch(ctx, s.opts.Session, from, func(e client.EventView) error {
			from = e.Position + 1
			select {
			case moved <- struct{}{}:
			default:
			}
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("mcp: watch the session", "session", s.opts.Session, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// sync makes the resource list the files of the session's head, and
// notifies the subscribers of files that changed. It returns the head's
// position.
func (s *Server) sync(ctx context.Context) (uint64, error) {
	m, err := s.c.Manifest(ctx, client.ManifestRequest{Session: s.opts.Session, Limit: maxResources})
	if err != nil {
		return 0, fmt.Errorf("list the files of %s: %w", s.opts.Session, err)
	}
	now := map[string]string{}
	for _, e := range m.Entries {
		if e.Kind == "file" {
			now[e.Path] = e.Hash
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var gone, changed []string
	for p, h := range s.files {
		switch nh, ok := now[p]; {
		case !ok:
			gone = append(gone, URI(s.opts.Session, "", p))
		case nh != h:
			changed = append(changed, URI(s.opts.Session, "", p))
		}
	}
	if len(gone) > 0 {
		s.sdk.RemoveResources(gone...)
	}
	for _, e := range m.Entries {
		if h, ok := s.files[e.Path]; e.Kind != "file" || (ok && h == e.Hash) {
			continue
		}
		s.sdk.AddResource(&sdk.Resource{URI: URI(s.opts.Session, "", e.Path), Name: e.Path, MIMEType: mimeType(e.Path), Size: e.Size}, s.readResource)
	}
	s.files = now
	for _, uri := range changed {
		if err := s.sdk.ResourceUpdated(ctx, &sdk.ResourceUpdatedNotificationParams{URI: uri}); err != nil {
			return 0, fmt.Errorf("notify %s: %w", uri, err)
		}
	}
	return m.Position, nil
}
