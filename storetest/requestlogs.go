package storetest

import (
	"fmt"
	"reflect"
	"time"

	"github.com/keyward/keyward"
)

// requestLogTests hold RequestLogStore: entries are stored as given, found
// by every filter, paged newest first, followed oldest first, and pruned
// oldest first in batches.
var requestLogTests = []test{
	{"RoundTrip", func(f *fixture) {
		in := f.requestLog(func(l *keyward.RequestLog) {
			l.RateLimit = &keyward.LoggedRateLimit{Limit: 100, Remaining: 41, ResetMillis: 1500}
			l.UserAgent, l.Referrer, l.Route = "curl/8.0 ünïcode", "https://app.example/page", "GET /v1/contacts/**"
		})
		refused := f.requestLog(func(l *keyward.RequestLog) {
			l.KeyID, l.TenantID, l.MemberID, l.Environment = "", "", "", ""
			l.Code, l.Status = keyward.CodeInvalidAPIKey, 401
		})
		f.writeLogs(in, refused)
		got := f.logs(keyward.RequestLogFilter{}, 0)
		if len(got) != 2 {
			f.t.Fatalf("RequestLogs = %d entries, want 2", len(got))
		}
		for i, want := range []keyward.RequestLog{refused, in} {
			g := *got[i]
			if g.ID <= 0 {
				f.t.Errorf("entry %d: ID = %d", i, g.ID)
			}
			if g.At.Location() != time.UTC || !g.At.Equal(want.At) {
				f.t.Errorf("entry %d: At = %v, want %v in UTC", i, g.At, want.At)
			}
			g.ID, g.At, want.At = 0, time.Time{}, time.Time{}
			if !reflect.DeepEqual(g, want) {
				f.t.Errorf("entry %d:\n got %+v\nwant %+v", i, g, want)
			}
		}
		if got[0].ID <= got[1].ID {
			f.t.Errorf("ids %d then %d: want newest first", got[0].ID, got[1].ID)
		}
	}},
	{"Filters", func(f *fixture) {
		base := f.now
		a := f.requestLog(func(l *keyward.RequestLog) { l.TenantID, l.KeyID, l.RequestID = "ten_a", "key_a", "req_a" })
		b := f.requestLog(func(l *keyward.RequestLog) {
			l.TenantID, l.KeyID, l.RequestID, l.Code, l.Status, l.Surface = "ten_b", "key_b", "req_b", keyward.CodeRevokedAPIKey, 401, keyward.SurfaceGateway
		})
		c := f.requestLog(func(l *keyward.RequestLog) {
			l.TenantID, l.KeyID, l.RequestID, l.Status = "ten_a", "key_c", "req_c", 404
		})
		f.writeLogs(a, b, c)
		for _, tc := range []struct {
			name string
			f    keyward.RequestLogFilter
			want []string
		}{
			{"all", keyward.RequestLogFilter{}, []string{"req_c", "req_b", "req_a"}},
			{"tenant", keyward.RequestLogFilter{TenantID: "ten_a"}, []string{"req_c", "req_a"}},
			{"key", keyward.RequestLogFilter{KeyID: "key_b"}, []string{"req_b"}},
			{"request id", keyward.RequestLogFilter{RequestID: "req_c"}, []string{"req_c"}},
			{"code", keyward.RequestLogFilter{Code: keyward.CodeRevokedAPIKey}, []string{"req_b"}},
			{"allowed", keyward.RequestLogFilter{Code: keyward.CodeAllowed}, []string{"req_c", "req_a"}},
			{"status", keyward.RequestLogFilter{Status: 404}, []string{"req_c"}},
			{"surface", keyward.RequestLogFilter{Surface: keyward.SurfaceGateway}, []string{"req_b"}},
			{"from", keyward.RequestLogFilter{From: b.At}, []string{"req_c", "req_b"}},
			{"to", keyward.RequestLogFilter{To: b.At}, []string{"req_a"}},
			{"range", keyward.RequestLogFilter{From: base, To: c.At}, []string{"req_b", "req_a"}},
			{"tenant and code", keyward.RequestLogFilter{TenantID: "ten_a", Code: keyward.CodeRevokedAPIKey}, nil},
		} {
			var ids []string
			for _, l := range f.logs(tc.f, 0) {
				ids = append(ids, l.RequestID)
			}
			if !reflect.DeepEqual(ids, tc.want) {
				f.t.Errorf("%s: %v, want %v", tc.name, ids, tc.want)
			}
		}
	}},
	{"PagesAndFollow", func(f *fixture) {
		var all []keyward.RequestLog
		for i := range 7 {
			all = append(all, f.requestLog(func(l *keyward.RequestLog) { l.RequestID = fmt.Sprintf("req_%d", i) }))
		}
		f.writeLogs(all...)
		ids := f.pagedRequestIDs(keyward.RequestLogFilter{}, 3)
		if want := []string{"req_6", "req_5", "req_4", "req_3", "req_2", "req_1", "req_0"}; !reflect.DeepEqual(ids, want) {
			f.t.Fatalf("pages: %v, want %v", ids, want)
		}
		if _, _, err := f.s.RequestLogs(f.ctx, keyward.RequestLogFilter{}, keyward.Page{Cursor: "nonsense"}); keyward.ErrorCode(err) != keyward.CodeInvalidRequest {
			f.t.Fatalf("a bad cursor: %v, want invalid_request", err)
		}
		newest := f.logs(keyward.RequestLogFilter{}, 0)
		after := newest[4].ID // req_2
		var followed []string
		for _, l := range f.logs(keyward.RequestLogFilter{After: after}, 0) {
			followed = append(followed, l.RequestID)
		}
		if want := []string{"req_3", "req_4", "req_5", "req_6"}; !reflect.DeepEqual(followed, want) {
			f.t.Fatalf("after %d: %v, want %v (oldest first)", after, followed, want)
		}
	}},
	{"Prune", func(f *fixture) {
		// Entries are pruned by the write that stored them (a block),
		// oldest first, once every one of its entries is older than the
		// cut; a call stops past its limit of entries.
		var all []keyward.RequestLog
		for i := range 12 {
			all = append(all, f.requestLog(func(l *keyward.RequestLog) { l.RequestID = fmt.Sprintf("req_%d", i) }))
		}
		f.writeLogs(all[:4]...)
		f.writeLogs(all[4:7]...)
		f.writeLogs(all[7:10]...)
		f.writeLogs(all[10:]...)
		cut := all[8].At // the third write straddles it
		n, err := f.s.PruneRequestLogs(f.ctx, cut, 4)
		if err != nil || n != 4 {
			f.t.Fatalf("PruneRequestLogs(limit 4) = %d, %v; want the first write's 4", n, err)
		}
		if n, err = f.s.PruneRequestLogs(f.ctx, cut, 4); err != nil || n != 3 {
			f.t.Fatalf("PruneRequestLogs again = %d, %v; want the second write's 3", n, err)
		}
		if n, err = f.s.PruneRequestLogs(f.ctx, cut, 4); err != nil || n != 0 {
			f.t.Fatalf("PruneRequestLogs a third time = %d, %v; want 0", n, err)
		}
		if got := f.logs(keyward.RequestLogFilter{}, 0); len(got) != 5 || got[4].RequestID != "req_7" {
			f.t.Fatalf("left: %d entries, oldest %q; want req_7 to req_11", len(got), got[len(got)-1].RequestID)
		}
		if n, err = f.s.PruneRequestLogs(f.ctx, all[11].At.Add(time.Second), 100); err != nil || n != 5 {
			f.t.Fatalf("PruneRequestLogs of the rest = %d, %v; want 5", n, err)
		}
	}},
	{"ManyBlocks", func(f *fixture) {
		// 150 writes of two entries each: more blocks than one listing
		// reads. A key's entries are paged across them, a request id is
		// found in the oldest, and following crosses them.
		for w := range 150 {
			f.writeLogs(
				f.requestLog(func(l *keyward.RequestLog) { l.KeyID, l.RequestID = "key_even", fmt.Sprintf("req_%d_a", w) }),
				f.requestLog(func(l *keyward.RequestLog) {
					l.KeyID, l.RequestID = fmt.Sprintf("key_%d", w%3), fmt.Sprintf("req_%d_b", w)
				}))
		}
		got := f.pagedRequestIDs(keyward.RequestLogFilter{KeyID: "key_1"}, 7)
		if len(got) != 50 || got[0] != "req_148_b" || got[49] != "req_1_b" {
			f.t.Fatalf("key_1: %d entries, %v … ; want 50, req_148_b to req_1_b", len(got), got[:min(len(got), 3)])
		}
		if one := f.logs(keyward.RequestLogFilter{RequestID: "req_0_a"}, 0); len(one) != 1 || one[0].KeyID != "key_even" {
			f.t.Fatalf("req_0_a: %v", one)
		}
		if none := f.logs(keyward.RequestLogFilter{RequestID: "req_none"}, 0); len(none) != 0 {
			f.t.Fatalf("an unknown request id: %v", none)
		}
		first := f.logs(keyward.RequestLogFilter{RequestID: "req_0_a"}, 0)[0]
		after := f.logs(keyward.RequestLogFilter{After: first.ID}, keyward.MaxPageLimit)
		if len(after) != keyward.MaxPageLimit || after[0].RequestID != "req_0_b" || after[1].RequestID != "req_1_a" {
			f.t.Fatalf("after the first entry: %d entries, from %q; want a full page from req_0_b, req_1_a", len(after), after[0].RequestID)
		}
	}},
	{"ManyInOneBatch", func(f *fixture) {
		// More than one INSERT's worth of rows, in one call.
		var all []keyward.RequestLog
		for i := range 1001 {
			all = append(all, f.requestLog(func(l *keyward.RequestLog) { l.RequestID = fmt.Sprintf("req_%d", i) }))
		}
		f.writeLogs(all...)
		got, _, err := f.s.RequestLogs(f.ctx, keyward.RequestLogFilter{}, keyward.Page{Limit: keyward.MaxPageLimit})
		if err != nil || len(got) != keyward.MaxPageLimit || got[0].RequestID != "req_1000" {
			f.t.Fatalf("RequestLogs = %d, %v", len(got), err)
		}
		one := f.logs(keyward.RequestLogFilter{RequestID: "req_0"}, 0)
		if len(one) != 1 {
			f.t.Fatalf("req_0: %d entries", len(one))
		}
	}},
}

