// Package reqlog writes the request logs: one entry per verification, on
// every surface, kept in memory by the request that made it and written to
// the store in batches by a goroutine of its own, so that a verification
// never waits for the storage (docs/logs.md).
//
// A surface fills an Entry, whose text may view memory it reuses, and
// calls Log.Add, which copies it into a slot of a buffer of fixed size,
// its text into the buffer's arena, without allocating. When the buffer
// (or its arena) is full the entry is dropped and counted (Log.Dropped),
// never waited for: a
// verification must not slow down because the storage does. The writer
// swaps the buffer for its spare, turns the slots into
// keyward.RequestLogs (redacting any key that a path, user agent or
// referrer quotes) and writes them in one call. Entries the store refuses
// are kept, up to the buffer's size, for the next write. Close writes what
// is left.
package reqlog

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/verify"
)

// Entry is what a surface tells of one verification. Its text may view
// memory that the caller reuses once Add returns: Add copies it.
type Entry struct {
	At        time.Time // the request's arrival
	Latency   time.Duration
	RequestID string
	Surface   string // a keyward.Surface… constant
	Method    string
	Route     string // the pattern of the route that decided, or ""
	Path      string // the path alone: Add cuts any query string
	Status    int
	Code      keyward.Code
	ClientIP  netip.Addr
	UserAgent string
	Referrer  string // Add cuts its query string and fragment
	// Key is the verified key when it was found; nil for none. Add keeps
	// the pointer (a cache entry's key, never changed in place).
	Key *keyward.Key
	// RateLimit is the decision of the key's rate limits, or nil: Add
	// copies its tightest bucket.
	RateLimit *limit.Decision
}

// Limits on the text of an entry, in bytes: longer text is cut.
const (
	maxRequestID = 128
	maxMethod    = 32
	maxPath      = 2048
	maxUserAgent = 512
	maxReferrer  = 1024
)

// DefaultBuffer is the number of entries a Log holds before it drops.
const DefaultBuffer = 16384

// arenaPerEntry is the room for text in a buffer's arena, per entry: a
// request id, a method, a route and a path, a user agent and a referrer
// take less on average, and an entry that finds the arena full is dropped.
const arenaPerEntry = 320

// DefaultInterval is how often the writer writes, at the latest; it writes
// sooner when half the buffer is used.
const DefaultInterval = 250 * time.Millisecond

// DefaultRetention is how long entries are kept (serve --log-retention).
const DefaultRetention = 30 * 24 * time.Hour

// DefaultUsageRetention is how long usage counts are kept (serve
// --usage-retention).
const DefaultUsageRetention = 365 * 24 * time.Hour

// pruneBatch is the most entries one prune deletes; pruning goes on, batch
// after batch, until fewer are left.
const pruneBatch = 5000

// pruneInterval is how often the writer prunes.
const pruneInterval = 10 * time.Minute

// slot is an entry in the buffer: its text copied into the buffer's
// arena, from start to the ends in end.
type slot struct {
	e     Entry // its text fields unset
	start int32
	end   [6]int32
	rl    keyward.LoggedRateLimit
	hrl   bool
}

// buffer is the slots of entries added (len: used; cap: the buffer's
// size) and the arena their text is copied into.
type buffer struct {
	slots []slot
	arena []byte
}

// newBuffer returns an empty buffer of n entries.
func newBuffer(n int) *buffer {
	return &buffer{slots: make([]slot, 0, n), arena: make([]byte, 0, n*arenaPerEntry)}
}

// text fields of a slot, in the order of slot.end.
const (
	fRequestID = iota
	fMethod
	fRoute
	fPath
	fUserAgent
	fReferrer
)

