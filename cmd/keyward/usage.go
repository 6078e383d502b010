package main

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/spf13/cobra"
)

// usageCommand is `keyward usage`: the requests of a key, a tenant or
// everything, per hour or per day.
func (a *app) usageCommand() *cobra.Command {
	var in manage.UsageInput
	c := &cobra.Command{
		Use:   "usage [--key ID | --tenant T] [--granularity hour|day] [--from T] [--to T]",
		Short: "Count the requests of a key, a tenant or everything per hour or per day, accepted and refused by code",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				u, err := svc.Usage(cmd.Context(), manage.CommandLine(), in)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(u)
				}
				return a.printUsage(u)
			})
		},
	}
	f := c.Flags()
	f.StringVar(&in.KeyID, "key", "", "the usage of this key (key_…)")
	f.StringVar(&in.TenantID, "tenant", "", "the usage of this tenant's keys (id or slug)")
	f.StringVar(&in.Granularity, "granularity", "hour", "hour or day (UTC)")
	f.StringVar(&in.From, "from", "", "the first bucket: a date, an RFC 3339 time or a duration back from now (7d); by default a day before --to by the hour, 30 days by the day")
	f.StringVar(&in.To, "to", "", "the end of the range, in the same forms as --from; now by default")
	return c
}

// printUsage prints a usage report as a table: a row per bucket, the
// refused requests by code, and the total.
func (a *app) printUsage(u *keyward.UsageReport) error {
	tw := table(a.stdout)
	fmt.Fprintln(tw, "START\tREQUESTS\tALLOWED\tREFUSED\tCODES")
	layout := "2006-01-02 15:04"
	if u.Granularity == keyward.Daily {
		layout = time.DateOnly
	}
	for _, b := range u.Buckets {
		row(tw, b.Start.Format(layout), strconv.FormatInt(b.Requests, 10), strconv.FormatInt(b.Allowed, 10), strconv.FormatInt(b.Refused, 10), codes(b.Codes))
	}
	t := u.Total
	row(tw, "total", strconv.FormatInt(t.Requests, 10), strconv.FormatInt(t.Allowed, 10), strconv.FormatInt(t.Refused, 10), codes(t.Codes))
	return tw.Flush()
}

// codes shows refused requests by code, most first: "rate_limited=3
// invalid_api_key=1", or "-".
func codes(m map[keyward.Code]int64) string {
	if len(m) == 0 {
		return "-"
	}
	names := make([]keyward.Code, 0, len(m))
	for c := range m {
		names = append(names, c)
	}
	slices.SortFunc(names, func(x, y keyward.Code) int {
		return cmp.Or(cmp.Compare(m[y], m[x]), strings.Compare(string(x), string(y)))
	})
	var b strings.Builder
	for i, c := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", c, m[c])
	}
	return b.String()
}
