package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// serveFast serves a bare fasthttp proxy: args are fastproxy ADDR
// UPSTREAM. It streams neither way and checks nothing: the cost of
// fasthttp's server and client alone, beside the gateway's. As
// fastproxy-identity, it also sends the headers the gateway sends
// upstream (identity, X-Request-Id, X-Forwarded-*), as fixed values but
// the request id and the peer: the most a proxy on this stack that sends
// them can do, with the upstream reading them on the same core.
func serveFast(args []string) error {
	if len(args) != 3 {
		return errors.New("loadtarget fastproxy|fastproxy-identity ADDR UPSTREAM")
	}
	c := &fasthttp.HostClient{
		Addr: hostPort(args[2]), MaxConns: 1024, ReadBufferSize: 16 << 10, WriteBufferSize: 8 << 10,
		DisablePathNormalizing: true, NoDefaultUserAgentHeader: true,
	}
	identity := args[0] == "fastproxy-identity"
	var ids atomic.Uint64
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			h := &ctx.Request.Header
			h.Del("X-Api-Key")
			if identity {
				var id, peer [64]byte
				for _, kv := range fixedIdentity {
					h.Set(kv[0], kv[1])
				}
				h.SetBytesV("X-Request-Id", strconv.AppendUint(append(id[:0], "req_"...), ids.Add(1), 36))
				ip, _ := netip.AddrFromSlice(ctx.RemoteIP())
				h.SetBytesV("X-Forwarded-For", ip.Unmap().AppendTo(peer[:0]))
				h.SetBytesV("X-Forwarded-Host", h.Host())
				h.Set("X-Forwarded-Proto", "http")
			}
			if err := c.Do(&ctx.Request, &ctx.Response); err != nil {
				ctx.Response.Reset()
				ctx.Error("upstream unavailable", fasthttp.StatusBadGateway)
			}
		},
		ReadBufferSize: 16 << 10, WriteBufferSize: 8 << 10,
		NoDefaultServerHeader: true, NoDefaultContentType: true, NoDefaultDate: true,
	}
	return srv.ListenAndServe(args[1])
}

// fixedIdentity are the identity headers that fastproxy-identity sends, as
// nginx-static-map+identity of scripts/load does.
var fixedIdentity = [][2]string{
	{"X-Keyward-Key-Id", "key_0000000000000000000000"},
	{"X-Keyward-Key-Name", "load"},
	{"X-Keyward-Tenant", "ten_0000000000000000000000"},
	{"X-Keyward-Tenant-Slug", "acme"},
	{"X-Keyward-Plan", "default"},
	{"X-Keyward-Environment", "live"},
	{"X-Keyward-Permissions", "contacts:read"},
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
