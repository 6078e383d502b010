package main

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/view"
	"github.com/spf13/cobra"
)

// plansCommand is `keyward plans`: what each tenant's subscription allows
// its keys.
func (a *app) plansCommand() *cobra.Command {
	return group("plans", "Create, list, show and update plans",
		a.plansCreateCommand(),
		a.plansListCommand(),
		a.plansShowCommand(),
		a.plansUpdateCommand(),
	)
}

func (a *app) plansCreateCommand() *cobra.Command {
	var (
		in           manage.CreatePlanInput
		apiAccess    bool
		keyLimits    limitFlags
		tenantLimits limitFlags
	)
	c := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a plan",
		Long: `Create a plan. --permissions are those its tenants' keys may use (none: every
one); --max-keys the most unrevoked keys a tenant may hold (0: no limit);
--api-access=false refuses every key of its tenants with plan_not_entitled.`,
		Example: `  keyward plans create pro --capabilities m2m_api,webhooks --max-keys 20`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			in.Name = argv[0]
			in.Capabilities, in.Permissions = nonEmpty(in.Capabilities), nonEmpty(in.Permissions)
			in.APIAccess = &apiAccess
			l, err := planLimits(cmd, &keyLimits, &tenantLimits)
			if err != nil {
				return err
			}
			if l.keyRates != nil {
				in.KeyRateLimits = *l.keyRates
			}
			if l.tenantRates != nil {
				in.TenantRateLimits = *l.tenantRates
			}
			in.KeyQuota, in.TenantQuota = l.keyQuota, l.tenantQuota
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				p, err := svc.CreatePlan(cmd.Context(), manage.CommandLine(), in)
				if err != nil {
					return asArgument(err, "name")
				}
				if a.json {
					return a.printJSON(p)
				}
				fmt.Fprintf(a.stderr, "Created plan %s.\n", shown(p.Name))
				return printPlan(a.stdout, p)
			})
		},
	}
	f := c.Flags()
	f.StringSliceVar(&in.Capabilities, "capabilities", nil, "features the plan includes, comma-separated, such as m2m_api,webhooks")
	f.StringSliceVar(&in.Permissions, "permissions", nil, "the permissions its tenants' keys may use, comma-separated (default every one)")
	f.BoolVar(&apiAccess, "api-access", true, "whether its tenants may use keys at all")
	f.IntVar(&in.MaxKeys, "max-keys", 0, "the most unrevoked keys a tenant may hold; 0 for no limit")
	keyLimits.register(f, "key-", "each key of its tenants", false)
	tenantLimits.register(f, "tenant-", "all the keys of a tenant together", false)
	return c
}

// planLimitValues are a plan's limits as its flags give them: nil for a
// flag not given.
type planLimitValues struct {
	keyRates, tenantRates *[]keyward.RateLimit
	keyQuota, tenantQuota *keyward.Quota
}

// planLimits reads the --key-… and --tenant-… limit flags of a plan.
func planLimits(cmd *cobra.Command, keyLimits, tenantLimits *limitFlags) (l planLimitValues, err error) {
	if l.keyRates, err = keyLimits.rateLimits(cmd); err != nil {
		return l, err
	}
	if l.keyQuota, err = keyLimits.quotaOf(cmd); err != nil {
		return l, err
	}
	if l.tenantRates, err = tenantLimits.rateLimits(cmd); err != nil {
		return l, err
	}
	l.tenantQuota, err = tenantLimits.quotaOf(cmd)
	return l, err
}

func (a *app) plansListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the plans, by name",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				ps, err := svc.Plans(cmd.Context(), manage.CommandLine())
				if err != nil {
					return err
				}
				if a.json {
					return printList(a, ps, "")
				}
				tw := table(a.stdout)
				fmt.Fprintln(tw, "NAME\tAPI ACCESS\tMAX KEYS\tCAPABILITIES\tPERMISSIONS")
				for _, p := range ps {
					row(tw, p.Name, strconv.FormatBool(p.APIAccess), maxKeys(p.MaxKeys), joinList(p.Capabilities, "-"), joinList(p.Permissions, "all"))
				}
				return tw.Flush()
			})
		},
	}
}

func (a *app) plansShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a plan",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				p, err := svc.Plan(cmd.Context(), manage.CommandLine(), argv[0])
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(p)
				}
				return printPlan(a.stdout, p)
			})
		},
	}
}

