package storetest

import (
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TwoStores checks that what one store writes (a node's, or the command
// line's: tenants, keys, plans, members) another store on the same
// database sees through the change feed, and that opening the migrated
// database again changes nothing. open returns a new store on one
// database, the same at every call, migrated, and closed when the test
// ends.
func TwoStores(t *testing.T, open func(t *testing.T) keyward.Store) {
	ctx := t.Context()
	server := open(t)
	cli := open(t)
	f := newFixture(t, cli)

	seq, err := server.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ten := f.newTenant("acme")
	if err := cli.CreateTenant(ctx, ten, keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	k := f.newKey(ten.ID, keyward.Live)
	if err := cli.CreateKey(ctx, k, keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.RevokeKey(ctx, k.ID, f.tick(), keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	p := f.newPlan("pro")
	if err := cli.CreatePlan(ctx, p, keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	m := f.newMember(ten.ID, keyward.RoleOwner)
	if err := cli.CreateMember(ctx, m, keyward.CommandLineActor()); err != nil {
		t.Fatal(err)
	}
	changes, err := server.Changes(ctx, seq, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Kind+" "+c.ID)
	}
	if want := "tenant " + ten.ID + ",key " + k.ID + ",key " + k.ID + ",plan pro,member " + m.ID; strings.Join(got, ",") != want {
		t.Fatalf("the server saw changes %q, want %q", got, want)
	}
	if stored, err := server.Member(ctx, m.ID); err != nil || stored.Email != m.Email {
		t.Fatalf("the server reads member %s as %+v, %v", m.ID, stored, err)
	}
	if stored, err := server.Plan(ctx, "pro"); err != nil || stored.MaxKeys != p.MaxKeys {
		t.Fatalf("the server reads plan pro as %+v, %v", stored, err)
	}
	stored, err := server.Key(ctx, k.ID)
	if err != nil || stored.Status != keyward.KeyRevoked {
		t.Fatalf("the server reads %s as %+v, %v; want revoked", k.ID, stored, err)
	}
	// Opening the migrated database again changes nothing.
	again := open(t)
	if last, err := again.LastChange(ctx); err != nil || last != changes[len(changes)-1].Seq {
		t.Fatalf("LastChange after another Open = %d, %v; want %d", last, err, changes[len(changes)-1].Seq)
	}
	if _, err := again.Tenant(ctx, ten.Slug); err != nil {
		t.Fatalf("Tenant after another Open: %v", err)
	}
}
