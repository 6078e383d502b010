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
