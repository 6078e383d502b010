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
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/httpapi"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/verify"
	"github.com/spf13/cobra"
)

// serveOptions are the flags of keyward serve.
type serveOptions struct {
	addr            string
	trustedProxies  string
	logFormat       string
	shutdownTimeout time.Duration
	flushInterval   time.Duration
	// flushIntervalEnv is why KEYWARD_FLUSH_INTERVAL could not be read, if
	// it could not; it matters only when --flush-interval is not given.
	flushIntervalEnv error
	cacheTTL         time.Duration
	// cacheTTLEnv is why KEYWARD_CACHE_TTL could not be read, if it could
	// not; it matters only when --cache-ttl is not given.
	cacheTTLEnv error
}

// serveCommand is `keyward serve`: the HTTP API on --addr.
func (a *app) serveCommand() *cobra.Command {
	var o serveOptions
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the Keyward server: the HTTP API, verification and management",
		Long: `Run the Keyward server on --addr.

On its first start on a new database, serve creates the system tenant and a
root key, and prints that key once, alone on stdout: store it then, for it
is never shown again. Later starts print none. To make another root key,
for instance when it was lost (then revoke the old one):

  keyward keys create --tenant system --name root --permissions keyward:admin

The last-use times of keys are written every --flush-interval. Logs go to
stderr and never contain a key. On SIGINT or SIGTERM the server stops taking
requests, finishes those in flight, writes the pending last-use times of
keys, closes the database, logs "stopped", and exits.

A key the server has verified stays in its cache for up to --cache-ttl: the
change feed keeps the cache up to date, and while the database cannot be
reached the server goes on answering for cached keys, for that long at most.
Keys it cannot check then are answered 503 storage_unavailable, never 401.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.flushIntervalEnv != nil && !cmd.Flags().Changed("flush-interval") {
				return usageError{o.flushIntervalEnv}
			}
			if o.cacheTTLEnv != nil && !cmd.Flags().Changed("cache-ttl") {
				return usageError{o.cacheTTLEnv}
			}
			return a.serve(cmd.Context(), o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.addr, "addr", a.env("KEYWARD_ADDR", "127.0.0.1:8080"), "address to listen on, host:port (env KEYWARD_ADDR)")
	f.StringVar(&o.trustedProxies, "trusted-proxies", a.env("KEYWARD_TRUSTED_PROXIES", ""),
		"CIDRs of proxies whose X-Forwarded-For is believed, comma-separated (env KEYWARD_TRUSTED_PROXIES)")
	f.StringVar(&o.logFormat, "log-format", a.env("KEYWARD_LOG_FORMAT", "json"), "log format on stderr: json or text (env KEYWARD_LOG_FORMAT)")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long requests in flight may take to finish on shutdown")
	flushInterval, err := a.envDuration("KEYWARD_FLUSH_INTERVAL", verify.DefaultFlushInterval)
	o.flushIntervalEnv = err
	f.DurationVar(&o.flushInterval, "flush-interval", flushInterval,
		"how often the last-use times of keys are written to the database (env KEYWARD_FLUSH_INTERVAL)")
	cacheTTL, err := a.envDuration("KEYWARD_CACHE_TTL", verify.DefaultCacheTTL)
	o.cacheTTLEnv = err
	f.DurationVar(&o.cacheTTL, "cache-ttl", cacheTTL,
		"how long a cached key is answered for without hearing from the database (env KEYWARD_CACHE_TTL)")
	return c
}

// envDuration returns the duration in the environment variable name, or def
// when it is unset or empty. When the value is not a duration, it returns
// def and an error that names the variable.
func (a *app) envDuration(name string, def time.Duration) (time.Duration, error) {
	v := a.getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return def, fmt.Errorf("%s: %q is not a duration; use a form such as 1s or 500ms", name, v)
	}
	return d, nil
}

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
	if o.shutdownTimeout <= 0 {
		return usageError{errors.New("--shutdown-timeout: must be more than 0, such as 15s")}
	}
	if o.flushInterval <= 0 {
		return usageError{fmt.Errorf("--flush-interval: must be more than 0, such as 1s, not %s (env KEYWARD_FLUSH_INTERVAL)", o.flushInterval)}
	}
	if o.cacheTTL <= 0 {
		return usageError{fmt.Errorf("--cache-ttl: must be more than 0, such as 5m, not %s (env KEYWARD_CACHE_TTL)", o.cacheTTL)}
	}
	format, err := a.format()
	if err != nil {
		return err
	}
	store, err := a.openStore(ctx, true, logger)
	if err != nil {
		return err
	}
	verifier := verify.New(store, verify.Options{
		Format: format, Logger: logger, FlushInterval: o.flushInterval, CacheTTL: o.cacheTTL,
	})

	err = a.runServer(ctx, o, logger, store, verifier, format, trusted)

	// The verifier closes on every way out, before the store: it writes
	// the last-use times still pending.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownTimeout)
	defer cancel()
	flushErr := verifier.Close(cctx)
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
	verifier *verify.Verifier, format apikey.Format, trusted []netip.Prefix,
) error {
	svc := manage.New(manage.Config{Store: store, Format: format, AfterChange: verifier.Refresh})
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

	handler, err := httpapi.NewServer(httpapi.Config{
		Service: svc, Verifier: verifier, Store: store, Logger: logger, TrustedProxies: trusted,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("--addr: cannot listen on %s: %w", o.addr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String(), "db", store.Path(), "version", keyward.Version,
		"flush_interval", o.flushInterval.String(), "cache_ttl", o.cacheTTL.String())

	select {
	case err := <-served:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing requests in flight", "timeout", o.shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		logger.Warn("requests in flight did not finish in time; their connections were closed", "err", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
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
