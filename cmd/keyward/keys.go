package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/view"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// keysCommand is `keyward keys`: the API keys of tenants.
func (a *app) keysCommand() *cobra.Command {
	return group("keys", "Create, list, show, update, revoke and rotate API keys",
		a.keysCreateCommand(),
		a.keysListCommand(),
		a.keysShowCommand(),
		a.keysUsageCommand(),
		a.keysUpdateCommand(),
		a.keysRevokeCommand(),
		a.keysRotateCommand(),
		a.keysRotateAllCommand(),
	)
}

// rotatedKeyJSON is the --json output of keys rotate: the successor as the
// API's data shows it, and the old key as the API's previous.
type rotatedKeyJSON struct {
	view.CreatedKey
	Previous view.Key `json:"previous"`
}

// revokedKeyJSON is the --json output of keys revoke: the API's answer,
// with the key's id and revocation time.
type revokedKeyJSON struct {
	view.Message
	ID        string     `json:"id"`
	RevokedAt *time.Time `json:"revoked_at"`
}

func (a *app) keysCreateCommand() *cobra.Command {
	var (
		in                manage.CreateKeyInput
		expires, rotateBy string
		metadata          []string
		rf                restrictionFlags
		lf                limitFlags
	)
	c := &cobra.Command{
		Use:   "create --tenant T --name N",
		Short: "Create an API key and print it, once, alone on stdout",
		Long: `Create an API key. The key is printed once, alone on its own line of stdout,
and its id and details on stderr, so that KEY=$(keyward keys create …) works.
Keyward keeps only its hash: store the key at once.

--expires and --rotate-by take a date (2027-01-01, midnight UTC), an RFC 3339
time, or a duration from now (90d, 2w, 12h, 30m), at most 100 years (36500d)
ahead; "never", or no flag, for none.`,
		Example: `  KEY=$(keyward keys create --tenant acme --name prod-order-bot \
      --permissions contacts:write,messages:send --expires 90d \
      --allow-ip 203.0.113.0/24 --metadata owner=billing)`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(in.TenantID) == "" {
				return usageError{errors.New("--tenant is required: the id or slug of the tenant the key is for")}
			}
			if cmd.Flags().Changed("expires") {
				in.Expires = &expires
			}
			if cmd.Flags().Changed("rotate-by") {
				in.RotateBy = &rotateBy
			}
			r, err := rf.restrictions(cmd, keyward.Restrictions{})
			if err != nil {
				return err
			}
			in.Restrictions = r
			md, err := parseMetadata(metadata)
			if err != nil {
				return err
			}
			in.Metadata = md
			rates, err := lf.rateLimits(cmd)
			if err != nil {
				return err
			}
			if rates != nil {
				in.RateLimits = *rates
			}
			if in.Quota, err = lf.quotaOf(cmd); err != nil {
				return err
			}
			if in.Credits, err = lf.creditsOf(cmd); err != nil {
				return err
			}
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				k, plaintext, err := svc.CreateKey(cmd.Context(), manage.CommandLine(), in)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(view.CreatedKey{Key: view.KeyOf(k, svc.Now()), Plaintext: plaintext})
				}
				if _, err := fmt.Fprintln(a.stdout, plaintext); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "Created API key %s (%s). %s\n", shown(k.ID), shown(k.Name), view.StoreNow)
				return a.printKey(a.stderr, k, svc.Now())
			})
		},
	}
	f := c.Flags()
	f.StringVar(&in.TenantID, "tenant", "", "id or slug of the tenant the key is for (required)")
	f.StringVar(&in.Name, "name", "", `what the key is for, such as "prod-order-bot" (required)`)
	f.StringVar(&in.Environment, "env", "live", "environment: live or test")
	f.StringSliceVar(&in.Permissions, "permissions", nil, "permissions, comma-separated, such as contacts:write,messages:send")
	f.StringVar(&expires, "expires", "", `when the key stops working: 2027-01-01 or a duration such as 90d, at most 100 years ahead, or "never" (the default)`)
	f.StringVar(&rotateBy, "rotate-by", "", "when the key is due for rotation: a date or a duration such as 90d, at most 100 years ahead")
	rf.register(f, "default")
	f.StringArrayVar(&metadata, "metadata", nil, "a tag KEY=VALUE, such as owner=billing; repeat for more")
	f.StringVar(&in.MemberID, "member", "", "the id of the member the key belongs to, whose permissions bound it (default none: a key of the tenant as a whole)")
	lf.register(f, "", "the key, instead of its plan's", true)
	return c
}

