package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/gateway"
	"github.com/keyward/keyward/httpapi"
	"github.com/keyward/keyward/internal/connlimit"
	"github.com/keyward/keyward/internal/dashboard"
	"github.com/keyward/keyward/internal/forwarded"
	"github.com/keyward/keyward/internal/gcfloor"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/reqlog"
	"github.com/keyward/keyward/internal/webhook"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
)

// serveOptions are the flags of keyward serve.
type serveOptions struct {
	addr           string
	trustedProxies string
	logFormat      string
	routes         string
	// redis is the URL of the Redis that keeps rate limits for every
	// node; "" for each node's own memory.
	redis           string
	shutdownTimeout time.Duration
	flushInterval   time.Duration
	cacheTTL        time.Duration
	storageTimeout  time.Duration
	// redisTimeout is how long a decision waits for Redis before this
	// node decides alone.
	redisTimeout  time.Duration
	idleTimeout   time.Duration
	maxConns      int
	maxConnsPerIP int
	// failedAttempts, failedAttemptWindow and failedAttemptBlock are
	// the failed-attempt limiter's settings (verify.Options).
	failedAttempts      int
	failedAttemptWindow time.Duration
	failedAttemptBlock  time.Duration
	// expiryNotice is how long before its expiry a key carries the
	// Deprecation and Sunset headers; 0 for never.
	expiryNotice time.Duration
	// envDurations are the duration flags that take their default from the
	// environment.
	envDurations []envDuration
	// envInts are the count flags that take their default from the
	// environment.
	envInts []envInt
	// tls is the certificate, --require-tls and --hsts (tls.go).
	tls tlsOptions
	// gatewayAddr, upstream, upstreamTest and upstreamTimeout are the
	// gateway's flags (gateway.go).
	gatewayAddr, upstream, upstreamTest string
	// authAddr is the auth listener's address (--auth-addr), "" for none.
	authAddr string
	// logBuffer is the request log's buffer, in entries, 0 for no
	// request log; logRetention how long its entries are kept.
	logBuffer    int
	logRetention time.Duration
	logInterval  time.Duration
	// usageRetention is how long usage counts are kept.
	usageRetention time.Duration
	// sharing is the rule of the single-use signals; failureSpike the
	// refusals in a minute that make a spike (docs/signals.md).
	sharing      keyward.SharingRule
	failureSpike int
	// upstreamCA is --upstream-ca: a PEM file of the authorities that
	// an https upstream's certificate is verified against.
	upstreamCA      string
	upstreamTimeout time.Duration
	// debugAddr is where Go's profiles are served, "" for nowhere
	// (debug.go).
	debugAddr string
	// metricsAddr is where GET /metrics is served without a key, "" for
	// only on --addr, with one.
	metricsAddr string
	// accessLog writes a JSON line per verification on stdout.
	accessLog bool
	// webhookWorkers is how many webhook deliveries this node attempts at
	// once, 0 for none; webhookAllowPrivate lets endpoints point at
	// private addresses.
	webhookWorkers      int
	webhookAllowPrivate bool
	// publicURL is the base URL the instance is reached at
	// (--public-url); brand how the dashboard looks.
	publicURL string
	brand     dashboard.Brand
	// problemBase starts the problem types: publicURL, or the API
	// listener's address (problemBase).
	problemBase string
	// sessionIdle and sessionLifetime end the dashboard's sessions
	// (docs/dashboard.md).
	sessionIdle, sessionLifetime time.Duration
	// webhookRetention is how long events are kept once delivered.
	webhookRetention time.Duration
}

// envDuration is a duration flag whose default comes from an environment
// variable.
type envDuration struct {
	flag, env, usage string
	def              time.Duration
	example          string // a valid value, for messages
	value            *time.Duration
	// offIsZero allows 0, which turns the setting off.
	offIsZero bool
	// input is the flag's value, which reads the variable too.
	input *durationValue
	// err is why the variable could not be read, if it could not; it
	// matters only when the flag is not given.
	err error
}

// durationValue is the value of a duration flag, read as
// manage.ParseDuration reads the durations of the API's bodies: 90d, 2w,
// 12h, 30m or a Go duration such as 1h30m. One longer than
// manage.MaxDuration, or not a duration, is refused with ParseDuration's
// error. A negative one is kept in negative, with ParseDuration's error,
// for serve to refuse as it refuses 0: it must be more than 0.
type durationValue struct {
	d        *time.Duration
	negative error
	text     string // the negative duration given
}

// Set reads s as the flag's value.
func (v *durationValue) Set(s string) error {
	d, err := manage.ParseDuration(s)
	if de, ok := errors.AsType[*manage.DurationError](err); ok && de.Negative {
		*v.d, v.negative, v.text = 0, err, s
		return nil
	}
	if err != nil {
		return err
	}
	*v.d, v.negative = d, nil
	return nil
}

