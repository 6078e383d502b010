package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"runtime"
	"time"
)

// Profiling rates that --debug-addr turns on, so that its mutex and block
// profiles have something to show: one contended lock in
// debugMutexFraction is recorded, and a blocking event (a channel, a
// select, a lock waited for) of debugBlockRate or longer, shorter ones in
// proportion. Both cost a little on every contended lock or blocking
// event, hence only with --debug-addr.
const (
	debugMutexFraction = 10
	debugBlockRate     = 10 * time.Microsecond
)

// checkDebugAddr refuses a --debug-addr that is not on a loopback address:
// the profiles show the server's memory, its goroutines and their
// arguments, so they are for someone logged in to the host, never for the
// network.
func checkDebugAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError{fmt.Errorf("--debug-addr: %q is not host:port: %w; use a loopback address such as 127.0.0.1:6060 (env KEYWARD_DEBUG_ADDR)", addr, err)}
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return usageError{fmt.Errorf("--debug-addr: %q is not a loopback address: the profiles show the server's memory and must not reach the network; use one such as 127.0.0.1:6060 (env KEYWARD_DEBUG_ADDR)", host)}
	}
	return nil
}

// startDebug serves Go's profiles (net/http/pprof) on addr, a listener of
// its own beside the API's: /debug/pprof/ lists them,
// /debug/pprof/trace?seconds=N takes an execution trace (go tool trace),
// /debug/pprof/profile?seconds=N a CPU profile, and /debug/pprof/mutex and
// /debug/pprof/block the contention profiles, which it turns on. The
// function it returns closes the listener and turns them off. With addr ""
// it does nothing. (Importing net/http/pprof also registers its handlers
// on http.DefaultServeMux, which Keyward serves nowhere.)
func startDebug(addr string, logger *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	runtime.SetMutexProfileFraction(debugMutexFraction)
	runtime.SetBlockProfileRate(int(debugBlockRate.Nanoseconds()))
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	closeSide, addr, err := serveSide("debug-addr", addr, mux, logger)
	if err != nil {
		runtime.SetMutexProfileFraction(0)
		runtime.SetBlockProfileRate(0)
		return nil, err
	}
	logger.Warn("debug listener: Go profiles and traces served on /debug/pprof/; keep it off in production", "addr", addr,
		"mutex_profile_fraction", debugMutexFraction, "block_profile_rate", debugBlockRate.String())
	return func() {
		closeSide()
		runtime.SetMutexProfileFraction(0)
		runtime.SetBlockProfileRate(0)
	}, nil
}

// startMetrics serves the metrics at GET /metrics on addr, a listener of
// its own, without a key: an address on a private interface, which only
// the monitoring system reaches. It returns the address it listens on.
// With addr "" it does nothing.
func startMetrics(addr string, metrics http.Handler, logger *slog.Logger) (stop func(), listening string, err error) {
	if addr == "" {
		return func() {}, "", nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	return serveSide("metrics-addr", addr, mux, logger)
}

// serveSide serves h on addr, the value of --flag, beside the API, and
// returns the function that closes it and the address it listens on. It
// has no WriteTimeout: a profile or a trace takes as long as it is asked
// to.
func serveSide(flag, addr string, h http.Handler, logger *slog.Logger) (stop func(), listening string, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("--%s: cannot listen on %s: %w", flag, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("listener stopped", "flag", flag, "addr", ln.Addr().String(), "err", err)
		}
	}()
	return func() { srv.Close() }, ln.Addr().String(), nil
}