// Config is what New needs.
type Config struct {
	// Store is where entries and usage counts are written; nil for none:
	// Add then only observes (serve --log-buffer 0).
	Store interface {
		keyward.RequestLogStore
		keyward.UsageStore
	}
	// Observe, when set, is called with every entry Add is given, before
	// it is buffered or dropped, and must not keep it: the metrics.
	Observe func(*Entry)
	// Buffer is the number of entries held before new ones are dropped;
	// DefaultBuffer when 0.
	Buffer int
	// Interval is the longest time between two writes; DefaultInterval
	// when 0.
	Interval time.Duration
	// Retention is how long entries are kept; DefaultRetention when 0.
	Retention time.Duration
	// UsageRetention is how long usage counts are kept;
	// DefaultUsageRetention when 0.
	UsageRetention time.Duration
	// Sharing judges the clients each key is seen from (docs/signals.md);
	// the zero rule judges none, and sightings are then not written.
	Sharing keyward.SharingRule
	// Spikes says when refusals spike; the zero rule watches none.
	Spikes SpikeRule
	// Timeout bounds each write and prune.
	Timeout time.Duration
	Logger  *slog.Logger
	// Now is the clock of pruning; time.Now when nil.
	Now func() time.Time
}

// Log is the buffer of entries and its writer. A nil *Log drops nothing
// and writes nothing: Add on it does nothing.
type Log struct {
	c       Config
	mu      sync.Mutex
	cur     *buffer
	spare   *buffer
	half    int
	wake    chan struct{}
	dropped atomic.Uint64
	written atomic.Uint64

	// missed counts the usage of the entries Add dropped, which the
	// usage counts keep all the same; under mu.
	missed map[usageKey]int64

	// flushMu makes writes one at a time; pending holds the entries the
	// store refused, for the next write, and usage the counts not yet
	// written, those of entries dropped since included.
	flushMu  sync.Mutex
	pending  []keyward.RequestLog
	usage    map[usageKey]int64
	reported uint64 // dropped entries already warned of
	sights   sightings
	spikes   spikes

	started atomic.Bool
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// New returns a Log that writes to c.Store; Start runs its writer.
func New(c Config) *Log {
	if c.Buffer <= 0 {
		c.Buffer = DefaultBuffer
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Retention <= 0 {
		c.Retention = DefaultRetention
	}
	if c.UsageRetention <= 0 {
		c.UsageRetention = DefaultUsageRetention
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Store == nil {
		c.Buffer = 0
	}
	var seed func(tenant, key string, minute int64) float64
	if c.Store != nil {
		seed = seedFrom(c.Store, c.Timeout)
	}
	return &Log{c: c, cur: newBuffer(c.Buffer), spare: newBuffer(c.Buffer), half: max(c.Buffer/2, 1),
		missed: map[usageKey]int64{}, usage: map[usageKey]int64{},
		sights: sightings{seen: map[sightKey]struct{}{}, counts: map[sightCount]int{}},
		spikes: spikes{rule: c.Spikes, subjects: map[[2]string]*subject{}, seed: seed},
		wake:   make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// Add copies e into the buffer, or drops and counts it when the buffer is
// full. It does not wait for the storage, and does not allocate (but to
// count the usage of a dropped entry in an hour not counted yet).
func (l *Log) Add(e *Entry) {
	if l == nil {
		return
	}
	if l.c.Observe != nil {
		l.c.Observe(e)
	}
	if l.c.Store == nil {
		return
	}
	l.mu.Lock()
	b := l.cur
	n := len(b.slots)
	if n == cap(b.slots) || !b.fill(e) {
		l.missed[usageOf(e.Key, e.At, e.Code)]++
		l.mu.Unlock()
		l.dropped.Add(1)
		l.signal()
		return
	}
	l.mu.Unlock()
	if n+1 == l.half {
		l.signal()
	}
}

// signal wakes the writer.
func (l *Log) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// fill copies e into the next slot of b and reports true, or reports
// false when its text does not fit in the arena.
func (b *buffer) fill(e *Entry) bool {
	texts := [...]string{
		cut(e.RequestID, maxRequestID), cut(e.Method, maxMethod), cut(e.Route, maxPath), cut(pathOf(e.Path), maxPath),
		cut(e.UserAgent, maxUserAgent), cut(referrerOf(e.Referrer), maxReferrer),
	}
	size := 0
	for _, t := range texts {
		size += len(t)
	}
	if len(b.arena)+size > cap(b.arena) {
		return false
	}
	b.slots = b.slots[:len(b.slots)+1]
	s := &b.slots[len(b.slots)-1]
	s.e = *e
	s.start = int32(len(b.arena))
	for i, t := range texts {
		b.arena = append(b.arena, t...)
		s.end[i] = int32(len(b.arena))
	}
	s.e.RequestID, s.e.Method, s.e.Route, s.e.Path, s.e.UserAgent, s.e.Referrer = "", "", "", "", "", ""
	s.e.RateLimit = nil
	s.hrl = false
	if d := e.RateLimit; d != nil && d.N > 0 {
		st := &d.States[d.Tightest]
		s.rl = keyward.LoggedRateLimit{Limit: st.Limit, Remaining: st.Remaining, ResetMillis: st.Reset.Milliseconds()}
		s.hrl = true
	}
	return true
}

// cut is s, at most n bytes of it. A cut through a key would leave a part
// of it that Redact no longer recognizes as one: when the text cut off
// ends in a run of key characters that holds a key's head (_live_,
// _test_), the run goes too. A key's head and body are at most 56 bytes,
// so looking 64 back finds it.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	i := len(s)
	for i > 0 && i > len(s)-64 && keyChar(s[i-1]) {
		i--
	}
	if tail := s[i:]; strings.Contains(tail, "_live_") || strings.Contains(tail, "_test_") {
		return s[:i]
	}
	return s
}

// keyChar reports whether c may be part of a key: a letter, a digit or _.
func keyChar(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// pathOf is the path of a target, without its query string.
func pathOf(target string) string {
	if i := strings.IndexByte(target, '?'); i >= 0 {
		return target[:i]
	}
	return target
}

// referrerOf is a referrer without its query string and fragment, which
// may hold what its page was given (a token, a key).
func referrerOf(r string) string {
	if i := strings.IndexAny(r, "?#"); i >= 0 {
		return r[:i]
	}
	return r
}

// usageKey is what a usage count counts: one key's (or no key's)
// requests with one outcome in one hour (its start, in Unix seconds).
type usageKey struct {
	tenant, key string
	hour        int64
	code        keyward.Code
}

// usageOf is the usage count a request of key (nil for none) at at with
// code falls in.
func usageOf(k *keyward.Key, at time.Time, code keyward.Code) usageKey {
	u := usageKey{hour: at.Truncate(time.Hour).Unix(), code: code}
	if k != nil {
		u.tenant, u.key = k.TenantID, k.ID
	}
	return u
}

// usageCounts are the hourly counts in usage and the daily counts they
// add up to, as the store keeps them.
func usageCounts(usage map[usageKey]int64) []keyward.UsageCount {
	out := make([]keyward.UsageCount, 0, 2*len(usage))
	days := make(map[usageKey]int64, len(usage))
	for u, n := range usage {
		out = append(out, keyward.UsageCount{TenantID: u.tenant, KeyID: u.key, Granularity: keyward.Hourly, Start: time.Unix(u.hour, 0).UTC(), Code: u.code, Count: n})
		d := u
		d.hour = time.Unix(d.hour, 0).Truncate(24 * time.Hour).Unix()
		days[d] += n
	}
	for u, n := range days {
		out = append(out, keyward.UsageCount{TenantID: u.tenant, KeyID: u.key, Granularity: keyward.Daily, Start: time.Unix(u.hour, 0).UTC(), Code: u.code, Count: n})
	}
	return out
}

// field returns the text field i of s, in arena.
func (s *slot) field(arena []byte, i int) string {
	start := s.start
	if i > 0 {
		start = s.end[i-1]
	}
	return string(arena[start:s.end[i]])
}

// record turns s, whose text is in arena, into what the store keeps.
func (s *slot) record(arena []byte) keyward.RequestLog {
	e := &s.e
	r := keyward.RequestLog{
		At: e.At.UTC(), RequestID: clean(s.field(arena, fRequestID)), Surface: e.Surface,
		Method: clean(s.field(arena, fMethod)), Route: clean(s.field(arena, fRoute)), Path: clean(s.field(arena, fPath)),
		Status: e.Status, Code: e.Code, UserAgent: clean(s.field(arena, fUserAgent)), Referrer: clean(s.field(arena, fReferrer)),
		LatencyMicros: e.Latency.Microseconds(),
	}
	if e.ClientIP.IsValid() {
		r.ClientIP = e.ClientIP.Unmap().String()
	}
	if k := e.Key; k != nil {
		r.KeyID, r.TenantID, r.MemberID, r.Environment = k.ID, k.TenantID, k.MemberID, string(k.Environment)
	}
	if s.hrl {
		rl := s.rl
		r.RateLimit = &rl
	}
	return r
}

// clean makes text fit to store and show: valid UTF-8, no control
// characters, and every well-formed key in it redacted.
func clean(s string) string {
	ok := utf8.ValidString(s)
	for i := 0; ok && i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			ok = false
		}
	}
	if !ok {
		s = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f || r == utf8.RuneError {
				return '\uFFFD'
			}
			return r
		}, strings.ToValidUTF8(s, "\uFFFD"))
	}
	return apikey.Redact(s)
}

// Dropped returns the number of entries dropped so far because the
// buffer was full, or because the store refused them for longer than the
// buffer could hold them.
func (l *Log) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Written returns the number of entries written so far.
func (l *Log) Written() uint64 {
	if l == nil {
		return 0
	}
	return l.written.Load()
}

// Flush writes every entry added so far. An error leaves the entries
// pending for the next write (up to the buffer's size; beyond it the
// oldest are dropped and counted).
func (l *Log) Flush(ctx context.Context) error {
	if l == nil || l.c.Store == nil {
		return nil
	}
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	taken := l.cur
	l.cur, l.spare = l.spare, nil
	for u, n := range l.missed {
		l.usage[u] += n
	}
	clear(l.missed)
	l.mu.Unlock()
	for i := range taken.slots {
		s := &taken.slots[i]
		l.usage[usageOf(s.e.Key, s.e.At, s.e.Code)]++
		r := s.record(taken.arena)
		l.pending = append(l.pending, r)
		if k := s.e.Key; k != nil && l.c.Sharing.On() {
			l.sights.add(k, s.e.At, s.e.ClientIP, r.UserAgent, r.Referrer)
		}
		l.spikes.add(&s.e)
	}
	clear(taken.slots) // no key kept alive
	taken.slots, taken.arena = taken.slots[:0], taken.arena[:0]
	l.mu.Lock()
	l.spare = taken
	l.mu.Unlock()
	if over := len(l.pending) - cap(taken.slots); over > 0 {
		l.dropped.Add(uint64(over))
		l.pending = append(l.pending[:0], l.pending[over:]...)
	}
	l.warnDropped()
	if len(l.pending) == 0 && len(l.usage) == 0 && len(l.sights.pending) == 0 && len(l.spikes.pending) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.c.Timeout)
	defer cancel()
	b := &keyward.LogBatch{Logs: l.pending, Usage: usageCounts(l.usage), Sightings: l.sights.pending, Sharing: l.c.Sharing,
		Spikes: l.spikes.pending, SpikeQuiet: l.c.Spikes.Quiet, At: l.c.Now()}
	if err := l.c.Store.WriteRequestLogs(ctx, b); err != nil {
		return err
	}
	l.written.Add(uint64(len(l.pending)))
	clear(l.pending)
	l.pending = l.pending[:0]
	clear(l.usage)
	l.sights.pending = l.sights.pending[:0]
	l.spikes.pending = l.spikes.pending[:0]
	return nil
}

