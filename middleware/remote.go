package middleware

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
	"github.com/keyward/keyward/view"
)

// Defaults of RemoteOptions.
const (
	DefaultRemoteCacheSize = 100_000
	DefaultRemoteTimeout   = 2 * time.Second
)

// RemoteOptions configure a Remote.
type RemoteOptions struct {
	// URL is the Keyward server's base URL, such as
	// https://keys.example.com.
	URL string
	// Key is a key with the keyward:verify permission (or a root key),
	// which the Remote presents to the server.
	Key string
	// Format is the server's key format; the zero Format means
	// apikey.DefaultPrefix. The presenting rules are checked here with
	// it, as the server would.
	Format apikey.Format
	// Transport makes the requests to the server; nil means a transport
	// of the Remote's own.
	Transport http.RoundTripper
	// Timeout bounds each question to the server (DefaultRemoteTimeout):
	// past it, the request is answered 503 storage_unavailable, unless
	// its answer may still come from the cache.
	Timeout time.Duration
	// CacheSize is the most answers the cache holds
	// (DefaultRemoteCacheSize).
	CacheSize int
	// Clock tells the time that the cache's entries and the stream's
	// silence are measured by; nil means time.Now.
	Clock keyward.Clock
	// Logger receives the failures of the server and of the stream; nil
	// discards them. It never receives a key.
	Logger *slog.Logger
}

// Remote verifies keys against a Keyward server's POST /v1/verify, and
// caches the answers that do not depend on counting, which the server's
// change stream (GET /v1/changes) keeps fresh: each change drops the
// answers of the key, tenant, member or plan it names, and a reload of the
// server's route policy drops them all, so that the next request asks the
// server again. A lost stream reconnects from its last position, so no
// change is missed; a server whose feed never reached that position (its
// database was replaced) has the whole cache dropped. While the stream is connected and
// caught up, an answer is given from the cache for the server's cache TTL
// after it was received; past that, or while the stream is lost (or
// before Start, or after Close), the server is asked again, and only when
// it cannot be reached is the cached answer still given, for as long as
// the stream was heard from within the TTL, as the server's own cache
// would. Then requests are refused with 503 storage_unavailable: the
// Remote fails closed.
//
// What it does not cache: answers without a key id (401s, which say
// nothing of whose key it was, and so could not be dropped on a change),
// answers of metered keys (rate limits, quotas and credits count every
// request on the server), and the server's failures. Requests answered
// from the cache are not seen by the server: they are missing from its
// request logs and from the key's last use.
//
// A Remote's methods are safe for concurrent use.
type Remote struct {
	base, key string
	format    apikey.Format
	now       keyward.Clock
	log       *slog.Logger
	client    *http.Client // the questions, each within Timeout
	streamer  *http.Client // the change stream, without a time limit

	cache *otter.Cache[[32]byte, *answer]
	// storeMu is held shared while an answer is stored and exclusively
	// while a change drops answers, so that an answer the server gave
	// before a change is never stored after the change dropped it. gen
	// counts the drops, and recent holds the last ones (drop i at
	// recent[i%len(recent)]): an answer asked for at gen g is stored only
	// if no drop since g matches it.
	storeMu sync.RWMutex
	gen     atomic.Uint64
	recent  [recentDrops]func(*answer) bool

	// ttl is the server's cache TTL in nanoseconds, lastSync when the
	// stream was last heard from (Unix nanoseconds on Clock; 0 before),
	// and position the stream's last position (-1 before the first).
	ttl      atomic.Int64
	lastSync atomic.Int64
	position atomic.Int64
	// live is true while the stream is connected and has sent every
	// change up to the server's position when it connected: only then
	// does a change reach the cache within a second, and may a cached
	// answer be given without asking the server.
	live atomic.Bool
	// noRoutes is true when the server said it has no route policy, so
	// that no route is public: a request without a key is refused
	// without asking, while the stream is live.
	noRoutes atomic.Bool
	// ownTransport is the transport the Remote made itself (nil when
	// RemoteOptions.Transport was given), whose idle connections Close
	// closes.
	ownTransport *http.Transport

	lifeMu sync.Mutex
	stop   context.CancelFunc
	done   chan struct{}
	ready  chan struct{} // closed when the stream first connects
}

// recentDrops is how many drops a Remote remembers for the answers asked
// for meanwhile: one asked for during more drops than that is not cached.
const recentDrops = 256

// answer is a cached answer of the server, with when it came.
type answer struct {
	v        view.Verification
	received int64 // Unix nanoseconds on the Remote's clock
	memberID string
}

