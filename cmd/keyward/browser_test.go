package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward"
)

// The browser tests drive Debian's chromium, headless, with chromedp.
// They fail, not skip, when it is not installed: scripts/test installs it.

// browser is a headless chromium for one test; tab opens a tab in a
// browser context of its own (its own cookies: another person).
type browser struct {
	t     *testing.T
	alloc context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("the browser tests need Debian's chromium: apt-get install chromium (scripts/test installs it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 860), chromedp.Flag("disable-dev-shm-usage", true))
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	// The first context starts the browser; tabs are its children.
	ctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, alloc: ctx}
}

// tab is one person's tab, with steps that fail the test.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
}

func (b *browser) tab(base string) *tab {
	ctx, cancel := chromedp.NewContext(b.alloc, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	b.t.Cleanup(cancelTimeout)
	return &tab{t: b.t, ctx: ctx, base: base}
}

func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

func value[T any](tb *tab, what string, a chromedp.Action[T]) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, a)
	if err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
	return v
}

func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.do("open "+path, chromedp.Navigate(tb.base+path), chromedp.WaitReady(chromedp.CSS("body")))
}

// follow clicks the element that matches css and waits for the page it
// leads to (a link, or a form's button) to have loaded.
func (tb *tab) follow(css string) {
	tb.t.Helper()
	tb.do("follow "+css, chromedp.Evaluate[chromedp.Void](`window.__leaving = true`), chromedp.Click(chromedp.CSS(css)))
	tb.loaded()
}