// warnDropped logs, at most once a write, how many entries were dropped
// since the last warning.
func (l *Log) warnDropped() {
	d := l.dropped.Load()
	if d == l.reported {
		return
	}
	l.c.Logger.Warn("request log: entries dropped, the buffer was full (raise --log-buffer, or check the storage)", "dropped", d-l.reported, "dropped_total", d)
	l.reported = d
}

// Prune deletes the entries older than the retention and the usage
// counts older than theirs, in batches, and returns how many of each it
// deleted.
func (l *Log) Prune(ctx context.Context) (entries, counts int64, err error) {
	if l.c.Store == nil {
		return 0, 0, nil
	}
	now := l.c.Now()
	if entries, err = l.pruneAll(ctx, now.Add(-l.c.Retention), l.c.Store.PruneRequestLogs); err != nil {
		return entries, 0, err
	}
	if _, err = l.pruneAll(ctx, now.Add(-l.c.Retention), l.c.Store.PruneSignals); err != nil {
		return entries, 0, err
	}
	counts, err = l.pruneAll(ctx, now.Add(-l.c.UsageRetention), l.c.Store.PruneUsage)
	return entries, counts, err
}

// pruneAll calls prune, a batch at a time, until fewer than a batch are
// left before before.
func (l *Log) pruneAll(ctx context.Context, before time.Time, prune func(context.Context, time.Time, int) (int64, error)) (int64, error) {
	var total int64
	for {
		ctx, cancel := context.WithTimeout(ctx, l.c.Timeout)
		n, err := prune(ctx, before, pruneBatch)
		cancel()
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}

// Start runs the writer until Close: it writes at every interval, or
// sooner when the buffer is half full, and prunes every 10 minutes.
func (l *Log) Start(ctx context.Context) {
	if l.c.Store == nil || !l.started.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(l.c.Interval)
		defer tick.Stop()
		prune := time.NewTicker(pruneInterval)
		defer prune.Stop()
		l.prune(ctx)
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			case <-l.wake:
			case <-prune.C:
				l.prune(ctx)
				continue
			}
			if err := l.Flush(ctx); err != nil {
				l.c.Logger.Warn("request log: could not write entries; they are kept for the next try", "pending", l.pendingLen(), "err", err)
			}
		}
	}()
}

