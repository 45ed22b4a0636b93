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
