package apikey_test

import (
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"math/big"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// goldenKeys were computed outside Go (Python's zlib.crc32 and its own
// base62 encoder). They pin the format: keys already issued and stored must
// keep parsing in every later version.
var goldenKeys = []struct {
	prefix string
	key    string
	env    keyward.Environment
}{
	{"sk", "sk_live_000000000000000000000000000000002UYg5A", keyward.Live},
	{"sk", "sk_test_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz2176iF", keyward.Test},
	{"sk", "sk_live_3Fj9aB7kQ2mN8pR4sT6uV1wX5yZ0cD3e3I4UjD", keyward.Live},
	{"sk", "sk_live_00000000000000000000000000000342001BG5", keyward.Live}, // CRC 281609: zero-padded
	{"acme2", "acme2_test_ZYXWVUTSRQPONMLKJIHGFEDCBA9876542Z0CCK", keyward.Test},
}

// newFormat returns the Format for prefix or fails the test.
func newFormat(t testing.TB, prefix string) apikey.Format {
	t.Helper()
	f, err := apikey.NewFormat(prefix)
	if err != nil {
		t.Fatalf("NewFormat(%q): %v", prefix, err)
	}
	return f
}

// generate returns a new key or fails the test.
func generate(t testing.TB, f apikey.Format, env keyward.Environment) string {
	t.Helper()
	key, err := f.Generate(env)
	if err != nil {
		t.Fatalf("Generate(%q): %v", env, err)
	}
	return key
}

// checksum encodes the CRC32 of s as 6 base62 digits with math/big, an
// encoder independent of the package's. big's base-62 alphabet puts
// lowercase before uppercase, so the case is swapped.
func checksum(s string) string {
	text := new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(s)))).Text(62)
	swapped := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return r
	}, text)
	return strings.Repeat("0", apikey.ChecksumLen-len(swapped)) + swapped
}

// assertWellFormed checks, independently of Parse, that key is
// prefix_env_ followed by BodyLen base62 characters ending in a valid
// checksum.
func assertWellFormed(t testing.TB, prefix string, env keyward.Environment, key string) {
	t.Helper()
	head := prefix + "_" + string(env) + "_"
	if !strings.HasPrefix(key, head) {
		t.Fatalf("key does not start with %q", head)
	}
	body := key[len(head):]
	if len(body) != apikey.BodyLen {
		t.Fatalf("body has %d characters, want %d", len(body), apikey.BodyLen)
	}
	for i := 0; i < len(body); i++ {
		if !strings.Contains(base62, body[i:i+1]) {
			t.Fatalf("body character %d is not base62", i+1)
		}
	}
	split := len(key) - apikey.ChecksumLen
	if got, want := key[split:], checksum(key[:split]); got != want {
		t.Fatalf("checksum %q, want %q", got, want)
	}
}

// assertNoSecret fails if msg contains 6 or more consecutive characters of
// body, the secret part of a key.
func assertNoSecret(t testing.TB, msg, body string) {
	t.Helper()
	const n = 6
	for i := 0; i+n <= len(body); i++ {
		if strings.Contains(msg, body[i:i+n]) {
			t.Fatalf("message contains part of the key's body: %q", msg)
		}
	}
}

func TestNewFormat(t *testing.T) {
	valid := []string{"sk", "ab", "a1", "pk", "acme2", "abcdefghijkl"}
	for _, p := range valid {
		t.Run("valid/"+p, func(t *testing.T) {
			f := newFormat(t, p)
			if f.Prefix() != p {
				t.Errorf("Prefix() = %q, want %q", f.Prefix(), p)
			}
		})
	}
	invalid := []string{"", "s", "Sk", "SK", "1sk", "sk_", "_sk", "s-k", "sk ", "abcdefghijklm", "ské", "sk\x00"}
	for _, p := range invalid {
		t.Run("invalid/"+p, func(t *testing.T) {
			_, err := apikey.NewFormat(p)
			var kerr *keyward.Error
			if !errors.As(err, &kerr) {
				t.Fatalf("NewFormat(%q) error = %v, want *keyward.Error", p, err)
			}
			if kerr.Code != keyward.CodeInvalidRequest || kerr.Field != "key_prefix" {
				t.Errorf("code %q field %q, want %q %q", kerr.Code, kerr.Field, keyward.CodeInvalidRequest, "key_prefix")
			}
			for _, want := range []string{"2 to 12 characters", "lowercase letter", "digits"} {
				if !strings.Contains(kerr.Message, want) {
					t.Errorf("message %q does not say %q", kerr.Message, want)
				}
			}
		})
	}
	t.Run("zero value", func(t *testing.T) {
		var f apikey.Format
		if f.Prefix() != apikey.DefaultPrefix {
			t.Errorf("Prefix() = %q, want %q", f.Prefix(), apikey.DefaultPrefix)
		}
		key := generate(t, f, keyward.Live)
		assertWellFormed(t, apikey.DefaultPrefix, keyward.Live, key)
	})
}

