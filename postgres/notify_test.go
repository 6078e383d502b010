package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/storetest"
)

// receive waits up to within for a signal on ch, failing the test if none
// comes or ch is closed.
func receive(t *testing.T, ch <-chan struct{}, within time.Duration, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the channel was closed", what)
		}
	case <-time.After(within):
		t.Fatalf("%s: no signal within %v", what, within)
	}
}

func TestNotifications(t *testing.T) {
	dsn := pg.Database(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := b.Notifications(ctx)

	// One signal once listening, for what may have been missed before.
	receive(t, ch, 5*time.Second, "signal on connecting")

	// A change committed through another store is signalled.
	if err := a.CreateTenant(t.Context(), storetest.Tenant("ten_notify"), keyward.CommandLineActor()); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	receive(t, ch, time.Second, "signal of a committed change")

	// A transaction that fails sends nothing: creating the same tenant again.
	if err := a.CreateTenant(t.Context(), storetest.Tenant("ten_notify"), keyward.CommandLineActor()); err == nil {
		t.Fatal("CreateTenant of an existing tenant succeeded")
	}
	select {
	case <-ch:
		t.Fatal("a rolled-back transaction was signalled")
	case <-time.After(200 * time.Millisecond):
	}

	// Signals never block the listener: many changes, at least one signal.
	for i := range 5 {
		k := storetest.Key("key_notify_"+string(rune('a'+i)), "ten_notify")
		if err := a.CreateKey(t.Context(), k, keyward.CommandLineActor()); err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
	}
	receive(t, ch, time.Second, "signal of several changes")

	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the channel was not closed after ctx ended")
		}
	}
}
