package redistest_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/redistest"
	"github.com/redis/go-redis/v9"
)

var rd = redistest.New()

func TestMain(m *testing.M) {
	code := m.Run()
	rd.Stop()
	os.Exit(code)
}

// TestDatabasesAreIsolated checks that two tests' databases do not see
// each other's keys, that the server is not the machine's own Redis, and
// that it keeps nothing on disk.
func TestDatabasesAreIsolated(t *testing.T) {
	ctx := context.Background()
	a, b := rd.Client(t), rd.Client(t)
	if a.Options().DB == b.Options().DB {
		t.Fatalf("two clients on database %d", a.Options().DB)
	}
	if strings.HasSuffix(a.Options().Addr, ":6379") {
		t.Fatalf("the test server listens on %s, the default port of a machine's own Redis", a.Options().Addr)
	}
	if err := a.Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("database %d sees database %d's key: %v", b.Options().DB, a.Options().DB, err)
	}
	cfg, err := a.ConfigGet(ctx, "save").Result()
	if err != nil {
		t.Fatal(err)
	}
	if cfg["save"] != "" {
		t.Errorf("save = %q, want none (no snapshots)", cfg["save"])
	}
	cfg, err = a.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		t.Fatal(err)
	}
	if cfg["appendonly"] != "no" {
		t.Errorf("appendonly = %q, want no", cfg["appendonly"])
	}
}

// TestDatabaseURL checks that Database's URL is one go-redis reads, naming
// the server and a database.
func TestDatabaseURL(t *testing.T) {
	url := rd.Database(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", url, err)
	}
	if opts.Addr != rd.Addr(t) || opts.DB < 1 {
		t.Fatalf("ParseURL(%q) = %s db %d, want %s and a database above 0", url, opts.Addr, opts.DB, rd.Addr(t))
	}
	c := redis.NewClient(opts)
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestDatabaseEmptiedAtEnd checks that a test's keys are gone when it
// ends.
func TestDatabaseEmptiedAtEnd(t *testing.T) {
	var url string
	t.Run("writes", func(t *testing.T) {
		url = rd.Database(t)
		opts, _ := redis.ParseURL(url)
		c := redis.NewClient(opts)
		defer c.Close()
		if err := c.Set(context.Background(), "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	})
	opts, _ := redis.ParseURL(url)
	c := redis.NewClient(opts)
	defer c.Close()
	n, err := c.DBSize(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database %d holds %d keys after its test ended, want 0", opts.DB, n)
	}
}

// TestHaltResume checks an outage: while halted the server refuses
// clients; resumed on the same port, the same client works again, on an
// empty database.
func TestHaltResume(t *testing.T) {
	s := redistest.Start(t)
	c := s.Client(t)
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Halt(t)
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := c.Ping(short).Err(); err == nil {
		t.Fatal("Ping answered while the server is halted")
	}
	s.Resume(t)
	var err error
	for range 50 { // The client's broken connections are dropped as used.
		if err = c.Ping(ctx).Err(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("Ping after Resume: %v", err)
	}
	if err := c.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("Get after Resume = %v, want redis.Nil: a resumed server starts empty", err)
	}
}