func TestGoldenKeys(t *testing.T) {
	for _, g := range goldenKeys {
		t.Run(g.key[:12], func(t *testing.T) {
			assertWellFormed(t, g.prefix, g.env, g.key)
			env, perr := newFormat(t, g.prefix).Parse(g.key)
			if perr != nil {
				t.Fatalf("Parse: %v", perr)
			}
			if env != g.env {
				t.Errorf("env %q, want %q", env, g.env)
			}
		})
	}
}

func TestGenerateParse(t *testing.T) {
	const perCase = 1700 // 6 cases: about 10,000 keys
	seen := make(map[string]bool)
	for _, prefix := range []string{"sk", "pk9", "abcdefghijkl"} {
		for _, env := range []keyward.Environment{keyward.Live, keyward.Test} {
			t.Run(prefix+"_"+string(env), func(t *testing.T) {
				f := newFormat(t, prefix)
				other := newFormat(t, "zz9") // a prefix none of the cases uses
				for range perCase {
					key := generate(t, f, env)
					if seen[key] {
						t.Fatal("Generate returned the same key twice")
					}
					seen[key] = true
					assertWellFormed(t, prefix, env, key)
					got, perr := f.Parse(key)
					if perr != nil {
						t.Fatalf("Parse of a generated key: %v", perr)
					}
					if got != env {
						t.Fatalf("Parse env = %q, want %q", got, env)
					}
					if _, perr := other.Parse(key); perr == nil || perr.Reason != apikey.ReasonPrefix {
						t.Fatalf("Parse with prefix %q = %v, want reason prefix", other.Prefix(), perr)
					}
				}
			})
		}
	}
}

func TestGenerateInvalidEnvironment(t *testing.T) {
	for _, env := range []keyward.Environment{"", "prod", "LIVE"} {
		t.Run(string(env), func(t *testing.T) {
			key, err := apikey.Format{}.Generate(env)
			if key != "" || keyward.ErrorCode(err) != keyward.CodeInvalidRequest {
				t.Fatalf("Generate(%q) = %q, %v; want an invalid_request error", env, key, err)
			}
			var kerr *keyward.Error
			if errors.As(err, &kerr) && kerr.Field != "environment" {
				t.Errorf("field %q, want environment", kerr.Field)
			}
		})
	}
}

// TestGenerateUniform checks with a chi-squared test that every base62
// digit is equally likely in the random part of a key. Modulo bias (taking
// a random byte modulo 62) would make the first 8 digits 25% more likely
// and the statistic about 30 times the threshold.
func TestGenerateUniform(t *testing.T) {
	const keys = 10000
	var counts [62]int
	f := apikey.Format{}
	for range keys {
		key := generate(t, f, keyward.Live)
		random := key[len("sk_live_") : len("sk_live_")+apikey.RandomLen]
		for i := 0; i < len(random); i++ {
			counts[strings.IndexByte(base62, random[i])]++
		}
	}
	expected := float64(keys*apikey.RandomLen) / 62
	chi2 := 0.0
	for _, c := range counts {
		d := float64(c) - expected
		chi2 += d * d / expected
	}
	// With 61 degrees of freedom, P(chi2 > 130) is below 1e-6.
	if chi2 > 130 {
		t.Errorf("chi-squared = %.1f over 61 degrees of freedom: digits are not uniform; counts %v", chi2, counts)
	}
}

