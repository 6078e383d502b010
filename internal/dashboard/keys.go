package dashboard

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/verifyapi"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/view"
)

func (d *Dashboard) keyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /keys", d.member(d.keysPage))
	mux.HandleFunc("GET /keys/new", d.member(d.newKeyPage))
	mux.HandleFunc("POST /keys", d.member(d.createKey))
	mux.HandleFunc("GET /keys/{id}", d.member(d.keyPage))
	mux.HandleFunc("GET /keys/{id}/reveal", d.member(d.revealPage))
	mux.HandleFunc("POST /keys/{id}/reveal", d.member(d.revealNew))
	mux.HandleFunc("GET /keys/{id}/revoke", d.member(d.revokePage))
	mux.HandleFunc("POST /keys/{id}/revoke", d.member(d.revokeKey))
	mux.HandleFunc("GET /keys/{id}/rotate", d.member(d.rotatePage))
	mux.HandleFunc("POST /keys/{id}/rotate", d.member(d.rotateKey))
}

// keyRow is a key as the list shows it, with what the caller may do to it.
type keyRow struct {
	view.Key
	MayChange bool
	// AwaitsReveal: the key is the successor of the operator's rotation
	// with notice, whose secret its tenant has not seen yet; MayReveal:
	// the caller may reveal it.
	AwaitsReveal, MayReveal bool
}

type keysData struct {
	Keys      []keyRow
	Filter    manage.KeyListInput
	NextURL   string
	MayCreate bool
}

// keysPage lists the tenant's keys (every tenant's for the operator),
// newest first, filtered by environment and status, a page at a time.
func (d *Dashboard) keysPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	q := r.URL.Query()
	f := manage.KeyListInput{TenantID: q.Get("tenant"), Environment: q.Get("environment"), Status: q.Get("status"), MemberID: q.Get("member")}
	ks, next, err := d.svc.Keys(r.Context(), s.caller, f, keyward.Page{Cursor: q.Get("cursor"), Limit: keysPerPage})
	if err != nil {
		d.fail(w, r, err)
		return
	}
	pending, err := d.svc.PendingReveals(r.Context(), s.caller, f.TenantID, ks)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	now := d.svc.Now()
	data := keysData{Filter: f, MayCreate: manage.MayCreateKeys(s.caller)}
	for _, k := range ks {
		row := keyRow{Key: view.KeyOf(k, now), MayChange: manage.MayChangeKey(s.caller, k), AwaitsReveal: slices.Contains(pending, k.ID)}
		row.MayReveal = row.AwaitsReveal && manage.MayRevealKey(s.caller, k)
		data.Keys = append(data.Keys, row)
	}
	data.NextURL = nextPage("/keys", q, next)
	d.render(w, r, http.StatusOK, "keys.html", s, pageView{Title: "API keys", Nav: "keys", Data: data})
}

// keysPerPage is how many keys a page of the list shows.
const keysPerPage = 50

// keyForm is the create form as it was sent, to show again with an
// error.
type keyForm struct {
	Tenant, Name, Environment, Expires, ExpiresOn  string
	Permissions                                    []string
	IPs, Referrers, Endpoints, Resources, Metadata string
	Offered                                        []string
	Root                                           bool
}

// offeredPermissions are the permissions the create form offers: the
// caller's own (what manage lets it give), or for the operator the
// catalogue's and keys:manage.
func (d *Dashboard) offeredPermissions(r *http.Request, s *signedIn) []string {
	if !s.caller.Root() {
		return slices.Clone(s.caller.Permissions)
	}
	out := []string{keyward.PermManageKeys}
	if ps, err := d.svc.Permissions(r.Context(), s.caller); err == nil {
		for _, p := range ps {
			out = append(out, p.Name)
		}
	}
	return out
}

