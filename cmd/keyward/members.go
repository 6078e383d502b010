package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/view"
	"github.com/spf13/cobra"
)

// membersCommand is `keyward members`: the people of a tenant, their roles
// and the permissions their keys may use.
func (a *app) membersCommand() *cobra.Command {
	return group("members", "Add, list, show, update and remove the members of a tenant",
		a.membersAddCommand(),
		a.membersListCommand(),
		a.membersShowCommand(),
		a.membersUpdateCommand(),
		a.membersSetRoleCommand(),
		a.membersSetPermissionsCommand(),
		a.membersRemoveCommand(),
		a.membersSetPasswordCommand(),
		a.membersSignOutCommand(),
		a.membersInviteCommand(),
	)
}

// membersInviteCommand is `members invite ID`: a one-time link with which
// the member sets the password they sign in to the dashboard with.
func (a *app) membersInviteCommand() *cobra.Command {
	var base string
	c := &cobra.Command{
		Use:   "invite ID [--public-url URL]",
		Short: "Make a one-time link, valid 7 days, with which a member sets their dashboard password",
		Long: `Make a one-time link with which a member sets the password they sign in to the
dashboard with. It is printed once, on standard output; send it to the member.
It works once, for 7 days.`,
		Example: `  keyward members invite mem_… --public-url https://keys.example.com`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if err := checkPublicURL(base); err != nil {
				return usageError{err}
			}
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				l, err := svc.InviteMember(cmd.Context(), manage.CommandLine(), argv[0], base)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(l)
				}
				link := l.URL
				if link == "" {
					link = l.Path
					fmt.Fprintln(a.stderr, "Put the address of your dashboard before this path (or give --public-url):")
				}
				fmt.Fprintln(a.stdout, link)
				fmt.Fprintf(a.stderr, "It works once, until %s.\n", l.ExpiresAt.Format(time.RFC3339))
				return nil
			})
		},
	}
	c.Flags().StringVar(&base, "public-url", a.env("KEYWARD_PUBLIC_URL", ""), "the base URL of the dashboard, such as https://keys.example.com (env KEYWARD_PUBLIC_URL)")
	return c
}

// membersSetPasswordCommand is `members set-password ID`: the password the
// member signs in to the dashboard with, read from the first line of
// standard input so that it is in no shell history and no process list.
func (a *app) membersSetPasswordCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "set-password ID",
		Short: "Set the password a member signs in to the dashboard with, read from standard input",
		Long: `Set the password a member signs in to the dashboard with. It is read from the
first line of standard input, never from an argument, and stored only as its
argon2id hash. The member's sessions end: they sign in again with it.`,
		Example: `  printf '%s\n' "$PASSWORD" | keyward members set-password mem_…`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			line, err := bufio.NewReader(a.stdin).ReadString('\n')
			if err != nil && line == "" {
				return usageError{errors.New("set-password: no password on standard input; pipe it in, one line")}
			}
			pw := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				if err := svc.SetPassword(cmd.Context(), manage.CommandLine(), argv[0], pw); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "Set the password of member %s; their sessions ended.\n", shown(argv[0]))
				return nil
			})
		},
	}
}

// membersSignOutCommand is `members sign-out ID`: every dashboard session
// of the member ends.
func (a *app) membersSignOutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "sign-out ID",
		Short: "Sign a member out of the dashboard everywhere",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				if _, err := svc.EndSessions(cmd.Context(), manage.CommandLine(), argv[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "Signed member %s out of every session.\n", shown(argv[0]))
				return nil
			})
		},
	}
}

func (a *app) membersAddCommand() *cobra.Command {
	var in manage.CreateMemberInput
	c := &cobra.Command{
		Use:   "add --tenant T --email E --name N --role R",
		Short: "Add a member to a tenant",
		Long: `Add a member to a tenant. The role says what the member may manage: owner,
admin, developer or viewer; the first member of a tenant must be an owner.
--permissions are what the member's keys may use, from the catalogue.`,
		Example: `  keyward members add --tenant acme --email ada@example.com --name "Ada Lovelace" \
      --role owner --permissions contacts:read,contacts:write`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(in.TenantID) == "" {
				return usageError{errors.New("--tenant is required: the id or slug of the member's tenant")}
			}
			in.Permissions = nonEmpty(in.Permissions)
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				m, err := svc.CreateMember(cmd.Context(), manage.CommandLine(), in)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(m)
				}
				fmt.Fprintf(a.stderr, "Added member %s (%s).\n", shown(m.ID), shown(m.Email))
				return printMember(a.stdout, m)
			})
		},
	}
	f := c.Flags()
	f.StringVar(&in.TenantID, "tenant", "", "id or slug of the member's tenant (required)")
	f.StringVar(&in.Email, "email", "", "the member's email address, unique in the tenant (required)")
	f.StringVar(&in.Name, "name", "", "the member's name (required)")
	f.StringVar(&in.Role, "role", "", "owner, admin, developer or viewer (required)")
	f.StringSliceVar(&in.Permissions, "permissions", nil, "what the member's keys may use, comma-separated")
	f.StringVar(&in.ExternalID, "external-id", "", "the member's id in your own user system")
	return c
}