// loaded waits for the page that replaces one marked __leaving to load.
func (tb *tab) loaded() {
	tb.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		// While the page changes, the evaluation may fail: it is tried
		// again on the next one.
		done, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](`!window.__leaving && document.readyState === "complete"`))
		if err == nil && done {
			return
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("the next page did not load: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// text is the text of the first element that matches css.
func (tb *tab) text(css string) string {
	tb.t.Helper()
	return value(tb, "read "+css, chromedp.Text(chromedp.CSS(css)))
}

// has reports whether an element matches css.
func (tb *tab) has(css string) bool {
	tb.t.Helper()
	return value(tb, "look for "+css, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) !== null`, css)))
}

func (tb *tab) signIn(email, password string) {
	tb.t.Helper()
	tb.open("/sign-in")
	tb.do("sign in as "+email,
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), password))
	tb.follow(`main form button[type=submit]`)
	if h := tb.text("h1"); h != "API keys" {
		tb.t.Fatalf("after sign-in the page is %q: %s", h, tb.text("main"))
	}
}

// screenshot saves the window as a PNG named name: under docs/screenshots
// when KEYWARD_SCREENSHOTS is 1 (for the README), else in the test's
// temporary directory.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	png := value(tb, "screenshot "+name, chromedp.FullScreenshot(100))
	dir := tb.t.TempDir()
	if os.Getenv("KEYWARD_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// curl calls the server with the curl program, as a developer would, and
// returns the status and the X-Request-Id of the answer.
func curl(t *testing.T, url string, headers ...string) (status int, requestID string) {
	t.Helper()
	args := []string{"-s", "-o", "/dev/null", "-D", "-", url}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	out, err := exec.Command("curl", args...).Output()
	if err != nil {
		t.Fatalf("curl (apt-get install curl): %v", err)
	}
	head := string(out)
	if _, err := fmt.Sscanf(head, "HTTP/1.1 %d", &status); err != nil {
		t.Fatalf("curl: no status in %q", head)
	}
	if m := regexp.MustCompile(`(?i)x-request-id: (\S+)`).FindStringSubmatch(head); m != nil {
		requestID = m[1]
	}
	return status, requestID
}

// TestBrowserKeys is the dashboard's walk through, in a real browser: an
// owner signs in, creates a key with an expiry and a permission, copies it
// from its one reveal, and curl calls forward-auth with it (200); the
// reload does not show it again; the key's page shows the requests just
// made in its chart and its log, and finds one by its request id; revoked
// after a confirmation that names it, the key is refused (401). A viewer
// sees no create button, and a POST forged from its session is refused
// (403); a form sent without its CSRF token is refused.
func TestBrowserKeys(t *testing.T) {
	s := startSite(t, "--log-interval", "50ms")
	s.member(t, s.acme, "ada@example.com", "owner", "correct horse battery", "contacts:read", "contacts:write")
	s.member(t, s.acme, "vic@example.com", "viewer", "a viewer's password", "contacts:read")
	b := newBrowser(t)
	ada := b.tab(s.url)
	ada.signIn("ada@example.com", "correct horse battery")

	// Create, with an expiry and a permission.
	ada.follow(`a[href="/keys/new"]`)
	ada.do("fill the form",
		chromedp.SendKeys(chromedp.CSS(`#name`), "ci-bot"),
		chromedp.SetValue(chromedp.CSS(`#expires`), "30d"),
		chromedp.Click(chromedp.CSS(`input[name=permissions][value="contacts:read"]`)))
	ada.follow(`main form button[type=submit]`)
	key := value(ada, "read the key", chromedp.Value(chromedp.CSS(`#plaintext`)))
	if !strings.HasPrefix(key, "sk_live_") {
		t.Fatalf("the reveal shows %q", key)
	}
	if !strings.Contains(ada.text(".reveal"), "You will not see it again") {
		t.Errorf("the reveal does not say it is shown once: %q", ada.text(".reveal"))
	}
	ada.do("copy", chromedp.Click(chromedp.CSS(`button.copy`)))
	copied := value(ada, "read the copy status", chromedp.Poll[string](`document.querySelector(".copied").textContent || null`, chromedp.WithPollingTimeout(5*time.Second)))
	selected := value(ada, "read the selection", chromedp.Evaluate[string](`window.getSelection().toString() || document.activeElement.value.substring(document.activeElement.selectionStart, document.activeElement.selectionEnd)`))
	if copied == "" || selected != key {
		t.Errorf("copy: status %q, selection %q; want the key selected and copied", copied, selected)
	}
	ada.screenshot("dashboard-reveal")
	revealURL := value(ada, "read the location", chromedp.Location())

	status, requestID := curl(t, s.url+"/v1/forward-auth", "X-API-Key: "+key)
	if status != http.StatusOK {
		t.Fatalf("forward-auth with the new key: %d", status)
	}
	// A refusal of the key too: it cannot manage keys.
	if st, _ := curl(t, s.url+"/v1/api-keys", "Authorization: Bearer "+key); st != http.StatusForbidden {
		t.Fatalf("GET /v1/api-keys with the key: %d; want 403", st)
	}

	// The reload shows it no more.
	ada.do("reload the reveal", chromedp.Evaluate[chromedp.Void](`window.__leaving = true`), chromedp.Reload())
	ada.loaded()
	if ada.has("#plaintext") || !strings.Contains(ada.text("h1"), "not shown again") || strings.Contains(value(ada, "read the page", chromedp.Evaluate[string](`document.documentElement.outerHTML`)), key) {
		t.Fatal("the reload of the reveal shows the key again")
	}
	if value(ada, "location", chromedp.Location()) != revealURL {
		t.Fatal("the reload went elsewhere")
	}

	// The keys page lists it, with its expiry; its page shows the
	// requests, in the chart and the log.
	ada.open("/keys")
	row := ada.text("table.keys tbody tr")
	if !strings.Contains(row, "ci-bot") || !strings.Contains(row, key[:12]) || !strings.Contains(row, key[len(key)-4:]) || strings.Contains(row, "Never\tNever") {
		t.Errorf("the keys page shows %q", row)
	}
	ada.screenshot("dashboard-keys")
	ada.follow(`table.keys tbody th a`)
	keyPath := value(ada, "location", chromedp.Location())
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := value(ada, "read the chart", chromedp.Evaluate[string](`[...document.querySelectorAll("svg.chart")].map(s => s.dataset.allowed + "/" + s.dataset.refused).join()`))
		if got == "1/1" && ada.has("table.logs") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key's chart shows allowed/refused %s; want 1/1", got)
		}
		time.Sleep(200 * time.Millisecond)
		ada.open(strings.TrimPrefix(keyPath, s.url))
	}
	if bars := value(ada, "count the bars", chromedp.Evaluate[int](`document.querySelectorAll("svg.chart rect").length`)); bars != 2 {
		t.Errorf("the chart has %d bars drawn; want 2 (allowed and refused, this hour)", bars)
	}
	logs := ada.text("table.logs tbody")
	if !strings.Contains(logs, requestID) || !strings.Contains(logs, "insufficient_permissions") {
		t.Errorf("the key's log:\n%s\nwant the request %s and the refusal", logs, requestID)
	}
	ada.screenshot("dashboard-key")
	ada.do("find the request", chromedp.SendKeys(chromedp.CSS(`#l-request`), requestID))
	ada.follow(`form[aria-label="Filter the request log"] button`)
	if n := value(ada, "count the rows", chromedp.Evaluate[int](`document.querySelectorAll("table.logs tbody tr").length`)); n != 1 || !strings.Contains(ada.text("table.logs tbody"), requestID) {
		t.Errorf("the search by request id shows %d rows", n)
	}

	// A form sent without its CSRF token is refused.
	ada.open("/keys/new")
	ada.do("send a form without its token",
		chromedp.Evaluate[chromedp.Void](`document.querySelector("main form input[name=csrf]").remove()`),
		chromedp.SendKeys(chromedp.CSS(`#name`), "no-token"))
	ada.follow(`main form button[type=submit]`)
	if !strings.Contains(ada.text("main"), "security token") {
		t.Errorf("a form without its CSRF token: %q", ada.text("main"))
	}

	// A viewer sees the keys, no create button, and a forged POST from its
	// session is refused.
	vic := b.tab(s.url)
	vic.signIn("vic@example.com", "a viewer's password")
	if !strings.Contains(vic.text("table.keys"), "ci-bot") || vic.has(`a[href^="/keys/new"]`) || vic.has(`a[href$="/revoke"]`) {
		t.Error("a viewer sees a create or revoke action, or not the keys")
	}
	forged := value(vic, "forge a POST", chromedp.Evaluate[int](`fetch("/keys", {method: "POST", body: new URLSearchParams({csrf: document.querySelector("input[name=csrf]").value, name: "forged"})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if forged != http.StatusForbidden {
		t.Errorf("a viewer's forged POST /keys: %d; want 403", forged)
	}
	revoke := value(vic, "forge a revocation", chromedp.Evaluate[int](fmt.Sprintf(`fetch(%q + "/revoke", {method: "POST", body: new URLSearchParams({csrf: document.querySelector("input[name=csrf]").value})}).then(r => r.status)`, strings.TrimPrefix(keyPath, s.url)), chromedp.EvalAwaitPromise))
	if revoke != http.StatusForbidden {
		t.Errorf("a viewer's forged revocation: %d; want 403", revoke)
	}

	// Revoke, after a confirmation that names the key: refused at once.
	ada.open("/keys")
	ada.follow(`table.keys a.danger`)
	if h := ada.text("h1"); !strings.Contains(h, "ci-bot") {
		t.Errorf("the confirmation does not name the key: %q", h)
	}
	if st, _ := curl(t, s.url+"/v1/forward-auth", "X-API-Key: "+key); st != http.StatusOK {
		t.Fatalf("the key was refused before the confirmation: %d", st)
	}
	ada.follow(`main button.danger`)
	if st, _ := curl(t, s.url+"/v1/forward-auth", "X-API-Key: "+key); st != http.StatusUnauthorized {
		t.Fatalf("forward-auth with the revoked key: %d; want 401", st)
	}
	if !strings.Contains(ada.text(".status"), "revoked") {
		t.Errorf("the key's page says %q", ada.text(".status"))
	}
}

// TestBrowserPortalAndMembers: the provider's app makes a portal link
// (POST /v1/portal-sessions) that signs its customer in once, creating the
// member, in the dashboard branded as the provider's, with a link back to
// its app; a second use of the link is refused. An owner adds a member on
// the members page and gets an invitation link, with which the new member
// sets a password and is signed in; the link then works no more.
func TestBrowserPortalAndMembers(t *testing.T) {
	s := startSite(t, "--brand-name", "Acme API", "--brand-color", "#6a1b9a")
	s.member(t, s.acme, "ada@example.com", "owner", "correct horse battery", "contacts:read", "contacts:write")
	a := s.call(t, "POST", "/v1/portal-sessions", s.root, map[string]any{"tenant_id": "acme", "external_id": "cust-42",
		"return_url": "https://app.example.com/settings", "member": map[string]any{"email": "cust@example.com", "name": "Cust", "role": "developer", "permissions": []string{"contacts:read"}}})
	ps := decodeJSON[struct{ Data struct{ Path string } }](t, string(a.body)).Data
	if a.status != http.StatusCreated || ps.Path == "" {
		t.Fatalf("POST /v1/portal-sessions: %d %s", a.status, a.body)
	}
	b := newBrowser(t)
	cust := b.tab(s.url)
	cust.open(ps.Path)
	if h := cust.text("h1"); h != "API keys" || !strings.Contains(cust.text("header"), "cust@example.com") {
		t.Fatalf("the portal link led to %q, header %q", h, cust.text("header"))
	}
	if !strings.Contains(cust.text(".brand"), "Acme API") || value(cust, "title", chromedp.Title()) != "API keys · Acme API" {
		t.Errorf("the dashboard is not branded: %q", cust.text(".brand"))
	}
	back := value(cust, "read the back link", chromedp.Evaluate[string](`[...document.querySelectorAll("header a")].find(a => a.textContent.startsWith("Back to"))?.href ?? ""`))
	if back != "https://app.example.com/settings" {
		t.Errorf("the link back to the app is %q", back)
	}
	if !cust.has(`a[href="/keys/new"]`) {
		t.Error("the customer, a developer, cannot create keys")
	}
	accent := value(cust, "read the accent", chromedp.Evaluate[string](`getComputedStyle(document.documentElement).getPropertyValue("--brand").trim()`))
	if accent != "#6a1b9a" {
		t.Errorf("the brand colour is %q", accent)
	}
	// Used once: another browser is refused.
	other := b.tab(s.url)
	other.open(ps.Path)
	if h := other.text("h1"); h != "Sign-in failed" || !strings.Contains(other.text("main"), "used already") {
		t.Errorf("a second use of the portal link shows %q: %s", h, other.text("main"))
	}
	if p := s.visitor(t).get(ps.Path); p.status != http.StatusUnauthorized {
		t.Errorf("a second use of the portal link: %d; want 401", p.status)
	}

	// The owner invites a member.
	ada := b.tab(s.url)
	ada.signIn("ada@example.com", "correct horse battery")
	ada.follow(`a[href="/members"]`)
	ada.do("fill the member form",
		chromedp.SendKeys(chromedp.CSS(`#m-email`), "bob@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#m-name`), "Bob Builder"),
		chromedp.SetValue(chromedp.CSS(`#m-role`), "viewer"),
		chromedp.Click(chromedp.CSS(`form[aria-labelledby=add-h] input[value="contacts:read"]`)))
	ada.follow(`form[aria-labelledby=add-h] button[type=submit]`)
	link := value(ada, "read the invitation", chromedp.Value(chromedp.CSS(`#invite-link`)))
	if !strings.HasPrefix(link, s.url+"/invitations/inv_") || !strings.Contains(ada.text("table.members"), "bob@example.com") {
		t.Fatalf("the invitation link is %q", link)
	}
	ada.screenshot("dashboard-members")
	bob := b.tab(s.url)
	bob.open(strings.TrimPrefix(link, s.url))
	bob.do("set a password", chromedp.SendKeys(chromedp.CSS(`#password`), "bob builds things"), chromedp.SendKeys(chromedp.CSS(`#confirm`), "bob builds things"))
	bob.follow(`main form button[type=submit]`)
	if h := bob.text("h1"); h != "API keys" || !strings.Contains(bob.text("header"), "bob@example.com") || bob.has(`a[href="/keys/new"]`) {
		t.Fatalf("after the invitation: %q, %q", h, bob.text("header"))
	}
	if p := s.visitor(t).get(strings.TrimPrefix(link, s.url)); p.status != http.StatusUnauthorized {
		t.Errorf("a used invitation: %d; want 401", p.status)
	}
	s.visitor(t).signIn("bob@example.com", "bob builds things")
}

