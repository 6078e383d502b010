package apikey

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyward/keyward"
)

// Reason names what is wrong with a string that is not a valid key.
type Reason string

// Reasons why Parse refuses a string.
const (
	// ReasonShape means no key was given, or a string that is not shaped
	// like a Keyward key (a hex string, a JWT, text before the key).
	ReasonShape Reason = "shape"
	// ReasonWhitespace means spaces, tabs or line breaks around or inside
	// the key.
	ReasonWhitespace Reason = "whitespace"
	// ReasonQuotes means quotes around or inside the key.
	ReasonQuotes Reason = "quotes"
	// ReasonPrefix means a key of another service or instance, or one that
	// lost its prefix.
	ReasonPrefix Reason = "prefix"
	// ReasonEnvironment means the part after the prefix is not live_ or
	// test_.
	ReasonEnvironment Reason = "environment"
	// ReasonLength means the body does not have BodyLen characters.
	ReasonLength Reason = "length"
	// ReasonAlphabet means the body has a character other than 0-9, A-Z
	// and a-z.
	ReasonAlphabet Reason = "alphabet"
	// ReasonChecksum means the checksum does not match the rest of the key.
	ReasonChecksum Reason = "checksum"
)

// ParseError says why a string is not a valid key. Message is public: it
// tells the caller what is wrong and what to do, and never contains any part
// of the key beyond its prefix.
type ParseError struct {
	Reason  Reason
	Message string
}

// Error returns the public message.
func (e *ParseError) Error() string { return e.Message }

// Parse checks that s is a well-formed key of this format, with a valid
// checksum, and returns its environment. It looks nothing up: a key that
// passes may still not exist. The checks run in this order, and the first
// mistake found is the one reported: empty, whitespace, quotes, prefix (a
// key of another service or instance, or no key shape at all), environment,
// length, alphabet, checksum. Parse does not allocate when s is valid.
func (f Format) Parse(s string) (keyward.Environment, *ParseError) {
	if s == "" {
		return "", &ParseError{ReasonShape, "no API key given"}
	}
	if e := checkCharacters(s); e != nil {
		return "", e
	}
	prefix := f.Prefix()
	i := strings.IndexByte(s, '_')
	if i < 0 || !validPrefix(s[:i]) || s[:i] != prefix {
		return "", wrongPrefix(s, i, prefix)
	}
	env, ok := splitEnv(s[i+1:])
	if !ok {
		return "", wrongEnvironment(s[i+1:], prefix)
	}
	head := s[:i+1+len(env)+1]
	body := s[len(head):]
	if len(body) != BodyLen || !allBase62(body) {
		if n := utf8.RuneCountInString(body); n != BodyLen {
			return "", wrongLength(head, n)
		}
		return "", wrongAlphabet(head, body)
	}
	if !checksumMatches(s) {
		return "", &ParseError{ReasonChecksum, "the key's checksum does not match: it was mistyped or truncated; copy it again from where you stored it"}
	}
	return env, nil
}

// checkCharacters finds whitespace, then quotes, anywhere in s: the mistakes
// of copying a key by hand or from a configuration file.
func checkCharacters(s string) *ParseError {
	space, quote := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > ' ' && c < utf8.RuneSelf && c != '"' && c != '\'' && c != '`' {
			continue // The common case: a printable ASCII character.
		}
		r := rune(c)
		if c >= utf8.RuneSelf {
			var size int
			r, size = utf8.DecodeRuneInString(s[i:])
			i += size - 1
		}
		switch {
		case isSpace(r):
			space = true
		case isQuote(r):
			quote = true
		}
	}
	if !space && !quote {
		return nil
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	switch {
	case space && (isSpace(first) || isSpace(last)):
		return &ParseError{ReasonWhitespace, "the key has surrounding whitespace; send it exactly as issued, without spaces or line breaks"}
	case space && hasScheme(s):
		return &ParseError{ReasonWhitespace, `the key starts with an authorization scheme such as "Bearer "; send the key alone in X-API-Key, or send "Authorization: Bearer <key>"`}
	case space:
		return &ParseError{ReasonWhitespace, "the key contains whitespace or a line break; send it exactly as issued, in one piece, without spaces or line breaks"}
	case quote && (isQuote(first) || isQuote(last)):
		return &ParseError{ReasonQuotes, "the key is wrapped in quotes; send it without quotes"}
	case quote:
		return &ParseError{ReasonQuotes, "the key contains a quote character; send it exactly as issued, without quotes"}
	}
	return nil
}

// hasScheme reports whether s starts with an HTTP authorization scheme and a
// space, as when a whole Authorization value is sent where a key belongs.
func hasScheme(s string) bool {
	for _, scheme := range [...]string{"bearer ", "basic ", "token ", "apikey ", "api-key "} {
		if len(s) > len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
			return true
		}
	}
	return false
}

