package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/testcert"
	"github.com/keyward/keyward/manage"
)

// site is keyward serve with its dashboard, a tenant (acme) and its
// members, for the dashboard's tests.
type site struct {
	*server
	db, root, acme string
}

// startSite starts keyward serve on a new database with args, and makes
// tenant acme with the permissions contacts:read and contacts:write.
func startSite(t *testing.T, args ...string) *site {
	t.Helper()
	db := "sqlite:" + dbFile(t)
	s := &site{server: startServer(t, db, args...), db: db}
	s.waitHealthy(t)
	s.root = strings.TrimSpace(s.stdout.String())
	for _, p := range []string{"contacts:read", "contacts:write"} {
		if a := s.call(t, "POST", "/v1/permissions", s.root, map[string]any{"name": p}); a.status != http.StatusCreated {
			t.Fatalf("add permission %s: %d %s", p, a.status, a.body)
		}
	}
	s.acme = createTenant(t, s.server, s.root, "acme")
	return s
}

// member adds a member to tenant (an id or "system"), with password.
func (s *site) member(t *testing.T, tenant, email, role, password string, perms ...string) string {
	t.Helper()
	a := s.call(t, "POST", "/v1/members", s.root, map[string]any{"tenant_id": tenant, "email": email, "name": email, "role": role, "permissions": perms})
	m := decodeJSON[struct{ Data struct{ ID string } }](t, string(a.body))
	if a.status != http.StatusCreated || m.Data.ID == "" {
		t.Fatalf("add member %s: %d %s", email, a.status, a.body)
	}
	if o := cliIn(t, s.db, password+"\n", "members", "set-password", m.Data.ID); o.err != nil {
		t.Fatalf("set-password: %v %s", o.err, o.stderr)
	}
	return m.Data.ID
}

