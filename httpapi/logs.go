package httpapi

import (
	"net/http"
	"strconv"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/view"
)

type (
	logsRequest struct {
		TenantID  string `query:"tenant_id" description:"tenant id or slug; a tenant's key sees its own tenant's entries only"`
		KeyID     string `query:"key_id" description:"the entries of one key (key_…)"`
		RequestID string `query:"request_id" description:"the entry of one request, by the X-Request-Id it was answered with"`
		Surface   string `query:"surface" enum:"api,forward-auth,verify,gateway" description:"where the key was verified"`
		Code      string `query:"code" description:"an outcome's code (invalid_api_key, rate_limited…), or allowed for the requests whose key was accepted"`
		Status    int    `query:"status" description:"the HTTP status answered"`
		From      string `query:"from" description:"entries at or after this time: a date (2026-11-29), an RFC 3339 time, or a duration back from now (1h, 7d)"`
		To        string `query:"to" description:"entries before this time, in the same forms as from"`
		After     int64  `query:"after" description:"the entries with an id above this one, oldest first (to follow the log), instead of newest first"`
		pageRequest
	}
	// logListResponse is view.List of request-log entries, named for the
	// OpenAPI document.
	logListResponse view.List[*keyward.RequestLog]

	// usageResponse is keyward.UsageReport, named for the OpenAPI
	// document.
	usageResponse keyward.UsageReport

	usageRequest struct {
		TenantID    string `query:"tenant_id" description:"tenant id or slug: the usage of its keys; a tenant's key sees its own tenant's only"`
		KeyID       string `query:"key_id" description:"the usage of one key (key_…)"`
		Granularity string `query:"granularity" enum:"hour,day" description:"the span of a bucket, in UTC: hour (the default) or day"`
		From        string `query:"from" description:"the first bucket: a date (2026-11-29), an RFC 3339 time, or a duration back from now (7d), rounded down to a bucket; a day before to by the hour, 30 days by the day, when absent"`
		To          string `query:"to" description:"the end of the range, in the same forms, rounded up to a bucket; now when absent"`
	}
)

// handleLogs lists the request log (manage.Service.RequestLogs).
func (s *server) handleLogs(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	p, err := readPage(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var status int64
	in := manage.LogListInput{TenantID: q.Get("tenant_id"), KeyID: q.Get("key_id"), RequestID: q.Get("request_id"), Surface: q.Get("surface"),
		Code: q.Get("code"), From: q.Get("from"), To: q.Get("to")}
	for _, n := range []struct {
		name string
		dst  *int64
	}{{"status", &status}, {"after", &in.After}} {
		if v := q.Get(n.name); v != "" {
			if *n.dst, err = strconv.ParseInt(v, 10, 64); err != nil {
				return keyward.FieldErrorf(n.name, "%q is not a whole number", v)
			}
		}
	}
	in.Status = int(status) // manage says when it is out of range
	logs, next, err := s.svc.RequestLogs(r.Context(), c, in, p)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, logListResponse(view.ListOf(logs, next)))
}

// handleUsage reports usage counts (manage.Service.Usage).
func (s *server) handleUsage(w http.ResponseWriter, r *http.Request, c manage.Caller) error {
	q := r.URL.Query()
	u, err := s.svc.Usage(r.Context(), c, manage.UsageInput{TenantID: q.Get("tenant_id"), KeyID: q.Get("key_id"),
		Granularity: q.Get("granularity"), From: q.Get("from"), To: q.Get("to")})
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, u)
}
