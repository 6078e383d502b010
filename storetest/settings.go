package storetest

import (
	"fmt"
	"sync"

	"github.com/keyward/keyward"
)

var settingsTests = []test{
	{"KeyPrefixFirstWriterWins", func(f *fixture) {
		_, err := f.s.KeyPrefix(f.ctx)
		wantCode(f.t, err, keyward.CodeNotFound)
		m := f.mark()
		if got, err := f.s.InitKeyPrefix(f.ctx, "kw"); err != nil || got != "kw" {
			f.t.Fatalf("InitKeyPrefix(kw) on a new database = %q, %v; want kw", got, err)
		}
		if got, err := f.s.InitKeyPrefix(f.ctx, "sk"); err != nil || got != "kw" {
			f.t.Fatalf("InitKeyPrefix(sk) after kw = %q, %v; want kw, unchanged", got, err)
		}
		if got, err := f.s.KeyPrefix(f.ctx); err != nil || got != "kw" {
			f.t.Fatalf("KeyPrefix = %q, %v; want kw", got, err)
		}
		f.wantNothingRecorded(m, "InitKeyPrefix")
	}},
	{"KeyPrefixAtOnce", func(f *fixture) {
		// Processes that create one database at once all find the prefix
		// of the first.
		got := make([]string, workers)
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() { got[w], errs[w] = f.s.InitKeyPrefix(f.ctx, fmt.Sprintf("p%d", w)) })
		}
		wg.Wait()
		for w := range workers {
			if errs[w] != nil {
				f.t.Fatalf("InitKeyPrefix(p%d): %v", w, errs[w])
			}
			if got[w] != got[0] {
				f.t.Fatalf("simultaneous InitKeyPrefix calls returned %q", got)
			}
		}
		if stored, err := f.s.KeyPrefix(f.ctx); err != nil || stored != got[0] {
			f.t.Fatalf("KeyPrefix = %q, %v; the writers were told %q", stored, err, got[0])
		}
	}},
}
