package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/spf13/cobra"
)

// webhooksCommand is `keyward webhooks`: the endpoints events are
// delivered to, and their delivery logs (docs/webhooks.md).
func (a *app) webhooksCommand() *cobra.Command {
	return group("webhooks", "Register webhook endpoints, and see and redo their deliveries",
		a.webhooksCreateCommand(),
		a.webhooksListCommand(),
		a.webhooksDeliveriesCommand(),
		a.webhooksRedeliverCommand(),
		a.webhooksRotateSecretCommand(),
		a.webhooksDeleteCommand(),
	)
}

func (a *app) webhooksCreateCommand() *cobra.Command {
	var in manage.WebhookInput
	c := &cobra.Command{
		Use:     "create --url URL --events E[,E…] [--tenant T]",
		Short:   "Register an endpoint: a tenant's (--tenant) or, without one, the operator's, which gets every tenant's events; prints its signing secret once",
		Example: `  keyward webhooks create --tenant acme --url https://api.acme.example/keyward --events key.revoked,key.rotation_due`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			in.Events = nonEmpty(in.Events)
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				w, secret, err := svc.CreateWebhook(cmd.Context(), manage.CommandLine(), in)
				if err != nil {
					return err
				}
				return a.printSecret(w, secret, fmt.Sprintf("Registered webhook %s for %s. The signing secret is below: store it now, it is shown only once.", w.ID, strings.Join(w.Events, ", ")))
			})
		},
	}
	f := c.Flags()
	f.StringVar(&in.TenantID, "tenant", "", "the tenant whose events it gets (id or slug); none: every tenant's")
	f.StringVar(&in.URL, "url", "", "where events are POSTed (required)")
	f.StringSliceVar(&in.Events, "events", nil, "the event types, comma-separated, or * for all (required)")
	f.StringVar(&in.Description, "description", "", "what the endpoint is for")
	return c
}

func (a *app) webhooksListCommand() *cobra.Command {
	var (
		tenant string
		page   keyward.Page
	)
	c := &cobra.Command{
		Use:   "list [--tenant T]",
		Short: "List the endpoints, every tenant's and the operator's, or one tenant's",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				list, next, err := svc.Webhooks(cmd.Context(), manage.CommandLine(), tenant, page)
				if err != nil {
					return err
				}
				return printPage(a, cmd.CommandPath(), list, next, "ID\tTENANT\tURL\tEVENTS\tENABLED\tCREATED", func(w *keyward.Webhook) []string {
					return []string{w.ID, orDash(w.TenantID), w.URL, strings.Join(w.Events, ","), strconv.FormatBool(w.Enabled), when(w.CreatedAt)}
				})
			})
		},
	}
	c.Flags().StringVar(&tenant, "tenant", "", "only this tenant's endpoints (id or slug)")
	pageFlags(c, &page)
	return c
}

func (a *app) webhooksDeliveriesCommand() *cobra.Command {
	var (
		in   manage.DeliveryListInput
		page keyward.Page
	)
	c := &cobra.Command{
		Use:   "deliveries WEBHOOK_ID [--status pending|delivered|failed]",
		Short: "The delivery log of an endpoint, newest first",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				list, next, err := svc.WebhookDeliveries(cmd.Context(), manage.CommandLine(), argv[0], in, page)
				if err != nil {
					return err
				}
				return printPage(a, cmd.CommandPath(), list, next, "DELIVERY\tEVENT\tTYPE\tSTATUS\tATTEMPTS\tLAST STATUS\tLAST ERROR\tCREATED", func(d *keyward.Delivery) []string {
					return []string{strconv.FormatInt(d.ID, 10), d.EventID, d.EventType, d.Status, strconv.Itoa(d.Attempts), strconv.Itoa(d.LastStatus),
						orDash(d.LastError), when(d.CreatedAt)}
				})
			})
		},
	}
	c.Flags().StringVar(&in.Status, "status", "", "only deliveries of this status: pending, delivered or failed")
	c.Flags().StringVar(&in.EventType, "event-type", "", "only deliveries of this event type")
	pageFlags(c, &page)
	return c
}

func (a *app) webhooksRedeliverCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "redeliver WEBHOOK_ID DELIVERY",
		Short: "Deliver again, at once (by a running server), with a new schedule of retries",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				d, err := svc.Redeliver(cmd.Context(), manage.CommandLine(), argv[0], argv[1])
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(d)
				}
				_, err = fmt.Fprintf(a.stdout, "Delivery %d of %s is due again; a running server attempts it within a second.\n", d.ID, d.EventID)
				return err
			})
		},
	}
}

func (a *app) webhooksRotateSecretCommand() *cobra.Command {
	var overlap string
	c := &cobra.Command{
		Use:   "rotate-secret WEBHOOK_ID [--overlap 24h]",
		Short: "Give an endpoint a new signing secret, printed once; the old one also signs for the overlap",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				w, secret, err := svc.RotateWebhookSecret(cmd.Context(), manage.CommandLine(), argv[0], &overlap)
				if err != nil {
					return err
				}
				return a.printSecret(w, secret, fmt.Sprintf("New secret of %s below: store it now, it is shown only once. The old one signs too until %s.", w.ID, when(*w.PreviousUntil)))
			})
		},
	}
	c.Flags().StringVar(&overlap, "overlap", "24h", "how long the old secret also signs deliveries, 0 to 7d")
	return c
}

func (a *app) webhooksDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete WEBHOOK_ID",
		Short: "Delete an endpoint and its deliveries",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				if err := svc.DeleteWebhook(cmd.Context(), manage.CommandLine(), argv[0]); err != nil {
					return err
				}
				_, err := fmt.Fprintf(a.stdout, "Deleted webhook %s.\n", argv[0])
				return err
			})
		},
	}
}

// printSecret prints an endpoint's signing secret, shown this once: with
// the endpoint as JSON with --json, else alone on stdout, with notice on
// stderr.
func (a *app) printSecret(w *keyward.Webhook, secret, notice string) error {
	if a.json {
		return a.printJSON(struct {
			*keyward.Webhook
			Secret string `json:"secret"`
		}{w, secret})
	}
	fmt.Fprintln(a.stderr, notice)
	_, err := fmt.Fprintln(a.stdout, secret)
	return err
}