func (a *app) membersListCommand() *cobra.Command {
	var (
		tenant string
		page   keyward.Page
	)
	c := &cobra.Command{
		Use:   "list [--tenant T]",
		Short: "List members, oldest first",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				ms, next, err := svc.Members(cmd.Context(), manage.CommandLine(), tenant, page)
				if err != nil {
					return err
				}
				if a.json {
					return printList(a, ms, next)
				}
				tw := table(a.stdout)
				fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tROLE\tSTATUS\tTENANT\tCREATED")
				for _, m := range ms {
					row(tw, m.ID, m.Email, m.Name, string(m.Role), string(m.Status), m.TenantID, when(m.CreatedAt))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				a.printNext(cmd.CommandPath(), next)
				return nil
			})
		},
	}
	c.Flags().StringVar(&tenant, "tenant", "", "id or slug of the tenant whose members to list (default every tenant)")
	pageFlags(c, &page)
	return c
}

func (a *app) membersShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a member",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				m, err := svc.Member(cmd.Context(), manage.CommandLine(), argv[0])
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(m)
				}
				return printMember(a.stdout, m)
			})
		},
	}
}

func (a *app) membersUpdateCommand() *cobra.Command {
	var (
		email, name, role, externalID, status string
		perms                                 []string
	)
	c := &cobra.Command{
		Use:   "update ID",
		Short: "Change a member; only the flags given change anything",
		Long: `Change a member. Only the flags given change anything; an update that would
change nothing is refused. --permissions replaces the whole list (give "" to
clear it): every key of the member loses at once what the member loses.
--status suspended stops the member's keys from using anything until
--status active. --external-id "" removes the external id.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			changed := cmd.Flags().Changed
			var in manage.UpdateMemberInput
			for flag, set := range map[string]func(){
				"email":       func() { in.Email = &email },
				"name":        func() { in.Name = &name },
				"role":        func() { in.Role = &role },
				"external-id": func() { in.ExternalID = &externalID },
				"status":      func() { in.Status = &status },
				"permissions": func() { p := nonEmpty(perms); in.Permissions = &p },
			} {
				if changed(flag) {
					set()
				}
			}
			if in == (manage.UpdateMemberInput{}) {
				return usageError{errors.New("nothing to change: give at least one of --email, --name, --role, --permissions, --external-id, --status")}
			}
			return a.updateMember(cmd, argv[0], in)
		},
	}
	f := c.Flags()
	f.StringVar(&email, "email", "", "a new email address")
	f.StringVar(&name, "name", "", "a new name")
	f.StringVar(&role, "role", "", "a new role: owner, admin, developer or viewer")
	f.StringSliceVar(&perms, "permissions", nil, "the new permissions, comma-separated (replaces them all)")
	f.StringVar(&externalID, "external-id", "", `a new external id, or "" to remove it`)
	f.StringVar(&status, "status", "", "active, or suspended: the member's keys may use nothing")
	return c
}

// membersSetRoleCommand is `members set-role ID ROLE`, the command SPEC
// names: members update ID --role ROLE.
func (a *app) membersSetRoleCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "set-role ID ROLE",
		Short: "Change a member's role (members update --role)",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.updateMember(cmd, argv[0], manage.UpdateMemberInput{Role: &argv[1]})
		},
	}
}

// membersSetPermissionsCommand is `members set-permissions ID P,Q`, the
// command SPEC names: members update ID --permissions P,Q.
func (a *app) membersSetPermissionsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "set-permissions ID PERMISSIONS",
		Short: `Replace a member's permissions, comma-separated, "" for none (members update --permissions)`,
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			p := nonEmpty(strings.Split(argv[1], ","))
			return a.updateMember(cmd, argv[0], manage.UpdateMemberInput{Permissions: &p})
		},
	}
}

// updateMember applies in to member id and prints the member.
func (a *app) updateMember(cmd *cobra.Command, id string, in manage.UpdateMemberInput) error {
	return a.withService(cmd.Context(), func(svc *manage.Service) error {
		m, err := svc.UpdateMember(cmd.Context(), manage.CommandLine(), id, in)
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(m)
		}
		fmt.Fprintf(a.stderr, "Updated member %s.\n", shown(m.ID))
		return printMember(a.stdout, m)
	})
}

func (a *app) membersRemoveCommand() *cobra.Command {
	var transferTo string
	c := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a member, and revoke their keys or move them to another member",
		Long: `Remove a member. Every key that belongs to them is revoked at once, everywhere,
unless --transfer-keys-to names an active member of the same tenant to move
the keys to; the keys are then bound by that member's permissions.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.withService(cmd.Context(), func(svc *manage.Service) error {
				r, err := svc.RemoveMember(cmd.Context(), manage.CommandLine(), argv[0], transferTo)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(view.RemovalOf(r))
				}
				_, err = fmt.Fprintln(a.stdout, escaped(view.MemberRemoved(r)))
				return err
			})
		},
	}
	c.Flags().StringVar(&transferTo, "transfer-keys-to", "", "the id of the member to move the keys to, instead of revoking them")
	return c
}

// printMember writes a member's fields, one a line, each as shown.
func printMember(w io.Writer, m *keyward.Member) error {
	return fields(w,
		"id", m.ID,
		"email", m.Email,
		"name", m.Name,
		"role", string(m.Role),
		"status", string(m.Status),
		"tenant", m.TenantID,
		"permissions", joinList(m.Permissions, "-"),
		"external id", orDash(m.ExternalID),
		"created", when(m.CreatedAt),
		"updated", when(m.UpdatedAt),
	)
}