// NewRemote returns a Remote for the server at opts.URL. It asks the
// server about every request until Start connects the change stream.
func NewRemote(opts RemoteOptions) (*Remote, error) {
	if opts.URL == "" || opts.Key == "" {
		return nil, errors.New("middleware: NewRemote needs the server's URL and a key with keyward:verify")
	}
	if opts.Format.Prefix() == "" {
		f, err := apikey.NewFormat(apikey.DefaultPrefix)
		if err != nil {
			return nil, err
		}
		opts.Format = f
	}
	var own *http.Transport
	if opts.Transport == nil {
		own = http.DefaultTransport.(*http.Transport).Clone()
		own.MaxIdleConnsPerHost = 64
		opts.Transport = own
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultRemoteTimeout
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultRemoteCacheSize
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	rm := &Remote{
		base: strings.TrimSuffix(opts.URL, "/"), key: opts.Key, format: opts.Format, now: opts.Clock, log: opts.Logger,
		client:       &http.Client{Transport: opts.Transport, Timeout: opts.Timeout},
		streamer:     &http.Client{Transport: opts.Transport},
		cache:        otter.Must(&otter.Options[[32]byte, *answer]{MaximumSize: opts.CacheSize, Logger: &otter.NoopLogger{}}),
		ready:        make(chan struct{}),
		ownTransport: own,
	}
	rm.ttl.Store(int64(verify.DefaultCacheTTL))
	rm.position.Store(-1)
	return rm, nil
}

// Middleware returns the middleware that verifies every request with rm.
// opts.Routes must be nil: the server's route policy decides.
func (rm *Remote) Middleware(opts Options) func(http.Handler) http.Handler {
	if opts.Routes != nil {
		panic("middleware: Options.Routes is for in-process verification; a remote server decides by its own route policy (serve --routes)")
	}
	return wrap(rm.check, opts)
}

// Detail of a refusal when the server cannot answer.
const detailUnavailable = "Could not check the key because the key server is unavailable; retry shortly."

// check verifies r against the server, or from the cache.
func (rm *Remote) check(w http.ResponseWriter, r *http.Request, req *verify.Request) (*Caller, *keyward.Error) {
	ctx := r.Context()
	id := w.Header().Get("X-Request-Id")
	key, kerr := verify.KeyFromRequest(r, rm.format)
	if kerr != nil {
		if kerr.Code != keyward.CodeMissingAPIKey && kerr.Code != keyward.CodeMalformedAPIKey ||
			rm.live.Load() && rm.noRoutes.Load() {
			return nil, kerr
		}
		// The server's route policy may make the route public.
		v, err := rm.ask(ctx, req, "", id)
		if err != nil {
			return nil, unavailable(err)
		}
		switch {
		case v.Valid && v.KeyID == "":
			return nil, nil
		case v.Code == keyward.CodeTLSRequired:
			// The route takes HTTPS only, and says so first.
			return rm.use(w, v)
		}
		return nil, kerr
	}
	req.Key = key
	h := cacheKey(req)
	now := rm.now().UnixNano()
	cached, ok := rm.cache.GetIfPresent(h)
	if ok && rm.fresh(cached, now) {
		return rm.use(w, &cached.v)
	}
	gen := rm.gen.Load()
	v, err := rm.ask(ctx, req, key, id)
	if err != nil {
		if ok && rm.answerable(cached, now) {
			return rm.use(w, &cached.v)
		}
		return nil, unavailable(err)
	}
	rm.store(h, v, gen)
	return rm.use(w, v)
}

// unavailable is the refusal of a request that the server could not be
// asked about.
func unavailable(err error) *keyward.Error {
	return &keyward.Error{Code: keyward.CodeStorageUnavailable, Message: detailUnavailable, Err: err}
}

// fresh reports whether a cached answer may be given at now without
// asking the server: the stream is live, so that any change since the
// answer came would have dropped it, the answer came within the server's
// cache TTL, and the key has not expired since.
func (rm *Remote) fresh(a *answer, now int64) bool {
	return rm.live.Load() && now-a.received < rm.ttl.Load() && !a.expired(now)
}

// answerable reports whether a cached answer past its TTL may still be
// given at now because the server cannot be asked: while the stream was
// heard from within the server's cache TTL, as the server answers from its
// own cache while it reads its change feed, and at most verify.MaxCacheTTL
// after it came.
func (rm *Remote) answerable(a *answer, now int64) bool {
	return now-rm.lastSync.Load() < rm.ttl.Load() && now-a.received < int64(verify.MaxCacheTTL) && !a.expired(now)
}

// expired reports whether the key of a's answer has expired at now.
func (a *answer) expired(now int64) bool {
	return a.v.ExpiresAt != nil && now >= a.v.ExpiresAt.UnixNano()
}

// store caches the server's answer v under h, unless it may not be cached
// or a change came since gen.
func (rm *Remote) store(h [32]byte, v *view.Verification, gen uint64) {
	if !cacheable(v) || rm.position.Load() < 0 {
		return
	}
	a := &answer{v: *v, received: rm.now().UnixNano()}
	if v.Member != nil {
		a.memberID = v.Member.ID
	}
	rm.storeMu.RLock()
	defer rm.storeMu.RUnlock()
	now := rm.gen.Load()
	if now-gen > recentDrops {
		return
	}
	for g := gen; g < now; g++ {
		if rm.recent[g%recentDrops](a) {
			return
		}
	}
	rm.cache.Set(h, a)
}

// cacheable reports whether the server's answer v may be cached: it names
// the key, which is not metered, and it is a success or a refusal that
// only a change can undo (a 403 or a 404).
func cacheable(v *view.Verification) bool {
	if v.KeyID == "" || v.Metered || v.RateLimit != nil {
		return false
	}
	return v.Valid || v.Status == http.StatusForbidden || v.Status == http.StatusNotFound
}

// use answers with v: the RateLimit headers of its rate limits and its
// Deprecation and Sunset headers on w, and
// the Caller of a valid key, nil for a public route, or the refusal.
func (rm *Remote) use(w http.ResponseWriter, v *view.Verification) (*Caller, *keyward.Error) {
	if rl := v.RateLimit; rl != nil {
		setRateLimitHeaders(w.Header(), rl)
	}
	if v.Sunset != nil && v.Deprecation != nil {
		n := verify.Notice{Sunset: *v.Sunset, Deprecation: *v.Deprecation}
		n.SetHeaders(w.Header())
	}
	switch {
	case !v.Valid:
		return nil, &keyward.Error{Code: v.Code, Message: v.Detail, RetryAfter: time.Duration(v.RetryAfter) * time.Second}
	case v.KeyID == "":
		return nil, nil
	}
	c := &Caller{
		KeyID: v.KeyID, KeyName: v.Name, TenantID: v.TenantID, TenantSlug: v.TenantSlug, Plan: v.Plan,
		Environment: v.Environment, Permissions: v.Permissions,
	}
	if v.Member != nil {
		c.MemberID = v.Member.ID
	}
	return c, nil
}

// setRateLimitHeaders sets the RateLimit headers of a key's rate limits
// as the server's answer gives them, as limit.SetHeaders would.
func setRateLimitHeaders(h http.Header, rl *view.RateLimitState) {
	h.Set("RateLimit-Policy", rl.Policy)
	h.Set("RateLimit", rl.Header)
	h.Set("X-RateLimit-Limit", fmt.Sprint(rl.Limit))
	h.Set("X-RateLimit-Remaining", fmt.Sprint(rl.Remaining))
	h.Set("X-RateLimit-Reset", fmt.Sprint(rl.Reset))
}

// cacheKey is the hash of everything an answer depends on: the key and
// what the request says of itself, its scheme included.
func cacheKey(req *verify.Request) [32]byte {
	s := sha256.New()
	for _, part := range []string{req.Key, req.IP.String(), req.Method, req.Target, req.Referer, req.Origin} {
		s.Write([]byte(part))
		s.Write([]byte{0})
	}
	if req.TLS {
		s.Write([]byte("tls"))
	}
	s.Write([]byte{0})
	for _, p := range req.Permissions {
		s.Write([]byte(p))
		s.Write([]byte{','})
	}
	var h [32]byte
	s.Sum(h[:0])
	return h
}

// verifyBody is the body of POST /v1/verify.
type verifyBody struct {
	Key         string   `json:"key"`
	Permissions []string `json:"permissions,omitempty"`
	IP          string   `json:"ip,omitempty"`
	Method      string   `json:"method,omitempty"`
	Path        string   `json:"path,omitempty"`
	Referrer    string   `json:"referrer,omitempty"`
	Origin      string   `json:"origin,omitempty"`
	TLS         bool     `json:"tls,omitempty"`
}

// ask asks the server about the request req with key, in a request whose
// X-Request-Id is id. An answer other than 200 is an error that names its
// code, never the key.
func (rm *Remote) ask(ctx context.Context, req *verify.Request, key, id string) (*view.Verification, error) {
	body := verifyBody{Key: key, Permissions: req.Permissions, Method: req.Method, Path: req.Target, Referrer: req.Referer, Origin: req.Origin, TLS: req.TLS}
	if req.IP.IsValid() {
		body.IP = req.IP.String()
	}
	buf, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, rm.base+"/v1/verify", bytes.NewReader(buf))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("X-API-Key", rm.key)
	hreq.Header.Set("X-Request-Id", id)
	resp, err := rm.client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("ask the key server: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read the key server's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, serverRefusal("POST /v1/verify", resp.StatusCode, raw)
	}
	var v view.Verification
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("read the key server's answer: %w", err)
	}
	return &v, nil
}

// serverRefusal is the error of a server's answer to the Remote's own
// request with status and the problem body raw: its code and detail.
func serverRefusal(what string, status int, raw []byte) error {
	var p struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(raw, &p)
	return fmt.Errorf("the key server answered %s with %d %s: %s", what, status, p.Code, apikey.Redact(p.Detail))
}
