package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Credentials are what the sign-in form asks for: a user and password, or
// a token, and the tenant the pages address.
type Credentials struct {
	User, Password, Token, Tenant string
}

// loginData is the sign-in page.
type loginData struct {
	Next   string
	User   string
	Tenant string
}

// unauthenticated answers a request that has no identity: the sign-in page
// when the app has one (a GET goes there and comes back), else a 401 with a
// Basic challenge so that a browser asks.
func (a *App) unauthenticated(w http.ResponseWriter, r *http.Request) {
	if a.opts.Login == nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="strand", charset="UTF-8"`)
		http.Error(w, "sign in to review", http.StatusUnauthorized)
		return
	}
	next := "/"
	if r.Method == http.MethodGet {
		next = r.URL.RequestURI()
	}
	http.Redirect(w, r, "/login?"+url.Values{"next": {next}}.Encode(), http.StatusSeeOther)
}

func (a *App) isUnauthenticated(err error) bool {
	if errors.Is(err, ErrUnauthenticated) {
		return true
	}
	return a.opts.Unauthenticated != nil && a.opts.Unauthenticated(err)
}

// loginPage shows the sign-in form.
func (a *App) loginPage(w http.ResponseWriter, r *http.Request) {
	if a.opts.Login == nil {
		http.NotFound(w, r)
		return
	}
	a.render(w, r, nil, "login", "Sign in", loginData{Next: localPath(r.URL.Query().Get("next")), Tenant: r.URL.Query().Get("tenant")})
}

// login checks the credentials through Options.Login (which sets the
// login cookie) and goes back to the page that asked for them.
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	if a.opts.Login == nil {
		http.NotFound(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return
	}
	cr := Credentials{User: strings.TrimSpace(r.PostFormValue("user")), Password: r.PostFormValue("password"),
		Token: strings.TrimSpace(r.PostFormValue("token")), Tenant: strings.TrimSpace(r.PostFormValue("tenant"))}
	next := localPath(r.PostFormValue("next"))
	if err := a.opts.Login(w, r, cr); err != nil {
		msg := errMessage(err)
		if a.isUnauthenticated(err) {
			msg = "the server refused these credentials"
		}
		setFlash(w, r, "error", msg)
		http.Redirect(w, r, "/login?"+url.Values{"next": {next}, "tenant": {cr.Tenant}}.Encode(), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout forgets the login and shows the sign-in form.
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	if a.opts.Logout != nil {
		a.opts.Logout(w, r)
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// localPath keeps a redirect on this site: a path, never another host.
func localPath(p string) string {
	if strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.HasPrefix(p, `/\`) {
		return p
	}
	return "/"
}
