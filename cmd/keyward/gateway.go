package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/keyward/keyward/gateway"
	"github.com/keyward/keyward/httpapi"
	"github.com/keyward/keyward/internal/connlimit"
	"github.com/keyward/keyward/internal/reqlog"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
)

// gatewayOptions are the gateway's flags once read: its upstreams.
type gatewayOptions struct {
	upstream, upstreamTest *url.URL
	// cas are --upstream-ca's authorities; nil for the system's.
	cas *x509.CertPool
}

// gatewayFlags adds the gateway's flags to f, their defaults from the
// environment; --upstream-timeout is among serve's duration flags.
func (a *app) gatewayFlags(f *pflag.FlagSet, o *serveOptions) {
	f.StringVar(&o.gatewayAddr, "gateway-addr", a.env("KEYWARD_GATEWAY_ADDR", ""),
		"address of the gateway, host:port: Keyward in front of --upstream, verifying every request by --routes before it proxies it; off when empty (env KEYWARD_GATEWAY_ADDR)")
	f.StringVar(&o.upstream, "upstream", a.env("KEYWARD_UPSTREAM", ""),
		"URL of the API behind the gateway, such as http://127.0.0.1:9000: the requests of live keys and of public routes go there (env KEYWARD_UPSTREAM)")
	f.StringVar(&o.upstreamTest, "upstream-test", a.env("KEYWARD_UPSTREAM_TEST", ""),
		"URL the gateway sends the requests of test keys to; without it, test keys are refused 403 environment_mismatch, unless their route names an upstream_test (env KEYWARD_UPSTREAM_TEST)")
	f.StringVar(&o.upstreamCA, "upstream-ca", a.env("KEYWARD_UPSTREAM_CA", ""),
		"PEM file of the certificate authorities that an https upstream's certificate is verified against, for an upstream with a private CA; the system's authorities when empty (env KEYWARD_UPSTREAM_CA)")
}

// checkGateway reads the gateway's flags: nil without --gateway-addr. The
// gateway needs --upstream and --routes, and the upstreams must be http
// or https URLs with a host; --upstream or --upstream-test without
// --gateway-addr is refused too, since the operator meant a gateway that
// would not run.
func (o *serveOptions) checkGateway() (*gatewayOptions, error) {
	if o.gatewayAddr == "" {
		for _, f := range []struct{ name, value, env string }{{"upstream", o.upstream, "KEYWARD_UPSTREAM"}, {"upstream-test", o.upstreamTest, "KEYWARD_UPSTREAM_TEST"}, {"upstream-ca", o.upstreamCA, "KEYWARD_UPSTREAM_CA"}} {
			if f.value != "" {
				return nil, usageError{fmt.Errorf("--%s is set (or %s) but --gateway-addr is not: the gateway, which proxies to it, would not run; give --gateway-addr too (env KEYWARD_GATEWAY_ADDR), or remove --%s", f.name, f.env, f.name)}
			}
		}
		return nil, nil
	}
	if o.upstream == "" {
		return nil, usageError{errors.New("--upstream is missing: --gateway-addr needs the URL of the API to proxy to, such as http://127.0.0.1:9000 (env KEYWARD_UPSTREAM)")}
	}
	if o.routes == "" {
		return nil, usageError{errors.New("--routes is missing: --gateway-addr needs a route policy, which decides what each request to the API needs " +
			"(permissions, public routes; see docs/policy.md and keyward routes check); " +
			"a file with \"default: authenticated\" alone lets any valid key through (env KEYWARD_ROUTES)")}
	}
	var g gatewayOptions
	var err error
	if g.upstream, err = policy.ParseUpstream(o.upstream); err != nil {
		return nil, usageError{fmt.Errorf("--upstream: %w (env KEYWARD_UPSTREAM)", err)}
	}
	if o.upstreamTest != "" {
		if g.upstreamTest, err = policy.ParseUpstream(o.upstreamTest); err != nil {
			return nil, usageError{fmt.Errorf("--upstream-test: %w (env KEYWARD_UPSTREAM_TEST)", err)}
		}
	}
	if o.upstreamCA != "" {
		if g.cas, err = readCAs(o.upstreamCA); err != nil {
			return nil, usageError{fmt.Errorf("--upstream-ca: %w (env KEYWARD_UPSTREAM_CA)", err)}
		}
	}
	return &g, nil
}