func (d *Dashboard) newKeyPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	if !manage.MayCreateKeys(s.caller) {
		// The same refusal CreateKey gives.
		_, _, err := d.svc.CreateKey(r.Context(), s.caller, manage.CreateKeyInput{})
		d.fail(w, r, err)
		return
	}
	form := keyForm{Environment: string(keyward.Live), Expires: "90d", Offered: d.offeredPermissions(r, s), Root: s.caller.Root(), Tenant: r.URL.Query().Get("tenant")}
	d.render(w, r, http.StatusOK, "key-new.html", s, pageView{Title: "Create an API key", Nav: "keys", Data: form})
}

// createKey makes a key from the form, keeps its plaintext sealed in the
// session for the reveal (sealReveal), and sends the browser there.
func (d *Dashboard) createKey(w http.ResponseWriter, r *http.Request, s *signedIn) {
	form := keyForm{
		Tenant: r.PostFormValue("tenant"), Name: r.PostFormValue("name"), Environment: r.PostFormValue("environment"),
		Expires: r.PostFormValue("expires"), ExpiresOn: r.PostFormValue("expires_on"), Permissions: r.PostForm["permissions"],
		IPs: r.PostFormValue("ips"), Referrers: r.PostFormValue("referrers"), Endpoints: r.PostFormValue("endpoints"),
		Resources: r.PostFormValue("resources"), Metadata: r.PostFormValue("metadata"),
		Offered: d.offeredPermissions(r, s), Root: s.caller.Root(),
	}
	in, err := form.input()
	if err == nil {
		var k *keyward.Key
		var plaintext string
		if k, plaintext, err = d.svc.CreateKey(r.Context(), s.caller, in); err == nil {
			d.reveal(w, r, k, plaintext)
			return
		}
	}
	d.formError(w, r, s, "key-new.html", "Create an API key", form, err)
}

// formError shows a form again with the error of what it asked, or an
// error page when the error is not about the form.
func (d *Dashboard) formError(w http.ResponseWriter, r *http.Request, s *signedIn, page, title string, form any, err error) {
	e := verifyapi.AsError(err)
	if e.Code.Status() >= 500 || e.Code == keyward.CodeNotFound {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, e.Code.Status(), page, s, pageView{Title: title, Nav: "keys", Error: e, Data: form})
}

