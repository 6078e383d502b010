package sqlstore

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/sqlrow"
	"github.com/klauspost/compress/s2"
)

// The request logs are stored in blocks (migration 14, docs/logs.md): a
// row per write of up to maxBlock entries, its entries a JSON array of
// arrays, with a Bloom filter of their request ids and a row of
// request_log_needles per tenant and key it holds. A write so costs a
// few rows whatever its size, and a query reads the blocks that may hold
// what it asks for and filters their entries.

// maxBlock is the most entries of one block.
const maxBlock = 4096

// compressed marks the data of a block that is compressed: a zero byte,
// then the JSON compressed with S2 (github.com/klauspost/compress/s2),
// which the repeated text of a block's entries (the same keys, routes and
// clients) shrinks several times over, for a small part of the CPU that
// writing it all to SQLite's log and then its file would cost. Blocks of
// plain JSON (those migration 14 made) start with [.
const compressed = 0

// compressBlock appends the compressed form of the JSON block js to dst.
func compressBlock(dst, js []byte) []byte {
	dst = append(dst[:0], compressed)
	n := len(dst)
	dst = slices.Grow(dst, s2.MaxEncodedLen(len(js)))
	return dst[:n+len(s2.Encode(dst[n:n+s2.MaxEncodedLen(len(js))], js))]
}

// bloomBitsPerEntry and bloomHashes give a Bloom filter about 1% of
// false positives.
const (
	bloomBitsPerEntry = 10
	bloomHashes       = 7
)

// encodeBlock appends the JSON array of logs, whose ids start at first,
// to dst, in the order of the columns of migration 14.
func encodeBlock(dst []byte, logs []keyward.RequestLog, first int64) []byte {
	dst = append(dst, '[')
	for i := range logs {
		l := &logs[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		dst = strconv.AppendInt(dst, first+int64(i), 10)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, l.At.UnixMicro(), 10)
		for _, s := range [...]string{l.RequestID, l.Surface, l.KeyID, l.TenantID, l.MemberID, l.Environment, l.Method, l.Route, l.Path} {
			dst = appendJSONString(append(dst, ','), s)
		}
		dst = strconv.AppendInt(append(dst, ','), int64(l.Status), 10)
		for _, s := range [...]string{string(l.Code), l.ClientIP, l.UserAgent, l.Referrer} {
			dst = appendJSONString(append(dst, ','), s)
		}
		dst = strconv.AppendInt(append(dst, ','), l.LatencyMicros, 10)
		if rl := l.RateLimit; rl != nil {
			for _, n := range [...]int64{rl.Limit, rl.Remaining, rl.ResetMillis} {
				dst = strconv.AppendInt(append(dst, ','), n, 10)
			}
		} else {
			dst = append(dst, ",null,null,null"...)
		}
		dst = append(dst, ']')
	}
	return append(dst, ']')
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	plain := 0 // the bytes of s that need no escaping, as most do
	for plain < len(s) && s[plain] >= 0x20 && s[plain] < utf8.RuneSelf && s[plain] != '"' && s[plain] != '\\' {
		plain++
	}
	dst = append(dst, s[:plain]...)
	for i := plain; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
			i++
		case c < 0x20:
			dst = append(dst, `\u00`...)
			dst = append(dst, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			i++
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(dst, '"')
}

// blockEntry is an entry as a block holds it: an array in the order of
// the columns.
type blockEntry struct{ keyward.RequestLog }

func (e *blockEntry) UnmarshalJSON(b []byte) error {
	var (
		at                            int64
		code                          string
		rlLimit, rlRemaining, rlReset *int64
		l                             = &e.RequestLog
	)
	fields := []any{&l.ID, &at, &l.RequestID, &l.Surface, &l.KeyID, &l.TenantID, &l.MemberID, &l.Environment, &l.Method, &l.Route, &l.Path,
		&l.Status, &code, &l.ClientIP, &l.UserAgent, &l.Referrer, &l.LatencyMicros, &rlLimit, &rlRemaining, &rlReset}
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	if len(fields) != 20 {
		return fmt.Errorf("a request-log entry has %d fields, want 20", len(fields))
	}
	l.At, l.Code = sqlrow.FromMicros(at), keyward.Code(code)
	if rlLimit != nil && rlRemaining != nil && rlReset != nil {
		l.RateLimit = &keyward.LoggedRateLimit{Limit: *rlLimit, Remaining: *rlRemaining, ResetMillis: *rlReset}
	}
	return nil
}

// decodeBlock reads the entries of a block, in the order of their ids.
func decodeBlock(data []byte) ([]keyward.RequestLog, error) {
	if len(data) > 0 && data[0] == compressed {
		js, err := s2.Decode(nil, data[1:])
		if err != nil {
			return nil, fmt.Errorf("a request-log block cannot be decompressed: %w", err)
		}
		data = js
	}
	var entries []blockEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("a request-log block cannot be read: %w", err)
	}
	out := make([]keyward.RequestLog, len(entries))
	for i := range entries {
		out[i] = entries[i].RequestLog
	}
	slices.SortFunc(out, func(a, b keyward.RequestLog) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// bloomOf is the Bloom filter of the request ids of logs.
func bloomOf(logs []keyward.RequestLog) []byte {
	bits := max(64, len(logs)*bloomBitsPerEntry)
	f := make([]byte, (bits+7)/8)
	for i := range logs {
		for _, b := range bloomBits(logs[i].RequestID, len(f)*8) {
			f[b/8] |= 1 << (b % 8)
		}
	}
	return f
}

// bloomHas reports whether filter f may hold request id id; a block
// without a filter (nil) may hold any.
func bloomHas(f []byte, id string) bool {
	if len(f) == 0 {
		return true
	}
	for _, b := range bloomBits(id, len(f)*8) {
		if f[b/8]&(1<<(b%8)) == 0 {
			return false
		}
	}
	return true
}

// bloomBits are the bits of id in a filter of m bits: double hashing of
// the 64-bit FNV-1a of id, which every node computes alike (written out
// here, as hash/fnv's would allocate for every entry written).
func bloomBits(id string, m int) [bloomHashes]uint64 {
	sum := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		sum = (sum ^ uint64(id[i])) * 1099511628211
	}
	a, b := sum&0xffffffff, sum>>32|1
	var out [bloomHashes]uint64
	for i := range out {
		out[i] = (a + uint64(i)*b) % uint64(m)
	}
	return out
}

// needlesOf are the tenants and keys logs hold, as request_log_needles
// names them, each once.
func needlesOf(logs []keyward.RequestLog) []string {
	seen := map[string]bool{}
	var out []string
	for i := range logs {
		for _, n := range [...]string{"t:" + logs[i].TenantID, "k:" + logs[i].KeyID} {
			if n != "k:" && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out
}

// matches reports whether l passes every filter of f but the page's.
func matches(l *keyward.RequestLog, f *keyward.RequestLogFilter) bool {
	switch {
	case f.TenantID != "" && l.TenantID != f.TenantID,
		f.KeyID != "" && l.KeyID != f.KeyID,
		f.RequestID != "" && l.RequestID != f.RequestID,
		f.Surface != "" && l.Surface != f.Surface,
		f.Code == keyward.CodeAllowed && l.Code != "",
		f.Code != "" && f.Code != keyward.CodeAllowed && l.Code != f.Code,
		f.Status != 0 && l.Status != f.Status,
		!f.From.IsZero() && l.At.Before(f.From),
		!f.To.IsZero() && !l.At.Before(f.To):
		return false
	}
	return true
}
