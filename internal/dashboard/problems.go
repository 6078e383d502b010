package dashboard

import (
	"net/http"

	"github.com/keyward/keyward"
)

// help is what a problem type's page says: what happened, in plain words,
// and what to do about it.
type help struct {
	What string
	Do   []string
}

// helps explains every code; TestProblemPages holds it to keyward.Codes.
var helps = map[keyward.Code]help{
	keyward.CodeMissingAPIKey: {"The request carried no API key.",
		[]string{"Send your key in the X-API-Key header, or as Authorization: Bearer followed by the key.",
			"Never put the key in the URL: it would end up in logs."}},
	keyward.CodeMalformedAPIKey: {"The request carried something that is not an API key of this service: a wrong prefix, a cut or padded key, quotes or spaces around it, or an Authorization header of another scheme than Bearer.",
		[]string{"Copy the key again, whole, without quotes or spaces.",
			"Check that it is a key of this service (its prefix, such as sk_live_) and that you send it as X-API-Key or Authorization: Bearer."}},
	keyward.CodeInvalidAPIKey: {"The key is well formed, but no key of this service matches it.",
		[]string{"Check that it was copied in full, and that it is a key of this environment.",
			"If it was lost, create a new one in the dashboard: a key is shown only once."}},
	keyward.CodeRevokedAPIKey: {"The key was revoked: it will never work again.",
		[]string{"Use the key that replaced it, or create a new one in the dashboard.",
			"If you did not revoke it, ask an admin of your account who did (the audit log says)."}},
	keyward.CodeExpiredAPIKey: {"The key has expired, or the grace period of its rotation has ended.",
		[]string{"Use the key that replaced it (the error's detail names it), or create a new one.",
			"Rotate keys before they expire: the dashboard shows when each one does."}},
	keyward.CodeAccountSuspended: {"The account the key belongs to is suspended: none of its keys work.",
		[]string{"Contact the provider of the API to have the account resumed."}},
	keyward.CodeKeyDisabled: {"The key is disabled: it works again only when it is enabled.",
		[]string{"Ask an admin of your account to enable it, or use another key."}},
	keyward.CodeEnvironmentMismatch: {"The key is of the wrong environment for this request: a test key where only live keys are taken, or the other way round.",
		[]string{"Use a key of the right environment: test keys (sk_test_) never touch live data."}},
	keyward.CodeIPNotAllowed: {"The key may be used only from certain IP addresses, and this request came from another.",
		[]string{"Call from an allowed address, or ask an admin to add yours to the key's restrictions."}},
	keyward.CodeReferrerNotAllowed: {"The key may be used only from certain web pages (its referrers), and this request came from another.",
		[]string{"Call from an allowed page, or ask an admin to add this origin to the key's referrers."}},
	keyward.CodeEndpointNotAllowed: {"The key may call only certain endpoints, and this is not one of them.",
		[]string{"Use a key that may call this endpoint, or ask an admin to add it to the key's restrictions."}},
	keyward.CodePlanNotEntitled: {"The plan of the account does not include this: no API access, or not this capability.",
		[]string{"Upgrade the plan with the provider of the API, or stay with what it includes."}},
	keyward.CodeInsufficientPermissions: {"The key, or the person it belongs to, lacks a permission this request needs.",
		[]string{"The error's detail names the permission and why it is missing.",
			"Use a key that holds it, or ask an admin to grant it to you and to the key."}},
	keyward.CodeRateLimited: {"Too many requests in a short time: the key's rate limit is reached.",
		[]string{"Wait for the time the Retry-After header gives, then try again.",
			"Spread requests out, and read the RateLimit headers of every answer to stay under the limit."}},
	keyward.CodeQuotaExceeded: {"The quota of the key or the account for this period is used up.",
		[]string{"Wait for the next period (Retry-After says when), or raise the quota with the provider."}},
	keyward.CodeTooManyFailedAttempts: {"Too many refused keys, or failed sign-ins, came from this address or for this account: it is blocked for a while.",
		[]string{"Wait for the time the Retry-After header gives, then try again with a valid key or password.",
			"If a program retries with a bad key, stop it and fix its key."}},
	keyward.CodeTLSRequired: {"This request must be made over HTTPS, and it was made over plain HTTP.",
		[]string{"Call the https:// address instead."}},
	keyward.CodeSignInFailed: {"Signing in to the dashboard failed: the email or the password is wrong, or the link used is used up or expired.",
		[]string{"Check the email and the password, and try again.",
			"Ask an admin or owner of your account for a new invitation link if yours no longer works."}},
	keyward.CodeInvalidRequest: {"The request is not one this service can read: a body, a query or a header is wrong.",
		[]string{"The error's detail and field say what to fix."}},
	keyward.CodeNotFound: {"There is no such thing, or it is not yours to see.",
		[]string{"Check the id in the URL: ids start with key_, mem_, ten_ or whk_."}},
	keyward.CodeConflict: {"The request conflicts with what exists: a name or email taken, or a change that would break a rule (such as leaving an account without an owner).",
		[]string{"The error's detail says what conflicts and what to do instead."}},
	keyward.CodeStorageUnavailable: {"The key could not be checked: the service's storage did not answer in time. The key was not refused.",
		[]string{"Retry in a few seconds (Retry-After says when)."}},
	keyward.CodeInternal: {"The service failed on its side.",
		[]string{"Retry; if it persists, report the request_id of the answer to the provider of the API."}},
	keyward.CodeUpstreamUnavailable: {"The key was accepted, but the API behind the gateway could not be reached.",
		[]string{"Retry in a moment; report the request_id if it persists."}},
	keyward.CodeUpstreamTimeout: {"The key was accepted, but the API behind the gateway did not answer in time.",
		[]string{"Retry in a moment; report the request_id if it persists."}},
}

type problemData struct {
	Code   keyward.Code
	Status int
	Help   help
	Codes  []keyward.Code
}

// problemPage explains one problem type, for a developer who pasted the
// `type` of a refusal into a browser. No sign-in needed.
func (d *Dashboard) problemPage(w http.ResponseWriter, r *http.Request) {
	c := keyward.Code(r.PathValue("code"))
	h, ok := helps[c]
	if !ok {
		d.fail(w, r, keyward.Errorf(keyward.CodeNotFound, "There is no problem type %q; see the list at /problems.", c))
		return
	}
	d.render(w, r, http.StatusOK, "problem.html", nil, pageView{Title: c.Title(), public: true, Data: problemData{Code: c, Status: c.Status(), Help: h}})
}

// problemsPage lists every problem type.
func (d *Dashboard) problemsPage(w http.ResponseWriter, r *http.Request) {
	d.render(w, r, http.StatusOK, "problem.html", nil, pageView{Title: "Errors and what to do", public: true, Data: problemData{Codes: keyward.Codes()}})
}
