// Package metrics keeps Keyward's Prometheus metrics, on a registry of its
// own (not the process-wide default, which other code could write to),
// and serves them at GET /metrics (docs/metrics.md).
//
// Verifications are observed from the request log's entries (reqlog's
// Config.Observe), which every surface already fills: one call per
// verification, with counters and histograms resolved once, at New, so
// that observing neither allocates nor takes a lock.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/reqlog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// surfaces are the surfaces of verifications, in the order of their
// counters.
var surfaces = [...]string{keyward.SurfaceAPI, keyward.SurfaceForwardAuth, keyward.SurfaceVerify, keyward.SurfaceGateway}

// outcomeAllowed and outcomeOther are the outcome labels of an accepted
// key and of a code Keyward does not know (which it never answers).
const (
	outcomeAllowed = "allowed"
	outcomeOther   = "other"
)

// Metrics are the collectors of one server. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	// codes numbers the outcomes: 0 is allowed, then every code, then
	// other.
	codes map[keyward.Code]int
	// verifications and latency are resolved per surface (and outcome).
	verifications [len(surfaces)][]prometheus.Counter
	latency       [len(surfaces)]prometheus.Observer
	// rateLimited counts the decisions of keys with rate limits: allowed,
	// rate_limited, quota_exceeded.
	rateLimits    *prometheus.CounterVec
	rlAllowed     prometheus.Counter
	rlRateLimited prometheus.Counter
	rlQuota       prometheus.Counter
	storeLatency  *prometheus.HistogramVec
	storeErrors   *prometheus.CounterVec
	deliveries    *prometheus.CounterVec
	handler       http.Handler
}

// New returns the metrics of a server, with the Go runtime's and the
// process's on the same registry.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), codes: map[keyward.Code]int{"": 0}}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	outcomes := []string{outcomeAllowed}
	for _, c := range keyward.Codes() {
		m.codes[c] = len(outcomes)
		outcomes = append(outcomes, string(c))
	}
	outcomes = append(outcomes, outcomeOther)

	verifications := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyward_verifications_total",
		Help: "Verifications of a key, by surface (api, forward-auth, verify, gateway) and outcome (allowed, or the code of the refusal).",
	}, []string{"surface", "outcome"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "keyward_verification_duration_seconds",
		Help: "Time from a request's arrival to its answer (for the gateway, to the upstream's answer's header), by surface.",
		// From 25 µs (a cached key) to 10 s (a slow upstream).
		Buckets: []float64{.000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"surface"})
	for i, s := range surfaces {
		m.verifications[i] = make([]prometheus.Counter, len(outcomes))
		for j, o := range outcomes {
			m.verifications[i][j] = verifications.WithLabelValues(s, o)
		}
		m.latency[i] = latency.WithLabelValues(s)
	}
	m.rateLimits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyward_rate_limit_decisions_total",
		Help: "Decisions on the requests of keys with rate limits, a quota or credits: allowed, rate_limited or quota_exceeded.",
	}, []string{"decision"})
	m.rlAllowed = m.rateLimits.WithLabelValues(outcomeAllowed)
	m.rlRateLimited = m.rateLimits.WithLabelValues(string(keyward.CodeRateLimited))
	m.rlQuota = m.rateLimits.WithLabelValues(string(keyward.CodeQuotaExceeded))
	m.storeLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "keyward_store_duration_seconds",
		Help:    "Time the database took to answer, by operation.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"op"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyward_store_errors_total",
		Help: "Operations of the database that failed (not found is not a failure), by operation.",
	}, []string{"op"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyward_webhook_deliveries_total",
		Help: "Attempts to deliver a webhook event, by result: delivered (a 2xx), failed (any other answer, or none).",
	}, []string{"result"})
	m.reg.MustRegister(verifications, latency, m.rateLimits, m.storeLatency, m.storeErrors, m.deliveries)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
	return m
}

// Registry is the registry the metrics are on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format (or
// OpenMetrics, when asked).
func (m *Metrics) Handler() http.Handler { return m.handler }

// Observe counts a verification, as the request log gets it: its surface
// and outcome, its latency, and its rate limits' decision.
func (m *Metrics) Observe(e *reqlog.Entry) {
	s := surfaceIndex(e.Surface)
	if s < 0 {
		return
	}
	o, ok := m.codes[e.Code]
	if !ok {
		o = len(m.verifications[s]) - 1
	}
	m.verifications[s][o].Inc()
	m.latency[s].Observe(e.Latency.Seconds())
	switch {
	case e.Code == keyward.CodeRateLimited:
		m.rlRateLimited.Inc()
	case e.Code == keyward.CodeQuotaExceeded:
		m.rlQuota.Inc()
	case e.RateLimit != nil && e.RateLimit.N > 0 && e.Code == "":
		m.rlAllowed.Inc()
	}
}

// surfaceIndex is the index of surface s in surfaces, or -1.
func surfaceIndex(s string) int {
	for i, name := range surfaces {
		if name == s {
			return i
		}
	}
	return -1
}

// Delivered counts an attempt to deliver a webhook event.
func (m *Metrics) Delivered(ok bool) {
	if ok {
		m.deliveries.WithLabelValues("delivered").Inc()
		return
	}
	m.deliveries.WithLabelValues("failed").Inc()
}

// Cache is what the metrics read of a verifier.
type Cache interface {
	CacheStats() (hits, misses uint64, size int)
	FeedLag() time.Duration
}

// WatchVerifier adds the verifier's key cache (hits, misses, size) and the
// lag of its change feed, read when the metrics are scraped.
func (m *Metrics) WatchVerifier(c Cache) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keyward_cache_hits_total", Help: "Lookups of a key that the cache answered."},
			func() float64 { h, _, _ := c.CacheStats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keyward_cache_misses_total", Help: "Keys read from the database: not cached, or refreshed past the cache TTL."},
			func() float64 { _, mi, _ := c.CacheStats(); return float64(mi) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyward_cache_keys", Help: "Keys the cache holds (an estimate)."},
			func() float64 { _, _, n := c.CacheStats(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyward_change_feed_lag_seconds",
			Help: "Time since the change feed was last read to its end: the longest a change may wait before this node answers by it; -1 before the first read."},
			func() float64 {
				if d := c.FeedLag(); d >= 0 {
					return d.Seconds()
				}
				return -1
			}),
	)
}

// Log is what the metrics read of the request log.
type Log interface {
	Dropped() uint64
	Written() uint64
}

// WatchLog adds the request log's entries written and dropped.
func (m *Metrics) WatchLog(l Log) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keyward_request_log_dropped_total",
			Help: "Request-log entries dropped because the buffer was full (raise --log-buffer); usage counts still count them."},
			func() float64 { return float64(l.Dropped()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keyward_request_log_written_total", Help: "Request-log entries written to the database."},
			func() float64 { return float64(l.Written()) }),
	)
}

// Timed runs op, an operation of the database named name, and records
// its time, and its failure unless it found nothing.
func (m *Metrics) Timed(name string, op func() error) error {
	start := time.Now()
	err := op()
	m.storeLatency.WithLabelValues(name).Observe(time.Since(start).Seconds())
	if err != nil && keyward.ErrorCode(err) != keyward.CodeNotFound && !errors.Is(err, context.Canceled) {
		m.storeErrors.WithLabelValues(name).Inc()
	}
	return err
}
