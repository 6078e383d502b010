package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/spf13/cobra"
)

// tenantsCommand is `keyward tenants`: the customer accounts of the API.
func (a *app) tenantsCommand() *cobra.Command {
	return group("tenants", "Create, list, show, update, suspend and resume tenants (customer accounts)",
		a.tenantsCreateCommand(),
		a.tenantsListCommand(),
		a.tenantsShowCommand(),
		a.tenantsUsageCommand(),
		a.tenantsUpdateCommand(),
		a.tenantStatusCommand("suspend", "Suspend a tenant: every one of its keys is refused until it is resumed", (*manage.Service).SuspendTenant,
			"Tenant %s (%s) suspended: its keys are refused until it is resumed.\n"),
		a.tenantStatusCommand("resume", "Resume a suspended tenant: its keys work again", (*manage.Service).ResumeTenant,
			"Tenant %s (%s) resumed: its keys work again.\n"),
	)
}

func (a *app) tenantsCreateCommand() *cobra.Command {
	var plan string
	c := &cobra.Command{
		Use:   "create SLUG",
		Short: "Create a tenant",
		Long:  "Create a tenant. SLUG is its short, unique name: 2 to 63 lowercase letters, digits and dashes.",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				t, err := svc.CreateTenant(cmd.Context(), manage.CommandLine(), manage.CreateTenantInput{Slug: argv[0], Plan: plan})
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(t)
				}
				fmt.Fprintf(a.stderr, "Created tenant %s.\n", shown(t.Slug))
				return a.printTenant(t)
			})
		},
	}
	c.Flags().StringVar(&plan, "plan", "", `the tenant's plan, which must exist (default "`+manage.DefaultPlan+`")`)
	return c
}

func (a *app) tenantsUpdateCommand() *cobra.Command {
	var (
		plan, zone string
		lf         limitFlags
		unset      []string
	)
	c := &cobra.Command{
		Use:   "update ID|SLUG",
		Short: "Move a tenant to another plan, or set its limits; only the flags given change anything",
		Long: `Move a tenant to another plan, which must exist, or set the rate limits and
quota of all its keys together instead of its plan's, and the time zone its
quotas count days and months in. Its keys are bound by the change at once, on
every node.`,
		Example: `  keyward tenants update acme --plan pro
  keyward tenants update acme --rate-limit burst:100/1s --quota 1000000/month --time-zone Europe/Paris
  keyward tenants update acme --unset rate_limits,quota`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			var in manage.UpdateTenantInput
			if cmd.Flags().Changed("plan") {
				in.Plan = &plan
			}
			if cmd.Flags().Changed("time-zone") {
				in.TimeZone = &zone
			}
			var err error
			if in.RateLimits, err = lf.rateLimits(cmd); err != nil {
				return err
			}
			if in.Quota, err = lf.quotaOf(cmd); err != nil {
				return err
			}
			in.Unset = unset
			if reflect.ValueOf(in).IsZero() {
				return usageError{errors.New("nothing to change: give --plan, the plan to move the tenant to, or at least one of --rate-limit, --quota, --time-zone, --unset")}
			}
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				t, err := svc.UpdateTenant(cmd.Context(), manage.CommandLine(), argv[0], in)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(t)
				}
				if in.Plan != nil {
					fmt.Fprintf(a.stderr, "Moved tenant %s to plan %s.\n", shown(t.Slug), shown(t.Plan))
				} else {
					fmt.Fprintf(a.stderr, "Updated tenant %s.\n", shown(t.Slug))
				}
				return a.printTenant(t)
			})
		},
	}
	f := c.Flags()
	f.StringVar(&plan, "plan", "", "the plan to move the tenant to")
	lf.register(f, "", "all the tenant's keys together, instead of its plan's", false)
	f.StringVar(&zone, "time-zone", "", `the IANA time zone its quotas count days and months in, such as Europe/Paris ("" for UTC)`)
	f.StringSliceVar(&unset, "unset", nil, "give back the plan's: rate_limits, quota; comma-separated")
	return c
}

func (a *app) tenantsListCommand() *cobra.Command {
	var page keyward.Page
	c := &cobra.Command{
		Use:   "list",
		Short: "List tenants, oldest first",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				ts, next, err := svc.Tenants(cmd.Context(), manage.CommandLine(), page)
				if err != nil {
					return err
				}
				if a.json {
					return printList(a, ts, next)
				}
				tw := table(a.stdout)
				fmt.Fprintln(tw, "ID\tSLUG\tPLAN\tSTATUS\tCREATED")
				for _, t := range ts {
					row(tw, t.ID, t.Slug, t.Plan, string(t.Status), when(t.CreatedAt))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				a.printNext(cmd.CommandPath(), next)
				return nil
			})
		},
	}
	pageFlags(c, &page)
	return c
}

func (a *app) tenantsShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID|SLUG",
		Short: "Show a tenant",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				t, err := svc.Tenant(cmd.Context(), manage.CommandLine(), argv[0])
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(t)
				}
				return a.printTenant(t)
			})
		},
	}
}

// tenantStatusCommand is `tenants suspend` or `tenants resume`: set calls
// the service, and done says what happened, given the slug and the id.
func (a *app) tenantStatusCommand(name, short string, set func(*manage.Service, context.Context, manage.Caller, string) (*keyward.Tenant, error), done string) *cobra.Command {
	return &cobra.Command{
		Use:   name + " ID|SLUG",
		Short: short,
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				t, err := set(svc, cmd.Context(), manage.CommandLine(), argv[0])
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(t)
				}
				_, err = fmt.Fprintf(a.stdout, done, shown(t.Slug), shown(t.ID))
				return err
			})
		},
	}
}

// printTenant writes a tenant's fields, one a line, each as shown.
func (a *app) printTenant(t *keyward.Tenant) error {
	return fields(a.stdout,
		"id", t.ID,
		"slug", t.Slug,
		"plan", t.Plan,
		"status", string(t.Status),
		"rate limits", formatRateLimits(t.RateLimits, "the plan's"),
		"quota", formatQuota(t.Quota, "the plan's"),
		"time zone", cmp.Or(t.TimeZone, "UTC"),
		"created", when(t.CreatedAt),
		"updated", when(t.UpdatedAt),
	)
}

// pageFlags adds --limit and --cursor to a list command.
func pageFlags(c *cobra.Command, p *keyward.Page) {
	c.Flags().IntVar(&p.Limit, "limit", 0, fmt.Sprintf("at most this many results, 1 to %d (default %d)", keyward.MaxPageLimit, keyward.DefaultPageLimit))
	c.Flags().StringVar(&p.Cursor, "cursor", "", "the cursor of the next page, as printed by the page before")
}
