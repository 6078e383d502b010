package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
)

// limitFlags are the flags that set rate limits and a quota, named with a
// prefix (plans have key- and tenant- ones), and credits for keys.
type limitFlags struct {
	prefix  string
	rates   []string
	quota   string
	credits int64
	refill  string
}

// register adds the flags to f; whose says what they limit, in the help.
func (lf *limitFlags) register(f *pflag.FlagSet, prefix, whose string, credits bool) {
	lf.prefix = prefix
	f.StringArrayVar(&lf.rates, prefix+"rate-limit", nil, "a rate limit of "+whose+", NAME:LIMIT/PERIOD[:BURST] such as burst:10/1s:20 or hourly:1000/1h; repeat for more, or give \"\" for none at all")
	f.StringVar(&lf.quota, prefix+"quota", "", "the quota of "+whose+", LIMIT/day or LIMIT/month, such as 10000/month")
	if credits {
		f.Int64Var(&lf.credits, "credits", 0, "the uses the key has left; each allowed request costs 1, or its route's cost")
		f.StringVar(&lf.refill, "refill", "", "refill the credits to AMOUNT at the start of every day or month, AMOUNT/day or AMOUNT/month (with --credits)")
	}
}

// changed reports whether flag name (without the prefix) was given.
func (lf *limitFlags) changed(cmd *cobra.Command, name string) bool {
	return cmd.Flags().Changed(lf.prefix + name)
}

// rateLimits returns the rate limits the flag gives, or nil when it was
// not given; "" alone is none at all.
func (lf *limitFlags) rateLimits(cmd *cobra.Command) (*[]keyward.RateLimit, error) {
	if !lf.changed(cmd, "rate-limit") {
		return nil, nil
	}
	out := []keyward.RateLimit{}
	for _, spec := range lf.rates {
		if spec == "" {
			continue
		}
		r, err := parseRateLimit(spec)
		if err != nil {
			return nil, usageError{fmt.Errorf("--%srate-limit %q: %w", lf.prefix, spec, err)}
		}
		out = append(out, r)
	}
	return &out, nil
}

// quotaOf returns the quota the flag gives, or nil when it was not given.
func (lf *limitFlags) quotaOf(cmd *cobra.Command) (*keyward.Quota, error) {
	if !lf.changed(cmd, "quota") {
		return nil, nil
	}
	n, period, err := parsePerPeriod(lf.quota)
	if err != nil {
		return nil, usageError{fmt.Errorf("--%squota %q: %w", lf.prefix, lf.quota, err)}
	}
	return &keyward.Quota{Limit: n, Period: period}, nil
}

// creditsOf returns the credits the flags give, or nil when --credits was
// not given.
func (lf *limitFlags) creditsOf(cmd *cobra.Command) (*keyward.Credits, error) {
	if !cmd.Flags().Changed("credits") {
		if cmd.Flags().Changed("refill") {
			return nil, usageError{errors.New("--refill needs --credits, the uses the key has now")}
		}
		return nil, nil
	}
	c := &keyward.Credits{Remaining: lf.credits}
	if cmd.Flags().Changed("refill") {
		n, period, err := parsePerPeriod(lf.refill)
		if err != nil {
			return nil, usageError{fmt.Errorf("--refill %q: %w", lf.refill, err)}
		}
		c.Refill = &keyward.Refill{Amount: n, Interval: period}
	}
	return c, nil
}

// parseRateLimit reads NAME:LIMIT/PERIOD[:BURST]; the API checks the
// values.
func parseRateLimit(spec string) (keyward.RateLimit, error) {
	const form = "write NAME:LIMIT/PERIOD or NAME:LIMIT/PERIOD:BURST, such as burst:10/1s:20"
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return keyward.RateLimit{}, errors.New(form)
	}
	limit, period, ok := strings.Cut(parts[1], "/")
	if !ok {
		return keyward.RateLimit{}, errors.New(form)
	}
	r := keyward.RateLimit{Name: parts[0]}
	var err error
	if r.Limit, err = strconv.ParseInt(limit, 10, 64); err != nil {
		return r, fmt.Errorf("the limit %q is not a whole number; %s", limit, form)
	}
	d, err := time.ParseDuration(period)
	if err != nil {
		return r, fmt.Errorf("the period %q is not a duration such as 1s, 1m or 1h; %s", period, form)
	}
	r.Period = keyward.Duration(d)
	if len(parts) == 3 {
		if r.Burst, err = strconv.ParseInt(parts[2], 10, 64); err != nil {
			return r, fmt.Errorf("the burst %q is not a whole number; %s", parts[2], form)
		}
	}
	return r, nil
}

