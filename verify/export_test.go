package verify

import "github.com/keyward/keyward/apikey"

// Cached reports whether v's cache holds an entry for key, as a test in
// package verify_test needs to see that a refused guess left none.
func Cached(v *Verifier, key string) bool {
	_, ok := v.keys.GetIfPresent(apikey.Hash(key))
	return ok
}
