package manage

import (
	"unicode"
	"unicode/utf8"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// checkText refuses text that is not what it shows: invalid UTF-8, and any
// character a person cannot see or that changes how the text around it
// reads. Every text field a key carries (its name, its metadata tags and
// their values) goes through it; field names the field in the error and
// label, if not empty, what part of it is at fault ("tag name").
//
// Refused are control characters (C0, DEL and C1: line breaks, tabs and
// terminal escapes included), every format character (Unicode category
// Cf: the bidirectional marks, embeddings, overrides and isolates
// U+200E, U+200F, U+061C, U+202A–U+202E, U+2066–U+2069, the zero-width
// characters U+200B–U+200D, U+2060 and U+FEFF, the soft hyphen, invisible
// operators and tags), the other characters Unicode says are not displayed
// (Default_Ignorable_Code_Point: variation selectors, the Hangul fillers,
// the combining grapheme joiner…) except the emoji and text presentation
// selectors U+FE0E and U+FE0F that emoji such as ❤️ carry, the line and
// paragraph separators U+2028 and U+2029,
// and U+FFFD, which stands for text that could not be decoded (a JSON
// string with half a surrogate pair reads as it). Visible characters of
// every script, spaces and emoji are welcome.
//
// The error shows a character as U+XXXX, never as itself.
func checkText(field, label, s string) error {
	what := ""
	if label != "" {
		what = label + " "
	}
	if !utf8.ValidString(s) {
		i := invalidUTF8At(s)
		return keyward.FieldErrorf(field, "%sis not valid UTF-8 text (byte 0x%02X at byte %d); send the text encoded as UTF-8", what, s[i], i+1)
	}
	if apikey.ContainsAny(s) {
		return keyward.FieldErrorf(field, "%sholds an API key, and keys are never stored in names or metadata, which are shown in lists and logs; remove it, and replace that key, since it may have been exposed", what)
	}
	n := 0
	for _, r := range s {
		n++
		if why := unseen(r); why != "" {
			todo := "remove it and use visible characters only"
			if r == utf8.RuneError {
				todo = "send the text encoded as UTF-8"
			}
			return keyward.FieldErrorf(field, "%scontains U+%04X at character %d: %s; %s", what, r, n, why, todo)
		}
	}
	return nil
}

// unseen says what r is when it may not be in a text field, or returns ""
// when it may.
func unseen(r rune) string {
	switch {
	case r == '\n' || r == '\r' || r == '\t':
		return "a control character (a line break or tab)"
	case unicode.IsControl(r):
		return "a control character (such as a terminal escape)"
	case r == 0x061C || r == 0x200E || r == 0x200F || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069):
		return "an invisible bidirectional formatting character, which can make text display in another order than it is stored"
	case (r >= 0x200B && r <= 0x200D) || r == 0x2060 || r == 0xFEFF:
		return "an invisible zero-width character, which can make two different texts look the same"
	case unicode.Is(unicode.Cf, r):
		return "an invisible formatting character"
	case unicode.Is(unicode.Variation_Selector, r) && r != 0xFE0E && r != 0xFE0F:
		return "an invisible variation selector"
	case unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r):
		return "a character that is not displayed (such as a Hangul filler or a combining grapheme joiner)"
	case r == 0x2028 || r == 0x2029:
		return "a line or paragraph separator"
	case r == utf8.RuneError:
		return "the replacement character, which stands for text that was not valid UTF-8 (in JSON, half a surrogate pair such as \\udc00)"
	}
	return ""
}

// invalidUTF8At returns the index of the first byte of s that does not
// start a valid UTF-8 sequence; len(s) when there is none.
func invalidUTF8At(s string) int {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(s)
}
