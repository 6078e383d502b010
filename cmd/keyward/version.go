package main

import (
	"fmt"
	"runtime"

	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

// versionCommand is `keyward version`: the release and the Go toolchain of
// this build.
func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of keyward",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.json {
				return a.printJSON(map[string]string{
					"version":    keyward.Version,
					"go_version": runtime.Version(),
					"platform":   runtime.GOOS + "/" + runtime.GOARCH,
				})
			}
			_, err := fmt.Fprintf(a.stdout, "keyward %s (%s, %s/%s)\n", keyward.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