// readCAs reads a PEM file of certificate authorities.
func readCAs(name string) (*x509.CertPool, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("cannot read the certificate authorities: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----): give the file of the authority that signed the upstream's certificate", name)
	}
	return pool, nil
}

// startGateway makes the gateway and its listener on --gateway-addr,
// held to the connection limits of the API's (a count of its own). The
// gateway bounds the time to read a request's header and an idle
// connection's wait, but not the time to read or write a body, which may
// stream for as long as it takes.
func (a *app) startGateway(o serveOptions, g *gatewayOptions, logger *slog.Logger, verifier *verify.Verifier, logs *reqlog.Log,
	trusted []netip.Prefix, routes *policy.File,
) (*gateway.Gateway, net.Listener, error) {
	gw, err := gateway.New(gateway.Config{
		Verifier: verifier, Routes: routes, Upstream: g.upstream, UpstreamTest: g.upstreamTest, UpstreamCAs: g.cas,
		TrustedProxies: trusted, RequireTLS: o.tls.requireTLS, HSTS: o.tls.hstsMaxAge,
		UpstreamTimeout: o.upstreamTimeout, HeaderTimeout: readHeaderTimeout, IdleTimeout: o.idleTimeout, Logger: logger, Logs: logs,
		ProblemBase: o.problemBase,
	})
	if err != nil {
		return nil, nil, err
	}
	tcp, err := net.Listen("tcp", o.gatewayAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("--gateway-addr: cannot listen on %s: %w", o.gatewayAddr, err)
	}
	ln := connlimit.NewListener(tcp, connlimit.Limits{Total: o.maxConns, PerAddr: o.maxConnsPerIP, Exempt: trusted}, logger)
	return gw, ln, nil
}

// startAuth makes the auth listener and its listener on --auth-addr,
// held to the connection limits of the API's (a count of its own).
func (a *app) startAuth(o serveOptions, logger *slog.Logger, verifier *verify.Verifier, logs *reqlog.Log, trusted []netip.Prefix, routes *policy.File,
) (*gateway.AuthServer, net.Listener, error) {
	as, err := gateway.NewAuthServer(gateway.AuthConfig{
		Verifier: verifier, Routes: routes, TrustedProxies: trusted,
		RequireTLS: o.tls.requireTLS, HSTS: o.tls.hstsMaxAge, TLSRequired: httpapi.ErrTLSRequired,
		HeaderTimeout: readHeaderTimeout, IdleTimeout: o.idleTimeout, Logger: logger, Logs: logs,
		ProblemBase: o.problemBase,
	})
	if err != nil {
		return nil, nil, err
	}
	tcp, err := net.Listen("tcp", o.authAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("--auth-addr: cannot listen on %s: %w", o.authAddr, err)
	}
	ln := connlimit.NewListener(tcp, connlimit.Limits{Total: o.maxConns, PerAddr: o.maxConnsPerIP, Exempt: trusted}, logger)
	return as, ln, nil
}

// fastServer is a listener of serve on fasthttp: the gateway's and the
// auth listener's.
type fastServer interface {
	Serve(net.Listener) error
	ServeTLS(net.Listener, *tls.Config) error
	Shutdown(context.Context) error
}

// shutdown stops the servers and the fast ones together, letting
// requests in flight finish within timeout; past it, their connections
// are closed.
func shutdown(ctx context.Context, servers []*http.Server, fast []fastServer, timeout time.Duration, logger *slog.Logger) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range fast {
		wg.Go(func() {
			if err := srv.Shutdown(sctx); err != nil {
				logger.Warn("requests in flight did not finish in time; their connections were closed", "listener", fmt.Sprintf("%T", srv), "err", err)
			}
		})
	}
	for _, srv := range servers {
		wg.Go(func() {
			if err := srv.Shutdown(sctx); err != nil {
				srv.Close()
				logger.Warn("requests in flight did not finish in time; their connections were closed", "err", err)
			}
		})
	}
	wg.Wait()
}

// redacted is u without its password, or "" for nil.
func redacted(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Redacted()
}
