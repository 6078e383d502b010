// Package policy owns the route policy (what each route of the operator's
// API needs) and the request-shaped restrictions of a key (endpoints and
// referrers): their grammar, their validation, and matching them against a
// request from memory without allocating. It is pure: no storage, no
// HTTP. docs/policy.md describes the file for operators.
//
// # Patterns
//
// A pattern is `METHOD /path`, as in Go's ServeMux. METHOD is an
// upper-case method token (GET also matches HEAD) or * for every method.
// Each path segment is a literal (percent escapes decoded), {name} (one
// non-empty segment, captured), * (one non-empty segment, not captured),
// or ** as the last segment (zero or more segments: /v1/contacts/**
// matches /v1/contacts, /v1/contacts/ and /v1/contacts/a/b). A trailing
// slash is a segment of its own: /a and /a/ are different paths, and only
// ** matches both. When several routes match, the most specific decides,
// whatever the order of the file; two routes that match some request
// alike with neither more specific are refused when the file is loaded.
//
// # Using it in a verifier
//
// Clean the request target once, then use the path for everything:
//
//	path, err := policy.CleanPath(target) // 400 invalid_request on error
//	var m policy.Match                    // on the stack, or reused
//	pol.Match(method, path, &m)           // m.Route: the route, or the default
//	switch r := m.Route; {
//	case r.Public:                        // no key needed
//	case r.Default && r.Deny:             // refuse
//	}
//	if !key.Endpoints.Allow(method, path) { /* 403 endpoint_not_allowed */ }
//	if !key.Referrers.Allow(referer, origin) { /* 403 referrer_not_allowed */ }
//	if !m.Route.AllowsEnvironment(env) { /* 403 environment_mismatch */ }
//	tenant := m.Tenant()                  // must be the key's tenant: else 404
//	for i, name := range m.Route.Resources {
//		v := m.Resource(i)                // must be allowed for name: else 404
//	}
//	// m.Route.Capabilities ⊆ the plan's, else 403 plan_not_entitled;
//	// m.Route.Permissions ⊆ the effective ones, else 403 insufficient_permissions.
//
// CleanPath allocates only when the path has a % escape; Match,
// Endpoints.Allow and Referrers.Allow never allocate. ParseEndpoints and
// ParseReferrers compile a key's restrictions once, when the key is cached;
// Endpoints.Within and Referrers.Within say whether a new key's
// restrictions lie inside its maker's.
//
// A File holds the policy of a routes file and reloads it (Reload, on
// SIGHUP; Watch, on change), keeping the old policy when the new file is
// bad. Policy values are immutable: a verifier loads File.Policy once per
// request.
package policy