// TestSingleCharacterChanges changes each generated key in every way one
// keystroke can, exhaustively over positions, and checks that Parse refuses
// every result.
func TestSingleCharacterChanges(t *testing.T) {
	alphabet := base62 + "_"
	for _, prefix := range []string{"sk", "acme2"} {
		for _, env := range []keyward.Environment{keyward.Live, keyward.Test} {
			f := newFormat(t, prefix)
			for k := range 2 {
				key := generate(t, f, env)
				body := key[len(prefix)+len(env)+2:]
				t.Run(prefix+"_"+string(env)+"/"+string(rune('a'+k)), func(t *testing.T) {
					refuse := func(what, changed string) {
						t.Helper()
						if _, perr := f.Parse(changed); perr == nil {
							t.Fatalf("%s: Parse accepted a changed key", what)
						} else {
							assertNoSecret(t, perr.Message, body)
						}
					}
					for i := 0; i < len(key); i++ {
						for j := 0; j < len(alphabet); j++ {
							if alphabet[j] == key[i] {
								continue
							}
							refuse("substitution", key[:i]+alphabet[j:j+1]+key[i+1:])
						}
						refuse("deletion", key[:i]+key[i+1:])
					}
					for i := 0; i <= len(key); i++ {
						for j := 0; j < len(alphabet); j++ {
							refuse("insertion", key[:i]+alphabet[j:j+1]+key[i:])
						}
					}
					// Two neighbours swapped, the other common slip of the
					// fingers; CRC32 catches every such swap too.
					for i := 0; i+1 < len(key); i++ {
						if key[i] != key[i+1] {
							refuse("transposition", key[:i]+key[i+1:i+2]+key[i:i+1]+key[i+2:])
						}
					}
				})
			}
		}
	}
}