// visitor is a browser without a browser: a cookie jar, redirects not
// followed, so that every answer can be looked at.
type visitor struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (s *site) visitor(t *testing.T) *visitor {
	jar, _ := cookiejar.New(nil)
	return &visitor{t: t, base: s.url, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is an answer of the dashboard.
type page struct {
	status   int
	location string
	header   http.Header
	body     string
}

func (v *visitor) do(req *http.Request) page {
	v.t.Helper()
	resp, err := v.c.Do(req)
	if err != nil {
		v.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, resp.Header.Get("Location"), resp.Header, string(b)}
}

func (v *visitor) get(path string) page {
	v.t.Helper()
	req, _ := http.NewRequest("GET", v.base+path, nil)
	return v.do(req)
}

// post sends a form as the page at path would, with the CSRF token it
// carries unless form sets one.
func (v *visitor) post(path string, form url.Values) page {
	v.t.Helper()
	req, _ := http.NewRequest("POST", v.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return v.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the page at path.
func (v *visitor) csrf(path string) string {
	v.t.Helper()
	p := v.get(path)
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		v.t.Fatalf("GET %s: %d, no CSRF token in the page", path, p.status)
	}
	return m[1]
}

// signIn signs in and fails the test unless it goes to the keys.
func (v *visitor) signIn(email, password string) page {
	v.t.Helper()
	p := v.post("/sign-in", url.Values{"csrf": {v.csrf("/sign-in")}, "email": {email}, "password": {password}})
	if p.status != http.StatusSeeOther || p.location != "/keys" {
		v.t.Fatalf("sign in as %s: %d %s\n%s", email, p.status, p.location, p.body)
	}
	return p
}

func cookieOf(h http.Header, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestDashboardSignIn: the session cookie is HttpOnly and SameSite=Lax,
// Secure over TLS; its token changes at sign-in; a wrong password gets
// the same 401 as an unknown email, and the fifth locks the account (429
// with Retry-After) even for the right password; a form without its CSRF
// token is refused 403; sign-out ends the session, and sign out everywhere
// ends the member's other sessions too.
func TestDashboardSignIn(t *testing.T) {
	s := startSite(t)
	s.member(t, s.acme, "ada@example.com", "owner", "correct horse battery", "contacts:read")
	v := s.visitor(t)
	if p := v.get("/"); p.status != http.StatusSeeOther || p.location != "/sign-in" {
		t.Fatalf("GET / signed out: %d %s", p.status, p.location)
	}
	if p := v.get("/keys"); p.status != http.StatusSeeOther || p.location != "/sign-in?next=%2Fkeys" {
		t.Fatalf("GET /keys signed out: %d %s", p.status, p.location)
	}
	// Opening the sign-in page stores no session: its CSRF token is a
	// cookie of its own.
	signInPage := v.get("/sign-in")
	if c := cookieOf(signInPage.header, "keyward_session"); c != nil {
		t.Fatalf("the sign-in page started a session: %+v", c)
	}
	if c := cookieOf(signInPage.header, "keyward_csrf"); c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("the sign-in page's CSRF cookie: %+v", c)
	}
	token := csrfField.FindStringSubmatch(signInPage.body)[1]
	if p := v.post("/sign-in", url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}}); p.status != http.StatusForbidden {
		t.Fatalf("a sign-in without its CSRF token: %d", p.status)
	}
	p := v.post("/sign-in", url.Values{"csrf": {token}, "email": {"ada@example.com"}, "password": {"correct horse battery"}})
	c := cookieOf(p.header, "keyward_session")
	if p.status != http.StatusSeeOther || c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.Path != "/" {
		t.Fatalf("sign-in: %d, cookie %+v; want HttpOnly, SameSite=Lax, path /", p.status, c)
	}
	// A session that existed before sign-in (its token perhaps planted)
	// is not the one signed in.
	x0 := s.visitor(t)
	x0.signIn("ada@example.com", "correct horse battery")
	x0.post("/sign-out", url.Values{"csrf": {x0.csrf("/keys")}})
	before := cookieOf(x0.get("/sign-in").header, "keyward_session")
	var planted string
	for _, ck := range x0.c.Jar.Cookies(mustURL(s.url)) {
		if ck.Name == "keyward_session" {
			planted = ck.Value
		}
	}
	after := cookieOf(x0.signIn("ada@example.com", "correct horse battery").header, "keyward_session")
	if planted == "" || after == nil || after.Value == planted {
		t.Fatalf("the session token did not change at sign-in: before %q (%v), after %v", planted, before, after)
	}
	if p := v.get("/keys"); p.status != http.StatusOK || !strings.Contains(p.body, "ada@example.com") {
		t.Fatalf("GET /keys signed in: %d", p.status)
	}
	// A form without the token, or with another session's, is refused.
	other := s.visitor(t)
	otherToken := other.csrf("/sign-in")
	for _, form := range []url.Values{{"name": {"k"}}, {"csrf": {otherToken}, "name": {"k"}}} {
		if p := v.post("/keys", form); p.status != http.StatusForbidden || !strings.Contains(p.body, "security token") {
			t.Fatalf("POST /keys with csrf %q: %d; want 403", form.Get("csrf"), p.status)
		}
	}
	if a := s.call(t, "GET", "/v1/api-keys?tenant_id=acme", s.root, nil); strings.Contains(string(a.body), `"name":"k"`) {
		t.Fatal("a form without its CSRF token made a key")
	}

	// Failures read the same; the fifth locks the account.
	x := s.visitor(t)
	var bodies []string
	for _, email := range []string{"nobody@example.com", "ada@example.com"} {
		p := x.post("/sign-in", url.Values{"csrf": {x.csrf("/sign-in")}, "email": {email}, "password": {"not the password"}})
		if p.status != http.StatusUnauthorized {
			t.Fatalf("a wrong sign-in: %d", p.status)
		}
		bodies = append(bodies, csrfField.ReplaceAllString(strings.ReplaceAll(p.body, email, "EMAIL"), ""))
	}
	if bodies[0] != bodies[1] {
		t.Error("an unknown email and a wrong password answer differently")
	}
	for range manage.MaxSignInFailures - 1 {
		x.post("/sign-in", url.Values{"csrf": {x.csrf("/sign-in")}, "email": {"ada@example.com"}, "password": {"not the password"}})
	}
	p = x.post("/sign-in", url.Values{"csrf": {x.csrf("/sign-in")}, "email": {"ada@example.com"}, "password": {"correct horse battery"}})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") != "900" || !strings.Contains(p.body, "Too many failed sign-ins") {
		t.Fatalf("the right password on a locked account: %d, Retry-After %q", p.status, p.header.Get("Retry-After"))
	}

}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestDashboardSignOut: sign-out ends the session; sign out everywhere
// ends every session of the member, on every device.
func TestDashboardSignOut(t *testing.T) {
	s := startSite(t)
	ada := s.member(t, s.acme, "ada@example.com", "owner", "correct horse battery", "contacts:read")
	laptop, phone := s.visitor(t), s.visitor(t)
	laptop.signIn("ada@example.com", "correct horse battery")
	phone.signIn("ada@example.com", "correct horse battery")
	if p := laptop.post("/sign-out", url.Values{"csrf": {laptop.csrf("/keys")}}); p.status != http.StatusSeeOther || p.location != "/sign-in" {
		t.Fatalf("sign-out: %d %s", p.status, p.location)
	}
	if p := laptop.get("/keys"); p.status != http.StatusSeeOther {
		t.Fatalf("GET /keys after sign-out: %d; want the sign-in page", p.status)
	}
	if p := phone.get("/keys"); p.status != http.StatusOK {
		t.Fatalf("the other session ended with sign-out: %d", p.status)
	}
	laptop.signIn("ada@example.com", "correct horse battery")
	if p := laptop.post("/sign-out-everywhere", url.Values{"csrf": {laptop.csrf("/keys")}}); p.status != http.StatusSeeOther {
		t.Fatalf("sign out everywhere: %d", p.status)
	}
	for name, v := range map[string]*visitor{"laptop": laptop, "phone": phone} {
		if p := v.get("/keys"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/sign-in") {
			t.Fatalf("%s after sign out everywhere: %d %s", name, p.status, p.location)
		}
	}
	if p := phone.get("/sign-in"); !strings.Contains(p.body, "signed out everywhere") {
		t.Errorf("the sign-in page does not say why the session ended:\n%s", p.body)
	}
	if a := s.call(t, "GET", "/v1/audit-log?target="+ada, s.root, nil); !strings.Contains(string(a.body), `"actor":"dashboard","actor_ip":"127.0.0.1","actor_member":"`+ada+`","action":"member.sign_out_everywhere"`) {
		t.Errorf("sign out everywhere is not in the audit log: %s", a.body)
	}
}

