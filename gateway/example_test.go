package gateway_test

import (
	"context"
	"log"
	"net"
	"net/url"

	"github.com/keyward/keyward/gateway"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verify"
)

// Example puts the gateway in front of an API on 127.0.0.1:9000, in a
// program of one's own, as keyward serve --gateway-addr does: a verifier
// on Keyward's database, a route policy, and the upstreams.
func Example() {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, "keyward.db") // or postgres.Open
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	verifier := verify.New(store, verify.Options{})
	if err := verifier.Start(ctx); err != nil { // reads the change feed
		log.Fatal(err)
	}
	defer verifier.Close(ctx)
	routes, err := policy.Open("routes.yaml", nil) // docs/policy.md
	if err != nil {
		log.Fatal(err)
	}
	upstream, _ := url.Parse("http://127.0.0.1:9000")
	sandbox, _ := url.Parse("http://127.0.0.1:9001") // test keys' requests
	gw, err := gateway.New(gateway.Config{Verifier: verifier, Routes: routes, Upstream: upstream, UpstreamTest: sandbox})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:8000")
	if err != nil {
		log.Fatal(err)
	}
	// Until gw.Shutdown(ctx), from another goroutine; gw.ServeTLS for
	// HTTPS.
	log.Fatal(gw.Serve(ln))
}
