package web

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// ErrUnauthenticated is what a ClientFunc returns (wrapped or not) when a
// request carries no credentials, or wrong ones: the app answers 401 with a
// Basic challenge so that a browser asks for them.
var ErrUnauthenticated = errors.New("web: unauthenticated")

// ClientFunc returns the client that acts for the person behind an HTTP
// request: its NATS identity, tenant and actor come from the request's
// credentials.
type ClientFunc func(r *http.Request) (*client.Client, error)

// Options configure the app.
type Options struct {
	// ClientFor maps a request to the client that acts for its sender.
	ClientFor ClientFunc
	// Log receives the errors that pages do not show (internal ones).
	Log *slog.Logger
	// PageSize is the number of sessions a list page shows (default 50).
	PageSize int
	// Login, when set, gives the app a sign-in page: it checks the
	// credentials and sets the login cookie (HttpOnly, SameSite) that
	// ClientFor then reads. Without it a request without credentials gets a
	// Basic challenge.
	Login func(w http.ResponseWriter, r *http.Request, c Credentials) error
	// Logout forgets the request's login.
	Logout func(w http.ResponseWriter, r *http.Request)
	// TrustedOrigins are origins ("https://review.example.com") whose
	// cross-origin form posts are accepted: needed only behind a proxy that
	// rewrites Host, for browsers that send no Sec-Fetch-Site.
	TrustedOrigins []string
	// Unauthenticated tells whether an error of ClientFor or Login means
	// "no or wrong credentials" (ErrUnauthenticated always does).
	Unauthenticated func(error) bool
}

// App is the review app, an http.Handler.
type App struct {
	opts  Options
	pages map[string]*template.Template
	mux   *http.ServeMux
	h     http.Handler
}

// New returns the app. Mount it at / of an HTTP server.
func New(opts Options) (*App, error) {
	if opts.ClientFor == nil {
		return nil, errors.New("web: Options.ClientFor is required")
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.PageSize == 0 {
		opts.PageSize = 50
	}
	a := &App{opts: opts, mux: http.NewServeMux()}
	if err := a.parse(); err != nil {
		return nil, err
	}
	a.routes()
	// Cross-origin protection refuses a state-changing request that a
	// browser marks as coming from another site (Sec-Fetch-Site, or Origin
	// against Host): forms are same-origin, so no token is needed.
	cop := http.NewCrossOriginProtection()
	for _, o := range opts.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("web: trusted origin: %w", err)
		}
	}
	a.h = securityHeaders(cop.Handler(a.mux))
	return a, nil
}

// ServeHTTP serves the app.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.h.ServeHTTP(w, r) }

func (a *App) routes() {
	static, _ := fs.Sub(staticFS, "static")
	a.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	a.mux.HandleFunc("GET /highlight.css", highlightCSS)
	a.mux.HandleFunc("GET /login", a.loginPage)
	a.mux.HandleFunc("POST /login", a.login)
	a.mux.HandleFunc("POST /logout", a.logout)
	a.mux.HandleFunc("GET /{$}", a.sessionsPage)
	a.mux.HandleFunc("GET /queue", a.queuePage)
	a.mux.HandleFunc("GET /overview", a.overviewPage)
	a.mux.HandleFunc("GET /usage", a.usagePage)
	a.mux.HandleFunc("GET /s/{id}", a.sessionPage)
	a.mux.HandleFunc("GET /s/{id}/diff", a.diffPage)
	a.mux.HandleFunc("GET /s/{id}/stats", a.statsPage)
	a.mux.HandleFunc("GET /s/{id}/live", a.live)
	a.mux.HandleFunc("POST /s/{id}/annotate", a.annotate)
	a.mux.HandleFunc("POST /s/{id}/notes/{note}/{verb}", a.noteState)
	a.mux.HandleFunc("POST /s/{id}/request", a.requestApproval)
	a.mux.HandleFunc("POST /s/{id}/approvals/{req}/{verb}", a.decide)
	a.mux.HandleFunc("POST /s/{id}/commit", a.commit)
	a.mux.HandleFunc("POST /s/{id}/merge", a.merge)
	a.mux.HandleFunc("POST /s/{id}/checkpoint", a.checkpoint)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		h.ServeHTTP(w, r)
	})
}