// prune runs Prune and logs its failure.
func (l *Log) prune(ctx context.Context) {
	if _, _, err := l.Prune(ctx); err != nil {
		l.c.Logger.Warn("request log: could not prune old entries", "err", err)
	}
}

// pendingLen is the number of entries waiting after a failed write.
func (l *Log) pendingLen() int {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	return len(l.pending)
}

// Close stops the writer and writes what is left: an entry added before
// Close is written unless the store refuses it until ctx ends.
func (l *Log) Close(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.once.Do(func() { close(l.stop) })
	if l.started.Load() {
		select {
		case <-l.done:
		case <-ctx.Done():
		}
	}
	for {
		err := l.Flush(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Verified fills e with a verification's outcome on surface: the key
// (when it was found), the code and its status (200 when accepted), the
// rate-limit decision (which must last until Add), and, where req gives
// them, the original request's method, target, route, address and
// referrer, which stand for the request that forward-auth or /v1/verify
// was asked about.
func (e *Entry) Verified(surface string, res *verify.Result, req *verify.Request) {
	e.Surface, e.Key, e.Code, e.Status, e.RateLimit = surface, res.Key, res.Code, http.StatusOK, res.RateLimit
	if res.Code != "" {
		e.Status = res.Code.Status()
	}
	if req.Method != "" {
		e.Method = req.Method
	}
	if req.Target != "" {
		e.Path = req.Target
	}
	e.Route = ""
	if res.Route != nil && res.Route.Pattern != nil {
		e.Route = res.Route.Pattern.String()
	}
	if req.IP.IsValid() {
		e.ClientIP = req.IP
	}
	if req.Referer != "" {
		e.Referrer = req.Referer
	}
}

// AccessLog returns an Observe function that logs each entry to logger at
// level Info, as one structured line (serve --access-log), with the
// entry's text cleaned as the request log stores it: no query string,
// every key redacted. It allocates, which is why it is only on when asked.
func AccessLog(logger *slog.Logger) func(*Entry) {
	return func(e *Entry) {
		attrs := []slog.Attr{
			slog.String("request_id", clean(cut(e.RequestID, maxRequestID))),
			slog.String("surface", e.Surface),
			slog.String("method", clean(cut(e.Method, maxMethod))),
			slog.String("path", clean(cut(pathOf(e.Path), maxPath))),
			slog.Int("status", e.Status),
			slog.Int64("latency_us", e.Latency.Microseconds()),
		}
		if e.Route != "" {
			attrs = append(attrs, slog.String("route", clean(cut(e.Route, maxPath))))
		}
		if e.Code != "" {
			attrs = append(attrs, slog.String("code", string(e.Code)))
		}
		if k := e.Key; k != nil {
			attrs = append(attrs, slog.String("key_id", k.ID), slog.String("tenant_id", k.TenantID))
		}
		if e.ClientIP.IsValid() {
			attrs = append(attrs, slog.String("client_ip", e.ClientIP.Unmap().String()))
		}
		if e.UserAgent != "" {
			attrs = append(attrs, slog.String("user_agent", clean(cut(e.UserAgent, maxUserAgent))))
		}
		if e.Referrer != "" {
			attrs = append(attrs, slog.String("referrer", clean(cut(referrerOf(e.Referrer), maxReferrer))))
		}
		logger.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
	}
}
