package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/keyward/keyward"
)

// DefaultSchedule is the wait before each attempt of a delivery, the
// first included: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
// 10 h, as Standard Webhooks suggests: the last attempt is 27 h 35 min
// after the event, more than a day of retries.
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// Defaults of Config.
const (
	DefaultInterval     = time.Second
	DefaultTimeout      = 15 * time.Second
	DefaultWorkers      = 8
	DefaultScanInterval = time.Minute
	// DefaultRetention is how long an event is kept once its deliveries
	// are over (serve --webhook-retention).
	DefaultRetention = 30 * 24 * time.Hour
)

// pruneInterval is how often the dispatcher prunes, and pruneBatch the
// most events one prune deletes; it goes on while batches are full.
const (
	pruneInterval = 10 * time.Minute
	pruneBatch    = 1000
)

// Config is what NewDispatcher needs.
type Config struct {
	Store keyward.WebhookStore
	// AllowPrivate lets deliveries go to loopback and private addresses
	// (serve --webhook-allow-private).
	AllowPrivate bool
	// Schedule is the wait before each attempt, the first included;
	// DefaultSchedule when nil.
	Schedule []time.Duration
	// Interval is how often due deliveries are looked for when there
	// were none (DefaultInterval).
	Interval time.Duration
	// Timeout bounds one attempt (DefaultTimeout); a delivery is leased
	// to this node for twice as long.
	Timeout time.Duration
	// Workers is how many deliveries are attempted at once
	// (DefaultWorkers).
	Workers int
	// ExpiryNotice is how long before a key's expiry key.expiring is
	// raised (verify.DefaultExpiryNotice when 0, never when negative);
	// ScanInterval how often keys are looked at for it and for
	// key.rotation_due (DefaultScanInterval).
	ExpiryNotice time.Duration
	ScanInterval time.Duration
	// Retention is how long events are kept once their deliveries are
	// over, with their delivery logs (DefaultRetention).
	Retention time.Duration
	Logger    *slog.Logger
	// Delivered is told of every attempt, for the metrics; nil for none.
	Delivered func(ok bool)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Dispatcher delivers the outbox's deliveries, on every node at once: each
// delivery is leased to one node while it is attempted.
type Dispatcher struct {
	c      Config
	client *http.Client
	wake   chan struct{}
}

// NewDispatcher returns a dispatcher of c; Run runs it.
func NewDispatcher(c Config) *Dispatcher {
	if c.Schedule == nil {
		c.Schedule = DefaultSchedule
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.ExpiryNotice == 0 {
		c.ExpiryNotice = 7 * 24 * time.Hour
	}
	if c.ScanInterval <= 0 {
		c.ScanInterval = DefaultScanInterval
	}
	if c.Retention <= 0 {
		c.Retention = DefaultRetention
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	dialer := &net.Dialer{Timeout: c.Timeout}
	if !c.AllowPrivate {
		dialer.Control = guard
	}
	transport := &http.Transport{
		Proxy:                 nil, // never through a proxy of the environment, which could reach what the guard refuses
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   c.Timeout,
		ResponseHeaderTimeout: c.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Dispatcher{c: c, wake: make(chan struct{}, 1), client: &http.Client{
		Transport: transport,
		Timeout:   c.Timeout,
		// A redirect is an answer, not a delivery: following it could
		// reach what the endpoint's URL was checked not to.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Wake has the dispatcher look for due deliveries now.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, and raises the events of dates every
// ScanInterval. Its Workers attempt deliveries at once, each taking the
// next due delivery as soon as its last one is over (so a slow endpoint
// holds one worker, not a batch). An attempt under way when ctx ends is
// cut, and its delivery is attempted again once its lease ends; Run
// returns once every attempt is over.
func (d *Dispatcher) Run(ctx context.Context) {
	scan := time.NewTicker(d.c.ScanInterval)
	defer scan.Stop()
	prune := time.NewTicker(pruneInterval)
	defer prune.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	busy := make(chan struct{}, d.c.Workers) // a token per attempt under way
	d.Scan(ctx)
	d.prune(ctx)
	for {
		free := d.c.Workers - len(busy)
		n := 0
		if free > 0 {
			claimed, err := d.c.Store.ClaimDeliveries(ctx, d.c.Now(), 2*d.c.Timeout+10*time.Second, free)
			if err != nil && ctx.Err() == nil {
				d.c.Logger.Warn("webhooks: could not take deliveries", "err", err)
			}
			for _, c := range claimed {
				busy <- struct{}{}
				wg.Go(func() {
					defer func() {
						<-busy
						d.Wake() // a worker is free, and its endpoint may have more
					}()
					d.attempt(ctx, c)
				})
			}
			n = len(claimed)
		}
		if n > 0 && n == free {
			continue // there may be more due
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-scan.C:
			d.Scan(ctx)
		case <-prune.C:
			d.prune(ctx)
		case <-time.After(d.c.Interval):
		}
	}
}

// Once takes the deliveries due now, up to Workers, attempts them, and
// returns how many it took.
func (d *Dispatcher) Once(ctx context.Context) (int, error) {
	claimed, err := d.c.Store.ClaimDeliveries(ctx, d.c.Now(), 2*d.c.Timeout+10*time.Second, d.c.Workers)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, c := range claimed {
		wg.Go(func() { d.attempt(ctx, c) })
	}
	wg.Wait()
	return len(claimed), nil
}

// body is what a delivery sends: the event as Standard Webhooks has it.
type body struct {
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// attempt tries delivery c once and records the outcome.
func (d *Dispatcher) attempt(ctx context.Context, c *keyward.Claimed) {
	start := d.c.Now()
	status, err := d.send(ctx, c, start)
	if ctx.Err() != nil {
		return // shutting down: the lease runs out, and another try follows
	}
	a := keyward.Attempt{At: start, Status: status, DurationMs: d.c.Now().Sub(start).Milliseconds()}
	ok := err == nil
	var next time.Time
	if !ok {
		a.Error = err.Error()
		if c.Attempts < len(d.c.Schedule) {
			next = start.Add(d.c.Schedule[c.Attempts])
		}
		d.c.Logger.Warn("webhooks: a delivery failed", "delivery", c.ID, "event", c.Event.ID, "type", c.Event.Type, "webhook", c.Webhook.ID,
			"attempt", c.Attempts, "status", status, "err", err, "next_attempt_at", next)
	}
	if d.c.Delivered != nil {
		d.c.Delivered(ok)
	}
	// Not ctx: an outcome learned is recorded even while shutting down.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.c.Store.FinishDelivery(fctx, c.ID, c.LeaseUntil, a, ok, next); err != nil {
		d.c.Logger.Warn("webhooks: could not record a delivery's attempt; it is attempted again once its lease ends", "delivery", c.ID, "err", err)
	}
}

// send posts c's event to its endpoint, signed, and returns the status
// answered (0 for none) and why it is not a delivery, or nil for a 2xx.
func (d *Dispatcher) send(ctx context.Context, c *keyward.Claimed, now time.Time) (int, error) {
	if !c.Webhook.Enabled {
		return 0, errors.New("the endpoint is disabled")
	}
	payload, err := json.Marshal(body{Type: c.Event.Type, Timestamp: c.Event.At.UTC(), Data: c.Event.Data})
	if err != nil {
		return 0, err
	}
	ts := now.Unix()
	sig, err := Sign(c.Webhook.Secret, c.Event.ID, ts, payload)
	if err != nil {
		return 0, err
	}
	if w := c.Webhook; w.PreviousSecret != "" && w.PreviousUntil != nil && now.Before(*w.PreviousUntil) {
		prev, err := Sign(w.PreviousSecret, c.Event.ID, ts, payload)
		if err != nil {
			return 0, err
		}
		sig += " " + prev
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Webhook.URL, bytes.NewReader(payload))
	if err != nil {
		return 0, err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Keyward-Webhooks/"+keyward.Version)
	h.Set("webhook-id", c.Event.ID)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", sig)
	resp, err := d.client.Do(req)
	if err != nil {
		// Without the URL, which may hold a token of the receiver's:
		// the error goes to the log and to the delivery log.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("POST: %w", ue.Err)
		}
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("the endpoint answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// Prune deletes the events older than the retention whose deliveries are
// over, a batch at a time, and returns how many it deleted.
func (d *Dispatcher) Prune(ctx context.Context) (int64, error) {
	before := d.c.Now().Add(-d.c.Retention)
	var total int64
	for {
		n, err := d.c.Store.PruneWebhooks(ctx, before, pruneBatch)
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}

// prune runs Prune and logs its failure.
func (d *Dispatcher) prune(ctx context.Context) {
	if _, err := d.Prune(ctx); err != nil && ctx.Err() == nil {
		d.c.Logger.Warn("webhooks: could not prune old events", "err", err)
	}
}

// Scan raises key.expiring for the keys within ExpiryNotice of their
// expiry and key.rotation_due for those past their rotate_by, once per
// date (their marks), on whichever node sees them first. Run calls it
// every ScanInterval.
func (d *Dispatcher) Scan(ctx context.Context) {
	now := d.c.Now()
	notice := d.c.ExpiryNotice
	if notice < 0 {
		notice = 0
	}
	for {
		expiring, due, err := d.c.Store.DueKeys(ctx, now, now.Add(notice), 200)
		if err != nil {
			if ctx.Err() == nil {
				d.c.Logger.Warn("webhooks: could not look for expiring keys", "err", err)
			}
			return
		}
		var events []keyward.Event
		var marks []*keyward.Mark
		for _, k := range expiring {
			events = append(events, keyEvent(keyward.EventKeyExpiring, k, now))
			marks = append(marks, &keyward.Mark{Kind: keyward.EventKeyExpiring, KeyID: k.ID, Due: *k.ExpiresAt})
		}
		for _, k := range due {
			events = append(events, keyEvent(keyward.EventKeyRotationDue, k, now))
			marks = append(marks, &keyward.Mark{Kind: keyward.EventKeyRotationDue, KeyID: k.ID, Due: *k.RotateBy})
		}
		if len(events) == 0 {
			return
		}
		if _, err := d.c.Store.Emit(ctx, events, marks); err != nil {
			d.c.Logger.Warn("webhooks: could not raise the events of expiring keys", "err", err)
			return
		}
		d.Wake()
		if len(expiring) < 200 && len(due) < 200 {
			return
		}
	}
}

// keyEvent is an event of typ about key k, at now.
func keyEvent(typ string, k *keyward.Key, now time.Time) keyward.Event {
	data, _ := json.Marshal(struct {
		Key *keyward.Key `json:"key"`
	}{k})
	return keyward.Event{Type: typ, TenantID: k.TenantID, At: now, Data: data}
}