// requestLog returns an accepted request's entry, a tick after the last,
// changed by edit.
func (f *fixture) requestLog(edit func(l *keyward.RequestLog)) keyward.RequestLog {
	l := keyward.RequestLog{
		At: f.tick(), RequestID: fmt.Sprintf("req_%d", f.next()), Surface: keyward.SurfaceAPI,
		KeyID: "key_1", TenantID: "ten_1", MemberID: "mem_1", Environment: "live",
		Method: "GET", Route: "GET /v1/whoami", Path: "/v1/whoami", Status: 200,
		ClientIP: "192.0.2.1", UserAgent: "test", LatencyMicros: 123,
	}
	edit(&l)
	return l
}

// writeLogs stores the entries.
func (f *fixture) writeLogs(logs ...keyward.RequestLog) {
	f.t.Helper()
	if err := f.s.WriteRequestLogs(f.ctx, &keyward.LogBatch{Logs: logs}); err != nil {
		f.t.Fatalf("WriteRequestLogs: %v", err)
	}
}

// logs returns the first page of the entries that match filter.
func (f *fixture) logs(filter keyward.RequestLogFilter, limit int) []*keyward.RequestLog {
	f.t.Helper()
	logs, _, err := f.s.RequestLogs(f.ctx, filter, keyward.Page{Limit: limit})
	if err != nil {
		f.t.Fatalf("RequestLogs(%+v): %v", filter, err)
	}
	return logs
}

// pagedRequestIDs returns the request ids of every entry that matches
// filter, newest first, read a page of limit at a time (at most 100
// pages).
func (f *fixture) pagedRequestIDs(filter keyward.RequestLogFilter, limit int) []string {
	f.t.Helper()
	var ids []string
	cursor := ""
	for range 100 {
		page, next, err := f.s.RequestLogs(f.ctx, filter, keyward.Page{Cursor: cursor, Limit: limit})
		if err != nil {
			f.t.Fatal(err)
		}
		for _, l := range page {
			ids = append(ids, l.RequestID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return ids
}
