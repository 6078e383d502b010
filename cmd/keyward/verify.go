package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/manage"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
	"github.com/keyward/keyward/view"
	"github.com/spf13/cobra"
)

// verifyCommand is `keyward verify KEY`: it checks a key as a server would
// and prints the outcome. It exits 0 when the key is valid and 1 when it is
// refused.
//
// A valid check is a use of the key like any other: it sets the key's last
// use (with --ip as its address), and the command writes it before it exits,
// so that no use of a key goes unrecorded, whoever made it.
func (a *app) verifyCommand() *cobra.Command {
	var (
		perms                              []string
		ip, method, path, referrer, origin string
		routes                             string
		overTLS                            bool
	)
	c := &cobra.Command{
		Use:   "verify KEY|-",
		Short: "Check a key as a server would; exit 0 if valid, 1 if refused",
		Long: `Check a key as a server would, and print the outcome: "valid key_… tenant …
env …", or "refused: <code>: <detail>". Exit status 0 means valid, 1 refused.

Give the key as "-" to read it from the first line of standard input, which
keeps it out of the shell's history and the process list.

A valid check counts as a use of the key: it sets the key's last use, with
--ip as the address if given.

The key's restrictions are checked against --ip, --method and --path,
--referrer and --origin; a key with endpoint restrictions is refused
without --path. With --routes FILE and --path, the route policy of the file
decides what the request needs, as serve --routes does; a route of it with
tls: required refuses the request, tls_required, unless --tls says that it
came over HTTPS.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) (err error) {
			key := argv[0]
			if key == "-" {
				if key, err = readKeyLine(a.stdin); err != nil {
					return err
				}
			}
			req := verify.Request{Key: key, Permissions: perms, Method: method, Target: path, Referer: referrer, Origin: origin, TLS: overTLS}
			if routes != "" {
				file, err := policy.Open(routes, nil)
				if err != nil {
					return usageError{fmt.Errorf("--routes: %w", err)}
				}
				if path == "" {
					return usageError{errors.New("--routes: give --method and --path too: the policy decides by them")}
				}
				req.Policy = file.Policy()
			}
			if ip != "" {
				addr, err := netip.ParseAddr(ip)
				if err != nil {
					return usageError{fmt.Errorf("--ip: %q is not an IP address; use a form such as 203.0.113.7 or 2001:db8::1", ip)}
				}
				req.IP = addr
			}
			store, f, err := a.open(cmd.Context(), false, nil)
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, store.Close()) }()
			v := verify.New(store, verify.Options{Format: f})
			// The command line verifies as root, by the rule of
			// POST /v1/verify (manage.Verify).
			res, verr := manage.Verify(cmd.Context(), manage.CommandLine(), v, req)
			// Close writes the use that a valid check recorded.
			if err := errors.Join(verr, v.Close(cmd.Context())); err != nil {
				return err
			}
			switch res.Code {
			case keyward.CodeStorageUnavailable, keyward.CodeInternal:
				// The key was neither accepted nor refused.
				return res.Err()
			}
			return a.printOutcome(res)
		},
	}
	c.Flags().StringArrayVar(&perms, "permission", nil, "a permission the key must hold; repeat for more")
	c.Flags().StringVar(&ip, "ip", "", "the client address to check the key's IP restrictions against")
	c.Flags().StringVar(&method, "method", "GET", "the request's method, for the key's endpoint restrictions and --routes")
	c.Flags().StringVar(&path, "path", "", "the request's path (and query string) as received, for the key's endpoint restrictions and --routes")
	c.Flags().StringVar(&referrer, "referrer", "", "the request's Referer, for the key's referrer restrictions")
	c.Flags().StringVar(&origin, "origin", "", "the request's Origin, for the key's referrer restrictions when there is no --referrer")
	c.Flags().BoolVar(&overTLS, "tls", false, "the request came over TLS (HTTPS), for the routes of --routes with tls: required")
	c.Flags().StringVar(&routes, "routes", "", "a route policy file (see keyward routes check) that decides what the request at --path needs")
	return c
}

// printOutcome prints a verification's result and returns an exitError for
// a refusal.
func (a *app) printOutcome(res verify.Result) error {
	if a.json {
		// The answer of POST /v1/verify, with no request id.
		if err := a.printJSON(view.VerificationOf(res, "")); err != nil {
			return err
		}
	} else if res.Public {
		if _, err := fmt.Fprintf(a.stdout, "public route %s: no key needed\n", res.Route); err != nil {
			return err
		}
	} else if res.Valid() {
		tenant := shown(res.Key.TenantID)
		if res.Tenant != nil {
			tenant = shown(res.Tenant.Slug) + " (" + shown(res.Tenant.ID) + ")"
		}
		if _, err := fmt.Fprintf(a.stdout, "valid %s tenant %s env %s name %q permissions %s\n",
			shown(res.Key.ID), tenant, shown(string(res.Key.Environment)), res.Key.Name, joinList(res.Key.Permissions, "-")); err != nil {
			return err
		}
	} else {
		if _, err := fmt.Fprintf(a.stdout, "refused: %s: %s\n", res.Code, escaped(apikey.Redact(res.Detail))); err != nil {
			return err
		}
	}
	if !res.Valid() {
		return exitError{1}
	}
	return nil
}

// readKeyLine reads a key from the first line of r, without its line ending.
// Anything else about the line is left for verification to judge.
func readKeyLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && line == "" {
		return "", usageError{errors.New("verify -: no key on standard input")}
	}
	line = strings.TrimSuffix(line, "\n")
	return strings.TrimSuffix(line, "\r"), nil
}