// parsePerPeriod reads N/day or N/month.
func parsePerPeriod(spec string) (int64, keyward.QuotaPeriod, error) {
	const form = "write N/day or N/month, such as 10000/month"
	count, period, ok := strings.Cut(spec, "/")
	if !ok {
		return 0, "", errors.New(form)
	}
	n, err := strconv.ParseInt(count, 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("%q is not a whole number; %s", count, form)
	}
	p := keyward.QuotaPeriod(period)
	if !p.Valid() {
		return 0, "", fmt.Errorf("the period %q is neither day nor month; %s", period, form)
	}
	return n, p, nil
}

// formatRateLimits writes rate limits for text output: "the plan's" for
// nil, "none" for an empty list.
func formatRateLimits(limits []keyward.RateLimit, inherited string) string {
	if limits == nil {
		return inherited
	}
	if len(limits) == 0 {
		return "none"
	}
	parts := make([]string, len(limits))
	for i, r := range limits {
		parts[i] = fmt.Sprintf("%s %d per %s", r.Name, r.Limit, shortDuration(time.Duration(r.Period)))
		if r.Burst > 0 {
			parts[i] += fmt.Sprintf(" (burst %d)", r.Burst)
		}
	}
	return strings.Join(parts, ", ")
}

// formatQuota writes a quota for text output.
func formatQuota(q *keyward.Quota, inherited string) string {
	if q == nil {
		return inherited
	}
	return fmt.Sprintf("%d per %s", q.Limit, q.Period)
}

// formatCredits writes a key's credits for text output.
func formatCredits(c *keyward.Credits) string {
	if c == nil {
		return "no limit"
	}
	s := fmt.Sprintf("%d left", c.Remaining)
	if c.Refill != nil {
		s += fmt.Sprintf(", refilled to %d every %s", c.Refill.Amount, c.Refill.Interval)
	}
	return s
}

// shortDuration writes 1s, 1m or 1h rather than 1m0s or 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (a *app) keysUsageCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "usage ID",
		Short: "Show what limits an API key now: rate limits, quota used this period, its tenant's, credits left",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				u, err := svc.KeyUsage(cmd.Context(), manage.CommandLine(), argv[0])
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(u)
				}
				return fields(a.stdout,
					"key", u.KeyID,
					"rate limits", formatRateLimits(u.Key.RateLimits, "none")+" ("+u.Key.RateLimitsFrom+"'s)",
					"quota", formatQuotaUsage(u.Key.Quota),
					"tenant rate limits", formatRateLimits(u.Tenant.RateLimits, "none")+" ("+u.Tenant.RateLimitsFrom+"'s)",
					"tenant quota", formatQuotaUsage(u.Tenant.Quota),
					"credits", formatCredits(u.Credits),
				)
			})
		},
	}
}

func (a *app) tenantsUsageCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "usage ID|SLUG",
		Short: "Show what limits all of a tenant's keys together now: rate limits, quota used this period",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				u, err := svc.TenantUsage(cmd.Context(), manage.CommandLine(), argv[0])
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(u)
				}
				return fields(a.stdout,
					"tenant", u.TenantID,
					"time zone", u.TimeZone,
					"rate limits", formatRateLimits(u.RateLimits, "none")+" ("+u.RateLimitsFrom+"'s)",
					"quota", formatQuotaUsage(u.Quota),
				)
			})
		},
	}
}

// formatQuotaUsage writes a quota in effect and its use for text output.
func formatQuotaUsage(q *manage.QuotaUsage) string {
	if q == nil {
		return "none"
	}
	return fmt.Sprintf("%d of %d used in %s (%s's), resets %s", q.Used, q.Limit, q.Current, q.From, when(q.ResetsAt))
}
