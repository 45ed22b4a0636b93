package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/urfave/cli/v2"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		OnUsageError: usageError,
		Name:         "version",
		Usage:        "print mcpbox's version",
		Action: func(c *cli.Context) error {
			_, err := fmt.Fprintf(os.Stdout, "mcpbox %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}

// manCommand prints the manual page, made from the same text as --help
// (make install and the Debian package install it as mcpbox(1)).
func manCommand() *cli.Command {
	return &cli.Command{
		OnUsageError: usageError,
		Name:         "man",
		Usage:        "print the manual page (roff), made from the help text",
		Hidden:       true,
		Action: func(c *cli.Context) error {
			page, err := c.App.ToManWithSection(1)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(os.Stdout, page)
			return err
		},
	}
}
