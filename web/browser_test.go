package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/strand-dev/strand/web/webtest"
)

// TestApp_ReviewFlowInChromium drives the whole review in a real browser:
// alice opens her session and its diff, annotates line 3 of a file and asks
// for approval; bob, in a second browser context, finds the request in the
// review queue and grants it; alice's page follows live, her commit button
// becomes enabled, she commits, and the commit shows in the timeline.
func TestApp_ReviewFlowInChromium(t *testing.T) {
	t.Parallel() // the two slow tests overlap
	b := webtest.Browser(t)
	h := start(t)
	id := h.seed(t)
	dir := webtest.Screenshots(t)
	alice, bob := webtest.SignIn(t, b, h.srv.URL, "", "alice", "pw-alice"), webtest.SignIn(t, b, h.srv.URL, "", "bob", "pw-bob")
	file := `section[data-path="src/main.go"] `

	webtest.Run(t, alice, "open the sessions list",
		chromedp.Navigate(h.srv.URL+"/"),
		chromedp.WaitVisible(`table.list`),
	)
	webtest.Shot(t, alice, dir, "sessions")

	webtest.Run(t, alice, "open the session",
		chromedp.Click(`a[href="/s/`+id+`"]`),
		chromedp.WaitVisible(`#decision`),
	)
	if !webtest.Get(t, alice, "read the commit button", chromedp.Evaluate[bool](`document.querySelector("#commit").disabled`)) {
		t.Fatal("the commit button is enabled before any approval, want disabled (the policy asks for a grant)")
	}
	webtest.Shot(t, alice, dir, "session")

	webtest.Run(t, alice, "open the diff, pick line 3 of src/main.go",
		chromedp.Click(`a.button.primary`),
		chromedp.WaitVisible(file+`table.diff`),
		// By keyboard: focus line 3's number and press Enter.
		chromedp.Focus(file+`a[data-line="3"]`),
		chromedp.KeyEvent("\r"),
	)
	lines := webtest.Get(t, alice, "read the lines", chromedp.Value(file+`input[name="lines"]`))
	webtest.Run(t, alice, "annotate line 3",
		chromedp.SendKeys(file+`textarea[name="body"]`, "Prefer log over fmt for this output?"),
		chromedp.Click(file+`form.annotate button[type="submit"]`),
		chromedp.WaitVisible(`.flash-ok`),
		chromedp.WaitVisible(file+`tr.threads .thread`),
	)
	threadRow := webtest.Get(t, alice, "find the note", chromedp.Evaluate[string](`document.querySelector('`+file+`tr.threads').previousElementSibling.id`))
	if lines != "3" {
		t.Errorf("clicking line 3 filled lines with %q, want 3", lines)
	}
	if !strings.HasSuffix(threadRow, "-L3") {
		t.Errorf("the note shows after row %q, want the row of line 3", threadRow)
	}
	webtest.Shot(t, alice, dir, "diff")

	webtest.Run(t, alice, "request approval for a commit",
		chromedp.Navigate(h.srv.URL+"/s/"+id),
		chromedp.Click(`details.request summary`),
		chromedp.SetValue(`details.request select[name="reason"]`, "commit"),
		chromedp.SendKeys(`details.request input[name="group"]`, "reviewers"),
		chromedp.Click(`details.request button[type="submit"]`),
		chromedp.WaitVisible(`.card.state-pending`),
		chromedp.WaitVisible(`#live`),
	)
	selfGrant := webtest.Get(t, alice, "count grant forms", chromedp.Evaluate[int](`document.querySelectorAll("form.decide").length`))
	if selfGrant != 0 {
		t.Errorf("alice sees %d grant forms on her own request, want none", selfGrant)
	}

	webtest.Run(t, bob, "find the request in the review queue",
		chromedp.Navigate(h.srv.URL+"/queue?group=reviewers"),
		chromedp.WaitVisible(`.card`),
	)
	webtest.Shot(t, bob, dir, "queue")
	webtest.Run(t, bob, "open the request",
		chromedp.Click(`.card a[href$="#decision"]`),
		chromedp.WaitVisible(`form.decide`),
		chromedp.SendKeys(`form.decide input[name="comment"]`, "Looks good"),
	)
	webtest.Shot(t, bob, dir, "approval")
	webtest.Run(t, bob, "grant it by keyboard: Tab from the comment to Grant, Enter",
		chromedp.KeyEvent("\t"),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(`.card.state-granted`),
	)

	// Alice did not reload: her page follows the session's events.
	webtest.Run(t, alice, "see commit enabled, commit",
		chromedp.WaitEnabled(`#commit`),
		chromedp.SendKeys(`form.commit input[name="message"]`, "Greet by name"),
		chromedp.Click(`#commit`),
		chromedp.WaitVisible(`.flash-ok`),
		chromedp.WaitVisible(`#timeline .ev-CommitCreated`),
	)
	first := webtest.Get(t, alice, "read the timeline", chromedp.Text(`#timeline li:first-child`))
	if !strings.Contains(first, "Commit") || !strings.Contains(first, "Greet by name") {
		t.Errorf("the newest timeline entry is %q, want the commit", first)
	}
	webtest.Shot(t, alice, dir, "committed")

	webtest.Run(t, bob, "open the overview", chromedp.Navigate(h.srv.URL+"/overview"), chromedp.WaitVisible(`.charts`))
	webtest.Shot(t, bob, dir, "overview")

	// The session's figures, from the stats read model once it has the
	// commit: the grant's wait is in the approvals table.
	h.waitStats(t, id)
	webtest.Run(t, alice, "open the session's figures",
		chromedp.Navigate(h.srv.URL+"/s/"+id),
		chromedp.Click(`a[href="/s/`+id+`/stats"]`),
		chromedp.WaitVisible(`figure[aria-labelledby="c-types"]`),
	)
	if got := webtest.Get(t, alice, "read the approvals", chromedp.Text(`section[aria-labelledby="h-approvals"] tbody`)); !strings.Contains(got, "granted") || !strings.Contains(got, "commit") {
		t.Errorf("the approvals table reads %q, want the granted commit request", got)
	}
	webtest.Run(t, alice, "by keyboard: focus Per hour, press Enter",
		chromedp.Focus(`nav.bucket a[href$="bucket=hour"]`),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(`nav.bucket a[aria-current][href$="bucket=hour"]`),
	)
	if got := webtest.Get(t, alice, "read the timeline's caption", chromedp.Text(`#c-hours`)); got != "Events per hour" {
		t.Errorf("the timeline is %q, want Events per hour", got)
	}
	named := `[...document.querySelectorAll("main figure")].every(f => { const l = document.getElementById(f.getAttribute("aria-labelledby")); return l && l.textContent.trim() !== "" })
		&& [...document.querySelectorAll("main svg")].every(s => s.getAttribute("aria-hidden") === "true" || (s.getAttribute("role") === "img" && s.getAttribute("aria-label")))`
	if !webtest.Get(t, alice, "check the charts' names", chromedp.Evaluate[bool](named)) {
		t.Error("a chart on the figures page has no accessible name")
	}
	webtest.Shot(t, alice, dir, "stats")

	webtest.Run(t, bob, "open the tenant's usage",
		chromedp.Navigate(h.srv.URL+"/overview"),
		chromedp.Click(`nav[aria-label="Main"] a[href="/usage"]`),
		chromedp.WaitVisible(`figure[aria-labelledby="c-stored"]`),
	)
	if !webtest.Get(t, bob, "check the charts' names", chromedp.Evaluate[bool](named)) {
		t.Error("a chart on the usage page has no accessible name")
	}
	if got := webtest.Get(t, bob, "read the requests", chromedp.Text(`#c-requests`)); !strings.Contains(got, "Requests by endpoint") {
		t.Errorf("the requests chart is titled %q", got)
	}
	webtest.Shot(t, bob, dir, "usage")

	webtest.Run(t, alice, "read the session at phone width",
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(h.srv.URL+"/s/"+id),
		chromedp.WaitVisible(`#decision`),
	)
	if webtest.Get(t, alice, "measure the page", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)) {
		t.Error("the session page is wider than a phone screen")
	}
	webtest.Shot(t, alice, dir, "phone")
	for _, page := range []string{"/", "/s/" + id + "/diff", "/queue", "/s/" + id + "/stats", "/usage", "/overview"} {
		webtest.Run(t, alice, "open "+page+" at phone width", chromedp.Navigate(h.srv.URL+page), chromedp.WaitVisible(`main h1`))
		if webtest.Get(t, alice, "measure "+page, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)) {
			t.Errorf("%s is wider than a phone screen", page)
		}
	}

	webtest.Run(t, alice, "keyboard: press Tab", chromedp.KeyEvent("\t"))
	focused := webtest.Get(t, alice, "read the focus", chromedp.Evaluate[string](`document.activeElement.textContent`))
	if focused != "Skip to content" {
		t.Errorf("the first Tab focuses %q, want the skip link", focused)
	}
}