// client returns the client for a request, answering the request itself
// (401 or an error page) when there is none.
func (a *App) client(w http.ResponseWriter, r *http.Request) (*client.Client, bool) {
	c, err := a.opts.ClientFor(r)
	if err == nil {
		return c, true
	}
	if a.isUnauthenticated(err) {
		a.unauthenticated(w, r)
		return nil, false
	}
	a.fail(w, r, err)
	return nil, false
}

// page is what every template gets: the page's own data and the frame.
type page struct {
	Title   string
	Actor   string
	Tenant  string
	Flash   *flash
	Nav     string
	Data    any
	Request string // a fresh request id for the forms of this page
	Logout  bool   // the app can sign out
}

func (a *App) render(w http.ResponseWriter, r *http.Request, c *client.Client, name, title string, data any) {
	t, ok := a.pages[name]
	if !ok {
		a.fail(w, r, fmt.Errorf("no page %q", name))
		return
	}
	p := page{Title: title, Data: data, Flash: takeFlash(w, r), Nav: name, Request: newRequestID(), Logout: a.opts.Logout != nil}
	if c != nil {
		p.Actor, p.Tenant = c.Actor, c.Tenant
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		a.fail(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = buf.WriteTo(w)
}

// fail answers with an error page: the code and message of a client error
// (they are safe to show), nothing of an internal one but that it happened.
func (a *App) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := client.ErrorCode(err)
	status := client.StatusOf(code)
	msg := domain.ErrorMessage(err)
	var ce *client.Error
	if errors.As(err, &ce) {
		msg = ce.Message
	}
	if code == domain.CodeInternal {
		a.opts.Log.Error("web page failed", "path", r.URL.Path, "err", err)
		msg = "something went wrong on the server; it has been logged"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	t := a.pages["error"]
	p := page{Title: "Error", Data: map[string]any{"Code": string(code), "Message": msg, "Status": status}}
	if err := t.ExecuteTemplate(w, "layout", p); err != nil {
		a.opts.Log.Error("render error page", "err", err)
	}
}

// flash is a one-time message shown on the page a POST redirects to.
type flash struct {
	Kind string // ok or error
	Text string
}

const flashCookie = "strand_flash"

// setFlash stores a message for the next page in a short-lived cookie:
// HttpOnly (no script reads it), SameSite=Lax, scoped to the app.
func setFlash(w http.ResponseWriter, r *http.Request, kind, text string) {
	http.SetCookie(w, &http.Cookie{
		Name: flashCookie, Value: url.QueryEscape(kind + ":" + text), Path: "/",
		MaxAge: 60, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
}

func takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	ck, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	v, err := url.QueryUnescape(ck.Value)
	if err != nil {
		return nil
	}
	kind, text, ok := strings.Cut(v, ":")
	if !ok || (kind != "ok" && kind != "error") {
		return nil
	}
	return &flash{Kind: kind, Text: text}
}

// done ends a POST: a flash with the outcome and a redirect (303) to the
// page the form came from, or to next.
func (a *App) done(w http.ResponseWriter, r *http.Request, next string, err error, okText string) {
	if err != nil {
		code := client.ErrorCode(err)
		msg := errMessage(err)
		if code == domain.CodeInternal {
			a.opts.Log.Error("web action failed", "path", r.URL.Path, "err", err)
			msg = "something went wrong on the server; it has been logged"
		}
		setFlash(w, r, "error", string(code)+": "+msg)
	} else {
		setFlash(w, r, "ok", okText)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func errMessage(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Message
	}
	return domain.ErrorMessage(err)
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "web-" + hex.EncodeToString(b[:])
}

// sessionURL is the link to a session page with query values.
func sessionURL(id string, q url.Values) string {
	u := "/s/" + url.PathEscape(id)
	if e := q.Encode(); e != "" {
		u += "?" + e
	}
	return u
}

func shortTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}
