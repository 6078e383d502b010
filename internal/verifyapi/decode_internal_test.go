package verifyapi

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/jsonbody"
)

// TestDecodeSimple holds DecodeSimple to jsonbody.Decode: every body it
// takes, jsonbody.Decode takes too, into the same Body; the bodies of
// the load test and of the clients it is meant for are among those it
// takes; and bodies it leaves to jsonbody.Decode are many and varied
// (escapes, other spellings, repeated fields, null, wrong types,
// trailing data), generated at random from pieces of JSON.
func TestDecodeSimple(t *testing.T) {
	for _, body := range []string{
		`{"key":"sk_live_abc","permissions":["contacts:read"]}`,
		`{"key": "sk_live_abc", "permissions": ["a", "b"], "ip": "203.0.113.7", "method": "GET", "path": "/v1/x?y=1",
		  "referrer": "https://app.example/", "origin": "https://app.example", "tls": true}`,
		`{}`, ` { } `, `{"tls":false}`, `{"permissions":[]}`,
	} {
		var b Body
		if !b.DecodeSimple([]byte(body)) {
			t.Errorf("DecodeSimple does not take %s", body)
		}
		same(t, body, b)
	}
	for _, body := range []string{
		``, `null`, `[]`, `{"Key":"a"}`, `{"key":"a","key":"b"}`, `{"key":null}`, `{"key":"a\"b"}`, `{"key":"é"}`,
		`{"key":1}`, `{"tls":"true"}`, `{"permissions":"a"}`, `{"key":"a"} {}`, `{"key":"a",}`, `{"other":"a"}`, `{"key":"a"`,
	} {
		var b Body
		if b.DecodeSimple([]byte(body)) {
			t.Errorf("DecodeSimple takes %q, which it should leave to jsonbody.Decode", body)
		}
	}
	pieces := []string{`{`, `}`, `[`, `]`, `,`, `:`, ` `, "\n", "\t", `"key"`, `"Key"`, `"permissions"`, `"ip"`, `"method"`,
		`"path"`, `"referrer"`, `"origin"`, `"tls"`, `"other"`, `"sk_live_x"`, `"a b"`, `"a\"b"`, `"\u0041"`, `"é"`, `""`,
		`true`, `false`, `null`, `1`, `-0.5`, `{}`, `[]`, `"/v1/x?y"`, `"a\\b"`, "\"\x01\"", `tru`}
	rng := rand.New(rand.NewPCG(1, 2))
	taken := 0
	for range 200000 {
		var sb strings.Builder
		if rng.IntN(2) == 0 {
			// Mostly well-formed objects, to reach deep into the grammar.
			sb.WriteString("{")
			for i, n := 0, rng.IntN(5); i < n; i++ {
				if i > 0 {
					sb.WriteString(pieces[rng.IntN(7)])
				}
				sb.WriteString(pieces[9+rng.IntN(10)])
				sb.WriteString(":")
				if rng.IntN(3) == 0 {
					sb.WriteString("[" + pieces[19+rng.IntN(len(pieces)-19)] + "," + pieces[19+rng.IntN(len(pieces)-19)] + "]")
				} else {
					sb.WriteString(pieces[19+rng.IntN(len(pieces)-19)])
				}
			}
			sb.WriteString(pieces[rng.IntN(8)])
		} else {
			for i, n := 0, rng.IntN(12); i < n; i++ {
				sb.WriteString(pieces[rng.IntN(len(pieces))])
			}
		}
		body := sb.String()
		var b Body
		if b.DecodeSimple([]byte(body)) {
			taken++
			same(t, body, b)
		}
	}
	if taken < 1000 {
		t.Errorf("DecodeSimple took only %d of the random bodies: the test reaches too little of it", taken)
	}
}

// same checks that jsonbody.Decode takes body into got.
func same(t *testing.T, body string, got Body) {
	t.Helper()
	var want Body
	if err := jsonbody.Decode([]byte(body), &want); err != nil {
		t.Fatalf("DecodeSimple takes %q, which jsonbody.Decode refuses: %v", body, err)
	}
	if len(got.Permissions) == 0 && len(want.Permissions) == 0 {
		got.Permissions, want.Permissions = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: DecodeSimple gives %+v, jsonbody.Decode %+v", body, got, want)
	}
}
