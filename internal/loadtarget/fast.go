package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/internal/fastgate"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verify"
)

// serveFast serves internal/fastgate: args are fastproxy ADDR UPSTREAM, or
// fastverify ADDR UPSTREAM DB ROUTES [copy].
func serveFast(args []string) error {
	cfg := fastgate.Config{}
	switch {
	case args[0] == "fastproxy" && len(args) == 3:
	case args[0] == "fastverify" && (len(args) == 5 || len(args) == 6 && args[5] == "copy"):
		ctx := context.Background()
		store, err := sqlite.Open(ctx, args[3], sqlite.MustExist())
		if err != nil {
			return err
		}
		routes, err := policy.Open(args[4], nil)
		if err != nil {
			return err
		}
		v := verify.New(store, verify.Options{})
		if err := v.Start(ctx); err != nil {
			return err
		}
		cfg.Verifier, cfg.Routes, cfg.CopyStrings = v, routes, len(args) == 6
	default:
		return errors.New("loadtarget fastproxy ADDR UPSTREAM | loadtarget fastverify ADDR UPSTREAM DB ROUTES [copy]")
	}
	cfg.Upstream = hostPort(args[2])
	return fastgate.New(cfg).Server().ListenAndServe(args[1])
}

// hostPort returns the host:port of an upstream given as a URL or as
// host:port.
func hostPort(upstream string) string {
	if u, err := url.Parse(upstream); err == nil && u.Host != "" {
		return u.Host
	}
	return upstream
}

// hybrid is a net/http handler that proxies to addr with a fasthttp
// HostClient: what the standard library's server costs beside fasthttp's
// client. The request's body and the response's are buffered (enough for
// the load test's small bodies; not a streaming proxy).
func hybrid(addr string) http.Handler {
	c := &fasthttp.HostClient{
		Addr: addr, MaxConns: 512, ReadBufferSize: 8 << 10, WriteBufferSize: 8 << 10,
		DisablePathNormalizing: true, NoDefaultUserAgentHeader: true,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod(r.Method)
		req.SetRequestURI(r.RequestURI)
		req.Header.SetHost(r.Host)
		for k, vs := range r.Header {
			if k == "X-Api-Key" || k == "Connection" {
				continue
			}
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		if r.ContentLength != 0 {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, "bad request body", http.StatusBadRequest)
				return
			}
			req.SetBody(body)
		}
		if err := c.DoTimeout(req, resp, 30*time.Second); err != nil {
			http.Error(w, "upstream unavailable", http.StatusBadGateway)
			return
		}
		h := w.Header()
		for k, v := range resp.Header.All() {
			if string(k) == "Connection" {
				continue
			}
			h.Add(string(k), string(v))
		}
		w.WriteHeader(resp.StatusCode())
		w.Write(resp.Body())
	})
}

// direct is a net/http handler that proxies to u with a tuned
// http.Transport, without httputil: what httputil itself costs.
func direct(u *url.URL) http.Handler {
	t := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.URL.Scheme, out.URL.Host = u.Scheme, u.Host
		out.Header.Del("X-Api-Key")
		out.Header.Del("Connection")
		resp, err := t.RoundTrip(out)
		if err != nil {
			http.Error(w, "upstream unavailable", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		h := w.Header()
		for k, vs := range resp.Header {
			if !strings.EqualFold(k, "Connection") {
				h[k] = vs
			}
		}
		w.WriteHeader(resp.StatusCode)
		if _, err := io.Copy(w, resp.Body); err != nil {
			fmt.Println("loadtarget direct:", err)
		}
	})
}
