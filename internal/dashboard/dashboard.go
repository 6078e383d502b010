// Package dashboard owns Keyward's web pages (docs/dashboard.md): members
// sign in with a password, and see and manage their tenant's keys as their
// role allows. Pages are html/template, embedded, and plain forms that
// work without JavaScript; every action goes through manage.Service with
// the signed-in member as its manage.Caller, so that what a member may see
// and do is decided by manage's rules, as for the API and the command line.
// Sessions are scs's, stored on Keyward's database by the hash of their
// token; every form carries the session's CSRF token.
package dashboard

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/verifyapi"
	"github.com/keyward/keyward/manage"
)

//go:embed templates assets
var files embed.FS

// Patterns are the paths the dashboard serves on the API's listener: the
// HTTP API hands these to Handler, and keeps every other path its own.
var Patterns = []string{"/{$}", "/sign-in", "/sign-out", "/sign-out-everywhere", "/keys", "/keys/", "/members", "/members/",
	"/invitations/", "/portal/", "/problems", "/problems/", "/audit", "/webhooks", "/webhooks/", "/console", "/console/", "/logs", "/assets/"}

// Session defaults (serve --session-idle, --session-lifetime).
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultLifetime    = 12 * time.Hour
)

// Config holds what the dashboard needs.
type Config struct {
	Service *manage.Service
	Store   keyward.AccountStore
	// ClientIP is the address of a request's client, as the API finds it
	// (trusted proxies included).
	ClientIP func(*http.Request) netip.Addr
	// Secure marks the session cookie Secure: set when the dashboard is
	// served over TLS (serve --tls-cert, or an https --public-url).
	Secure bool
	// IdleTimeout ends a session left unused this long, Lifetime one this
	// old whatever its use; the defaults when zero.
	IdleTimeout, Lifetime time.Duration
	Logger                *slog.Logger
	// PublicURL is the base URL the dashboard is reached at, for the
	// links it makes (invitations); "" for the request's own host.
	PublicURL string
	// Brand makes the pages look like the provider's own product.
	Brand Brand
}

// Brand is how the pages look (serve --brand-name, --brand-logo,
// --brand-color).
type Brand struct {
	// Name replaces "Keyward" in the pages' header and titles.
	Name string
	// Logo is the URL of an image shown before the name (https, or a
	// path of this site).
	Logo string
	// Color is the accent colour of links and buttons, #rrggbb.
	Color string
}

var brandColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// Check reports which setting of the brand is wrong, and how.
func (b Brand) Check() error {
	if b.Color != "" && !brandColor.MatchString(b.Color) {
		return fmt.Errorf("--brand-color: %q is not a colour of the form #rrggbb, such as #0b5cad", b.Color)
	}
	if b.Logo != "" {
		u, err := url.Parse(b.Logo)
		if err != nil || !(u.Scheme == "https" && u.Host != "" || u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/")) {
			return fmt.Errorf("--brand-logo: %q is not an https URL or a path of this site, such as https://example.com/logo.svg", b.Logo)
		}
	}
	if len(b.Name) > 100 {
		return fmt.Errorf("--brand-name: %d bytes is longer than 100", len(b.Name))
	}
	return nil
}

// Dashboard is the handler of the pages.
type Dashboard struct {
	svc      *manage.Service
	store    keyward.AccountStore
	sessions *scs.SessionManager
	clientIP func(*http.Request) netip.Addr
	log      *slog.Logger
	pages    map[string]*template.Template
	secure   bool
	handler  http.Handler
	// publicURL and brand are Config's.
	publicURL string
	brand     Brand
}

// Session values.
const (
	sessMember = "member"
	sessEpoch  = "epoch"
	sessCSRF   = "csrf"
	sessFlash  = "flash"
	sessReveal = "reveal"
	sessBack   = "back"
	sessSecret = "secret"
)

