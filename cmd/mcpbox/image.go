package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
)

func imageCommand() *cli.Command {
	opts := func(c *cli.Context) (launcher.Options, error) {
		log, err := logger(c)
		return launcher.Options{Address: c.String("containerd-address"), Namespace: c.String("namespace"), Stderr: os.Stderr, Logger: log}, err
	}
	return &cli.Command{
		Name:  "image",
		Usage: "build, list or remove the images of `rootfs: image` profiles",
		Subcommands: []*cli.Command{
			{
				Name:         "build",
				Usage:        "build a minimal image of the host's runtime (interpreter, its libraries, CA certificates) and print its digest",
				OnUsageError: usageError,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "runtime", Required: true, Usage: "node or python"},
					&cli.StringFlag{Name: "tag", Usage: "the image's name (default mcpbox.local/runtime/RUNTIME:VERSION)"},
				},
				Action: func(c *cli.Context) error {
					o, err := opts(c)
					if err != nil {
						return err
					}
					img, err := launcher.BuildImage(c.Context, o, c.String("runtime"), c.String("tag"))
					if err != nil {
						return err
					}
					fmt.Fprintf(os.Stderr, "mcpbox: built %s: %d files, %d bytes compressed; pin it in a profile with\n  rootfs: image\n  image: %s@%s\n", img.Ref, img.Files, img.Size, img.Ref, img.Digest)
					fmt.Fprintf(os.Stdout, "%s@%s\n", img.Ref, img.Digest)
					return nil
				},
			},
			{
				Name:         "ls",
				Usage:        "list the images in mcpbox's containerd namespace",
				OnUsageError: usageError,
				Action: func(c *cli.Context) error {
					o, err := opts(c)
					if err != nil {
						return err
					}
					imgs, err := launcher.ListImages(c.Context, o)
					if err != nil {
						return err
					}
					for _, i := range imgs {
						rt := i.Runtime
						if rt == "" {
							rt = "-"
						}
						fmt.Fprintf(os.Stdout, "%s\t%s\t%d\t%s\t%s\n", i.Ref, i.Digest, i.Size, rt, i.Created.Format("2006-01-02 15:04"))
					}
					return nil
				},
			},
			{
				Name:         "rm",
				Usage:        "remove images, their content and their snapshots",
				ArgsUsage:    "REF...",
				OnUsageError: usageError,
				Action: func(c *cli.Context) error {
					if c.NArg() == 0 {
						return &launcher.UsageError{Err: fmt.Errorf("name an image, e.g. `mcpbox image rm mcpbox.local/runtime/node:20.1.0` (see `mcpbox image ls`)")}
					}
					o, err := opts(c)
					if err != nil {
						return err
					}
					for _, ref := range c.Args().Slice() {
						if err := launcher.RemoveImage(c.Context, o, ref); err != nil {
							return err
						}
					}
					return nil
				},
			},
		},
	}
}
