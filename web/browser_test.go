package web_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/chromedp"
)

// chromium finds the browser the tests drive: $STRAND_CHROMIUM, or Debian's
// chromium (.ci/install-chromium.sh installs it). In CI a missing browser
// fails the test; elsewhere it skips, saying why.
func chromium(t *testing.T) string {
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

// screenshots is where the test saves its pictures: $STRAND_SCREENSHOTS
// (set it to docs/screenshots to refresh the README's pictures), or a
// temporary folder.
func screenshots(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("STRAND_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// browser starts headless Chromium with a temporary profile and returns a
// context on it; each user then gets a browser context of its own.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
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

// as opens a browser context (its own cookies and cache) for a user, who
// signs in through the sign-in page: the login cookie is the context's own.
func as(t *testing.T, b context.Context, base, user string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first call opens the tab for the life of its context: no deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a browser context for %s: %v", user, err)
	}
	run(t, ctx, "sign "+user+" in",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`input[name="user"]`),
		chromedp.SendKeys(`input[name="user"]`, user),
		chromedp.SendKeys(`input[name="password"]`, "pw-"+user),
		chromedp.Click(`button[type="submit"]`),
		chromedp.WaitVisible(`table.list`),
	)
	return ctx
}

// run runs steps with a deadline, failing the test with what was asked.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
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

// get runs an action that answers something.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// shot saves a picture of the viewport as dir/name.png.
func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := get(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	checkNames(t, ctx, name)
}

// controlRoles are the roles a person operates: each needs a name.
var controlRoles = map[string]bool{
	"button": true, "link": true, "textbox": true, "combobox": true, "searchbox": true,
	"checkbox": true, "radio": true, "listbox": true, "spinbutton": true, "DisclosureTriangle": true,
}

// checkNames reads the page's accessibility tree, as Chromium computes it
// for screen readers, and fails for every control without a name.
func checkNames(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
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

// TestApp_ReviewFlowInChromium drives the whole review in a real browser:
// alice opens her session and its diff, annotates line 3 of a file and asks
// for approval; bob, in a second browser context, finds the request in the
// review queue and grants it; alice's page follows live, her commit button
// becomes enabled, she commits, and the commit shows in the timeline.
func TestApp_ReviewFlowInChromium(t *testing.T) {
	t.Parallel() // the two slow tests overlap
	b := browser(t)
	h := start(t)
	id := h.seed(t)
	dir := screenshots(t)
	alice, bob := as(t, b, h.srv.URL, "alice"), as(t, b, h.srv.URL, "bob")
	file := `section[data-path="src/main.go"] `

	run(t, alice, "open the sessions list",
		chromedp.Navigate(h.srv.URL+"/"),
		chromedp.WaitVisible(`table.list`),
	)
	shot(t, alice, dir, "sessions")

	run(t, alice, "open the session",
		chromedp.Click(`a[href="/s/`+id+`"]`),
		chromedp.WaitVisible(`#decision`),
	)
	if !get(t, alice, "read the commit button", chromedp.Evaluate[bool](`document.querySelector("#commit").disabled`)) {
		t.Fatal("the commit button is enabled before any approval, want disabled (the policy asks for a grant)")
	}
	shot(t, alice, dir, "session")

	run(t, alice, "open the diff, pick line 3 of src/main.go",
		chromedp.Click(`a.button.primary`),
		chromedp.WaitVisible(file+`table.diff`),
		// By keyboard: focus line 3's number and press Enter.
		chromedp.Focus(file+`a[data-line="3"]`),
		chromedp.KeyEvent("\r"),
	)
	lines := get(t, alice, "read the lines", chromedp.Value(file+`input[name="lines"]`))
	run(t, alice, "annotate line 3",
		chromedp.SendKeys(file+`textarea[name="body"]`, "Prefer log over fmt for this output?"),
		chromedp.Click(file+`form.annotate button[type="submit"]`),
		chromedp.WaitVisible(`.flash-ok`),
		chromedp.WaitVisible(file+`tr.threads .thread`),
	)
	threadRow := get(t, alice, "find the note", chromedp.Evaluate[string](`document.querySelector('`+file+`tr.threads').previousElementSibling.id`))
	if lines != "3" {
		t.Errorf("clicking line 3 filled lines with %q, want 3", lines)
	}
	if !strings.HasSuffix(threadRow, "-L3") {
		t.Errorf("the note shows after row %q, want the row of line 3", threadRow)
	}
	shot(t, alice, dir, "diff")

	run(t, alice, "request approval for a commit",
		chromedp.Navigate(h.srv.URL+"/s/"+id),
		chromedp.Click(`details.request summary`),
		chromedp.SetValue(`details.request select[name="reason"]`, "commit"),
		chromedp.SendKeys(`details.request input[name="group"]`, "reviewers"),
		chromedp.Click(`details.request button[type="submit"]`),
		chromedp.WaitVisible(`.card.state-pending`),
		chromedp.WaitVisible(`#live`),
	)
	selfGrant := get(t, alice, "count grant forms", chromedp.Evaluate[int](`document.querySelectorAll("form.decide").length`))
	if selfGrant != 0 {
		t.Errorf("alice sees %d grant forms on her own request, want none", selfGrant)
	}

	run(t, bob, "find the request in the review queue",
		chromedp.Navigate(h.srv.URL+"/queue?group=reviewers"),
		chromedp.WaitVisible(`.card`),
	)
	shot(t, bob, dir, "queue")
	run(t, bob, "open the request",
		chromedp.Click(`.card a[href$="#decision"]`),
		chromedp.WaitVisible(`form.decide`),
		chromedp.SendKeys(`form.decide input[name="comment"]`, "Looks good"),
	)
	shot(t, bob, dir, "approval")
	run(t, bob, "grant it by keyboard: Tab from the comment to Grant, Enter",
		chromedp.KeyEvent("\t"),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(`.card.state-granted`),
	)

	// Alice did not reload: her page follows the session's events.
	run(t, alice, "see commit enabled, commit",
		chromedp.WaitEnabled(`#commit`),
		chromedp.SendKeys(`form.commit input[name="message"]`, "Greet by name"),
		chromedp.Click(`#commit`),
		chromedp.WaitVisible(`.flash-ok`),
		chromedp.WaitVisible(`#timeline .ev-CommitCreated`),
	)
	first := get(t, alice, "read the timeline", chromedp.Text(`#timeline li:first-child`))
	if !strings.Contains(first, "Commit") || !strings.Contains(first, "Greet by name") {
		t.Errorf("the newest timeline entry is %q, want the commit", first)
	}
	shot(t, alice, dir, "committed")

	run(t, bob, "open the overview", chromedp.Navigate(h.srv.URL+"/overview"), chromedp.WaitVisible(`.charts`))
	shot(t, bob, dir, "overview")

	run(t, alice, "read the session at phone width",
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(h.srv.URL+"/s/"+id),
		chromedp.WaitVisible(`#decision`),
	)
	if get(t, alice, "measure the page", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)) {
		t.Error("the session page is wider than a phone screen")
	}
	shot(t, alice, dir, "phone")
	for _, page := range []string{"/", "/s/" + id + "/diff", "/queue"} {
		run(t, alice, "open "+page+" at phone width", chromedp.Navigate(h.srv.URL+page), chromedp.WaitVisible(`main h1`))
		if get(t, alice, "measure "+page, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)) {
			t.Errorf("%s is wider than a phone screen", page)
		}
	}

	run(t, alice, "keyboard: press Tab", chromedp.KeyEvent("\t"))
	focused := get(t, alice, "read the focus", chromedp.Evaluate[string](`document.activeElement.textContent`))
	if focused != "Skip to content" {
		t.Errorf("the first Tab focuses %q, want the skip link", focused)
	}
}
