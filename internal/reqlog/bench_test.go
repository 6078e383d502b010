package reqlog_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/reqlog"
)

// BenchmarkFlush: what the request log's writer costs per entry, from Add
// to the store (KEYWARD_TEST_DB's: SQLite by default), in batches of 4096
// forward-auth entries of one key, with serve's default signals on. Its
// ns/op is per entry: the CPU that logging takes from a node beside the
// verification itself (scripts/load's rows with the log on and off).
func BenchmarkFlush(b *testing.B) {
	store := open(b)
	l := reqlog.New(reqlog.Config{Store: store, Buffer: 8192, Sharing: keyward.SharingRule{Networks: 5, UserAgents: 5, Referrers: 5},
		Spikes: reqlog.DefaultSpikeRule})
	k := &keyward.Key{ID: "key_0123456789abcdefghijkl", TenantID: "ten_0123456789abcdefghijkl", Environment: keyward.Live}
	ip := netip.MustParseAddr("192.0.2.7")
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = fmt.Sprintf("req_%022d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.Add(&reqlog.Entry{At: time.Now(), Latency: 80 * time.Microsecond, RequestID: ids[i%len(ids)], Surface: keyward.SurfaceForwardAuth,
			Method: "GET", Route: "GET /v1/contacts/**", Path: "/v1/contacts/1", Status: 200, ClientIP: ip, UserAgent: "wrk", Key: k})
		if i%4096 == 4095 {
			if err := l.Flush(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := l.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
}