// String writes the value as a Go duration, as the help and the log show
// it, or the negative duration given as it was given.
func (v *durationValue) String() string {
	switch {
	case v.negative != nil:
		return v.text
	case v.d == nil:
		return "0s"
	}
	return v.d.String()
}

// Type names the value in the help, as for a Go duration flag.
func (v *durationValue) Type() string { return "duration" }

// envInt is a count flag whose default comes from an environment variable.
type envInt struct {
	flag, env, usage string
	def              int
	value            *int
	// err is why the variable could not be read, if it could not; it
	// matters only when the flag is not given.
	err error
}

// serveCommand is `keyward serve`: the HTTP API on --addr.
func (a *app) serveCommand() *cobra.Command {
	var o serveOptions
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the Keyward server: the HTTP API, verification and management",
		Long: `Run the Keyward server on --addr.

On its first start on a new database, serve stores the prefix of its keys
(--key-prefix, sk when it is not given; see keyward migrate --help),
creates the system tenant and a root key, and prints that key once, alone on
stdout: store it then, for it is never shown again. Later starts print none. To make another root key,
for instance when it was lost (then revoke the old one):

  keyward keys create --tenant system --name root --permissions keyward:admin

The last-use times of keys are written every --flush-interval. Logs go to
stderr and never contain a key. On SIGINT or SIGTERM the server stops taking
requests, finishes those in flight, writes the pending last-use times of
keys, closes the database, logs "stopped", and exits.

The change feed keeps the server's cache of keys up to date. While the
database cannot be reached, the server goes on answering for the keys it has
cached for --cache-ttl after it last read the feed, and no longer.
Keys it cannot check then are answered 503 storage_unavailable, never 401,
as soon as the database refuses, and after --storage-timeout at most when it
does not answer at all; so are management calls.

One client cannot hold every connection: a client address with
--max-conns-per-ip connections open has any more closed as soon as they
are accepted (its open connections go on working), and the refusals are
logged, with the address, at most once a minute. Proxies in
--trusted-proxies carry many clients and are not held to it. Once
--max-conns connections are open in all, new clients wait in the kernel's
queue until one closes. A kept-alive connection is closed after
--idle-timeout without a request, and a new one that sends no request
within 5s is closed. Either limit is off at 0.

With --routes FILE, the route policy of FILE (see keyward routes check)
decides what each request that forward-auth and POST /v1/verify are asked
about needs. A file that cannot be read or holds a bad policy stops serve
from starting. The file is read again on SIGHUP and whenever it changes
(checked every second); a bad file then keeps the policy in use, and the
log says what is wrong with it.

With --tls-cert and --tls-key, serve answers over HTTPS alone (TLS 1.2 or
later, HTTP/2 and HTTP/1.1). SIGHUP reads both files again: new
connections get the new certificate, connections already open keep
theirs, and a pair that cannot be read, or whose key is not the
certificate's, is logged and the one in use kept. --require-tls answers
requests over plain HTTP 403 tls_required (except /healthz and /readyz),
believing X-Forwarded-Proto: https only from --trusted-proxies; for
forward-auth, it is the original request that must have come over HTTPS.
--hsts sets Strict-Transport-Security on answers over HTTPS.

With --gateway-addr, serve is also a gateway in front of the API at
--upstream (both required, with --routes): every request to
--gateway-addr is verified as forward-auth verifies it, by the route
policy, and refused as forward-auth refuses it, without reaching the
upstream; one that passes is proxied with its key removed, the identity
headers added (X-Keyward-Key-Id, -Key-Name, -Tenant, -Tenant-Slug,
-Member-Id, -Plan, -Environment, -Permissions; any the client sent are
removed), and X-Forwarded-For, -Host, -Proto and X-Request-Id set. The
requests of test keys go to --upstream-test, never to --upstream: without
it they are refused 403 environment_mismatch. A route may name its own
upstream and upstream_test. Bodies stream both ways, upgrades
(WebSocket) and server-sent events pass through. An upstream that cannot
be reached is answered 502 upstream_unavailable, one that does not send
its response header within --upstream-timeout 504 upstream_timeout. The
gateway speaks HTTP/1.1 only, over TLS too. Its listener serves the
API's certificate, --require-tls, --hsts,
--trusted-proxies and the connection limits too (its connections counted
apart), and stops with the API. See docs/gateway.md.

With --auth-addr, serve also answers /v1/forward-auth on a listener of its
own, for the proxies in front of an API (nginx auth_request, Caddy
forward_auth, Traefik forwardAuth, Envoy ext_authz): the same decision and
answers as the API's /v1/forward-auth, on the gateway's HTTP stack
(HTTP/1.1 only, over TLS too), at about two thirds of the API listener's
cost per request. Any other path is answered 404 there. It serves the
API's certificate, --require-tls, --hsts, --trusted-proxies and the
connection limits too, and stops with the API. See docs/gateway.md.

A client address (an IPv6 /64) that sends --failed-attempts keys that are
refused as malformed, unknown or revoked within --failed-attempts-window
is blocked for --failed-attempts-block: its requests are answered 429
too_many_failed_attempts with Retry-After, without a database read, except
those with a key the server has cached as valid, which go on working. A
key sent again is not counted again, so a client that keeps sending one
revoked or mistyped key is told what is wrong with it, not blocked. The
address is the one --trusted-proxies yield; POST /v1/verify counts the
address in its body's ip, and nothing without one. 0 turns the limiter
off.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, d := range o.envDurations {
				if d.err != nil && !cmd.Flags().Changed(d.flag) {
					return usageError{d.err}
				}
			}
			for _, d := range o.envInts {
				if d.err != nil && !cmd.Flags().Changed(d.flag) {
					return usageError{d.err}
				}
			}
			if o.tls.requireTLSErr != nil && !cmd.Flags().Changed("require-tls") {
				return usageError{o.tls.requireTLSErr}
			}
			return a.serve(cmd.Context(), o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.addr, "addr", a.env("KEYWARD_ADDR", "127.0.0.1:8080"), "address to listen on, host:port (env KEYWARD_ADDR)")
	f.StringVar(&o.trustedProxies, "trusted-proxies", a.env("KEYWARD_TRUSTED_PROXIES", ""),
		"CIDRs of proxies whose X-Forwarded-For is believed, comma-separated (env KEYWARD_TRUSTED_PROXIES)")
	f.StringVar(&o.routes, "routes", a.env("KEYWARD_ROUTES", ""), "route policy file (YAML) for forward-auth and POST /v1/verify; reloaded on SIGHUP and on change (env KEYWARD_ROUTES)")
	f.StringVar(&o.logFormat, "log-format", a.env("KEYWARD_LOG_FORMAT", "json"), "log format on stderr: json or text (env KEYWARD_LOG_FORMAT)")
	f.StringVar(&o.redis, "redis", a.env("KEYWARD_REDIS", ""), "URL of the Redis that keeps rate limits shared by every node, such as redis://127.0.0.1:6379/0; without it each node limits alone (env KEYWARD_REDIS)")
	a.tlsFlags(f, &o.tls)
	a.gatewayFlags(f, &o)
	f.StringVar(&o.authAddr, "auth-addr", a.env("KEYWARD_AUTH_ADDR", ""),
		"address of the auth listener, host:port: /v1/forward-auth alone, for the proxies in front of an API, on a leaner HTTP/1.1 stack than --addr's; off when empty (env KEYWARD_AUTH_ADDR)")
	f.StringVar(&o.metricsAddr, "metrics-addr", a.env("KEYWARD_METRICS_ADDR", ""), "address of a listener of its own for GET /metrics, served there without a key: bind it to a private interface, such as 10.0.0.5:9090; GET /metrics on --addr needs a key with keyward:metrics (env KEYWARD_METRICS_ADDR)")
	f.BoolVar(&o.accessLog, "access-log", a.env("KEYWARD_ACCESS_LOG", "") == "1", "write a JSON line per verification on stdout (request id, surface, method, path without its query, status, code, key id, tenant, client address, latency); never a key (env KEYWARD_ACCESS_LOG=1)")
	f.BoolVar(&o.webhookAllowPrivate, "webhook-allow-private", a.env("KEYWARD_WEBHOOK_ALLOW_PRIVATE", "") == "1", "let webhook endpoints point at loopback, private and link-local addresses; off, an endpoint that is (or resolves to) one is refused, and so is a delivery that would connect to one (env KEYWARD_WEBHOOK_ALLOW_PRIVATE=1)")
	f.StringVar(&o.publicURL, "public-url", a.env("KEYWARD_PUBLIC_URL", ""), "the base URL people reach this instance at, such as https://keys.example.com: the start of the invitation and portal links it makes (without it, the request's own host) (env KEYWARD_PUBLIC_URL)")
	f.StringVar(&o.brand.Name, "brand-name", a.env("KEYWARD_BRAND_NAME", ""), "your product's name, shown by the dashboard instead of Keyward (env KEYWARD_BRAND_NAME)")
	f.StringVar(&o.brand.Logo, "brand-logo", a.env("KEYWARD_BRAND_LOGO", ""), "the https URL of your logo, shown in the dashboard's header (env KEYWARD_BRAND_LOGO)")
	f.StringVar(&o.brand.Color, "brand-color", a.env("KEYWARD_BRAND_COLOR", ""), "the dashboard's accent colour, #rrggbb (env KEYWARD_BRAND_COLOR)")
	f.StringVar(&o.debugAddr, "debug-addr", a.env("KEYWARD_DEBUG_ADDR", ""), "loopback address on which to serve Go's profiles and execution traces (/debug/pprof/), such as 127.0.0.1:6060; off by default (env KEYWARD_DEBUG_ADDR)")
	o.envDurations = []envDuration{
		{flag: "shutdown-timeout", env: "KEYWARD_SHUTDOWN_TIMEOUT", def: 15 * time.Second, example: "15s", value: &o.shutdownTimeout,
			usage: "how long requests in flight may take to finish on shutdown"},
		{flag: "flush-interval", env: "KEYWARD_FLUSH_INTERVAL", def: verify.DefaultFlushInterval, example: "1s", value: &o.flushInterval,
			usage: "how often the last-use times of keys are written to the database"},
		{flag: "cache-ttl", env: "KEYWARD_CACHE_TTL", def: verify.DefaultCacheTTL, example: "5m", value: &o.cacheTTL,
			usage: "how long cached keys are answered for without hearing from the database (from the last read of its change feed); at most 24h"},
		{flag: "storage-timeout", env: "KEYWARD_STORAGE_TIMEOUT", def: verify.DefaultStorageTimeout, example: "2s", value: &o.storageTimeout,
			usage: "how long a request waits for the database before it is answered 503 storage_unavailable"},
		{flag: "redis-timeout", env: "KEYWARD_REDIS_TIMEOUT", def: limit.DefaultTimeout, example: "50ms", value: &o.redisTimeout,
			usage: "how long a rate-limit decision waits for Redis (--redis) before this node decides alone, for a second, as when Redis is down; raise it on a busy host or a distant Redis"},
		{flag: "idle-timeout", env: "KEYWARD_IDLE_TIMEOUT", def: defaultIdleTimeout, example: "75s", value: &o.idleTimeout,
			usage: "how long a kept-alive connection may wait for its next request; behind a load balancer that keeps connections open, set it above the balancer's idle timeout"},
		{flag: "failed-attempts-window", env: "KEYWARD_FAILED_ATTEMPTS_WINDOW", def: verify.DefaultFailedAttemptWindow, example: "1m", value: &o.failedAttemptWindow,
			usage: "the time within which --failed-attempts refused keys block a client address"},
		{flag: "expiry-notice", env: "KEYWARD_EXPIRY_NOTICE", def: verify.DefaultExpiryNotice, example: "168h", value: &o.expiryNotice,
			usage: "how long before its expiry a key's answers on forward-auth, the gateway and the API carry the Deprecation and Sunset headers (a key in a rotation's grace period carries them for the whole period); 0 for only the latter", offIsZero: true},
		{flag: "failed-attempts-block", env: "KEYWARD_FAILED_ATTEMPTS_BLOCK", def: verify.DefaultFailedAttemptBlock, example: "1m", value: &o.failedAttemptBlock,
			usage: "how long a client address that sent too many refused keys stays blocked"},
		{flag: "log-retention", env: "KEYWARD_LOG_RETENTION", def: reqlog.DefaultRetention, example: "720h", value: &o.logRetention,
			usage: "how long the request log keeps its entries (GET /v1/logs, keyward logs); older ones are deleted every 10 minutes"},
		{flag: "usage-retention", env: "KEYWARD_USAGE_RETENTION", def: reqlog.DefaultUsageRetention, example: "8760h", value: &o.usageRetention,
			usage: "how long the usage counts (GET /v1/usage, keyward usage) are kept, by the hour and by the day; older ones are deleted every 10 minutes"},
		{flag: "webhook-retention", env: "KEYWARD_WEBHOOK_RETENTION", def: webhook.DefaultRetention, example: "720h", value: &o.webhookRetention,
			usage: "how long a webhook event and its delivery log are kept once its deliveries are over (delivered, or failed every attempt); older ones are deleted every 10 minutes by the nodes that deliver"},
		{flag: "session-idle", env: "KEYWARD_SESSION_IDLE", def: dashboard.DefaultIdleTimeout, example: "30m", value: &o.sessionIdle,
			usage: "how long a dashboard session may go unused before it ends"},
		{flag: "session-lifetime", env: "KEYWARD_SESSION_LIFETIME", def: dashboard.DefaultLifetime, example: "12h", value: &o.sessionLifetime,
			usage: "how long a dashboard session lasts from its sign-in, however much it is used"},
		{flag: "log-interval", env: "KEYWARD_LOG_INTERVAL", def: reqlog.DefaultInterval, example: "250ms", value: &o.logInterval,
			usage: "the longest time between two writes of the request log (it writes sooner when half of --log-buffer waits); what waits is written on shutdown too"},
		{flag: "upstream-timeout", env: "KEYWARD_UPSTREAM_TIMEOUT", def: gateway.DefaultUpstreamTimeout, example: "30s", value: &o.upstreamTimeout,
			usage: "how long the upstream may stay silent (waiting for its response header, or between two reads of its body) before the gateway answers 504 upstream_timeout or cuts the answer; a body that streams is not cut by it"},
	}
	for i := range o.envDurations {
		d := &o.envDurations[i]
		*d.value = d.def
		d.input = &durationValue{d: d.value}
		if s := a.getenv(d.env); s != "" {
			if err := d.input.Set(s); err != nil {
				*d.value, d.err = d.def, fmt.Errorf("%s: %w; use a form such as %s", d.env, err, d.example)
			}
		}
		f.Var(d.input, d.flag, d.usage+" (env "+d.env+")")
	}
	o.envInts = []envInt{
		{flag: "max-conns", env: "KEYWARD_MAX_CONNS", def: connlimit.DefaultTotal(connlimit.FileLimit()), value: &o.maxConns,
			usage: "most connections open at once; past it, new clients wait until one closes; 0 for no limit; by default 3/4 of the open-file limit, at most 10000"},
		{flag: "max-conns-per-ip", env: "KEYWARD_MAX_CONNS_PER_IP", def: connlimit.DefaultPerAddr, value: &o.maxConnsPerIP,
			usage: "most connections open at once from one client address (an IPv6 /64), except --trusted-proxies; more are closed at once; 0 for no limit"},
		{flag: "failed-attempts", env: "KEYWARD_FAILED_ATTEMPTS", def: verify.DefaultFailedAttempts, value: &o.failedAttempts,
			usage: "how many distinct keys refused as malformed, unknown or revoked a client address (an IPv6 /64) may send within --failed-attempts-window before it is blocked; 0 for no limit"},
		{flag: "webhook-workers", env: "KEYWARD_WEBHOOK_WORKERS", def: webhook.DefaultWorkers, value: &o.webhookWorkers,
			usage: "how many webhook deliveries this node attempts at once; every node delivers, each delivery by one node at a time; 0: this node delivers none"},
		{flag: "log-buffer", env: "KEYWARD_LOG_BUFFER", def: reqlog.DefaultBuffer, value: &o.logBuffer,
			usage: "how many request-log entries wait in memory to be written (with 320 bytes of text each on average); past it, new ones are dropped and counted, never waited for (the usage counts still count them); 0 turns the request log and the usage counts off"},
		{flag: "sharing-networks", env: "KEYWARD_SHARING_NETWORKS", def: 5, value: &o.sharing.Networks,
			usage: "a key used from more client networks (IPv4 /24, IPv6 /48) than this in a UTC day is flagged sharing_suspected and key.sharing_suspected is sent; 0: networks are not judged"},
		{flag: "sharing-user-agents", env: "KEYWARD_SHARING_USER_AGENTS", def: 5, value: &o.sharing.UserAgents,
			usage: "the same, for distinct User-Agent headers; 0: not judged"},
		{flag: "sharing-referrers", env: "KEYWARD_SHARING_REFERRERS", def: 5, value: &o.sharing.Referrers,
			usage: "the same, for distinct origins of the Referer header; 0: not judged"},
		{flag: "failure-spike", env: "KEYWARD_FAILURE_SPIKE", def: int(reqlog.DefaultSpikeRule.Min), value: &o.failureSpike,
			usage: "auth.failure_spike is sent when a tenant's (or a key's) 401 and 403 refusals in one minute reach this and ten times their average of the last hour, once per episode (a new one after 10 quiet minutes); 0: not watched"},
	}
	for i := range o.envInts {
		d := &o.envInts[i]
		v := d.def
		if s := a.getenv(d.env); s != "" {
			var err error
			if v, err = strconv.Atoi(s); err != nil {
				v, d.err = d.def, fmt.Errorf("%s: %q is not a whole number; use a form such as %d", d.env, s, d.def)
			}
		}
		f.IntVar(d.value, d.flag, v, d.usage+" (env "+d.env+")")
	}
	return c
}

// openLimiter returns the limiter of rate limits: this node's memory
// without a Redis URL; with one, Redis shared by every node, and this
// node's memory while Redis fails or takes longer than timeout
// (limit.Fallback), so that verification goes on, each node limiting
// alone, and the log says so. A URL that cannot be read stops serve; a Redis that does not answer at start is
// logged, and used once it answers. The function returned closes the
// client.
func openLimiter(ctx context.Context, url string, timeout time.Duration, logger *slog.Logger) (limit.Limiter, func(), error) {
	if url == "" {
		return limit.NewLocal(), func() {}, nil
	}
	opts, err := limit.ClientOptions(url)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("--redis: %w; use a URL such as redis://127.0.0.1:6379/0 (env KEYWARD_REDIS)", err)}
	}
	client := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		logger.Warn("redis does not answer: each node limits alone until it does", "addr", opts.Addr, "err", err)
	}
	shared := limit.NewRedis(client, "keyward:")
	return limit.NewFallback(shared, limit.NewLocal(), logger, timeout), func() { client.Close() }, nil
}

// defaultIdleTimeout is how long a kept-alive connection may wait for its
// next request by default: like nginx's keepalive_timeout, above the 60s
// after which common load balancers (AWS ALB, nginx's upstream keepalive)
// close their idle connections to a backend, so that they close first: a
// request sent on a connection as the server closes it fails.
const defaultIdleTimeout = 75 * time.Second

// readHeaderTimeout is how long a connection may take to send the header
// of a request: a new connection that sends nothing is closed after it.
const readHeaderTimeout = 5 * time.Second

// rootKeyNotice is printed on stderr when the first start prints the root
// key on stdout.
const rootKeyNotice = `This is the root key of this Keyward instance: it manages every tenant.
Store it now, in a password manager or secret store: it will not be shown again.
(Another can be made with: keyward keys create --tenant system --name root --permissions keyward:admin)`

// serve runs the server until ctx ends, then shuts it down in order: the
// HTTP server stops taking requests and finishes those in flight, the
// verifier writes the pending last-use times, the store closes, and the
// last log line, "stopped", tells whether all of that went well.
func (a *app) serve(ctx context.Context, o serveOptions) error {
	logger, err := newLogger(a.stderr, o.logFormat)
	if err != nil {
		return err
	}
	trusted, err := httpapi.ParseCIDRs(o.trustedProxies)
	if err != nil {
		return usageError{fmt.Errorf("--trusted-proxies: %w; use a comma-separated list such as 10.0.0.0/8,192.0.2.7", err)}
	}
	if err := checkPublicURL(o.publicURL); err != nil {
		return usageError{err}
	}
	if err := o.brand.Check(); err != nil {
		return usageError{err}
	}
	for _, d := range o.envDurations {
		if d.input.negative != nil {
			return usageError{fmt.Errorf("--%s: must be more than 0, such as %s: %w (env %s)", d.flag, d.example, d.input.negative, d.env)}
		}
		if *d.value <= 0 && !(d.offIsZero && *d.value == 0) {
			return usageError{fmt.Errorf("--%s: must be more than 0, such as %s, not %s (env %s)", d.flag, d.example, *d.value, d.env)}
		}
	}
	for _, d := range o.envInts {
		if *d.value < 0 {
			return usageError{fmt.Errorf("--%s: must be 0 (no limit) or more, not %d (env %s)", d.flag, *d.value, d.env)}
		}
	}
	if o.cacheTTL > verify.MaxCacheTTL {
		return usageError{fmt.Errorf("--cache-ttl: must be at most %s, not %s (env KEYWARD_CACHE_TTL): a node reads each cached key again from the database at least that often",
			strings.TrimSuffix(verify.MaxCacheTTL.String(), "0m0s"), o.cacheTTL)}
	}
	if err := o.tls.check(trusted, logger); err != nil {
		return err
	}
	gw, err := o.checkGateway()
	if err != nil {
		return err
	}
	if err := checkDebugAddr(o.debugAddr); err != nil {
		return err
	}
	defer gcfloor.Keep(gcHeadroom)()
	var routes *policy.File
	if o.routes != "" {
		if routes, err = policy.Open(o.routes, logger); err != nil {
			return usageError{fmt.Errorf("--routes: %w", err)}
		}
	}
	limiter, closeLimiter, err := openLimiter(ctx, o.redis, o.redisTimeout, logger)
	if err != nil {
		return err
	}
	defer closeLimiter()
	store, format, err := a.open(ctx, true, logger)
	if err != nil {
		return err
	}
	failedAttempts := o.failedAttempts
	if failedAttempts == 0 {
		failedAttempts = verify.NoFailedAttemptLimit
	}
	mets := metrics.New()
	timed := mets.Store(store)
	verifier := verify.New(timed, verify.Options{
		Format: format, Logger: logger, FlushInterval: o.flushInterval, CacheTTL: o.cacheTTL,
		StorageTimeout: o.storageTimeout, FailedAttempts: failedAttempts,
		FailedAttemptWindow: o.failedAttemptWindow, FailedAttemptBlock: o.failedAttemptBlock,
		ExpiryNotice: expiryNotice(o.expiryNotice),
		Limiter:      limiter,
	})

	// The request log is made without a store when it is off: it still
	// hands every verification to the metrics (and the access log).
	spikes := reqlog.DefaultSpikeRule
	spikes.Min = int64(o.failureSpike)
	logConfig := reqlog.Config{Buffer: o.logBuffer, Retention: o.logRetention, UsageRetention: o.usageRetention,
		Interval: o.logInterval, Logger: logger, Observe: mets.Observe, Sharing: o.sharing, Spikes: spikes}
	if o.logBuffer > 0 {
		logConfig.Store = timed
	}
	if o.accessLog {
		access := reqlog.AccessLog(slog.New(slog.NewJSONHandler(a.stdout, nil)))
		logConfig.Observe = func(e *reqlog.Entry) {
			mets.Observe(e)
			access(e)
		}
	}
	logs := reqlog.New(logConfig)
	mets.WatchVerifier(verifier)
	mets.WatchLog(logs)

	err = a.runServer(ctx, o, logger, store, verifier, logs, mets, format, trusted, routes, gw)

	// The request log and the verifier close on every way out, once no
	// request is served, and before the store: they write the entries
	// and the last-use times still pending.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownTimeout)
	defer cancel()
	flushErr := errors.Join(logs.Close(cctx), verifier.Close(cctx))
	closeErr := store.Close()

	// The last line of the log: a clean stop, or what went wrong, the
	// failure to write last-use times named apart since those are lost.
	var attrs []any
	if flushErr != nil {
		attrs = append(attrs, "flush_err", flushErr)
	}
	if err := errors.Join(err, closeErr); err != nil {
		attrs = append(attrs, "err", err)
	}
	if attrs == nil {
		logger.Info("stopped")
	} else {
		logger.Error("stopped", attrs...)
	}
	return errors.Join(err, flushErr, closeErr)
}

// runServer sets up the system tenant, starts the verifier and serves the
// HTTP API until ctx ends, then stops the HTTP server, letting requests in
// flight finish. It leaves the verifier and the store open.
func (a *app) runServer(ctx context.Context, o serveOptions, logger *slog.Logger, store database,
	verifier *verify.Verifier, logs *reqlog.Log, mets *metrics.Metrics, format apikey.Format, trusted []netip.Prefix, routes *policy.File, gw *gatewayOptions,
) error {
	dispatcher := webhook.NewDispatcher(webhook.Config{Store: store, AllowPrivate: o.webhookAllowPrivate, Workers: o.webhookWorkers,
		ExpiryNotice: expiryNotice(o.expiryNotice), Retention: o.webhookRetention, Logger: logger, Delivered: mets.Delivered})
	svc := manage.New(manage.Config{Store: store, Format: format, AfterChange: verifier.Refresh,
		AllowPrivateWebhooks: o.webhookAllowPrivate, Delivered: dispatcher.Wake})
	rootKey, err := svc.Bootstrap(ctx)
	if err != nil {
		return err
	}
	if err := a.printRootKey(ctx, rootKey); err != nil {
		return err
	}
	if err := verifier.Start(ctx); err != nil {
		return err
	}
	// Not ctx: its writer goes on until Close, after the last request.
	logs.Start(context.WithoutCancel(ctx))
	if o.webhookWorkers > 0 {
		// Stopped with ctx: an attempt cut short is attempted again
		// once its lease ends, by this node or another.
		dctx, stop := context.WithCancel(ctx)
		dispatched := make(chan struct{})
		go func() {
			defer close(dispatched)
			dispatcher.Run(dctx)
		}()
		defer func() {
			stop()
			<-dispatched
		}()
	}

	// The API's listener is opened first: its address is the start of
	// the problem types when --public-url is not given.
	tcp, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("--addr: cannot listen on %s: %w", o.addr, err)
	}
	defer tcp.Close()
	o.problemBase = problemBase(o.publicURL, tcp.Addr(), o.tls.certificate != nil)
	dash, err := dashboard.New(dashboard.Config{Service: svc, Store: store, Logger: logger, PublicURL: o.publicURL, Brand: o.brand,
		ClientIP: forwarded.Proxies(trusted).ClientIP, Secure: o.tls.certificate != nil || strings.HasPrefix(o.publicURL, "https://"),
		IdleTimeout: o.sessionIdle, Lifetime: o.sessionLifetime})
	if err != nil {
		return err
	}
	go dash.Run(ctx)
	handler, err := httpapi.NewServer(httpapi.Config{
		Service: svc, Verifier: verifier, Store: store, Logger: logger, TrustedProxies: trusted,
		StorageTimeout: o.storageTimeout, Routes: routes, Logs: logs, Metrics: mets.Handler(),
		RequireTLS: o.tls.requireTLS, HSTS: o.tls.hstsMaxAge, Dashboard: dash, PublicURL: o.publicURL, ProblemBase: o.problemBase,
		// Shutting down ends the change streams, which would otherwise
		// hold it up for its whole timeout.
		Done: ctx.Done(),
	})
	if err != nil {
		return err
	}
	if routes != nil {
		go routes.Watch(ctx, time.Second)
	}
	if cert := o.tls.certificate; routes != nil || cert != nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					// Each Reload logs what it does, and a bad file
					// keeps what is in use.
					if routes != nil {
						_ = routes.Reload()
					}
					if cert != nil {
						_ = cert.Reload()
					}
				}
			}
		}()
	}
	stopDebug, err := startDebug(o.debugAddr, logger)
	if err != nil {
		return err
	}
	defer stopDebug()
	stopMetrics, metricsAddr, err := startMetrics(o.metricsAddr, mets.Handler(), logger)
	if err != nil {
		return err
	}
	defer stopMetrics()
	ln := connlimit.NewListener(tcp, connlimit.Limits{Total: o.maxConns, PerAddr: o.maxConnsPerIP, Exempt: trusted}, logger)
	if files := connlimit.FileLimit(); files > 0 && (o.maxConns == 0 || o.maxConns > files) {
		logger.Warn("--max-conns allows more connections than the open-file limit: they could leave the server no file to open, for the database included",
			"max_conns", o.maxConns, "open_file_limit", files)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       o.idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// The gateway's listener is opened before either serves, so that a
	// --gateway-addr that cannot be used stops serve before it answers.
	var gsrv *gateway.Gateway
	var gln net.Listener
	if gw != nil {
		if gsrv, gln, err = a.startGateway(o, gw, logger, verifier, logs, trusted, routes); err != nil {
			ln.Close()
			return err
		}
	}
	var asrv *gateway.AuthServer
	var aln net.Listener
	if o.authAddr != "" {
		if asrv, aln, err = a.startAuth(o, logger, verifier, logs, trusted, routes); err != nil {
			ln.Close()
			if gln != nil {
				gln.Close()
			}
			return err
		}
	}
	served := make(chan error, 3)
	serve := func(srv *http.Server, ln net.Listener) {
		if cert := o.tls.certificate; cert != nil {
			// ServeTLS takes the certificate from TLSConfig's
			// GetCertificate, so that SIGHUP's reload reaches new
			// handshakes, and offers HTTP/2.
			srv.TLSConfig = cert.Config()
			go func() { served <- srv.ServeTLS(ln, "", "") }()
		} else {
			go func() { served <- srv.Serve(ln) }()
		}
	}
	// The gateway and the auth listener speak HTTP/1.1 alone, over TLS
	// too (docs/gateway.md).
	serveFast := func(srv fastServer, ln net.Listener) {
		if cert := o.tls.certificate; cert != nil {
			go func() { served <- srv.ServeTLS(ln, cert.Config()) }()
		} else {
			go func() { served <- srv.Serve(ln) }()
		}
	}
	serve(srv, ln)
	logger.Info("listening", "addr", ln.Addr().String(), "db", store.Path(), "version", keyward.Version,
		"flush_interval", o.flushInterval.String(), "cache_ttl", o.cacheTTL.String(), "storage_timeout", o.storageTimeout.String(),
		"shutdown_timeout", o.shutdownTimeout.String(), "idle_timeout", o.idleTimeout.String(),
		"max_conns", o.maxConns, "max_conns_per_ip", o.maxConnsPerIP, "open_file_limit", connlimit.FileLimit(),
		"failed_attempts", o.failedAttempts, "failed_attempts_window", o.failedAttemptWindow.String(),
		"failed_attempts_block", o.failedAttemptBlock.String(), "expiry_notice", o.expiryNotice.String(),
		"tls", o.tls.certificate != nil, "require_tls", o.tls.requireTLS, "hsts", o.tls.hstsMaxAge.String())
	if metricsAddr != "" {
		logger.Info("listening", "listener", "metrics", "addr", metricsAddr)
	}
	var fast []fastServer
	if gsrv != nil {
		fast = append(fast, gsrv)
		serveFast(gsrv, gln)
		logger.Info("listening", "listener", "gateway", "addr", gln.Addr().String(), "upstream", gw.upstream.Redacted(),
			"upstream_test", redacted(gw.upstreamTest), "upstream_ca", o.upstreamCA, "upstream_timeout", o.upstreamTimeout.String(),
			"tls", o.tls.certificate != nil, "require_tls", o.tls.requireTLS, "hsts", o.tls.hstsMaxAge.String())
	}
	if asrv != nil {
		fast = append(fast, asrv)
		serveFast(asrv, aln)
		logger.Info("listening", "listener", "auth", "addr", aln.Addr().String(),
			"tls", o.tls.certificate != nil, "require_tls", o.tls.requireTLS, "hsts", o.tls.hstsMaxAge.String())
	}
	var serveErr error
	select {
	case err := <-served:
		serveErr = err
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing requests in flight", "timeout", o.shutdownTimeout.String())
	shutdown(ctx, []*http.Server{srv}, fast, o.shutdownTimeout, logger)
	if serveErr == nil {
		serveErr = <-served
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	logger.Info("http server stopped; writing pending usage")
	return nil
}

// newLogger returns the server's logger, writing to w in format json or
// text.
func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format: %q is not a log format; use json or text", format)}
}

// expiryNotice is verify.Options.ExpiryNotice for --expiry-notice: 0
// turns the notice before expiry off, which the option says with a
// negative value.
func expiryNotice(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// checkPublicURL refuses a --public-url that is not an absolute http or
// https URL without a query, fragment or credentials.
func checkPublicURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--public-url: %q is not the base URL of this instance; give an absolute http or https URL such as https://keys.example.com (env KEYWARD_PUBLIC_URL)", s)
	}
	return nil
}

// problemBase is the start of the problem types of every refusal
// (problem.TypeURI): --public-url, else the API listener's own address,
// where the dashboard serves the pages that explain them (an address of
// every interface as localhost).
func problemBase(publicURL string, addr net.Addr, tls bool) string {
	if publicURL != "" {
		return strings.TrimSuffix(publicURL, "/")
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