// input reads the form as manage reads a request: lists one entry per
// line (or comma), metadata and resources as name=value lines.
func (f keyForm) input() (manage.CreateKeyInput, error) {
	in := manage.CreateKeyInput{TenantID: strings.TrimSpace(f.Tenant), Name: f.Name, Environment: f.Environment, Permissions: f.Permissions}
	switch f.Expires {
	case "", "never":
	case "date":
		on := strings.TrimSpace(f.ExpiresOn)
		if on == "" {
			return in, keyward.FieldErrorf("expires", "choose the date the key expires on, or another choice of expiry")
		}
		in.Expires = &on
	default:
		e := f.Expires
		in.Expires = &e
	}
	r := keyward.Restrictions{IPs: lines(f.IPs), Referrers: lines(f.Referrers), Endpoints: lines(f.Endpoints)}
	for _, l := range lines(f.Resources) {
		param, values, ok := strings.Cut(l, "=")
		if !ok {
			return in, keyward.FieldErrorf("restrictions.resources", "%q is not param=value,value; give a path parameter and the values a key may reach, one per line, such as account_id=acc_1,acc_2", l)
		}
		if r.Resources == nil {
			r.Resources = map[string][]string{}
		}
		r.Resources[strings.TrimSpace(param)] = commaList(values)
	}
	if len(r.IPs)+len(r.Referrers)+len(r.Endpoints)+len(r.Resources) > 0 {
		in.Restrictions = &r
	}
	for _, l := range lines(f.Metadata) {
		name, value, ok := strings.Cut(l, "=")
		if !ok {
			return in, keyward.FieldErrorf("metadata", "%q is not name=value; give one tag per line, such as owner=billing-team", l)
		}
		if in.Metadata == nil {
			in.Metadata = map[string]string{}
		}
		in.Metadata[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	return in, nil
}

// lines splits a textarea into its entries, one per line, blank lines and
// surrounding spaces left out.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// commaList splits a comma-separated list, blank entries left out.
func commaList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// revealCookie holds, in the browser only, the key that opens a
// plaintext sealed in the session (sealReveal).
const revealCookie = "keyward_reveal"

// revealFor is how long a new key's plaintext waits for its reveal.
const revealFor = 5 * time.Minute

// sealedReveal is a plaintext waiting in the session for its one reveal.
type sealedReveal struct {
	KeyID  string
	Sealed []byte
	Until  time.Time
}

// reveal keeps a new key's plaintext for the one page that shows it,
// without ever storing it in plain text: it is sealed with AES-GCM under a
// random key that only the browser holds (a cookie of this path, gone in
// five minutes), and the sealed text waits in the session, which the
// reveal empties. A reload, another tab or another device finds nothing.
func (d *Dashboard) reveal(w http.ResponseWriter, r *http.Request, k *keyward.Key, plaintext string) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	gcm, err := newGCM(secret)
	if err != nil {
		d.fail(w, r, keyward.Internal(err))
		return
	}
	nonce := make([]byte, gcm.NonceSize())
	_, _ = rand.Read(nonce)
	sealed := gcm.Seal(nonce, nonce, []byte(plaintext), []byte(k.ID))
	d.sessions.Put(r.Context(), sessReveal, sealedReveal{KeyID: k.ID, Sealed: sealed, Until: d.svc.Now().Add(revealFor)})
	http.SetCookie(w, &http.Cookie{Name: revealCookie, Value: base64.RawURLEncoding.EncodeToString(secret), Path: "/keys/" + k.ID + "/reveal",
		MaxAge: int(revealFor.Seconds()), HttpOnly: true, Secure: d.secure, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/keys/"+k.ID+"/reveal", http.StatusSeeOther)
}

func newGCM(secret []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// opened reads and forgets the plaintext waiting for key id, "" when none
// is (shown already, expired, or another key's).
func (d *Dashboard) opened(w http.ResponseWriter, r *http.Request, id string) string {
	http.SetCookie(w, &http.Cookie{Name: revealCookie, Value: "", Path: "/keys/" + id + "/reveal", MaxAge: -1, HttpOnly: true, Secure: d.secure, SameSite: http.SameSiteStrictMode})
	// Another key's reveal page (a link from another site, say) leaves
	// this one waiting.
	sr, ok := d.sessions.Get(r.Context(), sessReveal).(sealedReveal)
	if !ok || sr.KeyID != id {
		return ""
	}
	d.sessions.Remove(r.Context(), sessReveal)
	c, err := r.Cookie(revealCookie)
	if err != nil || d.svc.Now().After(sr.Until) {
		return ""
	}
	secret, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(secret) != 32 {
		return ""
	}
	gcm, err := newGCM(secret)
	if err != nil || len(sr.Sealed) < gcm.NonceSize() {
		return ""
	}
	plain, err := gcm.Open(nil, sr.Sealed[:gcm.NonceSize()], sr.Sealed[gcm.NonceSize():], []byte(id))
	if err != nil {
		return ""
	}
	return string(plain)
}

type revealData struct {
	Key       view.Key
	Plaintext string
	// Old is the key a rotation replaced, nil for a key made new.
	Old *view.Key
}

// revealPage shows a new key's plaintext, once.
func (d *Dashboard) revealPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	id := r.PathValue("id")
	k, err := d.svc.Key(r.Context(), s.caller, id)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	data := revealData{Key: view.KeyOf(k, d.svc.Now()), Plaintext: d.opened(w, r, id)}
	if k.RotatedFrom != "" {
		if old, err := d.svc.Key(r.Context(), s.caller, k.RotatedFrom); err == nil {
			o := view.KeyOf(old, d.svc.Now())
			data.Old = &o
		}
	}
	d.render(w, r, http.StatusOK, "key-reveal.html", s, pageView{Title: "Your new API key", Nav: "keys", Data: data})
}

type keyData struct {
	Key       view.Key
	MayChange bool
	Logs      []*keyward.RequestLog
	LogFilter manage.LogListInput
	LogsNext  string
	LogError  *keyward.Error
	Chart     *chart
	Span      string
}

// keyPage shows a key: its settings, its usage chart and its request log.
func (d *Dashboard) keyPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	ctx := r.Context()
	k, err := d.svc.Key(ctx, s.caller, r.PathValue("id"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	data := keyData{Key: view.KeyOf(k, d.svc.Now()), MayChange: manage.MayChangeKey(s.caller, k), Span: q.Get("span")}
	usage := manage.UsageInput{KeyID: k.ID}
	if data.Span == "30d" {
		usage.Granularity = string(keyward.Daily)
	} else {
		data.Span = "24h"
	}
	rep, err := d.svc.Usage(ctx, s.caller, usage)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	data.Chart = newChart(rep)
	data.LogFilter = manage.LogListInput{KeyID: k.ID, RequestID: strings.TrimSpace(q.Get("request_id")), Code: q.Get("code"), From: q.Get("from")}
	logs, next, err := d.svc.RequestLogs(ctx, s.caller, data.LogFilter, keyward.Page{Cursor: q.Get("cursor"), Limit: logsPerPage})
	if err != nil {
		e := verifyapi.AsError(err)
		if e.Code.Status() >= 500 {
			d.fail(w, r, err)
			return
		}
		data.LogError = e
	}
	data.Logs, data.LogsNext = logs, next
	d.render(w, r, http.StatusOK, "key.html", s, pageView{Title: k.Name, Nav: "keys", Data: data})
}

// logsPerPage is how many request-log entries a key's page shows.
const logsPerPage = 50

type confirmData struct {
	Key   view.Key
	Grace string
}

// revokePage asks to confirm a revocation, naming the key.
func (d *Dashboard) revokePage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	d.confirmPage(w, r, s, "key-revoke.html", "Revoke ")
}

// rotatePage asks for a rotation's grace period.
func (d *Dashboard) rotatePage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	d.confirmPage(w, r, s, "key-rotate.html", "Rotate ")
}

func (d *Dashboard) confirmPage(w http.ResponseWriter, r *http.Request, s *signedIn, page, verb string) {
	k, err := d.svc.Key(r.Context(), s.caller, r.PathValue("id"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, page, s, pageView{Title: verb + k.Name, Nav: "keys", Data: confirmData{Key: view.KeyOf(k, d.svc.Now()), Grace: "24h"}})
}

func (d *Dashboard) revokeKey(w http.ResponseWriter, r *http.Request, s *signedIn) {
	k, err := d.svc.RevokeKey(r.Context(), s.caller, r.PathValue("id"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.done(w, r, nil, fmt.Sprintf("The key %q (%s…%s) is revoked: it is refused everywhere from now on.", k.Name, k.Start, k.Last4), "/keys/"+k.ID)
}

func (d *Dashboard) rotateKey(w http.ResponseWriter, r *http.Request, s *signedIn) {
	grace := r.PostFormValue("grace_period")
	succ, plaintext, _, err := d.svc.RotateKey(r.Context(), s.caller, r.PathValue("id"), manage.RotateKeyInput{GracePeriod: &grace})
	if err != nil {
		k, kerr := d.svc.Key(r.Context(), s.caller, r.PathValue("id"))
		if kerr != nil {
			d.fail(w, r, kerr)
			return
		}
		d.formError(w, r, s, "key-rotate.html", "Rotate "+k.Name, confirmData{Key: view.KeyOf(k, d.svc.Now()), Grace: grace}, err)
		return
	}
	d.reveal(w, r, succ, plaintext)
}

// revealNew gives the successor of the operator's rotation with notice
// its secret, and reveals it once.
func (d *Dashboard) revealNew(w http.ResponseWriter, r *http.Request, s *signedIn) {
	k, plaintext, err := d.svc.RevealKey(r.Context(), s.caller, r.PathValue("id"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.reveal(w, r, k, plaintext)
}