func (a *app) plansUpdateCommand() *cobra.Command {
	var (
		caps, perms  []string
		apiAccess    bool
		max          int
		keyLimits    limitFlags
		tenantLimits limitFlags
		unset        []string
	)
	c := &cobra.Command{
		Use:   "update NAME",
		Short: "Change a plan; only the flags given change anything",
		Long: `Change a plan. Only the flags given change anything; an update that would
change nothing is refused. --capabilities and --permissions replace the whole
list (give "" to clear it; no permissions means every one). What its
tenants' keys lose, they lose at once, on every node.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			changed := cmd.Flags().Changed
			var in manage.UpdatePlanInput
			if changed("capabilities") {
				c := nonEmpty(caps)
				in.Capabilities = &c
			}
			if changed("permissions") {
				p := nonEmpty(perms)
				in.Permissions = &p
			}
			if changed("api-access") {
				in.APIAccess = &apiAccess
			}
			if changed("max-keys") {
				in.MaxKeys = &max
			}
			l, err := planLimits(cmd, &keyLimits, &tenantLimits)
			if err != nil {
				return err
			}
			in.KeyRateLimits, in.KeyQuota, in.TenantRateLimits, in.TenantQuota = l.keyRates, l.keyQuota, l.tenantRates, l.tenantQuota
			in.Unset = unset
			if reflect.ValueOf(in).IsZero() {
				return usageError{errors.New("nothing to change: give at least one of --capabilities, --permissions, --api-access, --max-keys, --key-rate-limit, --key-quota, --tenant-rate-limit, --tenant-quota, --unset")}
			}
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				p, err := svc.UpdatePlan(cmd.Context(), manage.CommandLine(), argv[0], in)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(p)
				}
				fmt.Fprintf(a.stderr, "Updated plan %s.\n", shown(p.Name))
				return printPlan(a.stdout, p)
			})
		},
	}
	f := c.Flags()
	f.StringSliceVar(&caps, "capabilities", nil, "the new capabilities, comma-separated (replaces them all)")
	f.StringSliceVar(&perms, "permissions", nil, "the new permissions, comma-separated (replaces them all; none: every one)")
	f.BoolVar(&apiAccess, "api-access", true, "whether its tenants may use keys at all")
	f.IntVar(&max, "max-keys", 0, "the most unrevoked keys a tenant may hold; 0 for no limit")
	keyLimits.register(f, "key-", "each key of its tenants", false)
	tenantLimits.register(f, "tenant-", "all the keys of a tenant together", false)
	f.StringSliceVar(&unset, "unset", nil, "quotas to take away: key_quota, tenant_quota; comma-separated")
	return c
}

// asArgument returns err such that the field it names, when it is field,
// is not shown as a flag: its value was the command's argument (plans
// create NAME), not --name.
func asArgument(err error, field string) error {
	var ke *keyward.Error
	if errors.As(err, &ke) && ke.Field == field {
		shown := *ke
		shown.Field = ""
		return &shown
	}
	return err
}

// printPlan writes a plan's fields, one a line, each as shown.
func printPlan(w io.Writer, p *keyward.Plan) error {
	return fields(w,
		"name", p.Name,
		"api access", strconv.FormatBool(p.APIAccess),
		"max keys", maxKeys(p.MaxKeys),
		"capabilities", joinList(p.Capabilities, "-"),
		"permissions", joinList(p.Permissions, "all"),
		"key rate limits", formatRateLimits(p.KeyRateLimits, "none"),
		"key quota", formatQuota(p.KeyQuota, "none"),
		"tenant rate limits", formatRateLimits(p.TenantRateLimits, "none"),
		"tenant quota", formatQuota(p.TenantQuota, "none"),
		"created", when(p.CreatedAt),
		"updated", when(p.UpdatedAt),
	)
}

// maxKeys shows a plan's key limit.
func maxKeys(n int) string {
	if n == 0 {
		return "no limit"
	}
	return strconv.Itoa(n)
}

// permissionsCommand is `keyward permissions`: the catalogue of the
// permissions the operator's API defines.
func (a *app) permissionsCommand() *cobra.Command {
	return group("permissions", "Add, list and remove the permissions of the catalogue",
		a.permissionsAddCommand(),
		a.permissionsListCommand(),
		a.permissionsRemoveCommand(),
	)
}

func (a *app) permissionsAddCommand() *cobra.Command {
	var in manage.CreatePermissionInput
	c := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a permission to the catalogue",
		Long: `Add a permission to the catalogue. While the catalogue is empty, keys, members
and plans may hold any well-formed permission; once it has an entry, only
catalogued ones (Keyward's own, keys:manage and keyward:*, are built in).`,
		Example: `  keyward permissions add contacts:write --description "Create and change contacts"`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			in.Name = argv[0]
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				p, err := svc.AddPermission(cmd.Context(), manage.CommandLine(), in)
				if err != nil {
					return asArgument(err, "name")
				}
				if a.json {
					return a.printJSON(p)
				}
				_, err = fmt.Fprintf(a.stdout, "Added %s to the catalogue.\n", shown(p.Name))
				return err
			})
		},
	}
	c.Flags().StringVar(&in.Description, "description", "", "what the permission allows")
	return c
}

func (a *app) permissionsListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the catalogue, by name",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				ps, err := svc.Permissions(cmd.Context(), manage.CommandLine())
				if err != nil {
					return err
				}
				if a.json {
					return printList(a, ps, "")
				}
				tw := table(a.stdout)
				fmt.Fprintln(tw, "NAME\tDESCRIPTION\tCREATED")
				for _, p := range ps {
					row(tw, p.Name, orDash(p.Description), when(p.CreatedAt))
				}
				return tw.Flush()
			})
		},
	}
}

func (a *app) permissionsRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a permission from the catalogue; one in use is refused, saying where",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				if err := svc.RemovePermission(cmd.Context(), manage.CommandLine(), argv[0]); err != nil {
					return err
				}
				msg := view.Message{Success: true, Message: view.PermissionRemoved(argv[0])}
				if a.json {
					return a.printJSON(msg)
				}
				_, err := fmt.Fprintln(a.stdout, escaped(msg.Message))
				return err
			})
		},
	}
}