// axeFile is axe-core (Deque, MPL-2.0), vendored: the browser tests
// inject it into each page; no CDN.
const axeFile = "../../internal/dashboard/testdata/axe-4.14.1.min.js"

// axeViolations runs axe-core's WCAG 2.1 A and AA rules (labels, names,
// contrast, landmarks, keyboard focus order…) on the tab's page and
// returns what it finds, one line per rule and element.
func (tb *tab) axeViolations() []string {
	tb.t.Helper()
	src, err := os.ReadFile(axeFile)
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.do("inject axe-core", chromedp.Evaluate[chromedp.Void](string(src)))
	found := value(tb, "run axe-core", chromedp.Evaluate[[]string](`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
		.then(r => r.violations.flatMap(v => v.nodes.map(n => v.id + ": " + n.target.join(" ") + " (" + v.help + ")")))`, chromedp.EvalAwaitPromise))
	return found
}

// TestBrowserAccessibility: every page, signed out, as a tenant's owner
// and as the operator, passes axe-core's WCAG 2.1 AA rules (every field
// labelled, every button named, contrast, landmarks); and an owner signs
// in and creates a key with the keyboard alone.
func TestBrowserAccessibility(t *testing.T) {
	s := startSite(t)
	s.member(t, s.acme, "ada@example.com", "owner", "correct horse battery", "contacts:read")
	s.member(t, keyward.SystemTenantID, "ops@example.com", "owner", "the operator's password")
	_, keyID := createKey(t, s.server, s.root, s.acme, "billing")
	b := newBrowser(t)
	check := func(tb *tab, path string) {
		t.Helper()
		tb.open(path)
		for _, v := range tb.axeViolations() {
			t.Errorf("%s: %s", path, v)
		}
	}
	anon := b.tab(s.url)
	// The check finds what it is for: a field without a label, text
	// without contrast.
	anon.open("/sign-in")
	anon.do("spoil the page", chromedp.Evaluate[chromedp.Void](`document.querySelector("main").insertAdjacentHTML("beforeend",
		'<input id="unlabelled"><p id="faint">faint</p>'); document.getElementById("faint").style.color = "#ddd"`))
	if v := strings.Join(anon.axeViolations(), "\n"); !strings.Contains(v, "label: #unlabelled") || !strings.Contains(v, "color-contrast") {
		t.Fatalf("axe-core does not find an unlabelled field and faint text:\n%s", v)
	}
	check(anon, "/sign-in")
	check(anon, "/problems")
	check(anon, "/problems/insufficient_permissions")

	// The keyboard alone: type, Tab, Enter.
	ada := b.tab(s.url)
	ada.open("/sign-in")
	ada.do("sign in with the keyboard", chromedp.Evaluate[chromedp.Void](`window.__leaving = true`),
		chromedp.KeyEvent("ada@example.com\tcorrect horse battery\r"))
	ada.loaded()
	if h := ada.text("h1"); h != "API keys" {
		t.Fatalf("signed in with the keyboard, the page is %q", h)
	}
	// Tab to the create link, and follow it with Enter.
	for i := 0; ; i++ {
		ada.do("Tab", chromedp.KeyEvent("\t"))
		if value(ada, "focus", chromedp.Evaluate[string](`document.activeElement.textContent.trim()`)) == "Create API key" {
			break
		}
		if i > 20 {
			t.Fatal("Tab never reaches the create link")
		}
	}
	ada.do("Enter", chromedp.Evaluate[chromedp.Void](`window.__leaving = true`), chromedp.KeyEvent("\r"))
	ada.loaded()
	ada.do("name the key and send the form with Enter", chromedp.Evaluate[chromedp.Void](`window.__leaving = true`), chromedp.KeyEvent("keyboard-made\r"))
	ada.loaded()
	if !ada.has("#plaintext") {
		t.Fatalf("the keyboard's key was not revealed: %s", ada.text("main"))
	}
	for _, v := range ada.axeViolations() {
		t.Errorf("the reveal: %s", v)
	}
	for _, p := range []string{"/keys", "/keys/new", "/keys/" + keyID, "/keys/" + keyID + "/revoke", "/keys/" + keyID + "/rotate", "/members", "/audit", "/webhooks", "/logs"} {
		check(ada, p)
	}
	ops := b.tab(s.url)
	ops.signIn("ops@example.com", "the operator's password")
	check(ops, "/console")
	check(ops, "/keys")
}
