package middleware_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/httpapi"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verify"
)

// Example verifies keys in process, against a SQLite store: the API's
// handler learns whose key each request carries, and a request without a
// key is refused as forward-auth refuses it.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "keyward-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "keyward.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// The verifier: its cache, kept fresh by the change feed.
	verifier := verify.New(store, verify.Options{})
	if err := verifier.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer verifier.Close(ctx)

	// A tenant and a key, as keyward tenants create and keyward keys
	// create would make them.
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	svc := manage.New(manage.Config{Store: store, Format: format, AfterChange: verifier.Refresh})
	if _, err := svc.Bootstrap(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := svc.CreateTenant(ctx, manage.CommandLine(), manage.CreateTenantInput{Slug: "acme"}); err != nil {
		log.Fatal(err)
	}
	_, key, err := svc.CreateKey(ctx, manage.CommandLine(), manage.CreateKeyInput{TenantID: "acme", Name: "order-bot"})
	if err != nil {
		log.Fatal(err)
	}

	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := middleware.Identity(r.Context())
		fmt.Fprintf(w, "hello %s, %s key %q\n", c.TenantSlug, c.Environment, c.KeyName)
	})
	handler := middleware.New(verifier, middleware.Options{})(api)

	for _, auth := range []string{"Bearer " + key, ""} {
		req := httptest.NewRequest("GET", "/v1/orders", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			fmt.Print(rec.Body.String())
		} else {
			fmt.Println(rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("WWW-Authenticate"))
		}
	}
	// Output:
	// hello acme, live key "order-bot"
	// 401 application/problem+json Bearer realm="keyward"
}

// ExampleRemote verifies keys against a Keyward server, here one started
// in the example on a SQLite store: the Remote asks its POST /v1/verify,
// caches the answers, and keeps them fresh with its GET /v1/changes
// stream, so that a revoked key is refused within a second.
func ExampleRemote() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "keyward-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "keyward.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// The Keyward server, as keyward serve runs it.
	verifier := verify.New(store, verify.Options{})
	if err := verifier.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer verifier.Close(ctx)
	format, _ := apikey.NewFormat(apikey.DefaultPrefix)
	svc := manage.New(manage.Config{Store: store, Format: format, AfterChange: verifier.Refresh})
	if _, err := svc.Bootstrap(ctx); err != nil {
		log.Fatal(err)
	}
	api, err := httpapi.NewServer(httpapi.Config{Service: svc, Verifier: verifier, Store: store})
	if err != nil {
		log.Fatal(err)
	}
	server := httptest.NewServer(api)
	defer server.Close()

	// A key of the system tenant with keyward:verify for the Remote, and
	// a client's key.
	_, verifyKey, err := svc.CreateKey(ctx, manage.CommandLine(), manage.CreateKeyInput{
		TenantID: keyward.SystemTenantID, Name: "orders-api", Permissions: []string{keyward.PermVerify}})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := svc.CreateTenant(ctx, manage.CommandLine(), manage.CreateTenantInput{Slug: "acme"}); err != nil {
		log.Fatal(err)
	}
	k, key, err := svc.CreateKey(ctx, manage.CommandLine(), manage.CreateKeyInput{TenantID: "acme", Name: "order-bot"})
	if err != nil {
		log.Fatal(err)
	}

	// The API's own process: its handler behind the remote middleware.
	remote, err := middleware.NewRemote(middleware.RemoteOptions{URL: server.URL, Key: verifyKey})
	if err != nil {
		log.Fatal(err)
	}
	if err := remote.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer remote.Close()
	handler := remote.Middleware(middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := middleware.Identity(r.Context())
		fmt.Fprintf(w, "hello %s, key %q\n", c.TenantSlug, c.KeyName)
	}))
	get := func() {
		req := httptest.NewRequest("GET", "/v1/orders", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			fmt.Print(rec.Body.String())
		} else {
			fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
		}
	}
	get()
	get() // from the cache

	// Revoked on the server: the stream tells the Remote at once.
	if _, err := svc.RevokeKey(ctx, manage.CommandLine(), k.ID); err != nil {
		log.Fatal(err)
	}
	for applied, _ := verifier.Applied(); remote.Position() < applied; applied, _ = verifier.Applied() {
		time.Sleep(10 * time.Millisecond)
	}
	get()
	// Output:
	// hello acme, key "order-bot"
	// hello acme, key "order-bot"
	// 401 application/problem+json
}
