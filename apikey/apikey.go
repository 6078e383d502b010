// Package apikey owns the format of Keyward's keys: generation, parsing,
// checksum, hashing and display. It is pure: no storage, no I/O but
// crypto/rand.
//
// A key reads <prefix>_<env>_<body>, for example sk_live_3Fj9…. The prefix is
// set per instance and matches [a-z][a-z0-9]{1,11}; env is live or test; the
// body is RandomLen base62 characters from crypto/rand followed by ChecksumLen
// base62 digits of the CRC32 (IEEE) of everything before them. The checksum
// lets a server refuse a mistyped or made-up key without a storage lookup, and
// lets secret scanners find real keys with few false positives.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"hash/crc32"
	"strings"
	"unsafe"

	"github.com/keyward/keyward"
)

// DefaultPrefix is the prefix of keys when the instance sets none.
const DefaultPrefix = "sk"

// Lengths of a key's body.
const (
	// RandomLen is the number of random base62 characters (about 190 bits).
	RandomLen = 32
	// ChecksumLen is the number of base62 digits of the CRC32 that ends a key.
	ChecksumLen = 6
	// BodyLen is the length of everything after <prefix>_<env>_.
	BodyLen = RandomLen + ChecksumLen
)

// Prefix limits, from the pattern [a-z][a-z0-9]{1,11}.
const (
	minPrefixLen = 2
	maxPrefixLen = 12
)

// idRandomLen is the number of random base62 characters of an id (about 131
// bits).
const idRandomLen = 22

// alphabet holds the base62 digits in order of value.
const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// rejectFrom is the first random byte value that is thrown away: 248 is the
// largest multiple of 62 that fits in a byte, so a byte below it, taken
// modulo 62, gives each digit with the same probability.
const rejectFrom = 256 - 256%len(alphabet)

// Format generates and parses the keys of one instance, which all share one
// prefix. The zero Format uses DefaultPrefix.
type Format struct {
	prefix string
}

// NewFormat returns the Format of keys that start with prefix. The prefix
// must match [a-z][a-z0-9]{1,11}; otherwise the error is a
// CodeInvalidRequest *keyward.Error for the field key_prefix that says what a
// valid prefix looks like.
func NewFormat(prefix string) (Format, error) {
	if !validPrefix(prefix) {
		return Format{}, keyward.FieldErrorf("key_prefix",
			"%q is not a valid key prefix: use 2 to 12 characters, a lowercase letter (a-z) then lowercase letters or digits (a-z, 0-9), for example %q",
			prefix, DefaultPrefix)
	}
	return Format{prefix: prefix}, nil
}

// Prefix returns the prefix of the format's keys, without the underscore.
func (f Format) Prefix() string {
	if f.prefix == "" {
		return DefaultPrefix
	}
	return f.prefix
}

// Generate returns a new key for environment env, made from crypto/rand. The
// error is a CodeInvalidRequest *keyward.Error when env is neither live nor
// test, and a CodeInternal one if the system's randomness fails.
func (f Format) Generate(env keyward.Environment) (string, error) {
	if !env.Valid() {
		return "", keyward.FieldErrorf("environment", "must be %q or %q", keyward.Live, keyward.Test)
	}
	prefix := f.Prefix()
	head := len(prefix) + 1 + len(env) + 1
	key := make([]byte, head+BodyLen)
	n := copy(key, prefix)
	key[n] = '_'
	n += 1 + copy(key[n+1:], env)
	key[n] = '_'
	if err := fillBase62(key[head:head+RandomLen], rand.Read); err != nil {
		return "", keyward.Internal(err)
	}
	putChecksum(key[head+RandomLen:], crc32.ChecksumIEEE(key[:head+RandomLen]))
	// The key is not modified after this point, so it may become a string
	// without a copy.
	return unsafe.String(&key[0], len(key)), nil
}

// NewID returns a new identifier of the given kind: kind, an underscore and
// 22 base62 characters from crypto/rand, for example NewID("key") returns
// "key_3hF…". Ids are not secret. NewID panics only if the system's
// randomness fails.
func NewID(kind string) string {
	id := make([]byte, len(kind)+1+idRandomLen)
	n := copy(id, kind)
	id[n] = '_'
	if err := fillBase62(id[n+1:], rand.Read); err != nil {
		panic("apikey: crypto/rand failed: " + err.Error())
	}
	return unsafe.String(&id[0], len(id))
}

