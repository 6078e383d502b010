package apikey

import "strings"

// Contains reports whether s contains a well-formed key of this format, with
// a valid checksum, anywhere in it: alone, or between other text such as
// "api_key=" or a URL around it. It finds keys that leak where they do not
// belong (a URL, a log line) with the checksum's few false positives, and
// looks nothing up. Contains does not allocate.
func (f Format) Contains(s string) bool {
	prefix := f.Prefix()
	// n is the length of every key of the format: both environments have
	// four letters.
	n := len(prefix) + 1 + len("live") + 1 + BodyLen
	for len(s) >= n {
		i := strings.Index(s, prefix)
		if i < 0 || len(s)-i < n {
			return false
		}
		if c := s[i:]; c[len(prefix)] == '_' {
			if _, ok := splitEnv(c[len(prefix)+1:]); ok && allBase62(c[n-BodyLen:n]) && checksumMatches(c[:n]) {
				return true
			}
		}
		s = s[i+1:]
	}
	return false
}

// ContainsAny reports whether s contains a well-formed key of any valid
// prefix, with a valid checksum: for text that must never hold a key of
// any instance, such as a key's name or metadata.
func ContainsAny(s string) bool {
	_, _, ok := nextKey(s, 0)
	return ok
}

// Redact returns s with every well-formed key in it, of any valid prefix
// and with a valid checksum, replaced by its display form start…last4 (see
// Display): for text that may quote what a caller sent, such as an error
// message that repeats a value, before it reaches an answer, a log or a
// terminal. Text without a key is returned as it is, without allocating.
func Redact(s string) string {
	var b strings.Builder
	done := 0 // s[:done] is written to b, or needs no change when b is empty
	for i := 0; i < len(s); {
		start, end, ok := nextKey(s, i)
		if !ok {
			break
		}
		b.WriteString(s[done:start])
		first, last4 := Display(s[start:end])
		b.WriteString(first + "…" + last4)
		done, i = end, end
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// nextKey finds the first well-formed key of any valid prefix in s at or
// after from, and returns where it starts and ends.
func nextKey(s string, from int) (start, end int, ok bool) {
	for from < len(s) {
		j := strings.IndexByte(s[from:], '_')
		if j < 0 {
			return 0, 0, false
		}
		j += from // s[j] is the '_' after a prefix, if a key is here
		if _, isEnv := splitEnv(s[j+1:]); isEnv && len(s)-j >= len("_live_")+BodyLen {
			end := j + len("_live_") + BodyLen
			// The prefix is 2 to 12 characters before j; the checksum
			// tells which, since it covers the prefix.
			for p := max(0, j-maxPrefixLen); p <= j-minPrefixLen; p++ {
				if validPrefix(s[p:j]) && allBase62(s[end-BodyLen:end]) && checksumMatches(s[p:end]) {
					return p, end, true
				}
			}
		}
		from = j + 1
	}
	return 0, 0, false
}
