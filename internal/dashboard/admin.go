package dashboard

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/verifyapi"
	"github.com/keyward/keyward/manage"
)

// The audit log, the webhooks and the operator's console.
func (d *Dashboard) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /audit", d.member(d.auditPage))
	mux.HandleFunc("GET /webhooks", d.member(d.webhooksPage))
	mux.HandleFunc("POST /webhooks", d.member(d.createWebhook))
	mux.HandleFunc("GET /webhooks/{id}", d.member(d.webhookPage))
	mux.HandleFunc("POST /webhooks/{id}/delete", d.member(d.deleteWebhook))
	mux.HandleFunc("POST /webhooks/{id}/deliveries/{delivery}/redeliver", d.member(d.redeliver))
	mux.HandleFunc("GET /console", d.member(d.consolePage))
	mux.HandleFunc("POST /console/tenants/{id}", d.member(d.changeTenant))
	mux.HandleFunc("POST /console/plans", d.member(d.createPlan))
	mux.HandleFunc("POST /console/plans/{name}", d.member(d.changePlan))
	mux.HandleFunc("POST /console/permissions", d.member(d.addPermission))
	mux.HandleFunc("POST /console/permissions/{name}/delete", d.member(d.removePermission))
	mux.HandleFunc("GET /logs", d.member(d.logsPage))
}

type auditData struct {
	Entries []*keyward.AuditEntry
	Filter  keyward.AuditFilter
	NextURL string
}

// auditPage lists the management actions of the tenant, newest first.
func (d *Dashboard) auditPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	q := r.URL.Query()
	f := keyward.AuditFilter{TenantID: q.Get("tenant"), Target: q.Get("target")}
	es, next, err := d.svc.AuditLog(r.Context(), s.caller, f, keyward.Page{Cursor: q.Get("cursor"), Limit: 100})
	if err != nil {
		d.fail(w, r, err)
		return
	}
	data := auditData{Entries: es, Filter: f}
	data.NextURL = nextPage("/audit", q, next)
	d.render(w, r, http.StatusOK, "audit.html", s, pageView{Title: "Audit log", Nav: "audit", Data: data})
}

type webhooksData struct {
	Webhooks  []*keyward.Webhook
	Tenant    string
	MayChange bool
	Events    []string
	Secret    string
	Form      manage.WebhookInput
}

// webhooksPage lists the endpoints the tenant's events go to.
func (d *Dashboard) webhooksPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	d.renderWebhooks(w, r, s, http.StatusOK, webhooksData{Tenant: r.URL.Query().Get("tenant")}, nil)
}

func (d *Dashboard) renderWebhooks(w http.ResponseWriter, r *http.Request, s *signedIn, status int, data webhooksData, formErr *keyward.Error) {
	hs, _, err := d.svc.Webhooks(r.Context(), s.caller, data.Tenant, keyward.Page{Limit: keyward.MaxPageLimit})
	if err != nil {
		d.fail(w, r, err)
		return
	}
	data.Webhooks, data.MayChange, data.Events = hs, manage.MayChangeWebhooks(s.caller), keyward.EventTypes
	if data.Secret == "" {
		data.Secret = d.sessions.PopString(r.Context(), sessSecret)
	}
	d.render(w, r, status, "webhooks.html", s, pageView{Title: "Webhooks", Nav: "webhooks", Error: formErr, Data: data})
}

// createWebhook registers an endpoint; its signing secret is shown once,
// on the page the browser is sent to.
func (d *Dashboard) createWebhook(w http.ResponseWriter, r *http.Request, s *signedIn) {
	in := manage.WebhookInput{TenantID: r.PostFormValue("tenant"), URL: r.PostFormValue("url"), Description: r.PostFormValue("description"), Events: r.PostForm["events"]}
	_, secret, err := d.svc.CreateWebhook(r.Context(), s.caller, in)
	if err != nil {
		e := verifyapi.AsError(err)
		if e.Code.Status() >= 500 || e.Code == keyward.CodeNotFound {
			d.fail(w, r, err)
			return
		}
		d.renderWebhooks(w, r, s, e.Code.Status(), webhooksData{Tenant: in.TenantID, Form: in}, e)
		return
	}
	// The secret signs every delivery, so it is kept as it is (docs/webhooks.md);
	// the session holds it only until the next page shows it.
	d.sessions.Put(r.Context(), sessSecret, secret)
	http.Redirect(w, r, "/webhooks"+tenantQuery(in.TenantID), http.StatusSeeOther)
}

