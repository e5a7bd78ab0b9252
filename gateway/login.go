package gateway

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/strand-dev/strand/domain"
)

// CookieName is the cookie of a login: a random id that names, in the
// gateway's memory, the credentials given at login. The credentials never
// travel back to the browser.
const CookieName = "strand_session"

// LoginTTL is how long a login lasts.
const LoginTTL = 12 * time.Hour

type login struct {
	cred    Credential
	tenant  string
	expires time.Time
}

// logins are the live logins by cookie value. A gateway restart logs
// everyone out; several gateways behind one proxy need sticky sessions
// (docs/operations.md).
type logins struct {
	mu sync.Mutex
	m  map[string]login
}

func newLogins() *logins { return &logins{m: map[string]login{}} }

func (l *logins) of(r *http.Request) (login, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return login{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.m[c.Value]
	if !ok || time.Now().After(v.expires) {
		return login{}, false
	}
	return v, true
}

func (l *logins) expire(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, v := range l.m {
		if now.After(v.expires) {
			delete(l.m, k)
		}
	}
}

// LoginRequest is the body of POST /v1/login (JSON or a form).
type LoginRequest struct {
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
	// Tenant is the tenant the pages of this login address.
	Tenant string `json:"tenant,omitempty"`
}

// LoginReply answers a login.
type LoginReply struct {
	User   string `json:"user,omitempty"`
	Tenant string `json:"tenant"`
}

// Login checks credentials against the NATS server (by connecting with
// them) and, if it accepts them, sets the login cookie on w: HttpOnly,
// SameSite=Lax, Secure over TLS. The web app calls it from its login form.
func (g *Gateway) Login(w http.ResponseWriter, r *http.Request, req LoginRequest) error {
	cred := Credential{User: req.User, Password: req.Password, Token: req.Token}
	if cred.Anonymous() {
		return domain.Errorf(domain.CodeInvalidArgument, "user and password, or a token, are required")
	}
	tenant := req.Tenant
	if tenant == "" {
		tenant = g.opts.Tenant
	}
	if err := domain.ValidTenant(tenant); err != nil {
		return err
	}
	pc, err := g.pool.acquire(cred)
	if err != nil {
		if err == errRefused {
			return ErrUnauthenticated
		}
		return domain.Errorf(domain.CodeUnavailable, "cannot reach the NATS server")
	}
	g.pool.release(pc)
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return domain.Wrap(err, "login id")
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	expires := time.Now().Add(LoginTTL)
	g.logins.mu.Lock()
	g.logins.m[id] = login{cred: cred, tenant: tenant, expires: expires}
	g.logins.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: id, Path: "/", Expires: expires,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil || g.opts.SecureCookies,
	})
	return nil
}

// Logout forgets the request's login and clears its cookie.
func (g *Gateway) Logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		g.logins.mu.Lock()
		delete(g.logins.m, c.Value)
		g.logins.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil || g.opts.SecureCookies})
}

func (g *Gateway) serveLogin(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, domain.Errorf(domain.CodeInvalidArgument, "malformed login: %v", err))
			return
		}
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			writeError(w, domain.Errorf(domain.CodeInvalidArgument, "malformed login form"))
			return
		}
		req = LoginRequest{User: r.PostForm.Get("user"), Password: r.PostForm.Get("password"),
			Token: r.PostForm.Get("token"), Tenant: r.PostForm.Get("tenant")}
	}
	if err := g.Login(w, r, req); err != nil {
		writeError(w, err)
		return
	}
	tenant := req.Tenant
	if tenant == "" {
		tenant = g.opts.Tenant
	}
	writeJSON(w, http.StatusOK, LoginReply{User: req.User, Tenant: tenant})
}

func (g *Gateway) serveLogout(w http.ResponseWriter, r *http.Request) {
	g.Logout(w, r)
	w.WriteHeader(http.StatusNoContent)
}

// writeJSON answers with a JSON body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, domain.Wrap(err, "encode reply"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
