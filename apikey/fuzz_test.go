package apikey_test

import (
	"crypto/sha256"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// reasons are all the reasons Parse may give.
var reasons = map[apikey.Reason]bool{
	apikey.ReasonShape: true, apikey.ReasonWhitespace: true, apikey.ReasonQuotes: true,
	apikey.ReasonPrefix: true, apikey.ReasonEnvironment: true, apikey.ReasonLength: true,
	apikey.ReasonAlphabet: true, apikey.ReasonChecksum: true,
}

// FuzzParse checks that Parse never panics, accepts exactly the strings
// that are prefix_env_ and BodyLen base62 characters with a valid checksum,
// and explains every refusal with a known reason and a message; and, as a
// round trip, that a key built from the fuzzer's bytes parses back to its
// environment and stops parsing when one character changes.
func FuzzParse(f *testing.F) {
	for _, g := range goldenKeys {
		f.Add(g.key)
	}
	sk := apikey.Format{}
	for _, env := range []keyward.Environment{keyward.Live, keyward.Test} {
		f.Add(generate(f, sk, env))
	}
	key := goldenKeys[2].key
	for _, s := range []string{
		"", " ", key + "\n", " " + key, `"` + key + `"`, "\u201c" + key + "\u201d",
		"Bearer " + key, "pk" + key[2:], "SK" + key[2:], key[3:], "key=" + key,
		"sk_prod_" + key[8:], "sk_LIVE_" + key[8:], "sk_live_", key[:30], key + key,
		key[:20] + "-" + key[21:], key[:len(key)-1] + "é", key[:len(key)-1] + "\xff",
		"sk_live_" + strings.Repeat("a", apikey.BodyLen), "sk__live_", "_", "sk_", "a_live_",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "9f86d081884c7d659a2feaa0c55ad015",
	} {
		f.Add(s)
	}
	formats := []apikey.Format{sk, newFormat(f, "acme2")}

	f.Fuzz(func(t *testing.T, s string) {
		for _, format := range formats {
			env, perr := format.Parse(s)
			if perr != nil {
				if env != "" {
					t.Fatalf("Parse refused %q with env %q", s, env)
				}
				if !reasons[perr.Reason] || perr.Message == "" {
					t.Fatalf("Parse(%q): reason %q, message %q", s, perr.Reason, perr.Message)
				}
				if !utf8.ValidString(perr.Message) {
					t.Fatalf("Parse(%q): message is not valid UTF-8: %q", s, perr.Message)
				}
				if len(s) >= 16 && strings.Contains(perr.Message, s) {
					t.Fatalf("Parse(%q): message contains the input: %q", s, perr.Message)
				}
				continue
			}
			assertWellFormed(t, format.Prefix(), env, s)
			assertRoundTrip(t, format.Prefix(), env, s)
		}

		// Round trip: a key built from the fuzzer's bytes, with the
		// checksum computed independently, parses back to its environment.
		random := make([]byte, apikey.RandomLen)
		for i := range random {
			var b byte
			if len(s) > 0 {
				b = s[i%len(s)] + byte(i/len(s))
			}
			random[i] = base62[int(b)%len(base62)]
		}
		env := keyward.Live
		if len(s)%2 == 1 {
			env = keyward.Test
		}
		format := formats[len(s)%len(formats)]
		built := format.Prefix() + "_" + string(env) + "_" + string(random)
		built += checksum(built)
		got, perr := format.Parse(built)
		if perr != nil {
			t.Fatalf("Parse of a well-formed key: %v", perr)
		}
		if got != env {
			t.Fatalf("Parse env %q, want %q", got, env)
		}
		assertRoundTrip(t, format.Prefix(), env, built)

		// One character of the body changed: refused.
		if len(s) > 0 {
			i := len(built) - apikey.BodyLen + int(s[0])%apikey.BodyLen
			c := base62[(strings.IndexByte(base62, built[i])+1+int(s[len(s)-1])%61)%len(base62)]
			changed := built[:i] + string(c) + built[i+1:]
			if _, perr := format.Parse(changed); perr == nil {
				t.Fatalf("Parse accepted a key with character %d changed", i)
			}
		}
	})
}

// assertRoundTrip checks that the display and hash of a valid key agree
// with the key.
func assertRoundTrip(t *testing.T, prefix string, env keyward.Environment, key string) {
	t.Helper()
	head := prefix + "_" + string(env) + "_"
	if got := apikey.Head(key); got != head {
		t.Fatalf("Head = %q, want %q", got, head)
	}
	start, last4 := apikey.Display(key)
	if start != key[:len(head)+4] || last4 != key[len(key)-4:] {
		t.Fatalf("Display = %q, %q", start, last4)
	}
	if apikey.Hash(key) != sha256.Sum256([]byte(key)) {
		t.Fatal("Hash is not the SHA-256 of the key")
	}
}

// FuzzContains checks that Contains finds a key exactly when some substring
// of the key's length parses, and always finds a key put between the
// fuzzer's strings.
func FuzzContains(f *testing.F) {
	key := goldenKeys[2].key
	for _, s := range []string{
		"", key, "api_key=" + key, "/api/" + key + "/x", key[:len(key)-1], "sk_live_sk_live_" + key[8:],
		"sksk" + key, key + key, "sk_", "sk_live_" + strings.Repeat("a", apikey.BodyLen),
	} {
		f.Add(s, "", "")
	}
	f.Add("", "x", "y")
	formats := []apikey.Format{{}, newFormat(f, "acme2")}
	f.Fuzz(func(t *testing.T, s, before, after string) {
		for _, format := range formats {
			n := len(format.Prefix()) + len("_live_") + apikey.BodyLen
			want := false
			for i := 0; i+n <= len(s) && !want; i++ {
				_, perr := format.Parse(s[i : i+n])
				want = perr == nil
			}
			if got := format.Contains(s); got != want {
				t.Fatalf("%s: Contains(%q) = %v, want %v", format.Prefix(), s, got, want)
			}
			k := generate(t, format, keyward.Live)
			if !format.Contains(before + k + after) {
				t.Fatalf("%s: Contains(%q) = false", format.Prefix(), before+k+after)
			}
		}
	})
}
