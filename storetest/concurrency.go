package storetest

import (
	"fmt"
	"sync"
	"time"

	"github.com/keyward/keyward"
)

// workers is how many goroutines the concurrency tests run at once.
const workers = 8

var concurrencyTests = []test{
	{"CreateKeys", func(f *fixture) {
		tn := f.createTenant("acme")
		const perWorker = 10
		// Build the keys first: the fixture is not safe for concurrent use.
		batches := make([][]*keyward.Key, workers)
		for w := range batches {
			for range perWorker {
				batches[w] = append(batches[w], f.newKey(tn.ID, keyward.Live))
			}
		}
		m := f.mark()

		var wg sync.WaitGroup
		errs := make(chan error, workers*perWorker*3)
		for _, batch := range batches {
			wg.Go(func() {
				for _, k := range batch {
					if err := f.s.CreateKey(f.ctx, k, admin); err != nil {
						errs <- fmt.Errorf("CreateKey(%s): %w", k.ID, err)
						continue
					}
					// Reads and usage batches go on meanwhile.
					if _, err := f.s.KeyByHash(f.ctx, k.Hash); err != nil {
						errs <- fmt.Errorf("KeyByHash(%s): %w", k.ID, err)
					}
					if err := f.s.RecordUsage(f.ctx, []keyward.Usage{{KeyID: k.ID, At: k.CreatedAt, IP: "192.0.2.1"}}); err != nil {
						errs <- fmt.Errorf("RecordUsage(%s): %w", k.ID, err)
					}
				}
			})
		}
		wg.Go(func() {
			for range perWorker {
				if _, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{TenantID: tn.ID}, keyward.Page{Limit: 5}); err != nil {
					errs <- fmt.Errorf("Keys: %w", err)
				}
			}
		})
		// A follower reads the feed as a server does, from the last
		// sequence number it saw, while the writers write: it must see
		// every change, even though it reads while others commit. (A feed
		// whose numbers are handed out before commit, such as a PostgreSQL
		// sequence, can commit 11 before 10; a follower that moved past 11
		// would never see 10.)
		done := make(chan struct{})
		followed := make(chan []keyward.Change, 1)
		go func() {
			var got []keyward.Change
			after := m.seq
			defer func() { followed <- got }()
			poll := func() error {
				for {
					page, err := f.s.Changes(f.ctx, after, 7)
					if err != nil {
						return fmt.Errorf("Changes(%d): %w", after, err)
					}
					if len(page) == 0 {
						return nil
					}
					got = append(got, page...)
					after = page[len(page)-1].Seq
				}
			}
			for {
				select {
				case <-done:
					if err := poll(); err != nil {
						errs <- err
					}
					return
				default:
					if err := poll(); err != nil {
						errs <- err
						<-done
						return
					}
					time.Sleep(time.Millisecond)
				}
			}
		}()
		wg.Wait()
		close(done)
		got := <-followed
		close(errs)
		for err := range errs {
			f.t.Error(err)
		}
		if f.t.Failed() {
			f.t.FailNow()
		}

		seen := map[string]bool{}
		p := keyward.Page{Limit: 25}
		for range 100 {
			keys, next, err := f.s.Keys(f.ctx, keyward.KeyFilter{TenantID: tn.ID}, p)
			if err != nil {
				f.t.Fatalf("Keys: %v", err)
			}
			for _, k := range keys {
				if seen[k.ID] {
					f.t.Fatalf("Keys: %s twice", k.ID)
				}
				seen[k.ID] = true
			}
			if next == "" {
				break
			}
			p.Cursor = next
		}
		for _, batch := range batches {
			for _, k := range batch {
				if !seen[k.ID] {
					f.t.Fatalf("key %s is missing", k.ID)
				}
			}
		}
		if len(seen) != workers*perWorker {
			f.t.Fatalf("Keys = %d keys, want %d", len(seen), workers*perWorker)
		}
		followedIDs := map[string]int{}
		for _, c := range got {
			followedIDs[c.ID]++
		}
		for _, batch := range batches {
			for _, k := range batch {
				if followedIDs[k.ID] != 1 {
					f.t.Fatalf("a follower of the feed saw the change of %s %d times, want once", k.ID, followedIDs[k.ID])
				}
			}
		}
		changes := f.changesSince(m.seq)
		if len(changes) != workers*perWorker {
			f.t.Fatalf("%d concurrent creates appended %d changes", workers*perWorker, len(changes))
		}
		for i := 1; i < len(changes); i++ {
			if changes[i].Seq <= changes[i-1].Seq {
				f.t.Fatalf("change seq %d follows %d; want strictly increasing", changes[i].Seq, changes[i-1].Seq)
			}
		}
		if n := len(f.allAudit(keyward.AuditFilter{})) - m.audit; n != workers*perWorker {
			f.t.Fatalf("%d concurrent creates wrote %d audit entries", workers*perWorker, n)
		}
	}},
	{"RevokeRace", func(f *fixture) {
		tn := f.createTenant("acme")
		k := f.createKey(tn.ID, keyward.Live)
		m := f.mark()
		times := make([]time.Time, workers)
		for i := range times {
			times[i] = f.tick()
		}
		got := make([]*keyward.Key, workers)
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() { got[i], errs[i] = f.s.RevokeKey(f.ctx, k.ID, times[i], admin) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				f.t.Fatalf("RevokeKey %d: %v", i, err)
			}
		}
		stored := f.key(k.ID)
		for i, g := range got {
			wantKey(f.t, fmt.Sprintf("RevokeKey %d of %d at once", i, workers), g, stored)
		}
		entries := f.allAudit(keyward.AuditFilter{})
		if n := len(entries) - m.audit; n != 1 {
			f.t.Fatalf("%d revocations at once wrote %d audit entries, want 1", workers, n)
		}
		if d := timeDiff("audit entry At", entries[0].At, *stored.RevokedAt); d != "" {
			f.t.Fatal(d)
		}
		if changes := f.changesSince(m.seq); len(changes) != 1 {
			f.t.Fatalf("%d revocations at once appended %d changes, want 1", workers, len(changes))
		}
	}},
	{"RotateRace", func(f *fixture) {
		tn := f.createTenant("acme")
		old := f.createKey(tn.ID, keyward.Live)
		succ := make([]*keyward.Key, workers)
		for i := range succ {
			succ[i] = f.successorOf(old)
		}
		m := f.mark()
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() { _, errs[i] = f.s.RotateKey(f.ctx, old.ID, succ[i], succ[i].CreatedAt.Add(time.Hour), admin) })
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				f.t.Fatalf("rotations %d and %d of the same key both succeeded", winner, i)
			case err == nil:
				winner = i
			default:
				wantCode(f.t, err, keyward.CodeConflict)
			}
		}
		if winner < 0 {
			f.t.Fatal("no rotation succeeded")
		}
		if got := f.key(old.ID); got.RotatedTo != succ[winner].ID {
			f.t.Fatalf("RotatedTo = %q, want %q", got.RotatedTo, succ[winner].ID)
		}
		for i, s := range succ {
			_, err := f.s.Key(f.ctx, s.ID)
			if i == winner && err != nil {
				f.t.Fatalf("the successor that won: %v", err)
			}
			if i != winner && keyward.ErrorCode(err) != keyward.CodeNotFound {
				f.t.Fatalf("successor %d of a refused rotation: %v, want not found", i, err)
			}
		}
		f.wantRecorded(m, keyward.ActionKeyRotate, tn.ID, old.ID, admin, succ[winner].CreatedAt, keyChange(old.ID), keyChange(succ[winner].ID))
	}},
}

