package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/spf13/cobra"
)

// logsCommand is `keyward logs`: the request log, newest first, or
// followed as it is written (--follow).
func (a *app) logsCommand() *cobra.Command {
	var (
		in     manage.LogListInput
		page   keyward.Page
		follow bool
		every  time.Duration
	)
	c := &cobra.Command{
		Use:   "logs [--tenant T] [--key ID] [--request-id ID] [--code C] [--follow]",
		Short: "List the request log (every verification of a key, on every surface), newest first; --follow prints new entries as they are written",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				if !follow {
					logs, next, err := svc.RequestLogs(cmd.Context(), manage.CommandLine(), in, page)
					if err != nil {
						return err
					}
					if a.json {
						return printList(a, logs, next)
					}
					if err := a.printLogs(logs, true); err != nil {
						return err
					}
					a.printNext(cmd.CommandPath(), next)
					return nil
				}
				return a.followLogs(cmd.Context(), svc, in, every)
			})
		},
	}
	f := c.Flags()
	f.StringVar(&in.TenantID, "tenant", "", "only this tenant's entries (id or slug)")
	f.StringVar(&in.KeyID, "key", "", "only this key's entries (key_…)")
	f.StringVar(&in.RequestID, "request-id", "", "only the entry of the request answered with this X-Request-Id")
	f.StringVar(&in.Surface, "surface", "", "only entries of this surface: api, forward-auth, verify or gateway")
	f.StringVar(&in.Code, "code", "", "only entries of this outcome's code, or allowed for the accepted ones")
	f.IntVar(&in.Status, "status", 0, "only entries answered with this HTTP status")
	f.StringVar(&in.From, "from", "", "entries at or after this time: a date, an RFC 3339 time or a duration back from now (1h)")
	f.StringVar(&in.To, "to", "", "entries before this time, in the same forms as --from")
	f.BoolVar(&follow, "follow", false, "print the entries written from now on, oldest first, until interrupted")
	f.DurationVar(&every, "interval", time.Second, "with --follow, how often to look for new entries")
	pageFlags(c, &page)
	return c
}

// printLogs prints entries as a table, or as JSON lines with --json
// (follow), with a header when head.
func (a *app) printLogs(logs []*keyward.RequestLog, head bool) error {
	if a.json {
		for _, l := range logs {
			if err := a.printJSON(l); err != nil {
				return err
			}
		}
		return nil
	}
	tw := table(a.stdout)
	if head {
		fmt.Fprintln(tw, "AT\tREQUEST\tSURFACE\tKEY\tTENANT\tMETHOD\tPATH\tSTATUS\tCODE\tCLIENT\tLATENCY")
	}
	for _, l := range logs {
		code := string(l.Code)
		if code == "" {
			code = "allowed"
		}
		row(tw, when(l.At), l.RequestID, l.Surface, orDash(l.KeyID), orDash(l.TenantID), l.Method, shown(l.Path), strconv.Itoa(l.Status), code,
			orDash(l.ClientIP), (time.Duration(l.LatencyMicros) * time.Microsecond).String())
	}
	return tw.Flush()
}

// followLogs prints the entries written after the newest one now,
// oldest first, looking every interval, until ctx ends.
func (a *app) followLogs(ctx context.Context, svc *manage.Service, in manage.LogListInput, every time.Duration) error {
	if every <= 0 {
		return usageError{fmt.Errorf("--interval: must be more than 0, such as 1s")}
	}
	newest, _, err := svc.RequestLogs(ctx, manage.CommandLine(), in, keyward.Page{Limit: 1})
	if err != nil {
		return err
	}
	var after int64
	if len(newest) > 0 {
		after = newest[0].ID
	}
	head := true
	for {
		q := in
		q.After = after
		logs, _, err := svc.RequestLogs(ctx, manage.CommandLine(), q, keyward.Page{Limit: keyward.MaxPageLimit})
		if err != nil {
			return err
		}
		if after == 0 {
			// The log was empty: these are its first entries, newest
			// first.
			slices.Reverse(logs)
		}
		if len(logs) > 0 {
			if err := a.printLogs(logs, head); err != nil {
				return err
			}
			head = false
			after = logs[len(logs)-1].ID
			if len(logs) == keyward.MaxPageLimit {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}
