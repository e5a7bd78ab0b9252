package web

import (
	"fmt"
	"github.com/strand-dev/strand/client"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// pageNames are the pages; each is parsed with the layout.
var pageNames = []string{"sessions", "queue", "session", "diff", "error", "login", "overview", "stats", "usage"}

func (a *App) parse() error {
	a.pages = map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/charts.html", "templates/"+name+".html")
		if err != nil {
			return fmt.Errorf("parse page %s: %w", name, err)
		}
		a.pages[name] = t
	}
	return nil
}

var funcs = template.FuncMap{
	"short":   shortID,
	"time":    shortTime,
	"ago":     ago,
	"hash":    shortHash,
	"session": func(id string) string { return sessionURL(id, nil) },
	"with": func(base string, kv ...string) string {
		return withQuery(base, kv...)
	},
	"join":     strings.Join,
	"inc":      func(i int) int { return i + 1 },
	"evlabel":  evLabel,
	"evdetail": evDetail,
	"dict":     dict,
	"event":    func(typ string) client.EventView { return client.EventView{Type: typ} },
	"label":    func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"bytes":    humanBytes,
	"int":      func(n any) int { return int(asInt64(n)) },
	"int64":    asInt64,
	"wait":     waitText,
	"ratio":    func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return fmt.Sprintf("%d %s", n, one)
		}
		return fmt.Sprintf("%d %s", n, many)
	},
}

// withQuery adds query values (key, value, key, value...) to a URL, and
// removes a key whose value is empty.
func withQuery(base string, kv ...string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func shortID(id string) string {
	if len(id) > 10 {
		return id[len(id)-8:]
	}
	return id
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return t.UTC().Format("2006-01-02")
}

func humanBytes(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

// dict builds a map for a sub-template from key, value pairs.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict needs key, value pairs")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// asInt64 converts the integer figures of the wire types for the
// templates' helpers.
func asInt64(n any) int64 {
	switch v := n.(type) {
	case int:
		return int64(v)
	case int64:
		return v
	case uint64:
		return int64(v)
	}
	return 0
}