// concurrentAccessTests race the writers of the access model: the rules
// that span rows hold however the writes interleave.
var concurrentAccessTests = []test{
	{"LastTwoOwners", func(f *fixture) {
		// Two owners removed at once: one removal is made, the other is
		// refused, whichever comes second. Several rounds, so that the two
		// meet in the store more than once.
		for round := range 5 {
			tn, a := f.createTeam(fmt.Sprintf("round-%d", round))
			b := f.createMember(tn.ID, keyward.RoleOwner)
			m := f.mark()
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i, id := range []string{a.ID, b.ID} {
				at := f.tick()
				wg.Go(func() { _, errs[i] = f.s.RemoveMember(f.ctx, id, "", at, admin) })
			}
			wg.Wait()
			if (errs[0] == nil) == (errs[1] == nil) {
				f.t.Fatalf("round %d: removing the last two owners at once: %v and %v; want one removal made and one refused", round, errs[0], errs[1])
			}
			for _, err := range errs {
				if err != nil {
					wantCode(f.t, err, keyward.CodeConflict)
				}
			}
			members, _, err := f.s.Members(f.ctx, tn.ID, keyward.Page{})
			if err != nil || len(members) != 1 || members[0].Role != keyward.RoleOwner {
				f.t.Fatalf("round %d: Members = %v, %v; want the owner left", round, members, err)
			}
			if n := len(f.allAudit(keyward.AuditFilter{})) - m.audit; n != 1 {
				f.t.Fatalf("round %d: %d audit entries, want 1", round, n)
			}
		}
	}},
	{"EveryOwnerAtOnce", func(f *fixture) {
		// As many owners as workers, each removed, demoted or suspended at
		// once: all but one change is made, and one active owner is left.
		tn, first := f.createTeam("acme")
		owners := []*keyward.Member{first}
		for range workers - 1 {
			owners = append(owners, f.createMember(tn.ID, keyward.RoleOwner))
		}
		times := make([]time.Time, workers)
		for i := range times {
			times[i] = f.tick()
		}
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for i, o := range owners {
			wg.Go(func() {
				switch i % 3 {
				case 0:
					_, errs[i] = f.s.RemoveMember(f.ctx, o.ID, "", times[i], admin)
				case 1:
					_, errs[i] = f.s.UpdateMember(f.ctx, o.ID, keyward.MemberUpdate{Role: ptr(keyward.RoleAdmin)}, times[i], admin)
				default:
					_, errs[i] = f.s.UpdateMember(f.ctx, o.ID, keyward.MemberUpdate{Status: ptr(keyward.MemberSuspended)}, times[i], admin)
				}
			})
		}
		wg.Wait()
		refused := 0
		for _, err := range errs {
			if err != nil {
				wantCode(f.t, err, keyward.CodeConflict)
				refused++
			}
		}
		if refused != 1 {
			f.t.Fatalf("%d of %d changes to every owner at once were refused, want 1: %v", refused, workers, errs)
		}
		members, _, err := f.s.Members(f.ctx, tn.ID, keyward.Page{})
		if err != nil {
			f.t.Fatalf("Members: %v", err)
		}
		active := 0
		for _, m := range members {
			if m.Role == keyward.RoleOwner && m.Status == keyward.MemberActive {
				active++
			}
		}
		if active != 1 {
			f.t.Fatalf("%d active owners left, want 1: %v", active, members)
		}
	}},
	{"KeyLimit", func(f *fixture) {
		p := f.newPlan("small")
		p.MaxKeys = 3
		if err := f.s.CreatePlan(f.ctx, p, admin); err != nil {
			f.t.Fatalf("CreatePlan: %v", err)
		}
		tn := f.onPlan("acme", "small")
		keys := make([]*keyward.Key, workers)
		for i := range keys {
			keys[i] = f.newKey(tn.ID, keyward.Live)
		}
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for i, k := range keys {
			wg.Go(func() { errs[i] = f.s.CreateKey(f.ctx, k, admin) })
		}
		wg.Wait()
		made := 0
		for _, err := range errs {
			if err == nil {
				made++
			} else {
				wantCode(f.t, err, keyward.CodePlanNotEntitled)
			}
		}
		if made != 3 || f.countKeys(tn.ID) != 3 {
			f.t.Fatalf("%d keys created at once on a plan of 3 keys: %d made, %d stored; want 3", workers, made, f.countKeys(tn.ID))
		}
	}},
	{"RemoveWhileKeysAreMade", func(f *fixture) {
		// Keys made for a member while the member is removed: each is
		// made before the removal, and revoked by it, or refused after.
		// No unrevoked key is left to a member who is gone.
		tn, _ := f.createTeam("acme")
		dev := f.createMember(tn.ID, keyward.RoleDeveloper)
		const perWorker = 5
		batches := make([][]*keyward.Key, workers)
		for w := range batches {
			for range perWorker {
				k := f.newKey(tn.ID, keyward.Live)
				k.MemberID = dev.ID
				batches[w] = append(batches[w], k)
			}
		}
		at := f.tick()
		var removal *keyward.MemberRemoval
		var removeErr error
		made := make([]int, workers)
		errs := make(chan error, workers*perWorker)
		var wg sync.WaitGroup
		for w, batch := range batches {
			wg.Go(func() {
				for _, k := range batch {
					err := f.s.CreateKey(f.ctx, k, admin)
					switch {
					case err == nil:
						made[w]++
					case keyward.ErrorCode(err) != keyward.CodeInvalidRequest:
						errs <- fmt.Errorf("CreateKey(%s): %w", k.ID, err)
					}
				}
			})
		}
		wg.Go(func() { removal, removeErr = f.s.RemoveMember(f.ctx, dev.ID, "", at, admin) })
		wg.Wait()
		close(errs)
		for err := range errs {
			f.t.Error(err)
		}
		if removeErr != nil {
			f.t.Fatalf("RemoveMember: %v", removeErr)
		}
		total := 0
		for _, n := range made {
			total += n
		}
		if removal.Revoked != total {
			f.t.Fatalf("RemoveMember revoked %d keys; %d were made before it", removal.Revoked, total)
		}
		keys, _, err := f.s.Keys(f.ctx, keyward.KeyFilter{MemberID: dev.ID}, keyward.Page{Limit: keyward.MaxPageLimit})
		if err != nil || len(keys) != total {
			f.t.Fatalf("Keys of the member removed = %d, %v; want %d", len(keys), err, total)
		}
		for _, k := range keys {
			if k.Status != keyward.KeyRevoked {
				f.t.Fatalf("key %s of a member removed is %s", k.ID, k.Status)
			}
		}
	}},
}
