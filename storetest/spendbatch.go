package storetest

import (
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/keyward/keyward"
)

// spendBatchTests: SpendBatch decides each spend of a batch alone, all or
// nothing, in one transaction: spends of one key see what the earlier
// ones took, a refused spend, a Check or a spend that fails takes
// nothing while the spends after it still apply, and batches that touch
// the same keys in different orders, at once, neither deadlock nor
// overspend.
var spendBatchTests = []test{
	{"a batch of more spends than credits takes them exactly", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.meteredKey(tn.ID, &keyward.Credits{Remaining: 5}, nil)
		spends := make([]keyward.Spend, 8)
		for i := range spends {
			spends[i] = f.spend(k, 1, nil, nil)
		}
		got := f.spendBatch(spends)
		for i, s := range got {
			want := keyward.Spent{Allowed: true, CreditsRemaining: int64(4 - i)}
			if i >= 5 {
				want = keyward.Spent{Refused: keyward.SpentCredits}
			}
			if s != want {
				f.t.Errorf("spend %d of 8 from 5 credits: %+v; want %+v", i+1, s, want)
			}
		}
		f.wantCredits(k.ID, 0)
	}},
	{"a refused spend takes nothing and the spends after it apply", func(f *fixture) {
		tn := f.createTenant("acme")
		a := f.meteredKey(tn.ID, &keyward.Credits{Remaining: 10}, nil)
		b := f.meteredKey(tn.ID, &keyward.Credits{Remaining: 2}, nil)
		tenantQuota := &keyward.QuotaSpend{Limit: 100, Period: "2026-11"}
		aQuota := &keyward.QuotaSpend{Limit: 2, Period: "2026-11-28"}
		got := f.spendBatch([]keyward.Spend{
			f.spend(a, 1, aQuota, tenantQuota),
			f.spend(b, 5, nil, tenantQuota), // more than b's 2 credits
			f.spend(a, 2, aQuota, tenantQuota),
			f.spend(a, 1, aQuota, tenantQuota), // past a's quota of 2
			f.spend(b, 1, nil, tenantQuota),
		})
		// a's spends come before b's (key_… ids in order of creation),
		// so the tenant's count runs 1, 2 through a's, then 3 for b's.
		want := []keyward.Spent{
			{Allowed: true, CreditsRemaining: 9, KeyQuotaUsed: 1, TenantQuotaUsed: 1},
			{Refused: keyward.SpentCredits, CreditsRemaining: 2},
			{Allowed: true, CreditsRemaining: 7, KeyQuotaUsed: 2, TenantQuotaUsed: 2},
			{Refused: keyward.SpentKeyQuota, KeyQuotaUsed: 2},
			{Allowed: true, CreditsRemaining: 1, TenantQuotaUsed: 3},
		}
		f.wantSpent(got, want)
		f.wantCredits(a.ID, 7)
		f.wantCredits(b.ID, 1)
		f.wantQuotaUsed(keyward.QuotaSubject('k', a.ID), "2026-11-28", 2)
		f.wantQuotaUsed(keyward.QuotaSubject('t', tn.ID), "2026-11", 3)
	}},
	{"a check in a batch takes nothing", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.meteredKey(tn.ID, &keyward.Credits{Remaining: 1}, nil)
		quota := &keyward.QuotaSpend{Limit: 1, Period: "2026-11"}
		check := f.spend(k, 1, nil, quota)
		check.Check = true
		got := f.spendBatch([]keyward.Spend{check, f.spend(k, 1, nil, quota), check})
		want := []keyward.Spent{
			{Allowed: true, CreditsRemaining: 0, TenantQuotaUsed: 1}, // what the spend would do
			{Allowed: true, CreditsRemaining: 0, TenantQuotaUsed: 1},
			{Refused: keyward.SpentTenantQuota, TenantQuotaUsed: 1}, // the spend took the last one
		}
		f.wantSpent(got, want)
		f.wantCredits(k.ID, 0)
		f.wantQuotaUsed(keyward.QuotaSubject('t', tn.ID), "2026-11", 1)
	}},
	{"the quotas of keys and their tenant count across a batch", func(f *fixture) {
		tn := f.createTenant("acme")
		a := f.meteredKey(tn.ID, nil, nil)
		b := f.meteredKey(tn.ID, nil, nil)
		keyQuota := &keyward.QuotaSpend{Limit: 2, Period: "2026-11-28"}
		tenantQuota := &keyward.QuotaSpend{Limit: 3, Period: "2026-11"}
		got := f.spendBatch([]keyward.Spend{
			f.spend(b, 1, keyQuota, tenantQuota),
			f.spend(a, 1, keyQuota, tenantQuota),
			f.spend(b, 1, keyQuota, tenantQuota),
			f.spend(a, 1, keyQuota, tenantQuota),
			f.spend(a, 1, keyQuota, tenantQuota),
		})
		// Applied a, a, a, b, b: a's third is past its quota of 2 and
		// takes nothing from the tenant's, so b's first is the tenant's
		// third, and b's second is past the tenant's quota.
		want := []keyward.Spent{
			{Allowed: true, KeyQuotaUsed: 1, TenantQuotaUsed: 3},
			{Allowed: true, KeyQuotaUsed: 1, TenantQuotaUsed: 1},
			{Refused: keyward.SpentTenantQuota, TenantQuotaUsed: 3},
			{Allowed: true, KeyQuotaUsed: 2, TenantQuotaUsed: 2},
			{Refused: keyward.SpentKeyQuota, KeyQuotaUsed: 2},
		}
		f.wantSpent(got, want)
		f.wantQuotaUsed(keyward.QuotaSubject('k', a.ID), "2026-11-28", 2)
		f.wantQuotaUsed(keyward.QuotaSubject('k', b.ID), "2026-11-28", 1)
		f.wantQuotaUsed(keyward.QuotaSubject('t', tn.ID), "2026-11", 3)
	}},
	{"a spend that fails takes nothing and fails alone", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.meteredKey(tn.ID, &keyward.Credits{Remaining: 5}, nil)
		quota := &keyward.QuotaSpend{Limit: 10, Period: "2026-11"}
		gone := f.spend(k, 1, nil, quota)
		gone.KeyID = "key_nobody"
		got := f.spendBatch([]keyward.Spend{f.spend(k, 1, nil, quota), gone, f.spend(k, 1, nil, quota)})
		if code := keyward.ErrorCode(got[1].Err); code != keyward.CodeNotFound || got[1].Allowed {
			f.t.Errorf("the spend of a key that does not exist: %+v; want %s", got[1], keyward.CodeNotFound)
		}
		for _, i := range []int{0, 2} {
			if !got[i].Allowed || got[i].Err != nil {
				f.t.Errorf("spend %d, beside one that failed: %+v; want allowed", i+1, got[i])
			}
		}
		f.wantCredits(k.ID, 3)
		f.wantQuotaUsed(keyward.QuotaSubject('t', tn.ID), "2026-11", 2)
		// Alone in its batch, it fails the same way.
		if got := f.spendBatch([]keyward.Spend{gone}); keyward.ErrorCode(got[0].Err) != keyward.CodeNotFound || got[0].Allowed {
			f.t.Errorf("the spend of a key that does not exist, alone: %+v; want %s", got[0], keyward.CodeNotFound)
		}
		f.wantQuotaUsed(keyward.QuotaSubject('t', tn.ID), "2026-11", 2)
	}},
	{"batches of several keys at once neither deadlock nor overspend", func(f *fixture) {
		// Two tenants with quotas, two keys each with credits: every
		// worker sends batches of spends of some of the four keys in an
		// order of its own, as nodes would, and every spend locks its
		// tenant's quota row and its key's credits.
		const credits, batches, maxPerKey = 60, 10, 3
		var keys []*keyward.Key
		for _, slug := range []string{"acme", "globex"} {
			tn := f.createTenant(slug)
			for range 2 {
				keys = append(keys, f.meteredKey(tn.ID, &keyward.Credits{Remaining: credits}, nil))
			}
		}
		quota := &keyward.QuotaSpend{Limit: 1_000_000, Period: "2026-11"}
		allowed := make([][]int64, workers) // per worker, per key
		attempted := make([]int64, len(keys))
		errs := make(chan error, workers*batches*len(keys)*maxPerKey)
		var wg sync.WaitGroup
		for w := range workers {
			allowed[w] = make([]int64, len(keys))
			rnd := rand.New(rand.NewPCG(uint64(w), 1))
			var spends [][]keyward.Spend
			var whose [][]int
			for range batches {
				var batch []keyward.Spend
				var of []int
				for i, k := range keys {
					for range rnd.IntN(maxPerKey + 1) { // some batches leave a key out
						batch = append(batch, f.spend(k, 1, nil, quota))
						of = append(of, i)
						attempted[i]++
					}
				}
				rnd.Shuffle(len(batch), func(i, j int) {
					batch[i], batch[j] = batch[j], batch[i]
					of[i], of[j] = of[j], of[i]
				})
				spends, whose = append(spends, batch), append(whose, of)
			}
			wg.Go(func() {
				for b, batch := range spends {
					got, err := f.s.SpendBatch(f.ctx, batch)
					if err != nil {
						errs <- fmt.Errorf("SpendBatch: %w", err)
						continue
					}
					for i, s := range got {
						switch {
						case s.Err != nil:
							errs <- fmt.Errorf("a spend of key %s: %w", batch[i].KeyID, s.Err)
						case s.Allowed:
							allowed[w][whose[b][i]]++
						case s.Refused != keyward.SpentCredits:
							errs <- fmt.Errorf("a spend of key %s refused by %s; want only credits to refuse", batch[i].KeyID, s.Refused)
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			f.t.Error(err)
		}
		for i, k := range keys {
			var n int64
			for w := range workers {
				n += allowed[w][i]
			}
			if attempted[i] <= credits {
				f.t.Fatalf("key %s: only %d spends for %d credits; the test should spend them all", k.ID, attempted[i], credits)
			}
			if n != credits {
				f.t.Errorf("key %s: %d of %d spends allowed from %d credits; want exactly %d", k.ID, n, attempted[i], credits, credits)
			}
			f.wantCredits(k.ID, 0)
		}
		f.wantQuotaUsed(keyward.QuotaSubject('t', keys[0].TenantID), "2026-11", 2*credits)
		f.wantQuotaUsed(keyward.QuotaSubject('t', keys[2].TenantID), "2026-11", 2*credits)
	}},
}

// spendBatch runs spends as one batch and fails the test unless the batch
// succeeded with one Spent for each.
func (f *fixture) spendBatch(spends []keyward.Spend) []keyward.Spent {
	f.t.Helper()
	got, err := f.s.SpendBatch(f.ctx, spends)
	if err != nil {
		f.t.Fatalf("SpendBatch: %v", err)
	}
	if len(got) != len(spends) {
		f.t.Fatalf("SpendBatch of %d spends returned %d", len(spends), len(got))
	}
	return got
}

// wantSpent fails the test unless each spend of a batch did what want
// says.
func (f *fixture) wantSpent(got, want []keyward.Spent) {
	f.t.Helper()
	for i := range want {
		if got[i] != want[i] {
			f.t.Errorf("spend %d: %+v; want %+v", i+1, got[i], want[i])
		}
	}
}