// wrongPrefix explains why s does not start with prefix and an underscore; i
// is the index of the first underscore in s, or -1.
func wrongPrefix(s string, i int, prefix string) *ParseError {
	if i >= 0 {
		p := s[:i]
		_, envFollows := splitEnv(s[i+1:])
		switch {
		case validPrefix(p) && envFollows:
			return &ParseError{ReasonPrefix, fmt.Sprintf(
				"this key has prefix %q, but this server issues keys that start with %q; it may belong to another service or instance",
				p, prefix+"_")}
		case strings.EqualFold(p, prefix):
			return &ParseError{ReasonPrefix, fmt.Sprintf(
				"the key's prefix is in the wrong case: keys are case-sensitive and this server's keys start with %q in lowercase; send the key exactly as issued",
				prefix+"_")}
		}
	}
	if _, ok := splitEnv(s); ok {
		return &ParseError{ReasonPrefix, fmt.Sprintf(
			"the key is missing its prefix: keys from this server start with %q or %q; copy it again whole",
			prefix+"_live_", prefix+"_test_")}
	}
	if j := strings.Index(s, prefix+"_live_"); j > 0 {
		return extraBefore(prefix)
	}
	if j := strings.Index(s, prefix+"_test_"); j > 0 {
		return extraBefore(prefix)
	}
	return &ParseError{ReasonShape, fmt.Sprintf(
		"this is not a Keyward key: keys look like %s_live_… or %s_test_…", prefix, prefix)}
}

// extraBefore is the error for a key with other text before it, such as
// "key=" or "Bearer:".
func extraBefore(prefix string) *ParseError {
	return &ParseError{ReasonShape, fmt.Sprintf(
		"the value has extra characters before the key; send only the key, starting with %q", prefix+"_")}
}

// wrongEnvironment explains why rest, the part after the prefix and its
// underscore, does not start with live_ or test_.
func wrongEnvironment(rest, prefix string) *ParseError {
	for _, env := range [...]string{string(keyward.Live) + "_", string(keyward.Test) + "_"} {
		if len(rest) >= len(env) && strings.EqualFold(rest[:len(env)], env) {
			return &ParseError{ReasonEnvironment, fmt.Sprintf(
				"the key's environment is in the wrong case: keys are case-sensitive and continue after %q with \"live_\" or \"test_\" in lowercase; send the key exactly as issued",
				prefix+"_")}
		}
	}
	return &ParseError{ReasonEnvironment, fmt.Sprintf(
		"the key's environment is missing or unknown: after %q a key continues with \"live_\" or \"test_\"; copy it again whole",
		prefix+"_")}
}

// wrongLength explains a body of n characters after head.
func wrongLength(head string, n int) *ParseError {
	if n < BodyLen {
		return &ParseError{ReasonLength, fmt.Sprintf(
			"the key is too short: after %q it should have %d characters, but it has %d; it was probably cut off, so copy it again whole",
			head, BodyLen, n)}
	}
	return &ParseError{ReasonLength, fmt.Sprintf(
		"the key is too long: after %q it should have %d characters, but it has %d; send only the key, with nothing after it",
		head, BodyLen, n)}
}

// wrongAlphabet explains a body of BodyLen characters, one of which is not
// base62. It names the position of the first such character, not the
// character.
func wrongAlphabet(head, body string) *ParseError {
	pos := 0
	for _, r := range body {
		pos++
		if r >= utf8.RuneSelf || !isBase62(byte(r)) {
			break
		}
	}
	return &ParseError{ReasonAlphabet, fmt.Sprintf(
		"the key has a character that keys never contain (character %d after %q): keys use only letters A-Z, a-z and digits 0-9 there; copy it again from where you stored it",
		pos, head)}
}

// isSpace reports whether r is whitespace, or one of the invisible
// characters that copying from documents and chats adds (zero-width spaces
// and joiners, the byte order mark).
func isSpace(r rune) bool {
	switch r {
	case '\u200B', '\u200C', '\u200D', '\u2060', '\uFEFF':
		return true
	}
	return unicode.IsSpace(r)
}

// isQuote reports whether r is a straight, curly or angle quote, or a
// backtick.
func isQuote(r rune) bool {
	switch r {
	case '\'', '"', '`',
		'\u2018', '\u2019', '\u201A', '\u201B', // ‘ ’ ‚ ‛
		'\u201C', '\u201D', '\u201E', '\u201F', // “ ” „ ‟
		'\u2032', '\u2033', // ′ ″
		'\u00AB', '\u00BB', '\u2039', '\u203A': // « » ‹ ›
		return true
	}
	return false
}
