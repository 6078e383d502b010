package verify

import "github.com/keyward/keyward/apikey"

// Cached reports whether v's cache holds an entry for key, as a test in
// package verify_test needs to see that a refused guess left none.
func Cached(v *Verifier, key string) bool {
	_, ok := v.keys.GetIfPresent(apikey.Hash(key))
	return ok
}

// QueuedSpends returns how many spends of metered keys wait in v's queue
// for a batch, as a test of the batching needs to see them gathered.
func QueuedSpends(v *Verifier) int {
	v.spender.mu.Lock()
	defer v.spender.mu.Unlock()
	return len(v.spender.queue)
}

// MaxSpendBatch is the most spends one batch takes.
const MaxSpendBatch = maxSpendBatch
