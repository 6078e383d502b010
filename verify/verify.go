// Package verify owns key verification: the presenting rules, the checks in
// the order of docs/outcomes.md, the in-memory cache kept fresh by the change
// feed, batched last-used writes, and the spends of metered keys written by
// group commit (spender.go).
//
// A Verifier answers from memory for every key it has seen: a cached key is
// verified without storage I/O and without allocating. Every server runs one
// and reads the change feed, so a change made anywhere (another server, the
// command line) reaches it within a poll interval; the cache's time to live
// bounds how stale an entry can be even if the feed cannot be read.
package verify

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/policy"
)

// Defaults of Options.
const (
	DefaultCacheSize      = 100_000
	DefaultCacheTTL       = 5 * time.Minute
	DefaultPollInterval   = 200 * time.Millisecond
	DefaultFlushInterval  = time.Second
	DefaultStorageTimeout = 2 * time.Second
	// MaxCacheTTL is the longest CacheTTL, and how long an entry stays
	// cached at most: even while the change feed keeps it current, it is
	// read again from the store after that. The change feed keeps changes
	// for ChangeRetention, many times longer, so that no cached entry can
	// be older than a change that was pruned.
	MaxCacheTTL = 24 * time.Hour
	// ChangeRetention is how long the change feed keeps a change.
	ChangeRetention = 7 * 24 * time.Hour
)

// recordCacheSize bounds the tenant, member and plan caches each. They are
// far fewer than keys.
const recordCacheSize = 10_000

// cacheClockResolution is how often the coarse clock reads the time. The
// caches expire entries by it and last-used times are stamped with it:
// reading a precise clock on every verification would cost a large part of
// it. Two uses closer than this may carry the same time, so a later use may
// not move last_used_at forward; 10 ms keeps that out of sight.
const cacheClockResolution = 10 * time.Millisecond

// Options configure a Verifier. Zero values take the defaults.
type Options struct {
	// Format is the key format of this instance; the zero Format means
	// apikey.DefaultPrefix.
	Format apikey.Format
	// Clock tells the time that expiry is checked against; nil means
	// time.Now.
	Clock keyward.Clock
	// CacheSize is the most keys the cache holds (DefaultCacheSize).
	CacheSize int
	// CacheTTL bounds how stale a cached key or tenant can be
	// (DefaultCacheTTL; at most MaxCacheTTL). An entry older than CacheTTL
	// is read again from the store in the background, and answered from
	// meanwhile only while the change feed was read within CacheTTL: so
	// when the store cannot be reached, cached keys are answered for
	// CacheTTL after the feed was last read, then looked up again (and
	// refused as storage_unavailable). A verifier that is not started
	// reads no feed, so its entries are answered from for CacheTTL after
	// they were read (see freshness).
	CacheTTL time.Duration
	// PollInterval is how often the change feed is read
	// (DefaultPollInterval). Changes must reach every server within 1 s.
	PollInterval time.Duration
	// FlushInterval is how often pending last-used times are written
	// (DefaultFlushInterval).
	FlushInterval time.Duration
	// StorageTimeout bounds how long a verification waits for the store to
	// look up a key or tenant that is not cached (DefaultStorageTimeout):
	// past it, the answer is storage_unavailable, not a request left
	// hanging on a database that does not answer.
	StorageTimeout time.Duration
	// Logger receives warnings about the storage and the feed; nil discards
	// them. It never receives a key, only key ids.
	Logger *slog.Logger
	// FailedAttempts is how many keys refused as malformed, unknown or
	// revoked a client address (an IPv6 /64) may send within
	// FailedAttemptWindow before it is blocked for FailedAttemptBlock:
	// its requests are then refused with too_many_failed_attempts without
	// a storage read, except those with a key cached as valid so far
	// (docs/outcomes.md). DefaultFailedAttempts when 0;
	// NoFailedAttemptLimit (any negative value) turns the limiter off.
	FailedAttempts int
	// FailedAttemptWindow is the window of FailedAttempts
	// (DefaultFailedAttemptWindow).
	FailedAttemptWindow time.Duration
	// FailedAttemptBlock is how long an address stays blocked
	// (DefaultFailedAttemptBlock).
	FailedAttemptBlock time.Duration
	// Limiter keeps the state of the keys' and tenants' rate limits: a
	// limit.Fallback on Redis shares them between nodes. nil means a
	// limit.Local of this node alone.
	Limiter limit.Limiter
	// ExpiryNotice is how long before its expiry a key carries the
	// Deprecation and Sunset notices (Result.Sunset); DefaultExpiryNotice
	// when 0, none when negative. A key in a rotation's grace period
	// carries them for the whole period.
	ExpiryNotice time.Duration
}

// DefaultExpiryNotice is Options.ExpiryNotice when it is not set: a week.
const DefaultExpiryNotice = 7 * 24 * time.Hour