// New returns the dashboard.
func New(c Config) (*Dashboard, error) {
	if err := c.Brand.Check(); err != nil {
		return nil, err
	}
	if c.Brand.Name == "" {
		c.Brand.Name = "Keyward"
	}
	d := &Dashboard{svc: c.Service, store: c.Store, clientIP: c.ClientIP, log: c.Logger, secure: c.Secure, publicURL: strings.TrimSuffix(c.PublicURL, "/"), brand: c.Brand}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	sm := scs.New()
	sm.Store = sessionStore{s: c.Store, now: c.Service.Now}
	sm.IdleTimeout, sm.Lifetime = c.IdleTimeout, c.Lifetime
	if sm.IdleTimeout <= 0 {
		sm.IdleTimeout = DefaultIdleTimeout
	}
	if sm.Lifetime <= 0 {
		sm.Lifetime = DefaultLifetime
	}
	sm.Cookie.Name = "keyward_session"
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Secure = c.Secure
	sm.Cookie.Persist = false
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		d.fail(w, r, keyward.Internal(fmt.Errorf("session: %w", err)))
	}
	d.sessions = sm
	var err error
	if d.pages, err = parsePages(); err != nil {
		return nil, err
	}
	// The assets and the problem pages are the same for everyone: no
	// session is read or written for them.
	public := http.NewServeMux()
	assets, _ := fs.Sub(files, "assets")
	public.Handle("GET /assets/", http.StripPrefix("/assets/", withCache(http.FileServerFS(assets))))
	public.HandleFunc("GET /assets/brand.css", d.brandCSS)
	public.HandleFunc("GET /problems", d.problemsPage)
	public.HandleFunc("GET /problems/{code}", d.problemPage)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.home)
	mux.HandleFunc("GET /sign-in", d.signInPage)
	mux.HandleFunc("POST /sign-in", d.checked(d.signIn))
	mux.HandleFunc("POST /sign-out", d.checked(d.signOut))
	mux.HandleFunc("POST /sign-out-everywhere", d.member(d.signOutEverywhere))
	d.keyRoutes(mux)
	d.memberRoutes(mux)
	d.adminRoutes(mux)
	public.Handle("/", sm.LoadAndSave(mux))
	d.handler = withHeaders(public)
	return d, nil
}

// ServeHTTP serves the pages.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) { d.handler.ServeHTTP(w, r) }

// withHeaders sets the headers of every page: no caching of what a member
// sees, no framing by another site, and a content security policy that
// allows only the dashboard's own scripts and styles.
func withHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if !strings.HasPrefix(r.URL.Path, "/assets/") {
			h.Set("Cache-Control", "no-store")
		}
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: https:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		next.ServeHTTP(w, r)
	})
}

// withCache lets browsers keep the assets for an hour.
func withCache(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// signedIn is who a request's session is signed in as.
type signedIn struct {
	caller manage.Caller
	member *keyward.Member
}

// handlerFunc is a page of a signed-in member.
type handlerFunc func(w http.ResponseWriter, r *http.Request, s *signedIn)

// member admits a request whose session is signed in and still valid
// (manage.Service.SessionCaller), with its CSRF token checked on every
// POST before anything else; any other goes to the sign-in page.
func (d *Dashboard) member(h handlerFunc) http.HandlerFunc {
	return d.checked(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id := d.sessions.GetString(ctx, sessMember)
		if id == "" {
			d.toSignIn(w, r, "")
			return
		}
		c, m, err := d.svc.SessionCaller(ctx, id, d.sessions.GetInt64(ctx, sessEpoch), d.ip(r))
		if keyward.ErrorCode(err) == keyward.CodeSignInFailed {
			_ = d.sessions.Destroy(ctx)
			d.toSignIn(w, r, verifyapi.AsError(err).Message)
			return
		}
		if err != nil {
			d.fail(w, r, err)
			return
		}
		h(w, r, &signedIn{caller: c, member: m})
	})
}

// checked refuses a POST whose form does not carry the session's CSRF
// token (403), before the handler reads anything else of it.
func (d *Dashboard) checked(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			want := d.wantCSRF(r)
			got := r.PostFormValue("csrf")
			if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
				d.fail(w, r, keyward.Errorf(keyward.CodeInsufficientPermissions,
					"This form was sent without the security token of your session (it may be from another site, or from a page opened before you signed in). Go back, reload the page and send it again."))
				return
			}
		}
		h(w, r)
	}
}

// maxForm bounds a form's body.
const maxForm = 64 << 10

// csrf is the session's CSRF token, made when the session has none.
// A signed-in session's token is kept in the session; a visitor who is
// not signed in (the sign-in and invitation forms) gets one in a cookie
// of its own, compared with the form's (a double-submit token), so that
// no session is stored for anyone who merely opens a page.
func (d *Dashboard) csrf(w http.ResponseWriter, r *http.Request) string {
	ctx := r.Context()
	if d.sessions.GetString(ctx, sessMember) == "" {
		if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
			return c.Value
		}
		t := randomToken()
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: t, Path: "/", HttpOnly: true, Secure: d.secure, SameSite: http.SameSiteStrictMode})
		return t
	}
	if t := d.sessions.GetString(ctx, sessCSRF); t != "" {
		return t
	}
	t := randomToken()
	d.sessions.Put(ctx, sessCSRF, t)
	return t
}