// TestDashboardSessionExpiry: a session unused for --session-idle ends,
// and one used all along ends at --session-lifetime.
func TestDashboardSessionExpiry(t *testing.T) {
	s := startSite(t, "--session-idle", "1s", "--session-lifetime", "3s")
	s.member(t, s.acme, "ada@example.com", "owner", "correct horse battery")
	idle := s.visitor(t)
	idle.signIn("ada@example.com", "correct horse battery")
	time.Sleep(1500 * time.Millisecond)
	if p := idle.get("/keys"); p.status != http.StatusSeeOther {
		t.Fatalf("a session idle for 1.5s with --session-idle 1s: %d", p.status)
	}
	busy := s.visitor(t)
	busy.signIn("ada@example.com", "correct horse battery")
	start := time.Now()
	for time.Since(start) < 2500*time.Millisecond {
		if p := busy.get("/keys"); p.status != http.StatusOK {
			t.Fatalf("a session in use ended after %v, before its lifetime", time.Since(start))
		}
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(time.Until(start.Add(3500 * time.Millisecond)))
	if p := busy.get("/keys"); p.status != http.StatusSeeOther {
		t.Fatalf("a session in use past --session-lifetime 3s: %d", p.status)
	}
}

// TestDashboardSecureCookie: over TLS, or behind a proxy that ends it
// (an https --public-url), the dashboard's cookies are Secure.
func TestDashboardSecureCookie(t *testing.T) {
	dir := t.TempDir()
	cert := testcert.Write(t, dir, "dash")
	s := startServer(t, "sqlite:"+filepath.Join(dir, "k.db"), "--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool(), ServerName: "localhost"}}}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Get(strings.Replace(s.url, "http://", "https://", 1) + "/sign-in")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c := cookieOf(resp.Header, "keyward_csrf")
	if resp.StatusCode != http.StatusOK || c == nil || !c.Secure || !c.HttpOnly {
		t.Fatalf("GET /sign-in over TLS: %d, cookie %+v; want Secure and HttpOnly", resp.StatusCode, c)
	}

	// Behind a proxy that ends TLS: an https --public-url marks them
	// Secure too.
	behind := startSite(t, "--public-url", "https://keys.example.com")
	behind.member(t, behind.acme, "ada@example.com", "owner", "correct horse battery")
	page := behind.visitor(t).get("/sign-in")
	csrf := cookieOf(page.header, "keyward_csrf")
	if csrf == nil || !csrf.Secure {
		t.Fatalf("the CSRF cookie behind a TLS proxy: %+v", csrf)
	}
	form := url.Values{"csrf": {csrfField.FindStringSubmatch(page.body)[1]}, "email": {"ada@example.com"}, "password": {"correct horse battery"}}
	req, _ := http.NewRequest("POST", behind.url+"/sign-in", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: csrf.Name, Value: csrf.Value})
	p := behind.visitor(t).do(req)
	if c := cookieOf(p.header, "keyward_session"); p.status != http.StatusSeeOther || c == nil || !c.Secure {
		t.Fatalf("sign-in behind a TLS proxy: %d, session cookie %+v; want Secure", p.status, c)
	}
}

// TestProblemPages: the type of a refusal is a page of the instance that
// explains it: under --public-url when given, else under the API
// listener's address; a developer who opens it lands on help, signed in or
// not.
func TestProblemPages(t *testing.T) {
	s := startSite(t)
	a := s.call(t, "GET", "/v1/whoami", "", nil)
	typ := decodeJSON[struct{ Type string }](t, string(a.body)).Type
	if typ != s.url+"/problems/missing_api_key" {
		t.Fatalf("type %q; want %s/problems/missing_api_key", typ, s.url)
	}
	p := s.visitor(t).get(strings.TrimPrefix(typ, s.url))
	if p.status != http.StatusOK || !strings.Contains(p.body, "<h1>Missing API key</h1>") || !strings.Contains(p.body, "X-API-Key") {
		t.Fatalf("GET %s: %d\n%s", typ, p.status, p.body)
	}
	if c := cookieOf(p.header, "keyward_session"); c != nil {
		t.Error("a problem page started a session")
	}
	if p := s.visitor(t).get("/problems"); p.status != http.StatusOK || strings.Count(p.body, `<a href="/problems/`) != len(keyward.Codes()) {
		t.Errorf("GET /problems: %d, want a link per code", p.status)
	}
	if p := s.visitor(t).get("/problems/no_such_code"); p.status != http.StatusNotFound {
		t.Errorf("GET /problems/no_such_code: %d", p.status)
	}
	// Forward-auth's refusals too; with --public-url, under it.
	pub := startSite(t, "--public-url", "https://keys.example.com/")
	a = pub.call(t, "GET", "/v1/forward-auth", "sk_live_nope", nil)
	if typ := decodeJSON[struct{ Type string }](t, string(a.body)).Type; typ != "https://keys.example.com/problems/malformed_api_key" {
		t.Errorf("forward-auth's type with --public-url: %q", typ)
	}
}

// TestConsole: the operator's staff add a plan and change it, move a
// tenant to it, suspend it (its keys and its members' sessions stop) and
// resume it, and edit the catalogue, from the console; a tenant's owner
// is refused every one of these.
func TestConsole(t *testing.T) {
	s := startSite(t)
	s.member(t, s.acme, "ada@example.com", "owner", "correct horse battery")
	s.member(t, keyward.SystemTenantID, "ops@example.com", "owner", "the operator's password")
	key, _ := createKey(t, s.server, s.root, s.acme, "billing")
	ops, ada := s.visitor(t), s.visitor(t)
	ops.signIn("ops@example.com", "the operator's password")
	ada.signIn("ada@example.com", "correct horse battery")
	post := func(v *visitor, path string, form url.Values) page {
		t.Helper()
		form.Set("csrf", v.csrf("/keys"))
		return v.post(path, form)
	}
	steps := []struct {
		path string
		form url.Values
	}{
		{"/console/plans", url.Values{"name": {"pro"}, "capabilities": {"m2m_api, webhooks"}, "permissions": {"contacts:read"}, "api_access": {"on"}, "max_keys": {"20"}}},
		{"/console/plans/pro", url.Values{"capabilities": {"m2m_api"}, "permissions": {"contacts:read", "contacts:write"}, "api_access": {"on"}, "max_keys": {"30"}}},
		{"/console/tenants/" + s.acme, url.Values{"action": {"plan"}, "plan": {"pro"}}},
		{"/console/permissions", url.Values{"name": {"orders:read"}, "description": {"Read orders"}}},
	}
	for _, st := range steps {
		if p := post(ada, st.path, st.form); p.status != http.StatusForbidden {
			t.Errorf("a tenant's owner: POST %s: %d; want 403", st.path, p.status)
		}
		if p := post(ops, st.path, st.form); p.status != http.StatusSeeOther {
			t.Fatalf("the operator: POST %s: %d\n%s", st.path, p.status, p.body)
		}
	}
	plan := decodeJSON[struct{ Data keyward.Plan }](t, string(s.call(t, "GET", "/v1/plans/pro", s.root, nil).body)).Data
	if strings.Join(plan.Capabilities, ",") != "m2m_api" || len(plan.Permissions) != 2 || plan.MaxKeys != 30 || !plan.APIAccess {
		t.Errorf("the plan after the console: %+v", plan)
	}
	if tn := decodeJSON[struct{ Data keyward.Tenant }](t, string(s.call(t, "GET", "/v1/tenants/acme", s.root, nil).body)).Data; tn.Plan != "pro" {
		t.Errorf("acme's plan: %q", tn.Plan)
	}
	console := ops.get("/console").body
	if !strings.Contains(console, "orders:read") || !strings.Contains(console, `value="m2m_api"`) {
		t.Errorf("the console does not show the catalogue and the plan")
	}
	// Suspended: the tenant's keys and its members' sessions stop.
	if p := post(ops, "/console/tenants/"+s.acme, url.Values{"action": {"suspend"}}); p.status != http.StatusSeeOther {
		t.Fatalf("suspend: %d", p.status)
	}
	waitFor(t, "the suspended tenant's key refused", func() bool { return s.call(t, "GET", "/v1/whoami", key, nil).status == http.StatusForbidden })
	if p := ada.get("/keys"); p.status != http.StatusSeeOther {
		t.Errorf("a suspended tenant's owner still sees the keys: %d", p.status)
	}
	if p := post(ops, "/console/tenants/"+s.acme, url.Values{"action": {"resume"}}); p.status != http.StatusSeeOther {
		t.Fatalf("resume: %d", p.status)
	}
	waitFor(t, "the resumed tenant's key accepted", func() bool { return s.call(t, "GET", "/v1/whoami", key, nil).status == http.StatusOK })
}
