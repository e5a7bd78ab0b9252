// Package webtest drives a real Chromium for tests of the web review app:
// finding the browser (a test fails without it in CI, skips elsewhere),
// one browser with a browser context per user, signing in through the
// app's sign-in page, screenshots, and a check of the accessibility tree
// that Chromium computes for screen readers. Only tests import it.
package webtest

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/chromedp"
)

// Chromium finds the browser the tests drive: $STRAND_CHROMIUM, or Debian's
// chromium (.ci/install-chromium.sh installs it). In CI a missing browser
// fails the test; elsewhere it skips, saying why.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("STRAND_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: CI must run .ci/install-chromium.sh")
	}
	t.Skip("chromium is not installed (apt-get install chromium, or set STRAND_CHROMIUM)")
	return ""
}

// Screenshots is where the test saves its pictures: $STRAND_SCREENSHOTS
// (set it to docs/screenshots to refresh the README's pictures), or a
// temporary folder.
func Screenshots(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("STRAND_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// Browser starts headless Chromium with a temporary profile and returns a
// context on it; each user then gets a browser context of its own.
func Browser(t testing.TB) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1280, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	// The first call starts the browser, with no deadline (a deadline on it
	// would bound the browser's life).
	if _, err := chromedp.Run(ctx, chromedp.Title()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// SignIn opens a browser context (its own cookies and cache) for a user, who
// signs in with a password, for a tenant ("" for the server's default),
// through the sign-in page of the app at base: the login cookie is the
// context's own. It returns once the sessions list shows.
func SignIn(t testing.TB, b context.Context, base, tenant, user, password string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first call opens the tab for the life of its context: no deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a browser context for %s: %v", user, err)
	}
	Run(t, ctx, "sign "+user+" in",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(base+"/login?"+url.Values{"tenant": {tenant}}.Encode()),
		chromedp.WaitVisible(`input[name="user"]`),
		chromedp.SendKeys(`input[name="user"]`, user),
		chromedp.SendKeys(`input[name="password"]`, password),
		chromedp.Click(`button[type="submit"]`),
		chromedp.WaitVisible(`table.list`),
	)
	return ctx
}

// stepTimeout bounds one group of steps: generous, because CI runs the
// whole suite with the race detector on two cores at once; it only matters
// when something is wrong.
const stepTimeout = 90 * time.Second

// Run runs steps with a deadline, failing the test with what was asked.
func Run(t testing.TB, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, where(ctx))
	}
}

// where tells what the browser shows, for a failure message.
func where(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 600) : ""`))
	return "at " + loc + ":\n" + text
}

// Get runs an action that answers something.
func Get[T any](t testing.TB, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// Shot saves a picture of the viewport as dir/name.png.
func Shot(t testing.TB, ctx context.Context, dir, name string) {
	t.Helper()
	png := Get(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	CheckNames(t, ctx, name)
}

// controlRoles are the roles a person operates: each needs a name.
var controlRoles = map[string]bool{
	"button": true, "link": true, "textbox": true, "combobox": true, "searchbox": true,
	"checkbox": true, "radio": true, "listbox": true, "spinbutton": true, "DisclosureTriangle": true,
}

// CheckNames reads the page's accessibility tree, as Chromium computes it
// for screen readers, and fails for every control without a name.
func CheckNames(t testing.TB, ctx context.Context, page string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	tree, err := chromedp.Call(ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	if err != nil {
		t.Fatalf("%s: accessibility tree: %v", page, err)
	}
	str := func(v *accessibility.Value) string {
		var out string
		if v != nil {
			_ = json.Unmarshal(v.Value, &out)
		}
		return out
	}
	controls := 0
	for _, n := range tree.Nodes {
		role := str(n.Role)
		if n.Ignored || !controlRoles[role] {
			continue
		}
		controls++
		if strings.TrimSpace(str(n.Name)) == "" {
			t.Errorf("%s: a %s has no accessible name", page, role)
		}
	}
	if controls == 0 {
		t.Errorf("%s: the accessibility tree has no controls", page)
	}
}
