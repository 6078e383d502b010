package httpapi

import (
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestTextFields: names and metadata carry visible text only. Control
// characters, bidirectional overrides and isolates, zero-width and other
// invisible formatting characters, and invalid UTF-8 are refused with a
// 400 that names the field and the character as U+XXXX, never the
// character itself; nothing is stored.
func TestTextFields(t *testing.T) {
	h := newHarness(t)
	acme := h.tenant("acme")
	_, id := h.key(h.root, map[string]any{"tenant_id": acme, "name": "k", "metadata": map[string]string{"owner": "billing"}})
	create := func(name string, md map[string]string) map[string]any {
		return map[string]any{"tenant_id": acme, "name": name, "metadata": md}
	}
	cases := []struct {
		name   string
		method string
		path   string
		body   any
		field  string
		detail []string
		raw    string // what must not be in the answer
	}{
		{"name with ESC", "POST", "/v1/api-keys", create("ci\x1b]0;pwned\x07", nil), "name", []string{"U+001B", "control character"}, "\x1b"},
		{"name with C1 control", "POST", "/v1/api-keys", create("ci\u009b31m", nil), "name", []string{"U+009B"}, "\u009b"},
		{"name with RLO", "POST", "/v1/api-keys", create("invoice\u202Efdp.exe", nil), "name", []string{"U+202E", "bidirectional"}, "\u202e"},
		{"name with LRI", "POST", "/v1/api-keys", create("a\u2066b", nil), "name", []string{"U+2066"}, "\u2066"},
		{"name with RLM", "POST", "/v1/api-keys", create("a\u200fb", nil), "name", []string{"U+200F"}, "\u200f"},
		{"name with ALM", "POST", "/v1/api-keys", create("a\u061cb", nil), "name", []string{"U+061C"}, "\u061c"},
		{"name with zero-width space", "POST", "/v1/api-keys", create("prod\u200bbot", nil), "name", []string{"U+200B", "zero-width"}, "\u200b"},
		{"name with ZWJ", "POST", "/v1/api-keys", create("prod\u200dbot", nil), "name", []string{"U+200D"}, "\u200d"},
		{"name with word joiner", "POST", "/v1/api-keys", create("prod\u2060bot", nil), "name", []string{"U+2060"}, "\u2060"},
		{"name with BOM", "POST", "/v1/api-keys", create("\ufeffprod", nil), "name", []string{"U+FEFF"}, "\ufeff"},
		{"name with soft hyphen", "POST", "/v1/api-keys", create("pro\u00addbot", nil), "name", []string{"U+00AD"}, "\u00ad"},
		{"name with a combining grapheme joiner", "POST", "/v1/api-keys", create("a\u034fb", nil), "name", []string{"U+034F", "not displayed"}, "\u034f"},
		{"name of a Hangul filler", "POST", "/v1/api-keys", create("\u3164", nil), "name", []string{"U+3164", "not displayed"}, "\u3164"},
		{"name with a variation selector", "POST", "/v1/api-keys", create("a\ufe00b", nil), "name", []string{"U+FE00", "variation selector"}, "\ufe00"},
		{"metadata value with a Mongolian selector", "POST", "/v1/api-keys", create("x", map[string]string{"owner": "a\u180bb"}), "metadata.owner", []string{"U+180B"}, "\u180b"},
		{"metadata value with a supplementary selector", "POST", "/v1/api-keys", create("x", map[string]string{"owner": "a\U000E0100b"}), "metadata.owner", []string{"U+E0100"}, "\U000E0100"},
		{"name with line separator", "POST", "/v1/api-keys", create("a\u2028b", nil), "name", []string{"U+2028"}, "\u2028"},
		{"name with lone surrogate", "POST", "/v1/api-keys", `{"tenant_id":"` + acme + `","name":"a\udc00b"}`, "name", []string{"U+FFFD", "UTF-8"}, "\ufffd"},
		{"metadata value with ESC", "POST", "/v1/api-keys", create("x", map[string]string{"owner": "\x1b[2J"}), "metadata.owner", []string{"U+001B"}, "\x1b"},
		{"metadata value with newline", "POST", "/v1/api-keys", create("x", map[string]string{"owner": "a\nb"}), "metadata.owner", []string{"U+000A"}, "\n"},
		{"metadata value with tab", "POST", "/v1/api-keys", create("x", map[string]string{"owner": "a\tb"}), "metadata.owner", []string{"U+0009"}, "\t"},
		{"metadata value with RLO", "POST", "/v1/api-keys", create("x", map[string]string{"owner": "\u202eing"}), "metadata.owner", []string{"U+202E"}, "\u202e"},
		{"metadata value with zero-width", "POST", "/v1/api-keys", create("x", map[string]string{"owner": "bill\u200bing"}), "metadata.owner", []string{"U+200B"}, "\u200b"},
		{"metadata key with zero-width", "POST", "/v1/api-keys", create("x", map[string]string{"own\u200ber": "b"}), "metadata", []string{"U+200B", "tag name"}, "\u200b"},
		{"metadata key with ESC", "POST", "/v1/api-keys", create("x", map[string]string{"\x1b[2J": "b"}), "metadata", []string{"U+001B", "tag name"}, "\x1b"},
		{"update name with RLO", "PATCH", "/v1/api-keys/" + id, map[string]any{"name": "a\u202eb"}, "name", []string{"U+202E"}, "\u202e"},
		{"update metadata with ESC", "PATCH", "/v1/api-keys/" + id, map[string]any{"metadata": map[string]string{"owner": "\x1b[2J"}}, "metadata.owner", []string{"U+001B"}, "\x1b"},
		// encoding/json would read these bytes as U+FFFD without a word.
		{"invalid UTF-8 in the body", "POST", "/v1/api-keys", `{"tenant_id":"` + acme + "\",\"name\":\"bad\xff\xfename\"}", "", []string{"not valid UTF-8", "0xFF"}, "\xff"},
		{"invalid UTF-8 in an update", "PATCH", "/v1/api-keys/" + id, "{\"metadata\":{\"owner\":\"\xc3\"}}", "", []string{"not valid UTF-8", "0xC3"}, "\xc3"},
		{"metadata value over the limit", "POST", "/v1/api-keys", create("x", map[string]string{"owner": strings.Repeat("é", 129)}), "metadata.owner", []string{"258 bytes", "at most 256 bytes"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := h.call(tc.method, tc.path, h.root, tc.body)
			detail := problemOf(t, a, 400, keyward.CodeInvalidRequest)
			if tc.field != "" && (a.str("field") != tc.field || !strings.HasPrefix(detail, tc.field+": ")) {
				t.Errorf("field %q, detail %q; want both to name %q", a.str("field"), detail, tc.field)
			}
			for _, w := range tc.detail {
				if !strings.Contains(detail, w) {
					t.Errorf("detail %q does not mention %q", detail, w)
				}
			}
			if tc.raw != "" && strings.Contains(strings.TrimSuffix(a.raw, "\n"), tc.raw) {
				t.Errorf("the answer repeats the character %q: %s", tc.raw, a.raw)
			}
		})
	}
	// The body is read whole before it is checked, and still bounded.
	big := `{"tenant_id":"` + acme + `","name":"` + strings.Repeat("n", maxBody) + `"}`
	if d := problemOf(t, h.call("POST", "/v1/api-keys", h.root, big), 400, keyward.CodeInvalidRequest); !strings.Contains(d, "larger than") {
		t.Errorf("a body over %d bytes: detail %q", maxBody, d)
	}

	// Nothing of the above was stored.
	keys := h.must(200, "GET", "/v1/api-keys?tenant_id=acme", h.root, nil).list()
	if len(keys) != 1 || keys[0]["name"] != "k" || keys[0]["metadata"].(map[string]any)["owner"] != "billing" {
		t.Errorf("a refused request changed something: %v", keys)
	}
	// Visible text of any script is welcome, as are spaces inside a name.
	for _, name := range []string{"Zahlungsdienst für Bestellungen", "請求ボット", "בוט חיובים", "bot 🤖", "love \u2764\ufe0f"} {
		h.must(201, "POST", "/v1/api-keys", h.root, create(name, map[string]string{"owner": name}))
	}
}