func TestParseReasons(t *testing.T) {
	sk := apikey.Format{}
	key := generate(t, sk, keyward.Live)
	body := key[len("sk_live_"):]
	// badSum is key with its last checksum digit changed.
	last := key[len(key)-1]
	sub := byte('0')
	if last == '0' {
		sub = '1'
	}
	badSum := key[:len(key)-1] + string(sub)

	tests := []struct {
		name   string
		format apikey.Format
		input  string
		reason apikey.Reason
		msg    string // the exact message, or
		has    []string
	}{
		{name: "empty", input: "", reason: apikey.ReasonShape, msg: "no API key given"},
		{name: "trailing newline", input: key + "\n", reason: apikey.ReasonWhitespace,
			msg: "the key has surrounding whitespace; send it exactly as issued, without spaces or line breaks"},
		{name: "leading space", input: " " + key, reason: apikey.ReasonWhitespace,
			msg: "the key has surrounding whitespace; send it exactly as issued, without spaces or line breaks"},
		{name: "trailing CRLF", input: key + "\r\n", reason: apikey.ReasonWhitespace,
			msg: "the key has surrounding whitespace; send it exactly as issued, without spaces or line breaks"},
		{name: "leading tab", input: "\t" + key, reason: apikey.ReasonWhitespace,
			msg: "the key has surrounding whitespace; send it exactly as issued, without spaces or line breaks"},
		{name: "no-break space", input: key + "\u00a0", reason: apikey.ReasonWhitespace,
			msg: "the key has surrounding whitespace; send it exactly as issued, without spaces or line breaks"},
		{name: "byte order mark", input: "\uFEFF" + key, reason: apikey.ReasonWhitespace,
			msg: "the key has surrounding whitespace; send it exactly as issued, without spaces or line breaks"},
		{name: "only spaces", input: "   ", reason: apikey.ReasonWhitespace,
			msg: "the key has surrounding whitespace; send it exactly as issued, without spaces or line breaks"},
		{name: "internal line break", input: key[:20] + "\n" + key[20:], reason: apikey.ReasonWhitespace,
			msg: "the key contains whitespace or a line break; send it exactly as issued, in one piece, without spaces or line breaks"},
		{name: "internal ideographic space", input: key[:20] + "\u3000" + key[20:], reason: apikey.ReasonWhitespace,
			msg: "the key contains whitespace or a line break; send it exactly as issued, in one piece, without spaces or line breaks"},
		{name: "internal zero-width space", input: key[:20] + "\u200b" + key[20:], reason: apikey.ReasonWhitespace,
			msg: "the key contains whitespace or a line break; send it exactly as issued, in one piece, without spaces or line breaks"},
		{name: "bearer scheme", input: "Bearer " + key, reason: apikey.ReasonWhitespace,
			has: []string{`"Bearer "`, "X-API-Key", "Authorization: Bearer <key>"}},
		{name: "double quotes", input: `"` + key + `"`, reason: apikey.ReasonQuotes,
			msg: "the key is wrapped in quotes; send it without quotes"},
		{name: "single quotes", input: "'" + key + "'", reason: apikey.ReasonQuotes,
			msg: "the key is wrapped in quotes; send it without quotes"},
		{name: "backticks", input: "`" + key + "`", reason: apikey.ReasonQuotes,
			msg: "the key is wrapped in quotes; send it without quotes"},
		{name: "curly quotes", input: "\u201c" + key + "\u201d", reason: apikey.ReasonQuotes,
			msg: "the key is wrapped in quotes; send it without quotes"},
		{name: "trailing quote", input: key + "'", reason: apikey.ReasonQuotes,
			msg: "the key is wrapped in quotes; send it without quotes"},
		{name: "quoted with spaces", input: ` "` + key + `" `, reason: apikey.ReasonWhitespace,
			msg: "the key has surrounding whitespace; send it exactly as issued, without spaces or line breaks"},
		{name: "internal quote", input: key[:20] + `"` + key[20:], reason: apikey.ReasonQuotes,
			msg: "the key contains a quote character; send it exactly as issued, without quotes"},
		{name: "other service", input: "pk" + key[2:], reason: apikey.ReasonPrefix,
			msg: `this key has prefix "pk", but this server issues keys that start with "sk_"; it may belong to another service or instance`},
		{name: "other instance", format: newFormat(t, "acme"), input: key, reason: apikey.ReasonPrefix,
			msg: `this key has prefix "sk", but this server issues keys that start with "acme_"; it may belong to another service or instance`},
		{name: "uppercase prefix", input: "SK" + key[2:], reason: apikey.ReasonPrefix,
			has: []string{"wrong case", `"sk_"`}},
		{name: "missing prefix", input: key[len("sk_"):], reason: apikey.ReasonPrefix,
			msg: `the key is missing its prefix: keys from this server start with "sk_live_" or "sk_test_"; copy it again whole`},
		{name: "text before the key", input: "key=" + key, reason: apikey.ReasonShape,
			msg: `the value has extra characters before the key; send only the key, starting with "sk_"`},
		{name: "hex string", input: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", reason: apikey.ReasonShape,
			msg: "this is not a Keyward key: keys look like sk_live_… or sk_test_…"},
		{name: "JWT", input: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", reason: apikey.ReasonShape,
			msg: "this is not a Keyward key: keys look like sk_live_… or sk_test_…"},
		{name: "GitHub token", input: "ghp_" + body, reason: apikey.ReasonShape,
			msg: "this is not a Keyward key: keys look like sk_live_… or sk_test_…"},
		{name: "placeholder", input: "YOUR_API_KEY", reason: apikey.ReasonShape,
			msg: "this is not a Keyward key: keys look like sk_live_… or sk_test_…"},
		{name: "shape message names the instance's prefix", format: newFormat(t, "acme"), input: "hello", reason: apikey.ReasonShape,
			msg: "this is not a Keyward key: keys look like acme_live_… or acme_test_…"},
		{name: "unknown environment", input: "sk_prod_" + body, reason: apikey.ReasonEnvironment,
			msg: `the key's environment is missing or unknown: after "sk_" a key continues with "live_" or "test_"; copy it again whole`},
		{name: "missing environment", input: "sk_" + body, reason: apikey.ReasonEnvironment,
			msg: `the key's environment is missing or unknown: after "sk_" a key continues with "live_" or "test_"; copy it again whole`},
		{name: "uppercase environment", input: "sk_LIVE_" + body, reason: apikey.ReasonEnvironment,
			has: []string{"wrong case", `"live_"`, `"test_"`}},
		{name: "prefix only", input: "sk_live_", reason: apikey.ReasonLength,
			msg: `the key is too short: after "sk_live_" it should have 38 characters, but it has 0; it was probably cut off, so copy it again whole`},
		{name: "truncated", input: key[:len(key)-10], reason: apikey.ReasonLength,
			msg: `the key is too short: after "sk_live_" it should have 38 characters, but it has 28; it was probably cut off, so copy it again whole`},
		{name: "too long", input: key + "ab", reason: apikey.ReasonLength,
			msg: `the key is too long: after "sk_live_" it should have 38 characters, but it has 40; send only the key, with nothing after it`},
		{name: "pasted twice", input: key + key, reason: apikey.ReasonLength,
			has: []string{"too long", "38 characters", "has 84"}},
		{name: "dash in body", input: key[:20] + "-" + key[21:], reason: apikey.ReasonAlphabet,
			msg: `the key has a character that keys never contain (character 13 after "sk_live_"): keys use only letters A-Z, a-z and digits 0-9 there; copy it again from where you stored it`},
		{name: "non-ASCII letter in body", input: key[:len(key)-1] + "é", reason: apikey.ReasonAlphabet,
			has: []string{"character 38 after"}},
		{name: "invalid UTF-8 in body", input: key[:len(key)-1] + "\xff", reason: apikey.ReasonAlphabet,
			has: []string{"character 38 after"}},
		{name: "bad checksum", input: badSum, reason: apikey.ReasonChecksum,
			msg: "the key's checksum does not match: it was mistyped or truncated; copy it again from where you stored it"},
		{name: "made-up key", input: "sk_live_" + strings.Repeat("a", apikey.BodyLen), reason: apikey.ReasonChecksum,
			msg: "the key's checksum does not match: it was mistyped or truncated; copy it again from where you stored it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, perr := tt.format.Parse(tt.input)
			if perr == nil {
				t.Fatalf("Parse accepted the input (env %q)", env)
			}
			if env != "" {
				t.Errorf("env %q on failure, want empty", env)
			}
			if perr.Reason != tt.reason {
				t.Errorf("reason %q, want %q (message %q)", perr.Reason, tt.reason, perr.Message)
			}
			if tt.msg != "" && perr.Message != tt.msg {
				t.Errorf("message\n got %q\nwant %q", perr.Message, tt.msg)
			}
			for _, want := range tt.has {
				if !strings.Contains(perr.Message, want) {
					t.Errorf("message %q does not contain %q", perr.Message, want)
				}
			}
			if perr.Error() != perr.Message {
				t.Errorf("Error() = %q, want the message", perr.Error())
			}
			assertNoSecret(t, perr.Message, body)
		})
	}
}