func (a *app) keysListCommand() *cobra.Command {
	var (
		in   manage.KeyListInput
		page keyward.Page
	)
	c := &cobra.Command{
		Use:   "list [--tenant T]",
		Short: "List API keys, newest first",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				ks, next, err := svc.Keys(cmd.Context(), manage.CommandLine(), in, page)
				if err != nil {
					return err
				}
				if a.json {
					return printList(a, view.KeysOf(ks, svc.Now()), next)
				}
				now := svc.Now()
				tw := table(a.stdout)
				fmt.Fprintln(tw, "ID\tNAME\tKEY\tENV\tSTATUS\tCREATED\tLAST USED\tEXPIRES")
				for _, k := range ks {
					row(tw, k.ID, k.Name, displayKey(k), string(k.Environment),
						string(k.StatusAt(now)), when(k.CreatedAt), whenOr(k.LastUsedAt, "never"), whenOr(k.ExpiresAt, "never"))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				a.printNext(cmd.CommandPath(), next)
				return nil
			})
		},
	}
	f := c.Flags()
	f.StringVar(&in.TenantID, "tenant", "", "id or slug of the tenant whose keys to list (default every tenant)")
	f.StringVar(&in.MemberID, "member", "", "only the keys that belong to this member")
	f.StringVar(&in.Environment, "env", "", "only keys of this environment: live or test")
	f.StringVar(&in.Status, "status", "", "only keys with this status now: active, disabled, expired or revoked")
	pageFlags(c, &page)
	return c
}

func (a *app) keysShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show an API key (never its plaintext)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				k, err := svc.Key(cmd.Context(), manage.CommandLine(), argv[0])
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(view.KeyOf(k, svc.Now()))
				}
				return a.printKey(a.stdout, k, svc.Now())
			})
		},
	}
}

