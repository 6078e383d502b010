package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/keyward/keyward"
)

// usageCountTests hold UsageStore: counts written with the request logs add up
// (also when two writers add at once), are summed over a tenant's keys by
// bucket and code, and are pruned oldest first in batches.
var usageCountTests = []test{
	{"AddUp", func(f *fixture) {
		h := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
		f.writeUsage(
			count("ten_a", "key_1", keyward.Hourly, h, "", 3),
			count("ten_a", "key_1", keyward.Hourly, h, keyward.CodeRateLimited, 2),
			count("ten_a", "key_2", keyward.Hourly, h, "", 5),
			count("ten_a", "key_1", keyward.Hourly, h.Add(time.Hour), "", 1),
			count("ten_b", "key_3", keyward.Hourly, h, "", 7),
			count("", "", keyward.Hourly, h, keyward.CodeInvalidAPIKey, 4),
			count("ten_a", "key_1", keyward.Daily, h.Truncate(24*time.Hour), "", 4),
		)
		f.writeUsage(count("ten_a", "key_1", keyward.Hourly, h, "", 10))
		day := keyward.UsageFilter{Granularity: keyward.Hourly, From: h.Truncate(24 * time.Hour), To: h.Add(24 * time.Hour)}
		for _, tc := range []struct {
			name string
			f    keyward.UsageFilter
			want []string
		}{
			{"key", with(day, "", "key_1"), []string{"10:00 allowed 13", "10:00 rate_limited 2", "11:00 allowed 1"}},
			{"tenant", with(day, "ten_a", ""), []string{"10:00 allowed 18", "10:00 rate_limited 2", "11:00 allowed 1"}},
			{"tenant and key", with(day, "ten_b", "key_1"), nil},
			{"everything", day, []string{"10:00 allowed 25", "10:00 invalid_api_key 4", "10:00 rate_limited 2", "11:00 allowed 1"}},
			{"from", keyward.UsageFilter{Granularity: keyward.Hourly, KeyID: "key_1", From: h.Add(time.Hour)}, []string{"11:00 allowed 1"}},
			{"to", keyward.UsageFilter{Granularity: keyward.Hourly, KeyID: "key_1", To: h.Add(time.Hour)}, []string{"10:00 allowed 13", "10:00 rate_limited 2"}},
			{"daily", keyward.UsageFilter{Granularity: keyward.Daily, KeyID: "key_1"}, []string{"00:00 allowed 4"}},
		} {
			if got := f.usage(tc.f); !reflect.DeepEqual(got, tc.want) {
				f.t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			}
		}
	}},
	{"Concurrent", func(f *fixture) {
		// Two writers add to the same counts at once, as two nodes do:
		// nothing is lost, and neither deadlocks the other.
		h := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for w := range 2 {
			wg.Go(func() {
				for range 10 {
					batch := []keyward.UsageCount{}
					for k := range 5 {
						key := fmt.Sprintf("key_%d", (k+w)%5) // the two writers' orders differ
						batch = append(batch, count("ten_a", key, keyward.Hourly, h, "", 1), count("ten_a", key, keyward.Daily, h.Truncate(24*time.Hour), "", 1))
					}
					errs <- f.s.WriteRequestLogs(f.ctx, &keyward.LogBatch{Usage: batch})
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				f.t.Fatalf("WriteRequestLogs: %v", err)
			}
		}
		want := []string{"10:00 allowed 100"}
		if got := f.usage(keyward.UsageFilter{Granularity: keyward.Hourly, TenantID: "ten_a"}); !reflect.DeepEqual(got, want) {
			f.t.Fatalf("after 2 writers × 10 batches × 5 keys: %v, want %v", got, want)
		}
	}},
	{"Prune", func(f *fixture) {
		h := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
		var all []keyward.UsageCount
		for i := range 10 {
			all = append(all, count("ten_a", "key_1", keyward.Hourly, h.Add(time.Duration(i)*time.Hour), "", 1))
		}
		f.writeUsage(all...)
		cut := h.Add(6 * time.Hour) // hours 0-5 are older
		for _, want := range []int64{4, 2, 0} {
			if n, err := f.s.PruneUsage(f.ctx, cut, 4); err != nil || n != want {
				f.t.Fatalf("PruneUsage(limit 4) = %d, %v; want %d", n, err, want)
			}
		}
		if got := f.usage(keyward.UsageFilter{Granularity: keyward.Hourly}); len(got) != 4 || got[0] != "06:00 allowed 1" {
			f.t.Fatalf("left %v; want 06:00 to 09:00", got)
		}
	}},
	{"WithLogs", func(f *fixture) {
		// A batch that fails writes neither its entries nor its counts.
		h := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
		bad := count("ten_a", "key_2", "week", h, "", 1) // refused by the table's check
		err := f.s.WriteRequestLogs(f.ctx, &keyward.LogBatch{Logs: []keyward.RequestLog{f.requestLog(func(*keyward.RequestLog) {})},
			Usage: []keyward.UsageCount{count("ten_a", "key_1", keyward.Hourly, h, "", 1), bad}})
		if err == nil {
			f.t.Fatal("a batch with a count of no granularity was written")
		}
		if logs := f.logs(keyward.RequestLogFilter{}, 0); len(logs) != 0 {
			f.t.Fatalf("a failed batch wrote %d entries", len(logs))
		}
		if got := f.usage(keyward.UsageFilter{Granularity: keyward.Hourly}); len(got) != 0 {
			f.t.Fatalf("a failed batch wrote counts %v", got)
		}
	}},
}

// count is a usage count.
func count(tenant, key string, g keyward.Granularity, start time.Time, code keyward.Code, n int64) keyward.UsageCount {
	return keyward.UsageCount{TenantID: tenant, KeyID: key, Granularity: g, Start: start, Code: code, Count: n}
}

// with is f for a tenant and a key.
func with(f keyward.UsageFilter, tenant, key string) keyward.UsageFilter {
	f.TenantID, f.KeyID = tenant, key
	return f
}

// writeUsage adds the counts.
func (f *fixture) writeUsage(counts ...keyward.UsageCount) {
	f.t.Helper()
	if err := f.s.WriteRequestLogs(f.ctx, &keyward.LogBatch{Usage: counts}); err != nil {
		f.t.Fatalf("WriteRequestLogs: %v", err)
	}
}

// usage returns the counts that match filter, each as "15:04 code count"
// (allowed for the empty code), checking that each is in UTC.
func (f *fixture) usage(filter keyward.UsageFilter) []string {
	f.t.Helper()
	got, err := f.s.Usage(f.ctx, filter)
	if err != nil {
		f.t.Fatalf("Usage(%+v): %v", filter, err)
	}
	var out []string
	for _, u := range got {
		if u.Start.Location() != time.UTC {
			f.t.Errorf("start %v not in UTC", u.Start)
		}
		code := u.Code
		if code == "" {
			code = keyward.CodeAllowed
		}
		out = append(out, fmt.Sprintf("%s %s %d", u.Start.Format("15:04"), code, u.Count))
	}
	return out
}