// Request is what a caller presents for verification.
type Request struct {
	// Key is the key as presented, unchanged (see KeyFromRequest).
	Key string
	// IP is the client address; the zero Addr when unknown.
	IP netip.Addr
	// Permissions are the permissions the request needs; the key must be
	// able to use every one of them, beside those its route needs.
	Permissions []string
	// Method and Target are the original request's method and target (its
	// path, with or without the query string, as received), when known.
	// The key's endpoint restrictions are checked against them, and Policy
	// decides by them. With Target "", a key with endpoint restrictions is
	// refused, since what it is used for is not known, and Policy is not
	// used.
	Method, Target string
	// Referer and Origin are the original request's headers of those
	// names, for the key's referrer restrictions.
	Referer, Origin string
	// Policy is the route policy that says what the request needs
	// (docs/policy.md), or nil for none: then only Permissions are needed.
	Policy *policy.Policy
	// TLS is true when the original request came over TLS (HTTPS), as
	// its connection or a trusted proxy says: a route of Policy with
	// tls: required refuses a request without it, tls_required.
	TLS bool
	// RateLimit, when set, receives the decision of the key's rate
	// limits, for the RateLimit headers; Result.RateLimit then points to
	// it when the key has rate limits.
	RateLimit *limit.Decision
	// Counting says what step 11 does: count the request (the default),
	// check without counting, or leave it to a later call of Count.
	Counting Counting
}

// Counting says whether, and when, a verification counts its request
// against the key's rate limits, quotas and credits (step 11).
type Counting uint8

const (
	// CountNow checks the rate limits, quotas and credits and counts the
	// request against them.
	CountNow Counting = iota
	// CheckOnly checks them without counting anything: for asking again
	// about a request that was refused, and counted if it had to be,
	// already (nginx's error_page asks a second time).
	CheckOnly
	// CountLater leaves step 11 out, for a caller that decides whether it
	// serves the request after the key is verified (the management API
	// checks the caller's role): it calls Count once it does, so that a
	// request it refuses is not counted.
	CountLater
)

// Result is the outcome of a verification.
type Result struct {
	// Code is the outcome's code, or "" when the key is valid.
	Code keyward.Code
	// Detail tells the caller what to do; it is public and never contains
	// the key. It is "" when the key is valid.
	Detail string
	// Key is the stored key, set once the key was found, also when it is
	// refused afterwards. It is shared with the cache: treat it as
	// read-only.
	Key *keyward.Key
	// Tenant is the key's tenant, set once its status was checked. It is
	// shared with the cache: treat it as read-only.
	Tenant *keyward.Tenant
	// Access is what the key may do (its member, plan and effective
	// permissions), set with Tenant. It is shared with the cache: treat it
	// as read-only.
	Access *Access
	// Route is the route of the request's policy that decided, when the
	// request had a policy and a target: a route of the file, or its
	// default route. It is shared with the policy: treat it as read-only.
	Route *policy.Route
	// Public is true when the route is public: no key was asked for or
	// checked, and Key, Tenant and Access are nil.
	Public bool
	// RetryAfter is how long the caller should wait before it tries
	// again: set with too_many_failed_attempts and rate_limited.
	RetryAfter time.Duration
	// RateLimit is the decision of the key's rate limits, when the key
	// has some and Request.RateLimit was given: Request.RateLimit.
	RateLimit *limit.Decision
	// The notices of a key that is neither revoked nor expired, set
	// whatever the outcome that follows (docs/notices.md).
	Notice
}

// Valid reports whether the key was accepted.
func (r Result) Valid() bool { return r.Code == "" }

// Err returns the refusal as an *keyward.Error, or nil when the key is valid.
func (r Result) Err() *keyward.Error {
	if r.Code == "" {
		return nil
	}
	return &keyward.Error{Code: r.Code, Message: r.Detail, RetryAfter: r.RetryAfter}
}

// Store is what a Verifier asks of the storage: key, tenant, member and
// plan lookups on a cache miss, the change feed that keeps the cache fresh,
// and the writing of last-used times. Every keyward.Store is one.
type Store interface {
	keyward.KeyLookup
	keyward.TenantLookup
	keyward.MemberLookup
	keyward.PlanLookup
	keyward.UsageRecorder
	keyward.ChangeFeed
	keyward.Meter
}

// Verifier verifies keys against a store through a cache that the change
// feed keeps fresh, and records when each key was last used. Its methods are
// safe for concurrent use.
type Verifier struct {
	store    Store
	format   apikey.Format
	liveHead string // <prefix>_live_, the head of live keys (apikey.Head)
	testHead string // <prefix>_test_
	keyLen   int    // the length of every key of the format
	now      keyward.Clock
	// expiryNotice is Options.ExpiryNotice, negative for none.
	expiryNotice time.Duration
	// clockInjected says that Options.Clock was given: then it stamps
	// last-used times too, else the coarse cache clock does (usedAt).
	clockInjected bool
	log           *slog.Logger
	pollInterval  time.Duration
	flushInterval time.Duration
	// storageTimeout bounds each lookup of a key or tenant not cached.
	storageTimeout time.Duration
	// ttl is CacheTTL in nanoseconds, and lastSync the cache clock's time
	// when the last successful read of the change feed began (zero
	// before): see freshness.
	ttl      int64
	lastSync atomic.Int64

	// attempts is the failed-attempt limiter; nil when it is off.
	attempts *attemptLimiter
	// limiter keeps the state of rate limits (Options.Limiter).
	limiter limit.Limiter
	// spender counts the requests of metered keys in the store, in
	// batches (group commit).
	spender *spender

	cacheClock *otter.CoarseClock
	keys       *otter.Cache[[32]byte, *entry]
	keyLoader  otter.Loader[[32]byte, *entry]
	tenants    records[keyward.Tenant]
	members    records[keyward.Member]
	plans      records[keyward.Plan]
	// accessEpoch counts the tenant, member and plan changes applied. A
	// key's entry keeps its Access with the epoch it was worked out at,
	// and works it out again once the epoch has moved on.
	accessEpoch atomic.Uint64

	usage   usageLog
	flushMu sync.Mutex // serializes Flush

	feedMu   sync.Mutex // serializes Refresh and guards seq and feedInit
	seq      int64      // the last change applied
	feedInit bool       // whether seq is a position in the feed

	// appliedMu guards applied and appliedCh, which Applied reads without
	// waiting for a Refresh under way: applied is seq as last published,
	// and appliedCh is closed, and replaced, when it moves on.
	appliedMu sync.Mutex
	applied   int64
	appliedCh chan struct{}

	lifeMu  sync.Mutex // guards started, closed, stop and done
	started bool
	closed  bool
	stop    context.CancelFunc
	done    chan struct{}
}