// Hash returns the SHA-256 of the whole key, the only form in which a key is
// stored. It does not allocate.
func Hash(key string) [32]byte {
	return sha256.Sum256(bytesOf(key))
}

// Display returns the parts of a key that may be shown in logs, errors, the
// dashboard and the audit log: start is <prefix>_<env>_ and the first 4
// characters of the body (for example "sk_live_3Fj9"), last4 the last 4
// characters of the key. For a string that is not shaped like a key (a valid
// prefix, live or test, and BodyLen base62 characters), both are empty, so
// that nothing of a malformed secret is shown. Display does not check the
// checksum or the instance's prefix.
func Display(key string) (start, last4 string) {
	head := Head(key)
	if head == "" || len(key)-len(head) != BodyLen || !allBase62(key[len(head):]) {
		return "", ""
	}
	return key[:len(head)+4], key[len(key)-4:]
}

// Head returns the head of a key: its <prefix>_<env>_ part, for example
// "sk_live_" (the prefix is "sk"; see Format.Prefix), or "" when the key
// does not start with a valid prefix followed by _live_ or _test_. It does
// not look at the body. A stored key keeps its head in keyward.Key.Prefix.
func Head(key string) string {
	i := strings.IndexByte(key, '_')
	if i < 0 || !validPrefix(key[:i]) {
		return ""
	}
	env, ok := splitEnv(key[i+1:])
	if !ok {
		return ""
	}
	return key[:i+1+len(env)+1]
}

// validPrefix reports whether p matches [a-z][a-z0-9]{1,11}.
func validPrefix(p string) bool {
	if len(p) < minPrefixLen || len(p) > maxPrefixLen || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := 1; i < len(p); i++ {
		if c := p[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// splitEnv returns the environment that rest starts with, followed by an
// underscore, and whether it does.
func splitEnv(rest string) (keyward.Environment, bool) {
	switch {
	case strings.HasPrefix(rest, string(keyward.Live)+"_"):
		return keyward.Live, true
	case strings.HasPrefix(rest, string(keyward.Test)+"_"):
		return keyward.Test, true
	}
	return "", false
}

// fillBase62 fills dst with uniformly distributed base62 digits. It reads
// random bytes with read into dst itself and keeps those below rejectFrom
// (rejection sampling, so no digit is more likely than another), reading
// again until dst is full.
func fillBase62(dst []byte, read func([]byte) (int, error)) error {
	filled := 0
	for filled < len(dst) {
		n, err := read(dst[filled:])
		if err != nil {
			return err
		}
		end := filled + n
		for i := filled; i < end; i++ {
			if b := dst[i]; int(b) < rejectFrom {
				dst[filled] = alphabet[int(b)%len(alphabet)]
				filled++
			}
		}
	}
	return nil
}

// putChecksum writes crc into dst as ChecksumLen base62 digits, most
// significant first, padded with '0'. 62^6 exceeds 2^32, so every CRC32 fits.
func putChecksum(dst []byte, crc uint32) {
	for i := ChecksumLen - 1; i >= 0; i-- {
		dst[i] = alphabet[crc%uint32(len(alphabet))]
		crc /= uint32(len(alphabet))
	}
}

// checksumMatches reports whether the last ChecksumLen characters of key are
// the checksum of the characters before them.
func checksumMatches(key string) bool {
	n := len(key) - ChecksumLen
	crc := crc32.ChecksumIEEE(bytesOf(key[:n]))
	for i := ChecksumLen - 1; i >= 0; i-- {
		if key[n+i] != alphabet[crc%uint32(len(alphabet))] {
			return false
		}
		crc /= uint32(len(alphabet))
	}
	return true
}

// base62Low and base62High have bit c set for each base62 digit c, of the
// byte values 0-63 and 64-127 respectively.
const (
	base62Low  uint64 = 0x03FF_0000_0000_0000 // 0-9
	base62High uint64 = 0x07FF_FFFE_07FF_FFFE // A-Z, a-z
)

// isBase62 reports whether c is one of 0-9, A-Z, a-z.
func isBase62(c byte) bool {
	if c < 64 {
		return base62Low>>c&1 != 0
	}
	return c < 128 && base62High>>(c-64)&1 != 0
}

// allBase62 reports whether every byte of s is a base62 digit.
func allBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isBase62(s[i]) {
			return false
		}
	}
	return true
}

// bytesOf returns the bytes of s without copying them. The result must only
// be read: crc32 and sha256 do not modify their input.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
