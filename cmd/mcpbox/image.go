package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/containerd/containerd"
	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/image"
)

func imageCommand() *cli.Command {
	// connect checks --log-level, as every command does, though image
	// logs nothing, then connects to containerd.
	connect := func(c *cli.Context) (*containerd.Client, error) {
		if _, err := logger(c); err != nil {
			return nil, err
		}
		return launcher.Connect(c.Context, c.String("containerd-address"), c.String("namespace"))
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
					// A bad --log-level is found before the build's work.
					if _, err := logger(c); err != nil {
						return err
					}
					img, err := image.Build(c.Context, c.String("runtime"), c.String("tag"), os.Stderr)
					if err != nil {
						return imageUsage(err, true)
					}
					client, err := connect(c)
					if err != nil {
						return err
					}
					defer client.Close()
					if err := img.Store(c.Context, client); err != nil {
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
					client, err := connect(c)
					if err != nil {
						return err
					}
					defer client.Close()
					imgs, err := image.List(c.Context, image.Options{Client: client})
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
					client, err := connect(c)
					if err != nil {
						return err
					}
					defer client.Close()
					for _, ref := range c.Args().Slice() {
						if err := image.Remove(c.Context, image.Options{Client: client}, ref); err != nil {
							return imageUsage(err, false)
						}
					}
					return nil
				},
			},
		},
	}
}

// imageUsage makes image's argument errors usage errors (exit 2), of the
// flag the argument came from when flag is set, else of the command line.
func imageUsage(err error, flag bool) error {
	var arg *image.ArgError
	if !errors.As(err, &arg) {
		return err
	}
	u := &launcher.UsageError{Err: arg.Err}
	if flag {
		u.Flag = arg.Arg
	}
	return u
}