// New returns a Verifier that reads store. Verify works at once; Start begins
// reading the change feed and writing usage in the background.
func New(store Store, opts Options) *Verifier {
	if opts.Format.Prefix() == "" {
		f, err := apikey.NewFormat(apikey.DefaultPrefix)
		if err != nil {
			panic("verify: the default key format is invalid: " + err.Error())
		}
		opts.Format = f
	}
	injectedClock := opts.Clock != nil
	if !injectedClock {
		opts.Clock = time.Now
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	opts.CacheTTL = min(opts.CacheTTL, MaxCacheTTL)
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.StorageTimeout <= 0 {
		opts.StorageTimeout = DefaultStorageTimeout
	}
	if opts.ExpiryNotice == 0 {
		opts.ExpiryNotice = DefaultExpiryNotice
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cacheClock := otter.NewCoarseClock(cacheClockResolution)
	v := &Verifier{
		store:          store,
		format:         opts.Format,
		liveHead:       opts.Format.Prefix() + "_" + string(keyward.Live) + "_",
		testHead:       opts.Format.Prefix() + "_" + string(keyward.Test) + "_",
		now:            opts.Clock,
		expiryNotice:   opts.ExpiryNotice,
		clockInjected:  injectedClock,
		log:            opts.Logger,
		pollInterval:   opts.PollInterval,
		flushInterval:  opts.FlushInterval,
		storageTimeout: opts.StorageTimeout,
		ttl:            int64(opts.CacheTTL),
		cacheClock:     cacheClock,
		appliedCh:      make(chan struct{}),
		// Verify refreshes entries older than the cache TTL in the
		// background, and reads those older than MaxCacheTTL again first
		// (see freshness); the refresh calculator is what lets it. A
		// failed refresh keeps the entry, and the verifier logs storage
		// failures itself. The cache expires nothing itself: with an
		// expiry, it would record every read in a buffer and start a
		// goroutine to drain it every few reads, a tenth of a cached
		// verification, even while it is far from full.
		keys: otter.Must(&otter.Options[[32]byte, *entry]{
			MaximumSize:       opts.CacheSize,
			RefreshCalculator: otter.RefreshWriting[[32]byte, *entry](opts.CacheTTL),
			Clock:             cacheClock,
			Logger:            &otter.NoopLogger{},
			StatsRecorder:     stats.NewCounter(),
		}),
	}
	size := min(opts.CacheSize, recordCacheSize)
	v.tenants = newRecords(v, size, store.Tenant)
	v.members = newRecords(v, size, store.Member)
	v.plans = newRecords(v, size, store.Plan)
	v.attempts = newAttemptLimiter(opts, opts.Logger)
	v.limiter = opts.Limiter
	v.spender = newSpender(store, opts.StorageTimeout)
	if v.limiter == nil {
		v.limiter = limit.NewLocal()
	}
	v.keyLen = len(v.liveHead) + apikey.BodyLen
	v.keyLoader = otter.LoaderFunc[[32]byte, *entry](v.loadKey)
	return v
}

// detailTLSRequired is the detail of tls_required.
const detailTLSRequired = "This route takes requests over HTTPS only; send the request again with https://, and, since the key was sent in the clear, consider replacing it."

// Public details of the outcomes that need no data.
const (
	detailMissing = "Send your API key in the X-API-Key header or as Authorization: Bearer <key>."
	detailInvalid = "No key matches the one presented. Check that you copied the whole key, " +
		"or create a new key where you manage your API keys."
	detailStorage   = "Could not check the key because the key store is unavailable; retry shortly."
	detailNoAccount = "The account of this key could not be found; contact support."
	detailNoPlan    = "The plan of this key's account could not be found; contact support."
	detailNoAPI     = "The plan of this account does not include API access, so its keys are refused. " +
		"Upgrade the plan to one with API access, or contact support."
	detailSuspended = "The account this key belongs to is suspended, so its keys are refused. " +
		"Contact support to resume it."
	detailDisabled = "This key is disabled. Enable it again where you manage your API keys, or use another key."
	detailNoIP     = "This key only accepts requests from allowed IP addresses, " +
		"and the address of this request could not be determined."
	detailMalformed = "The key is not a valid API key; check that you copied it whole."
	detailReferrer  = "This key may only be used from allowed web pages, and this request's Referer " +
		"(or, without one, its Origin) is not one of them. Call from an allowed page, " +
		"or add this one to the key's referrer restrictions."
	detailEndpoint = "This key may only be used on some endpoints of this API, and this request's method and path " +
		"are not among them. Use a key allowed here, or add the endpoint to the key's endpoint restrictions."
	detailNoEndpoint = "This key may only be used on some endpoints of this API, and this check was not told " +
		"the request's method and path: give them (method and path) to check the key."
	detailNoRoute = "This API does not take requests to this method and path with an API key: " +
		"check the method and path against the API's documentation."
	detailNotFound = "Nothing was found at this path for this key. A key reaches only its own account's " +
		"resources, and those it is allowed: check the ids in the path."
)

// Format returns the key format of the verifier's instance.
func (v *Verifier) Format() apikey.Format { return v.format }

// Verify checks a presented key in the order of docs/outcomes.md; the first
// check that fails decides the result. Each step below is one row of that
// table:
//
//  1. an empty key: missing_api_key;
//  2. a key that does not parse (whitespace, quotes, prefix, environment,
//     length, alphabet, checksum): malformed_api_key, without a storage
//     lookup;
//  3. no stored key with its hash: invalid_api_key (storage_unavailable when
//     the store cannot answer);
//  4. a revoked key: revoked_api_key;
//  5. an expired key: expired_api_key;
//  6. a suspended tenant: account_suspended; a disabled key: key_disabled;
//  7. a route that takes keys of other environments: environment_mismatch;
//  8. an address outside the key's IP restrictions: ip_not_allowed; a
//     page outside its referrers: referrer_not_allowed; a method and path
//     outside its endpoints, or a default route that denies:
//     endpoint_not_allowed;
//  9. a route's tenant parameter that is not the key's tenant, or a
//     resource parameter outside the key's allowed resources: not_found;
//  10. a plan without API access, or without a capability the route needs:
//     plan_not_entitled; a permission the route or the request needs that
//     the key may not use: insufficient_permissions;
//  11. a rate limit of the key or its tenant that refuses the request:
//     rate_limited; a quota used up or credits spent: quota_exceeded
//     (checkLimits). This step counts the request, unless req.Counting
//     says to check only, or to leave it to Count.
//
// Between steps 1 and 2, a key that is not cached as valid so far (one
// not cached, or cached as unknown or revoked) from a client address that
// the failed-attempt limiter blocks is too_many_failed_attempts, without a
// parse, a storage lookup or a cache entry; a refusal at step 2, 3 or 4
// counts towards blocking the address (see attemptLimiter).
//
// Before step 1, a request with a method that is not an upper-case HTTP
// method is invalid_request (policy.CheckMethod); one with a target has
// it cleaned (a path that could be read two ways is invalid_request), and
// with a policy its route found: a route with tls: required refuses a
// request that did not come over TLS (Request.TLS), tls_required, public
// routes included, and then a public route needs no key, and nothing
// else is checked. A valid use is recorded in memory and written by the next
// Flush. A cached key is verified without storage I/O and without
// allocating.
func (v *Verifier) Verify(ctx context.Context, req Request) (r Result) {
	// The result is written in place by the functions below rather than
	// returned through them: copying it back up costs a cached
	// verification a tenth of its time.
	if req.Target == "" && req.Method == "" {
		// Nothing to check, clean or match: the request alone, on the
		// path that most service-to-service checks take.
		v.verify(ctx, &req, nil, nil, &r)
		return r
	}
	v.verifyTarget(ctx, &req, &r)
	return r
}

// verifyTarget is Verify for a request with a method or a target, into r:
// it checks the method, cleans the target and, with a policy, finds its
// route, before verify. It is a function of its own so that the path and
// the match it keeps are not in the frame of a request without them.
func (v *Verifier) verifyTarget(ctx context.Context, req *Request, r *Result) {
	if req.Method != "" {
		if err := policy.CheckMethod(req.Method); err != nil {
			r.Code, r.Detail = keyward.CodeInvalidRequest, keyward.ErrorMessage(err)
			return
		}
	}
	if req.Target == "" {
		v.verify(ctx, req, nil, nil, r)
		return
	}
	var path policy.Path
	var m policy.Match
	if err := path.Clean(req.Target); err != nil {
		r.Code, r.Detail = keyward.CodeInvalidRequest, keyward.ErrorMessage(err)
		return
	}
	if req.Policy != nil {
		req.Policy.MatchPath(req.Method, &path, &m)
		if m.Route.TLS && !req.TLS {
			r.Route, r.Code, r.Detail = m.Route, keyward.CodeTLSRequired, detailTLSRequired
			return
		}
		if m.Route.Public {
			r.Route, r.Public = m.Route, true
			return
		}
	}
	v.verify(ctx, req, &path, &m, r)
}

// verify is Verify from step 1, into r, for a request whose target, if
// any, was cleaned into path (nil without a target) and matched into m
// (nil, or with a nil Route, without a policy).
func (v *Verifier) verify(ctx context.Context, req *Request, path *policy.Path, m *policy.Match, r *Result) {
	var route *policy.Route
	if m != nil {
		route = m.Route
		r.Route = route
	}
	if req.Key == "" {
		r.Code, r.Detail = keyward.CodeMissingAPIKey, detailMissing
		return
	}
	e := v.storedKey(ctx, req, r)
	if e == nil {
		return
	}
	k := e.key
	r.Key = k
	if code, detail := v.checkLifetime(e, r); code != "" {
		r.Code, r.Detail = code, detail
		if code == keyward.CodeRevokedAPIKey {
			v.refused(req)
		}
		return
	}
	a, code, detail := v.checkActive(ctx, e)
	if a != nil {
		r.Tenant, r.Access = a.Tenant, a
	}
	if code == "" && route != nil {
		code, detail = checkEnvironment(k, route)
	}
	if code == "" {
		code, detail = e.checkOrigin(req, path, route)
	}
	if code == "" && route != nil {
		code, detail = e.checkScope(a, m)
	}
	if code == "" {
		code, detail = checkEntitled(a, route, req.Permissions)
	}
	if code == "" && req.Counting != CountLater && a.counts() {
		code, detail = v.checkLimits(ctx, a, req, r)
	}
	if code != "" {
		r.Code, r.Detail = code, detail
		return
	}
	v.recordUse(e, v.usedAt(), req.IP)
}

// storedKey is steps 2 and 3 of Verify, and the failed-attempt limiter
// before them: it returns the cache entry of the stored key that req.Key
// is, or nil with the refusal written into r. A key whose entry is cached
// and neither unknown nor revoked is returned at once, not parsed again
// (see cachedEntry) and never held back by the limiter: a client with a
// working key goes on working from an address that others sent bad keys
// from. Any other is looked up by lookUp.
func (v *Verifier) storedKey(ctx context.Context, req *Request, r *Result) *entry {
	hash, e, ok := v.cachedEntry(ctx, req.Key)
	if ok && e.key != nil && e.key.Status != keyward.KeyRevoked {
		return e
	}
	return v.lookUp(ctx, req, hash, e, ok, r)
}

// lookUp is storedKey for a key that is not cached, or cached as unknown
// or revoked (cached true, with its entry e and hash). From an address that
// the failed-attempt limiter blocks, it answers too_many_failed_attempts
// first: the key is neither parsed nor looked up, and nothing is cached.
// Otherwise a key not cached is parsed, then looked up: malformed_api_key,
// invalid_api_key, or storage_unavailable when the store cannot answer. A
// malformed or unknown key is counted by the limiter; a revoked one is
// returned, for checkLifetime to refuse and verify to count.
func (v *Verifier) lookUp(ctx context.Context, req *Request, hash [32]byte, e *entry, cached bool, r *Result) *entry {
	var now int64 // the time of the limiter's check, and of a refusal's count
	if v.attempts != nil {
		now = v.now().UnixNano()
		if retry := v.attempts.blocked(req.IP, now); retry > 0 {
			tooManyAttempts(r, retry)
			return nil
		}
	}
	key := req.Key
	if !cached {
		if _, perr := v.format.Parse(key); perr != nil {
			r.Code, r.Detail = keyward.CodeMalformedAPIKey, malformedDetail(perr, key)
			if v.attempts != nil {
				v.attempts.refused(req.IP, key, now)
			}
			return nil
		}
		if len(key) != v.keyLen {
			hash = apikey.Hash(key) // not expected: a key that parses has keyLen bytes
		}
		var err error
		if e, err = v.keys.Get(ctx, hash, v.keyLoader); err != nil {
			v.log.WarnContext(ctx, "verify: could not look up a key", "err", err)
			r.Code, r.Detail = keyward.CodeStorageUnavailable, detailStorage
			return nil
		}
	}
	if e.key == nil {
		r.Code, r.Detail = keyward.CodeInvalidAPIKey, detailInvalid
		if v.attempts != nil {
			v.attempts.refused(req.IP, key, now)
		}
		return nil
	}
	return e
}

// refused counts with the failed-attempt limiter, if it is on, that the
// key of req was refused as revoked (lookUp counts the others).
func (v *Verifier) refused(req *Request) {
	if v.attempts != nil {
		v.attempts.refused(req.IP, req.Key, v.now().UnixNano())
	}
}

// cachedEntry returns the cache entry of key when one may be answered from
// without parsing key, with key's hash; ok is false otherwise, and hash is
// then set if key has the length of a key of the format. An entry past the
// cache TTL is read again in the background, or, when stale, dropped (see
// freshness).
//
// A hash found in the cache is that of a string that parsed already: an
// entry is cached only after its key parsed, or, from the change feed, for
// a stored key with this format's prefix (parsed is then true). Parse
// cannot fail for such a string, and is skipped.
func (v *Verifier) cachedEntry(ctx context.Context, key string) (hash [32]byte, e *entry, ok bool) {
	if len(key) != v.keyLen {
		return hash, nil, false
	}
	hash = apikey.Hash(key)
	if e, ok = v.keys.GetIfPresent(hash); !ok {
		return hash, nil, false
	}
	switch v.freshness(e.loaded) {
	case entryDue:
		if v.refreshNow(&e.nextRefresh) {
			v.keys.Refresh(ctx, hash, v.keyLoader)
		}
	case entryStale:
		v.keys.Invalidate(hash) // and read again by the caller
		return hash, nil, false
	}
	return hash, e, e.parsed
}

// checkLifetime is steps 4 and 5 of Verify: the key of e is neither revoked
// nor expired. It returns the code and detail of a refusal, or "" and "";
// for a key that is neither, it sets r's notices.
func (v *Verifier) checkLifetime(e *entry, r *Result) (keyward.Code, string) {
	k := e.key
	if k.Status == keyward.KeyRevoked {
		return keyward.CodeRevokedAPIKey, e.revokedDetail
	}
	// The precise clock is read only for a key that can expire or has a
	// rotate_by: it costs a good part of a cached verification.
	if k.ExpiresAt == nil && k.RotateBy == nil {
		return "", ""
	}
	now := v.now()
	if k.ExpiresAt != nil && k.Expired(now) {
		return keyward.CodeExpiredAPIKey, e.expiredDetail
	}
	r.Notice = NoticeOf(k, now, v.expiryNotice)
	return "", ""
}

// checkActive is step 6 of Verify: the tenant of the key of e is active, and
// so is the key. It returns what the key may do, once it was worked out,
// and the code and detail of a refusal, or "" and "". A tenant or plan that
// does not exist is an internal error, and one that cannot be read is
// storage_unavailable.
func (v *Verifier) checkActive(ctx context.Context, e *entry) (*Access, keyward.Code, string) {
	k := e.key
	a, err := v.accessOf(ctx, e)
	switch {
	case keyward.ErrorCode(err) == keyward.CodeNotFound:
		detail := detailNoAccount
		if _, terr := v.tenants.get(ctx, v, k.TenantID); terr == nil {
			detail = detailNoPlan
		}
		v.log.ErrorContext(ctx, "verify: a key's tenant or plan does not exist", "key_id", k.ID, "tenant_id", k.TenantID, "err", err)
		return nil, keyward.CodeInternal, detail
	case err != nil:
		v.log.WarnContext(ctx, "verify: could not look up a key's tenant, member or plan", "key_id", k.ID, "tenant_id", k.TenantID, "err", err)
		return nil, keyward.CodeStorageUnavailable, detailStorage
	case !a.tenantActive:
		return a, keyward.CodeAccountSuspended, detailSuspended
	case k.Status != keyward.KeyActive:
		return a, keyward.CodeKeyDisabled, detailDisabled
	}
	return a, "", ""
}

// checkEnvironment is step 7 of Verify: the route, if any, takes keys of
// k's environment. It returns the code and detail of a refusal, or "" and
// "".
func checkEnvironment(k *keyward.Key, route *policy.Route) (keyward.Code, string) {
	if route == nil || route.AllowsEnvironment(k.Environment) {
		return "", ""
	}
	taken := environmentsOf(route)
	return keyward.CodeEnvironmentMismatch, fmt.Sprintf("This request only takes %s keys, and this is a %s key. "+
		"Use a %s key for it.", taken, k.Environment, taken)
}

// environmentsOf names the environments a route takes: "live", or "live
// or test".
func environmentsOf(route *policy.Route) string {
	names := make([]string, len(route.Environments))
	for i, e := range route.Environments {
		names[i] = string(e)
	}
	return strings.Join(names, " or ")
}

// checkOrigin is step 8 of Verify: where the request comes from and what it
// asks for are allowed to the key of e — its address (checkIP), its page
// (the key's referrers), its method and path (the key's endpoints, and a
// default route that denies). path is req.Target cleaned, and route the
// route of the request's policy, or nil. It returns the code and detail of
// a refusal, or "" and "".
func (e *entry) checkOrigin(req *Request, path *policy.Path, route *policy.Route) (keyward.Code, string) {
	if code, detail := e.checkIP(req.IP); code != "" {
		return code, detail
	}
	if e.referrersSet && (e.referrersBroken || !e.referrers.Allow(req.Referer, req.Origin)) {
		return keyward.CodeReferrerNotAllowed, detailReferrer
	}
	if e.endpointsSet {
		switch {
		case path == nil:
			return keyward.CodeEndpointNotAllowed, detailNoEndpoint
		case e.endpointsBroken || !e.endpoints.AllowPath(req.Method, path):
			return keyward.CodeEndpointNotAllowed, detailEndpoint
		}
	}
	if route != nil && route.Deny {
		return keyward.CodeEndpointNotAllowed, detailNoRoute
	}
	return "", ""
}

// checkScope is step 9 of Verify: the path parameters of the request's
// route that name a tenant or a restricted resource name the key's own
// tenant (by id or slug) and a resource the key is allowed. It returns
// not_found otherwise, as for a resource that does not exist, so that ids
// cannot be probed, or "" and "".
func (e *entry) checkScope(a *Access, m *policy.Match) (keyward.Code, string) {
	route := m.Route
	if route == nil {
		return "", ""
	}
	if route.Tenant != "" {
		if t := m.Tenant(); t != e.key.TenantID && t != a.Tenant.Slug {
			return keyward.CodeNotFound, detailNotFound
		}
	}
	for i, name := range route.Resources {
		allowed, restricted := e.allowedResources(name)
		if restricted && !slices.Contains(allowed, m.Resource(i)) {
			return keyward.CodeNotFound, detailNotFound
		}
	}
	return "", ""
}

// allowedResources returns the key's allowed resources of a name, and
// whether the key restricts that name: Restrictions.Resources[name], from
// the slice the entry keeps of it.
func (e *entry) allowedResources(name string) (allowed []string, restricted bool) {
	for i := range e.resources {
		if e.resources[i].name == name {
			return e.resources[i].allowed, true
		}
	}
	return nil, false
}

// checkIP is the first check of step 8: a key with IP restrictions is used
// from an allowed address, which must then be known. It returns the code
// and detail of a refusal, or "" and "".
func (e *entry) checkIP(addr netip.Addr) (keyward.Code, string) {
	if !e.ipRestricted {
		return "", ""
	}
	ip := addr.Unmap().WithZone("")
	if !ip.IsValid() {
		return keyward.CodeIPNotAllowed, detailNoIP
	}
	if !e.allows(ip) {
		return keyward.CodeIPNotAllowed, ipNotAllowedDetail(ip)
	}
	return "", ""
}

// ipNotAllowedDetail is the detail of a refusal of ip by checkIP.
func ipNotAllowedDetail(ip netip.Addr) string {
	return fmt.Sprintf("Requests with this key must come from an allowed IP address, and %s is not one. "+
		"Call from an allowed address, or add this one to the key's IP restrictions.", ip)
}

// checkEntitled is step 10 of Verify: the key's plan includes API access
// and every capability of the route (nil for none), and the key may use
// every permission the route and the request need (Access.Permissions). It
// returns the code and detail of a refusal that names the first capability
// or permission missing, and why the key may not use a permission it
// holds, or "" and "".
func checkEntitled(a *Access, route *policy.Route, needed []string) (keyward.Code, string) {
	if !a.apiAccess {
		return keyward.CodePlanNotEntitled, detailNoAPI
	}
	if route == nil {
		return checkPermissions(a, needed)
	}
	for _, c := range route.Capabilities {
		if !slices.Contains(a.capabilities, c) {
			return keyward.CodePlanNotEntitled, fmt.Sprintf("The plan of this account (%s) does not include %q, "+
				"which this request needs. Upgrade the plan to one that includes it.", a.Plan.Name, c)
		}
	}
	if code, detail := checkPermissions(a, route.Permissions); code != "" {
		return code, detail
	}
	return checkPermissions(a, needed)
}

// checkPermissions is the last check of step 10: the key may use every
// permission in needed.
func checkPermissions(a *Access, needed []string) (keyward.Code, string) {
	for _, p := range needed {
		if slices.Contains(a.Permissions, p) {
			continue
		}
		if w := a.withheld(p); w != nil {
			return keyward.CodeInsufficientPermissions, a.withheldDetail(w)
		}
		return keyward.CodeInsufficientPermissions, missingPermissionDetail(p)
	}
	return "", ""
}

// missingPermissionDetail is the detail of a refusal by checkPermissions
// for the permission p.
func missingPermissionDetail(p string) string {
	return fmt.Sprintf("This key lacks the permission %q that this request needs. "+
		"Use a key that has it, or ask an admin of the account to add it to this key.", p)
}

// malformedDetail is the public detail of a key that does not parse. It
// never repeats the key, even if a parse message would; a string too short
// to be a secret may well appear in a message by chance.
func malformedDetail(perr *apikey.ParseError, key string) string {
	if perr.Message == "" || len(key) >= 8 && strings.Contains(perr.Message, key) {
		return detailMalformed
	}
	// Parse messages are clauses; a detail is a sentence.
	return strings.ToUpper(perr.Message[:1]) + perr.Message[1:] + "."
}

// entry is what the cache holds for a hash: a stored key with what its
// checks need already worked out, or, when key is nil, the answer that no key
// has this hash. What it says of the key never changes once it is cached: a
// change replaces the entry. Only two memos change in place, atomically: the
// tenant last read, and the last use not yet written.
//
// A cached verification reads the entry and little else: the key is kept in
// the entry itself, with up to len(permBuf) permissions, and its status and
// permission names are strings shared by every entry. With many keys
// cached, the entries of the keys in use lie scattered through the heap, and
// every other object a verification read would be one more likely miss of
// the processor's caches and TLB.
type entry struct {
	// key is &stored, or nil when no key has the hash.
	key    *keyward.Key
	stored keyward.Key
	// permBuf holds the key's permissions when they are few.
	permBuf [4]string
	// parsed is true when the string with this hash is known to parse with
	// the verifier's format, so that Verify need not parse it again.
	parsed       bool
	ipRestricted bool
	ips          []netip.Prefix
	// referrers and endpoints are the key's restrictions, compiled; Set
	// says the key has some, and Broken that they could not be read, so
	// that they allow nothing.
	referrers policy.Referrers
	endpoints policy.Endpoints
	// resources are the key's Restrictions.Resources as a slice: a key
	// restricts few names, and a loop over them is cheaper than hashing.
	resources       []resourceRestriction
	referrersSet    bool
	referrersBroken bool
	endpointsSet    bool
	endpointsBroken bool
	revokedDetail   string
	expiredDetail   string
	// loaded is when the entry was made from the store's copy of the key,
	// on the cache clock (see freshness).
	loaded int64
	// access is what the key may do as last worked out (see accessOf), so
	// that a verification need not look up its tenant, member and plan;
	// nil until then.
	access atomic.Pointer[Access]
	// used is the key's last use not yet written.
	used lastUse
	// nextRefresh is when the entry may next be read again in the
	// background, on the cache clock (see refreshNow).
	nextRefresh atomic.Int64
}

// resourceRestriction is one name of a key's Restrictions.Resources.
type resourceRestriction struct {
	name    string
	allowed []string
}

// What may be done with a cache entry (see freshness).
const (
	entryFresh = iota // answer from it
	entryDue          // answer from it, and read it again in the background
	entryStale        // do not answer from it: read it again first
)

// freshness says what may be done with an entry read from the store at
// loaded, on the cache clock. Within the cache TTL of loaded, it is fresh.
// Past it, it is read again in the background, as a safety net for changes
// the feed cannot tell of (a database restored from a backup, a row changed
// by hand); meanwhile it may still be answered from if the change feed,
// which would have told of a change to it, was read within the cache TTL.
// So during an outage, cached keys answer for the cache TTL after the last
// read of the feed, then are stale. An entry read more than MaxCacheTTL
// ago is stale whatever the feed says (PruneChanges counts on it).
func (v *Verifier) freshness(loaded int64) int {
	now := v.cacheClock.NowNano()
	switch {
	case now-loaded < v.ttl:
		return entryFresh
	case now-v.lastSync.Load() < v.ttl && now-loaded < int64(MaxCacheTTL):
		return entryDue
	default:
		return entryStale
	}
}

// usedAt returns the time to stamp a use with, in Unix nanoseconds: the
// coarse cache clock's, unless a clock was injected.
func (v *Verifier) usedAt() int64 {
	if v.clockInjected {
		return v.now().UnixNano()
	}
	return v.cacheClock.NowNano()
}

// refreshRetry is how long after a read of a due entry or record began
// in the background another one may begin, if the first has not replaced
// it: while the store is down, a key in use sends it one read a second,
// not one per verification, and a verification does not allocate for it.
const refreshRetry = time.Second

// refreshNow reports whether a due entry or record, whose next refresh may
// begin at *next on the cache clock, is to be read again now; if so, it
// moves *next on by refreshRetry.
func (v *Verifier) refreshNow(next *atomic.Int64) bool {
	now := v.cacheClock.NowNano()
	n := next.Load()
	return now >= n && next.CompareAndSwap(n, now+int64(refreshRetry))
}

// newEntry prepares a copy of k for the cache; parsed says whether its
// plaintext is known to parse with the verifier's format. An IP restriction
// that does not parse is logged and left out, so that a key with only bad
// restrictions allows no address at all rather than every one.
func (v *Verifier) newEntry(k *keyward.Key, parsed bool) *entry {
	e := &entry{stored: *k, parsed: parsed, ipRestricted: len(k.Restrictions.IPs) > 0, loaded: v.cacheClock.NowNano()}
	e.key = &e.stored
	k = e.key
	switch k.Status { // the constants' strings, shared by every entry
	case keyward.KeyActive:
		k.Status = keyward.KeyActive
	case keyward.KeyDisabled:
		k.Status = keyward.KeyDisabled
	case keyward.KeyRevoked:
		k.Status = keyward.KeyRevoked
	}
	perms := k.Permissions
	if len(perms) <= len(e.permBuf) {
		k.Permissions = e.permBuf[:len(perms):len(perms)]
	} else {
		k.Permissions = make([]string, len(perms))
	}
	for i, p := range perms {
		// One copy of each name, shared by every entry that holds it:
		// a cached verification compares the request's permissions with
		// the key's, and a shared string stays in the processor's cache
		// where a copy per key would not.
		k.Permissions[i] = unique.Make(p).Value()
	}
	for _, s := range k.Restrictions.IPs {
		p, err := keyward.ParseCIDR(s)
		ok := err == nil
		if !ok {
			v.log.Warn("verify: a key has an IP restriction that is not an address or a CIDR; it allows nothing",
				"key_id", k.ID, "restriction", s)
			continue
		}
		e.ips = append(e.ips, p)
	}

	for name, allowed := range k.Restrictions.Resources {
		e.resources = append(e.resources, resourceRestriction{name: unique.Make(name).Value(), allowed: allowed})
	}
	if e.referrersSet = len(k.Restrictions.Referrers) > 0; e.referrersSet {
		var err error
		if e.referrers, err = policy.ParseReferrers(k.Restrictions.Referrers); err != nil {
			e.referrersBroken = true
			v.log.Warn("verify: a key has referrer restrictions that cannot be read; they allow nothing", "key_id", k.ID, "err", err)
		}
	}
	if e.endpointsSet = len(k.Restrictions.Endpoints) > 0; e.endpointsSet {
		var err error
		if e.endpoints, err = policy.ParseEndpoints(k.Restrictions.Endpoints); err != nil {
			e.endpointsBroken = true
			v.log.Warn("verify: a key has endpoint restrictions that cannot be read; they allow nothing", "key_id", k.ID, "err", err)
		}
	}

	e.revokedDetail = "This key was revoked. Create a new key where you manage your API keys, and use it instead."
	if k.RevokedAt != nil {
		e.revokedDetail = "This key was revoked on " + formatTime(*k.RevokedAt) +
			". Create a new key where you manage your API keys, and use it instead."
	}
	if k.ExpiresAt != nil {
		if k.RotatedTo != "" {
			e.expiredDetail = "This key expired on " + formatTime(*k.ExpiresAt) + " because it was replaced by key " +
				k.RotatedTo + ". Use the new key instead."
		} else {
			e.expiredDetail = "This key expired on " + formatTime(*k.ExpiresAt) +
				". Create a new key where you manage your API keys, and use it instead."
		}
	}
	return e
}

// allows reports whether ip, unmapped and without a zone, is in one of the
// key's allowed prefixes.
func (e *entry) allows(ip netip.Addr) bool {
	for _, p := range e.ips {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// formatTime writes t for a public detail: RFC 3339, in UTC.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// loadKey finds the key with the given hash in the store for the cache. No
// such key is an answer too, cached as an entry without a key. Verify loads
// only the hash of a string that parsed.
func (v *Verifier) loadKey(ctx context.Context, hash [32]byte) (*entry, error) {
	ctx, cancel := context.WithTimeout(ctx, v.storageTimeout)
	defer cancel()
	k, err := v.store.KeyByHash(ctx, hash)
	if keyward.ErrorCode(err) == keyward.CodeNotFound {
		return &entry{parsed: true, loaded: v.cacheClock.NowNano()}, nil
	}
	if err != nil {
		return nil, err
	}
	return v.newEntry(k, true), nil
}

// ofFormat reports whether a stored key was issued with the verifier's
// format: its stored head (Key.Prefix) is <prefix>_live_ or <prefix>_test_. The
// plaintext of such a key parses, since only generated keys are stored.
func (v *Verifier) ofFormat(k *keyward.Key) bool {
	return k.Head == v.liveHead || k.Head == v.testHead
}