func TestParseAllocs(t *testing.T) {
	for _, prefix := range []string{"sk", "abcdefghijkl"} {
		for _, env := range []keyward.Environment{keyward.Live, keyward.Test} {
			t.Run(prefix+"_"+string(env), func(t *testing.T) {
				f := newFormat(t, prefix)
				key := generate(t, f, env)
				allocs := testing.AllocsPerRun(100, func() {
					if _, perr := f.Parse(key); perr != nil {
						t.Fatal(perr)
					}
				})
				if allocs != 0 {
					t.Errorf("Parse of a valid key allocates %v times per run, want 0", allocs)
				}
			})
		}
	}
}

func TestHash(t *testing.T) {
	key := generate(t, apikey.Format{}, keyward.Live)
	for _, s := range []string{"", "x", key, strings.Repeat("k", 1000)} {
		if got, want := apikey.Hash(s), sha256.Sum256([]byte(s)); got != want {
			t.Errorf("Hash of a %d-byte string = %x, want %x", len(s), got, want)
		}
	}
	if apikey.Hash(key) == apikey.Hash(key[:len(key)-1]) {
		t.Error("different keys have the same hash")
	}
	allocs := testing.AllocsPerRun(100, func() { _ = apikey.Hash(key) })
	if allocs != 0 {
		t.Errorf("Hash allocates %v times per run, want 0", allocs)
	}
}

