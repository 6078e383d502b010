package middleware_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/keyward/keyward/apikey"
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
