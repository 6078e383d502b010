package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/policy"
)

// routesCommand is `keyward routes`: the route policy file (docs/policy.md).
func (a *app) routesCommand() *cobra.Command {
	return group("routes", "Check a route policy file", a.routesCheckCommand())
}

// routesSummary is what `keyward routes check --json` prints.
type routesSummary struct {
	File    string `json:"file"`
	Routes  int    `json:"routes"`
	Public  int    `json:"public"`
	Default string `json:"default"`
}

// routesCheckCommand is `keyward routes check FILE`: it loads the file as
// serve --routes would, and prints a summary, or every problem and exits 1.
func (a *app) routesCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a route policy file and print a summary of it",
		Long: `Validate a route policy file as the server loads it: the YAML, every
route's pattern and fields, and that no two routes conflict. On success it
prints the number of routes and the default; otherwise every problem, with
its line, and exits with status 1.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			p, err := policy.Load(name)
			var fe *policy.FileError
			switch {
			case errors.As(err, &fe):
				return fmt.Errorf("%s is not a valid routes file:\n  %s", name, strings.Join(fe.Lines(), "\n  "))
			case err != nil:
				return err
			}
			s := routesSummary{File: name, Default: string(p.Default())}
			for _, r := range p.Routes() {
				s.Routes++
				if r.Public {
					s.Public++
				}
			}
			if a.json {
				return a.printJSON(s)
			}
			routes := "routes"
			if s.Routes == 1 {
				routes = "route"
			}
			_, err = fmt.Fprintf(a.stdout, "%s: %d %s (%d public), default: %s\n", s.File, s.Routes, routes, s.Public, s.Default)
			return err
		},
	}
}