func tenantQuery(t string) string {
	if t == "" {
		return ""
	}
	return "?tenant=" + t
}

type webhookData struct {
	Webhook    *keyward.Webhook
	Deliveries []*keyward.Delivery
	MayChange  bool
}

// webhookPage shows an endpoint and its deliveries, newest first.
func (d *Dashboard) webhookPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	ctx := r.Context()
	h, err := d.svc.Webhook(ctx, s.caller, r.PathValue("id"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	ds, _, err := d.svc.WebhookDeliveries(ctx, s.caller, h.ID, manage.DeliveryListInput{}, keyward.Page{Limit: 100})
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "webhook.html", s, pageView{Title: h.URL, Nav: "webhooks", Data: webhookData{Webhook: h, Deliveries: ds, MayChange: manage.MayChangeWebhooks(s.caller)}})
}

func (d *Dashboard) deleteWebhook(w http.ResponseWriter, r *http.Request, s *signedIn) {
	err := d.svc.DeleteWebhook(r.Context(), s.caller, r.PathValue("id"))
	d.done(w, r, err, "The endpoint is deleted, with its deliveries.", "/webhooks")
}

func (d *Dashboard) redeliver(w http.ResponseWriter, r *http.Request, s *signedIn) {
	_, err := d.svc.Redeliver(r.Context(), s.caller, r.PathValue("id"), r.PathValue("delivery"))
	d.done(w, r, err, "Delivered again: the delivery is due now.", "/webhooks/"+r.PathValue("id"))
}

type consoleData struct {
	Tenants     []*keyward.Tenant
	NextURL     string
	Plans       []*keyward.Plan
	Permissions []*keyward.Permission
	// InGrace are, per tenant id, the keys in a rotation's grace period
	// that were used since their successor was made: what the operator
	// waits for before the notice ends.
	InGrace map[string][]*keyward.Key
}

// consolePage is the operator's: tenants (suspend, resume, change plan),
// plans, the permission catalogue, and the old keys still in use.
// Everything on it is manage's, with its rules: a member who is not root
// is refused as a tenant's key would be.
func (d *Dashboard) consolePage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	ctx := r.Context()
	q := r.URL.Query()
	plans, err := d.svc.Plans(ctx, s.caller)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	ts, next, err := d.svc.Tenants(ctx, s.caller, keyward.Page{Cursor: q.Get("cursor"), Limit: 100})
	if err != nil {
		d.fail(w, r, err)
		return
	}
	perms, err := d.svc.Permissions(ctx, s.caller)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	data := consoleData{Tenants: ts, Plans: plans, Permissions: perms, InGrace: map[string][]*keyward.Key{}}
	if next != "" {
		data.NextURL = "/console?cursor=" + next
	}
	olds, err := d.svc.KeysInNotice(ctx, s.caller)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	for _, k := range olds {
		data.InGrace[k.TenantID] = append(data.InGrace[k.TenantID], k)
	}
	d.render(w, r, http.StatusOK, "console.html", s, pageView{Title: "Operator console", Nav: "console", Data: data})
}