// csrfCookie holds the CSRF token of a visitor who is not signed in.
const csrfCookie = "keyward_csrf"

// wantCSRF is the token a POST's form must carry: its session's when
// signed in, else its cookie's; "" for none.
func (d *Dashboard) wantCSRF(r *http.Request) string {
	if d.sessions.GetString(r.Context(), sessMember) != "" {
		return d.sessions.GetString(r.Context(), sessCSRF)
	}
	if c, err := r.Cookie(csrfCookie); err == nil {
		return c.Value
	}
	return ""
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (d *Dashboard) ip(r *http.Request) string {
	if d.clientIP == nil {
		return ""
	}
	if a := d.clientIP(r); a.IsValid() {
		return a.String()
	}
	return ""
}

// toSignIn sends a request that is not signed in to the sign-in page,
// with why, and where to come back to after.
func (d *Dashboard) toSignIn(w http.ResponseWriter, r *http.Request, why string) {
	if why != "" {
		d.sessions.Put(r.Context(), sessFlash, why)
	}
	next := ""
	if r.Method == http.MethodGet && r.URL.Path != "/" {
		next = "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	http.Redirect(w, r, "/sign-in"+next, http.StatusSeeOther)
}

func (d *Dashboard) home(w http.ResponseWriter, r *http.Request) {
	if d.sessions.GetString(r.Context(), sessMember) == "" {
		http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/keys", http.StatusSeeOther)
}

// pageView is what every page is given.
type pageView struct {
	Title  string
	Nav    string
	CSRF   string
	Flash  string
	Error  *keyward.Error
	Member *keyward.Member
	Caller manage.Caller
	Now    time.Time
	Data   any
	// Brand is the provider's name, logo and colour; Back the link back
	// to the provider's app of a portal session, "" for none.
	Brand Brand
	Back  string
	// public marks a page anyone may read, with no form: it reads and
	// writes no session.
	public bool
}

// render writes page name with status and data, the signed-in member s
// (nil on the sign-in page) and the session's CSRF token. The page is
// rendered into a buffer first, so that a failure answers an error page,
// never half a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, s *signedIn, v pageView) {
	ctx := r.Context()
	if !v.public {
		v.CSRF = d.csrf(w, r)
		if v.Flash == "" {
			v.Flash = d.sessions.PopString(ctx, sessFlash)
		}
		v.Back = d.sessions.GetString(ctx, sessBack)
	}
	v.Now = d.svc.Now()
	v.Brand = d.brand
	if s != nil {
		v.Member, v.Caller = s.member, s.caller
	}
	t, ok := d.pages[name]
	if !ok {
		d.fail(w, r, keyward.Internal(fmt.Errorf("no page %q", name)))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		d.fail(w, r, keyward.Internal(fmt.Errorf("render %s: %w", name, err)))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail answers err as an error page with its status: what went wrong and
// what to do, as the API's problem says it.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := verifyapi.AsError(err)
	if e.Code.Status() >= 500 {
		// The route's pattern, not the path, which holds the tokens of
		// invitation and portal links.
		d.log.ErrorContext(r.Context(), "dashboard request failed", "method", r.Method, "route", r.Pattern, "code", e.Code, "err", apikey.Redact(err.Error()))
	}
	t := d.pages["error.html"]
	var buf bytes.Buffer
	if t == nil || t.ExecuteTemplate(&buf, "layout", pageView{Title: e.Code.Title(), Error: e, Now: time.Now(), Brand: d.brand}) != nil {
		http.Error(w, e.Code.Title()+": "+apikey.Redact(e.Message), e.Code.Status())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(e.RetryAfter.Seconds())))
	}
	w.WriteHeader(e.Code.Status())
	_, _ = w.Write(buf.Bytes())
}

// signInPage shows the sign-in form, or goes home when signed in already.
func (d *Dashboard) signInPage(w http.ResponseWriter, r *http.Request) {
	if d.sessions.GetString(r.Context(), sessMember) != "" {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	d.render(w, r, http.StatusOK, "sign-in.html", nil, pageView{Title: "Sign in", Data: signInForm{Next: r.URL.Query().Get("next")}})
}

type signInForm struct {
	Email, Tenant, Next string
	AskTenant           bool
}

// signIn checks an email and password (manage.Service.SignIn, with its
// limits) and starts a session with a new token, so that a token set
// before sign-in is worth nothing after it.
func (d *Dashboard) signIn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form := signInForm{Email: r.PostFormValue("email"), Tenant: r.PostFormValue("tenant"), Next: r.PostFormValue("next")}
	cred, err := d.svc.SignIn(ctx, manage.SignInInput{Email: form.Email, Password: r.PostFormValue("password"), Tenant: form.Tenant, IP: d.ip(r)})
	if err != nil {
		e := verifyapi.AsError(err)
		if e.Code.Status() >= 500 {
			d.fail(w, r, err)
			return
		}
		form.AskTenant = e.Field == "tenant"
		if e.RetryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(int(e.RetryAfter.Seconds())))
		}
		d.render(w, r, e.Code.Status(), "sign-in.html", nil, pageView{Title: "Sign in", Error: e, Data: form})
		return
	}
	if d.start(w, r, cred, "") {
		http.Redirect(w, r, safeNext(form.Next), http.StatusSeeOther)
	}
}

