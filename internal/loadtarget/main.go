// Command loadtarget is what scripts/load measures Keyward against, each a
// baseline in the same run:
//
//	loadtarget upstream ADDR          a trivial upstream: 200 and a short body
//	loadtarget bare ADDR              a bare net/http handler that answers as
//	                                  forward-auth does (200 and the identity
//	                                  headers), without checking anything, on
//	                                  a server with serve's timeouts
//	loadtarget proxy ADDR UPSTREAM    a bare httputil.ReverseProxy with a
//	                                  tuned transport, checking nothing
//	loadtarget fastproxy ADDR UPSTREAM
//	                                  a fasthttp server and HostClient
//	                                  proxying to UPSTREAM, checking nothing:
//	                                  the gateway's HTTP stack alone
//	loadtarget fastproxy-identity ADDR UPSTREAM
//	                                  the same, sending the gateway's
//	                                  identity and forwarding headers
//	loadtarget proxy-pooled ADDR UPSTREAM
//	                                  the same with a BufferPool, so that
//	                                  each response does not allocate its
//	                                  32 KiB copy buffer
//	loadtarget hybrid ADDR UPSTREAM   a net/http server whose handler
//	                                  proxies with a fasthttp HostClient
//	loadtarget direct ADDR UPSTREAM   a net/http server whose handler
//	                                  proxies with http.Transport.RoundTrip,
//	                                  without httputil, checking nothing
//
// With LOADTARGET_CPUPROFILE=FILE in the environment, it writes a CPU
// profile to FILE when it is stopped by SIGINT or SIGTERM.
//
// It is not part of Keyward; it exists so that every figure of the load
// test is a ratio against something measured on the same machine at the
// same time.
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: loadtarget upstream|bare ADDR | loadtarget proxy|fastproxy|fastproxy-identity|hybrid|direct ADDR UPSTREAM")
		os.Exit(2)
	}
	if name := os.Getenv("LOADTARGET_CPUPROFILE"); name != "" {
		profile(name)
	}
	var h http.Handler
	switch os.Args[1] {
	case "fastproxy", "fastproxy-identity":
		log.Fatal(serveFast(os.Args[1:]))
	case "proxy-pooled":
		if len(os.Args) != 4 {
			log.Fatal("loadtarget proxy-pooled ADDR UPSTREAM")
		}
		u, err := url.Parse(os.Args[3])
		if err != nil {
			log.Fatal(err)
		}
		p := proxy(u).(*httputil.ReverseProxy)
		p.BufferPool = &bufferPool{}
		h = p
	case "hybrid":
		if len(os.Args) != 4 {
			log.Fatal("loadtarget hybrid ADDR UPSTREAM")
		}
		h = hybrid(hostPort(os.Args[3]))
	case "direct":
		if len(os.Args) != 4 {
			log.Fatal("loadtarget direct ADDR UPSTREAM")
		}
		u, err := url.Parse(os.Args[3])
		if err != nil {
			log.Fatal(err)
		}
		h = direct(u)
	case "upstream":
		body := []byte(`{"ok":true}` + "\n")
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = []string{"application/json"}
			w.Write(body)
		})
	case "bare":
		h = http.HandlerFunc(bare)
	case "bare-json":
		h = http.HandlerFunc(bareJSON)
	case "proxy":
		if len(os.Args) != 4 {
			log.Fatal("loadtarget proxy ADDR UPSTREAM")
		}
		u, err := url.Parse(os.Args[3])
		if err != nil {
			log.Fatal(err)
		}
		h = proxy(u)
	default:
		log.Fatalf("loadtarget: unknown mode %q", os.Args[1])
	}
	srv := &http.Server{Addr: os.Args[2], Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if os.Args[1] == "bare" || os.Args[1] == "bare-json" {
		// The bare handler is served as keyward serve serves its API
		// (cmd/keyward/serve.go): the timeouts that a server open to
		// clients needs cost net/http a deadline change each per
		// request, which is not forward-auth's own work.
		srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout = 5*time.Second, 30*time.Second, 60*time.Second, 75*time.Second
		srv.MaxHeaderBytes = 64 << 10
	}
	log.Fatal(srv.ListenAndServe())
}

// profile writes a CPU profile to name until the process is stopped by
// SIGINT or SIGTERM, then exits.
func profile(name string) {
	f, err := os.Create(name)
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatal(err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-stop
		pprof.StopCPUProfile()
		f.Close()
		os.Exit(0)
	}()
}

// bufferPool is an httputil.BufferPool of 32 KiB buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// bare answers as forward-auth does for a valid key: 200 with the
// identity headers, from values fixed in advance.
func bare(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["X-Keyward-Key-Id"] = []string{"key_0000000000000000000000"}
	h["X-Keyward-Key-Name"] = []string{"load"}
	h["X-Keyward-Tenant"] = []string{"ten_0000000000000000000000"}
	h["X-Keyward-Tenant-Slug"] = []string{"acme"}
	h["X-Keyward-Plan"] = []string{"default"}
	h["X-Keyward-Environment"] = []string{"live"}
	h["X-Keyward-Permissions"] = []string{"contacts:read"}
	if k := r.Header.Get("X-API-Key"); len(k) >= 8 {
		h["X-Request-Id"] = []string{k[:8]}
	}
	w.WriteHeader(http.StatusOK)
}

// verification is an answer of POST /v1/verify, as long as the one the
// load test gets, fixed in advance.
var verification = []byte(`{"valid":true,"code":"ok","key_id":"key_0000000000000000000000","tenant_id":"ten_0000000000000000000000",` +
	`"tenant_slug":"acme","environment":"live","permissions":["contacts:read"],"plan":"default","request_id":"req_000000000000000000"}` + "\n")

// bareJSON answers as POST /v1/verify does for a valid key, without
// checking anything: it reads the body, and answers 200 with a JSON body
// of the same length, fixed in advance.
func bareJSON(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	_, _ = w.Write(verification)
}

// proxy is a reverse proxy to u with the transport tuned as a gateway's
// would be: kept-alive connections enough for the load, no compression.
func proxy(u *url.URL) http.Handler {
	p := httputil.NewSingleHostReverseProxy(u)
	p.Transport = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return p
}
