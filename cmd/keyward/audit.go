package main

import (
	"fmt"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/spf13/cobra"
)

// auditCommand is `keyward audit`: the log of management actions, newest
// first.
func (a *app) auditCommand() *cobra.Command {
	var (
		f    keyward.AuditFilter
		page keyward.Page
	)
	c := &cobra.Command{
		Use:   "audit [--tenant T]",
		Short: "List management actions (who, what, when, from where), newest first",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				es, next, err := svc.AuditLog(cmd.Context(), manage.CommandLine(), f, page)
				if err != nil {
					return err
				}
				if a.json {
					return printList(a, es, next)
				}
				tw := table(a.stdout)
				fmt.Fprintln(tw, "AT\tACTOR\tMEMBER\tFROM\tACTION\tTENANT\tTARGET")
				for _, e := range es {
					row(tw, when(e.At), e.Actor, orDash(e.ActorMember), orDash(e.ActorIP), e.Action, orDash(e.TenantID), e.Target)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				a.printNext(cmd.CommandPath(), next)
				return nil
			})
		},
	}
	c.Flags().StringVar(&f.TenantID, "tenant", "", "only actions on this tenant (id or slug)")
	c.Flags().StringVar(&f.Target, "target", "", "only actions on this key, member or tenant id, or plan or permission name")
	pageFlags(c, &page)
	return c
}