// start signs the session in as cred's member, in a new session with a
// new token and a new CSRF token;
// back is where the portal's link back goes, "" for none. It answers an
// error page and reports false when it cannot.
func (d *Dashboard) start(w http.ResponseWriter, r *http.Request, cred *keyward.Credential, back string) bool {
	ctx := r.Context()
	// A new session, with a new token: nothing of the one before (its
	// flash, a pending reveal, a portal's back link) is carried over to
	// another member, and a token set before sign-in is worth nothing.
	if err := d.sessions.Destroy(ctx); err != nil {
		d.fail(w, r, err)
		return false
	}
	d.sessions.Put(ctx, sessMember, cred.Member.ID)
	d.sessions.Put(ctx, sessEpoch, cred.SessionEpoch)
	d.sessions.Put(ctx, sessCSRF, randomToken())
	if back != "" {
		d.sessions.Put(ctx, sessBack, back)
	}
	return true
}

// safeNext is where to go after sign-in: a path of this site, never
// another site (an open redirect), /keys by default.
func safeNext(next string) string {
	u, err := url.Parse(next)
	// Browsers drop tabs and newlines from URLs and read a backslash as
	// a slash, so "/\t/evil.example" would go to another site.
	if next == "" || err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "/keys"
	}
	return next
}

func (d *Dashboard) signOut(w http.ResponseWriter, r *http.Request) {
	if err := d.sessions.Destroy(r.Context()); err != nil {
		d.fail(w, r, err)
		return
	}
	d.sessions.Put(r.Context(), sessFlash, "You are signed out.")
	http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
}

// signOutEverywhere ends every session of the member, this one too.
func (d *Dashboard) signOutEverywhere(w http.ResponseWriter, r *http.Request, s *signedIn) {
	if _, err := d.svc.EndSessions(r.Context(), s.caller, s.member.ID); err != nil {
		d.fail(w, r, err)
		return
	}
	_ = d.sessions.Destroy(r.Context())
	d.sessions.Put(r.Context(), sessFlash, "You are signed out of every session, on every device.")
	http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
}

// pruneEvery is how often Run deletes expired sessions.
const pruneEvery = 10 * time.Minute

// Run deletes expired sessions and old failed sign-ins every 10 minutes
// until ctx ends.
func (d *Dashboard) Run(ctx context.Context) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for {
			n, err := d.store.PruneSessions(ctx, d.svc.Now(), 1000)
			if err != nil && ctx.Err() == nil {
				d.log.Warn("dashboard: could not prune expired sessions", "err", err)
			}
			if err != nil || n < 1000 {
				break
			}
		}
	}
}

// brandCSS sets the accent colour of the brand.
func (d *Dashboard) brandCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	if d.brand.Color != "" {
		fmt.Fprintf(w, ":root { --brand: %s; }\n", d.brand.Color)
	}
}

// nextPage is the URL of a list's next page: path with the query q and
// the cursor next, "" when there is none.
func nextPage(path string, q url.Values, next string) string {
	if next == "" {
		return ""
	}
	q.Set("cursor", next)
	return path + "?" + q.Encode()
}

// done ends an action of a form: an error page for err, else the flash
// message and the page to go to.
func (d *Dashboard) done(w http.ResponseWriter, r *http.Request, err error, flash, to string) {
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.sessions.Put(r.Context(), sessFlash, flash)
	http.Redirect(w, r, to, http.StatusSeeOther)
}
