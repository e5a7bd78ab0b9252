package mount

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// control is a running mount's control socket: a small HTTP server on a
// unix socket in the state folder, named after the mount point, that
// `strand mount --status`, `strand unmount` and `strand mount --resolve`
// talk to. Only the mount's user can reach it (the folder is 0700).
type control struct {
	path string
	srv  *http.Server
}

func startControl(m *Mount) (*control, error) {
	path := socketPath(m.opts.StateDir, m.opts.Dir)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	_ = os.Remove(path) // left by a mount that crashed
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, m.Status())
	})
	mux.HandleFunc("POST /flush", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Flush(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, m.Status())
	})
	mux.HandleFunc("POST /unmount", func(w http.ResponseWriter, r *http.Request) {
		if err := m.shutdown(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		} else {
			writeJSON(w, http.StatusOK, map[string]string{})
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go m.finish() // closes this server: not from its own handler
	})
	mux.HandleFunc("POST /resolve", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Path, Keep string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		n, err := m.Resolve(r.Context(), req.Path, req.Keep)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"resolved": n})
	})
	c := &control{path: path, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go c.srv.Serve(ln) //nolint:errcheck // ends with close
	return c, nil
}

func (c *control) close() {
	// Let a request in progress (an unmount) write its answer first.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c.srv.Shutdown(ctx) != nil {
		c.srv.Close() //nolint:errcheck // best effort
	}
	_ = os.Remove(c.path)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrNotMounted says that no running mount answers for a folder.
var ErrNotMounted = errors.New("no strand mount is running on this folder")

// Controller talks to the running mount on a folder.
type Controller struct {
	hc *http.Client
}

// Dial returns a controller for the mount on dir, whose state folder is
// stateDir.
func Dial(stateDir, dir string) (*Controller, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	path := socketPath(stateDir, abs)
	if _, err := os.Stat(path); err != nil {
		return nil, ErrNotMounted
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Controller{hc: &http.Client{Transport: tr}}, nil
}

func (c *Controller) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://mount"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			return ErrNotMounted
		}
		return err
	}
	defer resp.Body.Close() //nolint:errcheck // read fully below
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("mount: %s", e.Error)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Status returns the running mount's status.
func (c *Controller) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.call(ctx, http.MethodGet, "/status", nil, &s)
}

// Flush asks the mount to flush now.
func (c *Controller) Flush(ctx context.Context) (Status, error) {
	var s Status
	return s, c.call(ctx, http.MethodPost, "/flush", nil, &s)
}

// Unmount asks the mount to flush, unmount and stop; it returns when done.
func (c *Controller) Unmount(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "/unmount", nil, nil)
}

// Resolve settles the conflicts on a path, keeping the local or the remote
// version.
func (c *Controller) Resolve(ctx context.Context, path, keep string) (int, error) {
	var r struct{ Resolved int }
	return r.Resolved, c.call(ctx, http.MethodPost, "/resolve", map[string]string{"path": path, "keep": keep}, &r)
}
