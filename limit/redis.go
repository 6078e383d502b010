package limit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps buckets in Redis, shared by every node that uses the same
// Redis and prefix. A decision is one round trip whatever the number of
// buckets: one Lua script (EVALSHA, and EVAL the first time a server has
// not seen it) that checks every bucket and, only if all allow, writes all.
//
// The script reads the time from Redis (TIME), not from the nodes, so that
// nodes whose clocks disagree still share one consistent bucket; Allow
// ignores its now. States are in microseconds, the resolution of TIME.
//
// Each bucket is one Redis string, prefix + Key, holding its TAT in Unix
// microseconds and expiring when the bucket is full again, so idle buckets
// vanish by themselves. The keys of one decision may hash to different
// slots, so a Redis Cluster would refuse the script (CROSSSLOT): Redis is a
// single server, or a primary with replicas.
//
// The client must honour context deadlines (go-redis's
// Options.ContextTimeoutEnabled, which ClientOptions sets): otherwise a
// Fallback waits for a silent Redis as long as go-redis's own read timeout
// (3 s by default) rather than its own timeout.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

// NewRedis returns a limiter on client whose bucket keys start with
// prefix, such as "keyward:rate:".
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// ClientOptions returns go-redis options for a limiter's client of the
// Redis at url (redis://, rediss:// or unix://, as go-redis's ParseURL
// reads it), with context deadlines honoured (ContextTimeoutEnabled), so
// that the deadline of Allow's context bounds every wait on Redis, dialing
// included.
func ClientOptions(url string) (*redis.Options, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	opts.ContextTimeoutEnabled = true
	return opts, nil
}

// gcraScript decides a request over the buckets KEYS. ARGV[1] is the cost;
// ARGV[2i] and ARGV[2i+1] are bucket i's emission interval and burst
// tolerance in microseconds; the last ARGV is 1 to consume the cost when
// every bucket allows it, 0 to decide only (Set.Check). It returns {allowed (1 or 0), now, TAT of each
// bucket after the decision}, all in microseconds; a TAT before now (a full
// bucket) is returned as now. Numbers are written with %.0f, since Lua
// would otherwise write a large one as 1.7e+15 and lose its digits.
var gcraScript = redis.NewScript(`
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local cost = tonumber(ARGV[1])
local tats = {}
local ok = 1
for i = 1, #KEYS do
	local t = tonumber(ARGV[2 * i])
	local tau = tonumber(ARGV[2 * i + 1])
	local tat = tonumber(redis.call('GET', KEYS[i])) or now
	if tat < now then tat = now end
	tats[i] = tat
	if cost * t > tau or tat + cost * t - tau > now then ok = 0 end
end
if ok == 1 and ARGV[2 * #KEYS + 2] == '1' then
	for i = 1, #KEYS do
		tats[i] = tats[i] + cost * tonumber(ARGV[2 * i])
		redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000))
	end
end
local out = {ok, now}
for i = 1, #KEYS do out[i + 2] = tats[i] end
return out
`)

// refundScript gives back ARGV[1] (the cost) to each bucket of KEYS:
// ARGV[i+1] is bucket i's emission interval in microseconds. A bucket is
// never left fuller than full (a TAT before now), and one that has expired
// (full) is left alone.
var refundScript = redis.NewScript(`
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local cost = tonumber(ARGV[1])
for i = 1, #KEYS do
	local tat = tonumber(redis.call('GET', KEYS[i]))
	if tat then
		tat = tat - cost * tonumber(ARGV[i + 1])
		if tat > now then
			redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
		else
			redis.call('DEL', KEYS[i])
		end
	end
end
return 1
`)

// redisSet is a Set of Redis.
type redisSet struct {
	client redis.UniversalClient
	n      int
	keys   []string
	args   []any // a placeholder for the cost, each bucket's t and tau, a placeholder for consume
	cells  [MaxBuckets]cell
	names  [MaxBuckets]string
}

// Bind returns the Set of buckets, which share their state with every Set
// of the same Keys on any node using the same Redis and prefix.
func (r *Redis) Bind(buckets []Bucket) (Set, error) {
	if err := checkBuckets(buckets); err != nil {
		return nil, err
	}
	s := &redisSet{client: r.client, n: len(buckets), keys: make([]string, len(buckets)),
		args: make([]any, 1, 2+2*len(buckets))}
	for i, b := range buckets {
		s.keys[i] = r.prefix + b.Key
		s.cells[i], s.names[i] = newCell(b.Rate, time.Microsecond), b.Rate.Name
		s.args = append(s.args, s.cells[i].t, s.cells[i].tau)
	}
	s.args = append(s.args, 1)
	return s, nil
}

// Allow decides a request on Redis's clock; now is ignored.
func (s *redisSet) Allow(ctx context.Context, _ time.Time, cost int64, d *Decision) error {
	return s.decide(ctx, cost, d, true)
}

// Check decides a request on Redis's clock without consuming; now is
// ignored.
func (s *redisSet) Check(ctx context.Context, _ time.Time, cost int64, d *Decision) error {
	return s.decide(ctx, cost, d, false)
}

// decide is Allow when consume is true, else Check: one round trip.
func (s *redisSet) decide(ctx context.Context, cost int64, d *Decision, consume bool) error {
	if cost < 1 {
		return ErrCost
	}
	if s.n == 0 {
		decide(d, true, &s.names, &s.cells, nil, nil, 0, 0)
		return nil
	}
	args := make([]any, len(s.args))
	copy(args, s.args)
	args[0] = cost
	if !consume {
		args[len(args)-1] = 0
	}
	out, err := gcraScript.Run(ctx, s.client, s.keys, args...).Int64Slice()
	if err != nil {
		return fmt.Errorf("rate limit: redis: %w", err)
	}
	if len(out) != 2+s.n {
		return fmt.Errorf("rate limit: redis: the script returned %d numbers for %d buckets", len(out), s.n)
	}
	allowed, now := out[0] == 1, out[1]
	var tats, waits [MaxBuckets]int64
	for i := 0; i < s.n; i++ {
		tats[i] = out[2+i]
		if !allowed {
			waits[i] = s.cells[i].wait(tats[i], now, cost)
		}
	}
	decide(d, allowed, &s.names, &s.cells, &tats, &waits, s.n, now)
	return nil
}

// Refund gives back cost to every bucket, on Redis's clock, in one round
// trip; now is ignored.
func (s *redisSet) Refund(ctx context.Context, _ time.Time, cost int64, _ *Decision) error {
	if cost < 1 {
		return ErrCost
	}
	if s.n == 0 {
		return nil
	}
	args := make([]any, 1, 1+s.n)
	args[0] = cost
	for i := 0; i < s.n; i++ {
		args = append(args, s.cells[i].t)
	}
	if err := refundScript.Run(ctx, s.client, s.keys, args...).Err(); err != nil {
		return fmt.Errorf("rate limit: redis: refund: %w", err)
	}
	return nil
}