func TestDisplay(t *testing.T) {
	key := "sk_live_3Fj9aB7kQ2mN8pR4sT6uV1wX5yZ0cD3e3I4UjD"
	tests := []struct {
		name, key, start, last4, head string
	}{
		{"key", key, "sk_live_3Fj9", "4UjD", "sk_live_"},
		{"test key of another instance", "acme2_test_ZYXWVUTSRQPONMLKJIHGFEDCBA9876542Z0CCK", "acme2_test_ZYXW", "0CCK", "acme2_test_"},
		{"bad checksum is still displayed", key[:len(key)-1] + "E", "sk_live_3Fj9", "4UjE", "sk_live_"},
		{"empty", "", "", "", ""},
		{"no environment", "sk_3Fj9aB7kQ2mN8pR4sT6uV1wX5yZ0cD3e3I4UjD", "", "", ""},
		{"truncated", key[:30], "", "", "sk_live_"},
		{"trailing newline", key + "\n", "", "", "sk_live_"},
		{"non-ASCII body", key[:len(key)-2] + "é", "", "", "sk_live_"},
		{"not a key", "eyJhbGciOiJIUzI1NiJ9", "", "", ""},
		{"uppercase prefix", "SK_live_3Fj9aB7kQ2mN8pR4sT6uV1wX5yZ0cD3e3I4UjD", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, last4 := apikey.Display(tt.key)
			if start != tt.start || last4 != tt.last4 {
				t.Errorf("Display = %q, %q; want %q, %q", start, last4, tt.start, tt.last4)
			}
			if got := apikey.Head(tt.key); got != tt.head {
				t.Errorf("Head = %q, want %q", got, tt.head)
			}
		})
	}
	t.Run("generated", func(t *testing.T) {
		f := newFormat(t, "acme")
		key := generate(t, f, keyward.Test)
		start, last4 := apikey.Display(key)
		if start != key[:len("acme_test_")+4] || last4 != key[len(key)-4:] {
			t.Errorf("Display = %q, %q", start, last4)
		}
		if !strings.HasPrefix(start, "acme_test_") || len(start) != len("acme_test_")+4 || len(last4) != 4 {
			t.Errorf("Display = %q, %q; want acme_test_ and 4 characters, and 4 characters", start, last4)
		}
	})
}

func TestNewID(t *testing.T) {
	seen := make(map[string]bool)
	for _, kind := range []string{"key", "ten", "req"} {
		t.Run(kind, func(t *testing.T) {
			for range 1000 {
				id := apikey.NewID(kind)
				if seen[id] {
					t.Fatalf("NewID returned %q twice", id)
				}
				seen[id] = true
				rest, ok := strings.CutPrefix(id, kind+"_")
				if !ok || len(rest) != 22 {
					t.Fatalf("NewID(%q) = %q, want %s_ and 22 characters", kind, id, kind)
				}
				if strings.Trim(rest, base62) != "" {
					t.Fatalf("NewID(%q) = %q has characters outside base62", kind, id)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	f := apikey.Format{}
	key := generate(b, f, keyward.Live)
	b.ReportAllocs()
	for b.Loop() {
		if _, perr := f.Parse(key); perr != nil {
			b.Fatal(perr)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	key := generate(b, apikey.Format{}, keyward.Live)
	b.ReportAllocs()
	for b.Loop() {
		_ = apikey.Hash(key)
	}
}

func BenchmarkGenerate(b *testing.B) {
	f := apikey.Format{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Generate(keyward.Live); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = apikey.NewID("key")
	}
}

// TestRedact: every well-formed key of any prefix in a text is replaced by
// start…last4, text around it kept; text without one is unchanged.
func TestRedact(t *testing.T) {
	sk, _ := apikey.NewFormat("sk")
	kw, _ := apikey.NewFormat("kw2")
	a, _ := sk.Generate(keyward.Live)
	b, _ := kw.Generate(keyward.Test)
	show := func(k string) string { s, l := apikey.Display(k); return s + "…" + l }
	bad := a[:len(a)-1] + "A"
	if a[len(a)-1] == 'A' {
		bad = a[:len(a)-1] + "B"
	}
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"no key here: sk_live_ and _test_", "no key here: sk_live_ and _test_"},
		{a, show(a)},
		{"permission \"" + a + "\" is unknown", "permission \"" + show(a) + "\" is unknown"},
		{"x" + a + b + "y", "x" + show(a) + show(b) + "y"},
		{"?k=" + b + "&j=" + a, "?k=" + show(b) + "&j=" + show(a)},
		{"a bad checksum " + bad, "a bad checksum " + bad},
	} {
		if got := apikey.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { apikey.Redact("This key lacks the permission \"contacts:read\".") }); n != 0 {
		t.Errorf("Redact of a text without a key: %v allocations", n)
	}
}