// changeTenant suspends, resumes or moves a tenant to another plan.
func (d *Dashboard) changeTenant(w http.ResponseWriter, r *http.Request, s *signedIn) {
	ctx, id := r.Context(), r.PathValue("id")
	var (
		t   *keyward.Tenant
		err error
	)
	switch r.PostFormValue("action") {
	case "suspend":
		t, err = d.svc.SuspendTenant(ctx, s.caller, id)
	case "resume":
		t, err = d.svc.ResumeTenant(ctx, s.caller, id)
	case "plan":
		plan := r.PostFormValue("plan")
		t, err = d.svc.UpdateTenant(ctx, s.caller, id, manage.UpdateTenantInput{Plan: &plan})
	default:
		err = keyward.FieldErrorf("action", "%q is not an action; use suspend, resume or plan", r.PostFormValue("action"))
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.done(w, r, nil, fmt.Sprintf("Tenant %s is %s, on plan %s.", t.Slug, t.Status, t.Plan), "/console")
}

// planForm reads a plan's form: capabilities comma-separated, the
// permissions checked, API access, the key limit.
func planForm(r *http.Request) (caps, perms []string, apiAccess bool, maxKeys int, err error) {
	caps, perms = commaList(r.PostFormValue("capabilities")), r.PostForm["permissions"]
	if caps == nil {
		caps = []string{}
	}
	if perms == nil {
		perms = []string{}
	}
	if v := r.PostFormValue("max_keys"); v != "" {
		if maxKeys, err = strconv.Atoi(v); err != nil {
			return nil, nil, false, 0, keyward.FieldErrorf("max_keys", "%q is not a whole number; give the most keys a tenant may hold, or 0 for no limit", v)
		}
	}
	return caps, perms, r.PostFormValue("api_access") == "on", maxKeys, nil
}

// createPlan makes a plan; its limits are set with the API or the command
// line.
func (d *Dashboard) createPlan(w http.ResponseWriter, r *http.Request, s *signedIn) {
	caps, perms, api, maxKeys, err := planForm(r)
	if err == nil {
		_, err = d.svc.CreatePlan(r.Context(), s.caller, manage.CreatePlanInput{Name: r.PostFormValue("name"), Capabilities: caps, Permissions: perms, APIAccess: &api, MaxKeys: maxKeys})
	}
	d.done(w, r, err, "Created the plan "+r.PostFormValue("name")+".", "/console")
}

// changePlan changes a plan's capabilities, permissions, API access and
// key limit.
func (d *Dashboard) changePlan(w http.ResponseWriter, r *http.Request, s *signedIn) {
	caps, perms, api, maxKeys, err := planForm(r)
	if err == nil {
		_, err = d.svc.UpdatePlan(r.Context(), s.caller, r.PathValue("name"), manage.UpdatePlanInput{Capabilities: &caps, Permissions: &perms, APIAccess: &api, MaxKeys: &maxKeys})
	}
	d.done(w, r, err, "Changed the plan "+r.PathValue("name")+": its tenants' keys follow it on every node within a second.", "/console")
}

func (d *Dashboard) addPermission(w http.ResponseWriter, r *http.Request, s *signedIn) {
	_, err := d.svc.AddPermission(r.Context(), s.caller, manage.CreatePermissionInput{Name: r.PostFormValue("name"), Description: r.PostFormValue("description")})
	d.done(w, r, err, "Added the permission "+r.PostFormValue("name")+" to the catalogue.", "/console")
}

func (d *Dashboard) removePermission(w http.ResponseWriter, r *http.Request, s *signedIn) {
	err := d.svc.RemovePermission(r.Context(), s.caller, r.PathValue("name"))
	d.done(w, r, err, "Removed the permission "+r.PathValue("name")+" from the catalogue.", "/console")
}

type logsData struct {
	Logs    []*keyward.RequestLog
	Filter  manage.LogListInput
	NextURL string
}

// logsPage is the request log of the tenant (of every tenant for the
// operator), filtered as GET /v1/logs is.
func (d *Dashboard) logsPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	q := r.URL.Query()
	status, _ := strconv.Atoi(q.Get("status"))
	f := manage.LogListInput{TenantID: q.Get("tenant"), KeyID: q.Get("key"), RequestID: q.Get("request_id"), Code: q.Get("code"), Status: status, From: q.Get("from")}
	logs, next, err := d.svc.RequestLogs(r.Context(), s.caller, f, keyward.Page{Cursor: q.Get("cursor"), Limit: 100})
	if err != nil {
		d.fail(w, r, err)
		return
	}
	data := logsData{Logs: logs, Filter: f}
	data.NextURL = nextPage("/logs", q, next)
	d.render(w, r, http.StatusOK, "logs.html", s, pageView{Title: "Request log", Nav: "logs", Data: data})
}
