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
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-addr: cannot listen on %s: %w", addr, err)
	}
	runtime.SetMutexProfileFraction(debugMutexFraction)
	runtime.SetBlockProfileRate(int(debugBlockRate.Nanoseconds()))
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No WriteTimeout: a profile or a trace takes as long as it is asked
	// to.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("debug listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	logger.Warn("debug listener: Go profiles and traces served on /debug/pprof/; keep it off in production", "addr", ln.Addr().String(),
		"mutex_profile_fraction", debugMutexFraction, "block_profile_rate", debugBlockRate.String())
	return func() {
		srv.Close()
		runtime.SetMutexProfileFraction(0)
		runtime.SetBlockProfileRate(0)
	}, nil
}