func (a *app) keysUpdateCommand() *cobra.Command {
	var (
		name, expires, rotateBy string
		perms, metadata         []string
		enable, disable         bool
		clearSharing            bool
		rf                      restrictionFlags
		lf                      limitFlags
		unset                   []string
	)
	c := &cobra.Command{
		Use:   "update ID",
		Short: "Change an API key; only the flags given change anything",
		Long: `Change an API key. Only the flags given change anything.

--expires and --rotate-by take a date, an RFC 3339 time, a duration from now
(90d), at most 100 years ahead, or "never" to remove it. An update that would
change nothing is refused. --permissions, --metadata and each of --allow-ip,
--allow-referrer, --allow-endpoint and --allow-resource replace their whole
list (the restrictions not named stay); give an empty value (--allow-ip "")
to clear one.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			changed := cmd.Flags().Changed
			var in manage.UpdateKeyInput
			if changed("name") {
				in.Name = &name
			}
			if changed("permissions") {
				p := nonEmpty(perms)
				in.Permissions = &p
			}
			if changed("expires") {
				in.Expires = &expires
			}
			if changed("rotate-by") {
				in.RotateBy = &rotateBy
			}
			if changed("metadata") {
				md, err := parseMetadata(metadata)
				if err != nil {
					return err
				}
				if md == nil {
					md = map[string]string{}
				}
				in.Metadata = &md
			}
			switch {
			case changed("enable") && changed("disable"):
				return usageError{errors.New("--enable and --disable cannot be given together")}
			case changed("enable"):
				in.Enabled = &enable
			case changed("disable"):
				e := !disable
				in.Enabled = &e
			}
			var err error
			if in.RateLimits, err = lf.rateLimits(cmd); err != nil {
				return err
			}
			if in.Quota, err = lf.quotaOf(cmd); err != nil {
				return err
			}
			if in.Credits, err = lf.creditsOf(cmd); err != nil {
				return err
			}
			in.Unset = unset
			if clearSharing {
				in.SharingSuspected = new(bool)
			}
			if reflect.ValueOf(in).IsZero() && !rf.changed(cmd) {
				return usageError{errors.New("nothing to change: give at least one of --name, --permissions, --expires, --rotate-by, --allow-ip, --allow-referrer, --allow-endpoint, --allow-resource, --metadata, --enable, --disable, --rate-limit, --quota, --credits, --unset, --clear-sharing")}
			}
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				if rf.changed(cmd) {
					// Only the restrictions given change: the others are
					// those of the key as it is.
					k, err := svc.Key(cmd.Context(), manage.CommandLine(), argv[0])
					if err != nil {
						return err
					}
					if in.Restrictions, err = rf.restrictions(cmd, k.Restrictions); err != nil {
						return err
					}
				}
				k, err := svc.UpdateKey(cmd.Context(), manage.CommandLine(), argv[0], in)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(view.KeyOf(k, svc.Now()))
				}
				fmt.Fprintf(a.stderr, "Updated API key %s.\n", shown(k.ID))
				return a.printKey(a.stdout, k, svc.Now())
			})
		},
	}
	f := c.Flags()
	lf.register(f, "", "the key, instead of its plan's", true)
	f.StringSliceVar(&unset, "unset", nil, "take away: rate_limits or quota (the plan's again), credits (no limit); comma-separated")
	f.StringVar(&name, "name", "", "a new name")
	f.StringSliceVar(&perms, "permissions", nil, "the new permissions, comma-separated (replaces them all)")
	f.StringVar(&expires, "expires", "", `when the key stops working: a date, a duration such as 90d, or "never"`)
	f.StringVar(&rotateBy, "rotate-by", "", `when the key is due for rotation: a date, a duration, or "never"`)
	rf.register(f, "replaces them all")
	f.StringArrayVar(&metadata, "metadata", nil, "a tag KEY=VALUE; repeat for more (replaces them all)")
	f.BoolVar(&enable, "enable", false, "let a disabled key work again")
	f.BoolVar(&disable, "disable", false, "refuse the key until it is enabled again")
	f.BoolVar(&clearSharing, "clear-sharing", false, "clear the key's suspicion of sharing and its evidence (docs/signals.md)")
	return c
}

func (a *app) keysRevokeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key at once, everywhere",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				k, err := svc.RevokeKey(cmd.Context(), manage.CommandLine(), argv[0])
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(revokedKeyJSON{Message: view.Message{Success: true, Message: view.KeyRevoked}, ID: k.ID, RevokedAt: k.RevokedAt})
				}
				_, err = fmt.Fprintf(a.stdout, "%s: %s (%s)\n", view.KeyRevoked, shown(k.ID), shown(k.Name))
				return err
			})
		},
	}
}

func (a *app) keysRotateCommand() *cobra.Command {
	var grace string
	c := &cobra.Command{
		Use:   "rotate ID",
		Short: "Issue a successor key and print it, once, alone on stdout",
		Long: `Issue a successor of an API key, with the same tenant, environment, name,
permissions, metadata and restrictions. The new key is printed once, alone on its
own line of stdout; the old key keeps working for the grace period (--grace,
default 24h, at most 30d; 0 stops it at once).`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			var in manage.RotateKeyInput
			if cmd.Flags().Changed("grace") {
				in.GracePeriod = &grace
			}
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				k, plaintext, old, err := svc.RotateKey(cmd.Context(), manage.CommandLine(), argv[0], in)
				if err != nil {
					return err
				}
				if a.json {
					now := svc.Now()
					return a.printJSON(rotatedKeyJSON{CreatedKey: view.CreatedKey{Key: view.KeyOf(k, now), Plaintext: plaintext}, Previous: view.KeyOf(old, now)})
				}
				if _, err := fmt.Fprintln(a.stdout, plaintext); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "Rotated API key %s to %s (%s). %s\n", shown(old.ID), shown(k.ID), shown(k.Name), view.StoreNow)
				if now := svc.Now(); old.ExpiresAt != nil && old.ExpiresAt.After(now) {
					fmt.Fprintf(a.stderr, "The old key %s keeps working until %s (for %s).\n",
						shown(old.ID), when(*old.ExpiresAt), old.ExpiresAt.Sub(now).Round(time.Second))
				} else {
					fmt.Fprintf(a.stderr, "The old key %s no longer works.\n", shown(old.ID))
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&grace, "grace", "24h", "how long the old key keeps working: a duration up to 30d, 0 for not at all")
	return c
}

// keysRotateAllCommand is `keys rotate-all`: the operator's rotation of
// many keys with notice (docs/dashboard.md, "Rotation with notice").
func (a *app) keysRotateAllCommand() *cobra.Command {
	var in manage.NoticeRotationInput
	c := &cobra.Command{
		Use:   "rotate-all (--tenant T | --plan P | --all) --notice D",
		Short: "Rotate every working key of a tenant, of a plan's tenants or of every tenant, with notice",
		Long: `Rotate every working key of a tenant (--tenant), of every tenant on a plan
(--plan) or of every tenant (--all), with notice (--notice, such as 30d, at
most 365d). No new key is printed: each successor waits in its tenant's
dashboard, on the API keys page, to be revealed once by someone who may rotate
it. Each old key answers with the Deprecation and Sunset headers from now on
and stops at the end of the notice (or at its own expiry, if sooner); the
tenant's webhooks get key.rotated with that date. Keys rotated already are
left alone, so running it again rotates only what was missed. The operator
console shows, per tenant, the old keys still in use.`,
		Example: `  keyward keys rotate-all --plan legacy --notice 30d`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				out, err := svc.RotateWithNotice(cmd.Context(), manage.CommandLine(), in)
				if out != nil && a.json {
					if perr := a.printJSON(out); perr != nil {
						return perr
					}
				} else if out != nil {
					fmt.Fprintf(a.stdout, "Rotated %d keys with notice: the old keys stop at %s.\n", len(out.Rotated), when(out.SunsetAt))
					if out.Skipped > 0 {
						fmt.Fprintf(a.stdout, "Left %d keys that were rotated already, or are new keys waiting to be revealed.\n", out.Skipped)
					}
					for id, why := range out.Failed {
						fmt.Fprintf(a.stderr, "Could not rotate %s: %s\n", shown(id), why)
					}
				}
				if err == nil && out != nil && len(out.Failed) > 0 {
					err = fmt.Errorf("%d keys could not be rotated; run it again once the cause is fixed", len(out.Failed))
				}
				return err
			})
		},
	}
	f := c.Flags()
	f.StringVar(&in.TenantID, "tenant", "", "rotate the keys of this tenant (id or slug)")
	f.StringVar(&in.Plan, "plan", "", "rotate the keys of every tenant on this plan")
	f.BoolVar(&in.All, "all", false, "rotate the keys of every tenant")
	f.StringVar(&in.Notice, "notice", "", "how long the old keys keep working, such as 30d (required)")
	return c
}

// printKey writes a key's fields, one a line, each as shown; never its
// plaintext, which Keyward does not have.
func (a *app) printKey(w io.Writer, k *keyward.Key, now time.Time) error {
	lastUsed := whenOr(k.LastUsedAt, "never")
	if k.LastUsedAt != nil && k.LastUsedIP != "" {
		lastUsed += " from " + shown(k.LastUsedIP)
	}
	return fields(w,
		"id", k.ID,
		"name", k.Name,
		"key", displayKey(k),
		"tenant", k.TenantID,
		"member", orDash(k.MemberID),
		"environment", string(k.Environment),
		"status", string(k.StatusAt(now)),
		"permissions", joinList(k.Permissions, "-"),
		"allowed ips", joinList(k.Restrictions.IPs, "any"),
		"referrers", joinList(k.Restrictions.Referrers, "any"),
		"endpoints", joinList(k.Restrictions.Endpoints, "any"),
		"resources", joinResources(k.Restrictions.Resources),
		"metadata", joinMap(k.Metadata),
		"rate limits", formatRateLimits(k.RateLimits, "the plan's"),
		"quota", formatQuota(k.Quota, "the plan's"),
		"credits", formatCredits(k.Credits),
		"created", when(k.CreatedAt)+" by "+shown(k.CreatedBy),
		"expires", whenOr(k.ExpiresAt, "never"),
		"rotate by", rotateBy(k, now),
		"last used", lastUsed,
		"revoked", whenOr(k.RevokedAt, "-"),
		"rotated from", orDash(k.RotatedFrom),
		"rotated to", orDash(k.RotatedTo),
		"sharing", sharingOf(k.Sharing),
	)
}

// sharingOf shows why a key is suspected of being shared, or "-".
func sharingOf(s *keyward.Sharing) string {
	if s == nil {
		return "-"
	}
	seen := []string{}
	for _, list := range [][]string{s.Networks, s.UserAgents, s.Referrers} {
		seen = append(seen, list...)
	}
	return shown(fmt.Sprintf("suspected on %s (too many %s): %s", s.Day.Format(time.DateOnly),
		strings.Join(s.Reasons, ", "), strings.Join(seen, ", ")))
}

// parseMetadata reads --metadata values, each KEY=VALUE; empty values are
// skipped, so that --metadata "" clears the tags. It returns nil for none.
func parseMetadata(pairs []string) (map[string]string, error) {
	var md map[string]string
	for _, p := range pairs {
		if p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, usageError{fmt.Errorf("--metadata: %q is not KEY=VALUE; use a form such as owner=billing", p)}
		}
		if md == nil {
			md = map[string]string{}
		}
		if _, dup := md[k]; dup {
			return nil, usageError{fmt.Errorf("--metadata: tag %q is given twice; give each tag once", k)}
		}
		md[k] = v
	}
	return md, nil
}

// nonEmpty returns the non-empty strings of l, and an empty, non-nil slice
// when there are none.
func nonEmpty(l []string) []string {
	out := []string{}
	for _, s := range l {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// restrictionFlags are the flags of a key's restrictions: --allow-ip,
// --allow-referrer, --allow-endpoint and --allow-resource.
type restrictionFlags struct {
	ips, referrers, endpoints, resources []string
}

// register adds the flags to f; each replaces its list (what, in the help).
func (rf *restrictionFlags) register(f *pflag.FlagSet, what string) {
	f.StringSliceVar(&rf.ips, "allow-ip", nil, "an address or CIDR the key may be used from; repeat for more ("+what+" anywhere)")
	f.StringArrayVar(&rf.referrers, "allow-referrer", nil, "a page the key may be used from, such as https://app.example.com or https://*.example.com/*; repeat for more ("+what+" any)")
	f.StringArrayVar(&rf.endpoints, "allow-endpoint", nil, `an endpoint the key may call, such as "GET /v1/contacts/**"; repeat for more (`+what+" any)")
	f.StringArrayVar(&rf.resources, "allow-resource", nil, "allowed values of a path parameter, NAME=V1,V2 such as site=site_1,site_2; repeat for more names ("+what+" any)")
}

// changed reports whether any of the flags was given.
func (rf *restrictionFlags) changed(cmd *cobra.Command) bool {
	for _, name := range []string{"allow-ip", "allow-referrer", "allow-endpoint", "allow-resource"} {
		if cmd.Flags().Changed(name) {
			return true
		}
	}
	return false
}

// restrictions returns the restrictions the flags give, each flag given
// replacing its list in current, or nil when none was given.
func (rf *restrictionFlags) restrictions(cmd *cobra.Command, current keyward.Restrictions) (*keyward.Restrictions, error) {
	if !rf.changed(cmd) {
		return nil, nil
	}
	r := current
	changed := cmd.Flags().Changed
	if changed("allow-ip") {
		r.IPs = nonEmpty(rf.ips)
	}
	if changed("allow-referrer") {
		r.Referrers = nonEmpty(rf.referrers)
	}
	if changed("allow-endpoint") {
		r.Endpoints = nonEmpty(rf.endpoints)
	}
	if changed("allow-resource") {
		r.Resources = map[string][]string{}
		for _, v := range nonEmpty(rf.resources) {
			name, values, ok := strings.Cut(v, "=")
			if !ok || strings.TrimSpace(name) == "" {
				return nil, usageError{fmt.Errorf("--allow-resource %s: give NAME=VALUE,VALUE, such as site=site_1,site_2", shown(v))}
			}
			name = strings.TrimSpace(name)
			r.Resources[name] = append(r.Resources[name], nonEmpty(strings.Split(values, ","))...)
		}
	}
	return &r, nil
}

// joinResources shows a key's allowed resources, as site=site_1,site_2
// with names in order, or "any".
func joinResources(res map[string][]string) string {
	if len(res) == 0 {
		return "any"
	}
	parts := make([]string, 0, len(res))
	for _, name := range slices.Sorted(maps.Keys(res)) {
		parts = append(parts, name+"="+strings.Join(res[name], ","))
	}
	return shown(strings.Join(parts, " "))
}

// rotateBy shows k's rotate_by, and says when it is due.
func rotateBy(k *keyward.Key, now time.Time) string {
	if k.RotationDue(now) {
		return when(*k.RotateBy) + " (due: rotate the key)"
	}
	return whenOr(k.RotateBy, "-")
}
