package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/runtime/rootless/cgroups"
)

// setupCommand groups the one-time host preparations that need root, so
// that everything after them runs as the user.
func setupCommand() *cli.Command {
	return &cli.Command{
		OnUsageError: usageError,
		Name:         "setup",
		Usage:        "prepare this host, once and as root, for users who run mcpbox without root",
		Subcommands:  []*cli.Command{setupRootlessCommand()},
	}
}

func setupRootlessCommand() *cli.Command {
	return &cli.Command{
		OnUsageError: usageError,
		Name:         "rootless",
		Usage:        "delegate a cgroup v1 subtree to a user, so that their sessions' memory, pids and cpu limits are enforced",
		Description: "Where the limit controllers are cgroup v1 (legacy or hybrid hosts), neither the kernel nor systemd\n" +
			"delegates them to users, and a user's sessions can enforce their limits only under a cgroup\n" +
			"subtree an administrator gave them. This command makes\n" +
			"/mcpbox-uid-UID in every controller hierarchy under --cgroup-root and gives it to the user. Its own\n" +
			"limit files stay root's: an administrator can cap all of the user's sessions there. cgroup v1\n" +
			"was not designed for unprivileged delegation; the user gains no more than creating and\n" +
			"limiting cgroups inside that subtree and moving their own processes into them.\n\n" +
			"cgroupfs forgets the subtree at every reboot: run this again from a boot hook.\n" +
			"On cgroup v2 (unified) hosts there is nothing to prepare: mcpbox asks the user's systemd.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "user", Usage: "the user (name or uid) to delegate to (default: the user who ran sudo)"},
			&cli.StringFlag{Name: "cgroup-root", Value: cgroups.DefaultRoot, Usage: "where the cgroup file systems are mounted"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return &launcher.UsageError{Err: fmt.Errorf("unexpected argument %q (see `mcpbox setup rootless --help`)", c.Args().First())}
			}
			u, err := setupUser(c.String("user"))
			if err != nil {
				return err
			}
			return setupRootless(os.Stdout, u, c.String("cgroup-root"))
		},
	}
}

// setupUser looks up --user, or the user sudo was run by.
func setupUser(name string) (*user.User, error) {
	if name == "" {
		name = os.Getenv("SUDO_USER")
	}
	if name == "" {
		return nil, &launcher.UsageError{Flag: "user", Err: errors.New("missing: name the user who will run mcpbox")}
	}
	u, err := user.Lookup(name)
	if err != nil {
		if byID, idErr := user.LookupId(name); idErr == nil {
			return byID, nil
		}
		return nil, &launcher.UsageError{Flag: "user", Err: fmt.Errorf("%q: %w", name, err)}
	}
	return u, nil
}

func setupRootless(out io.Writer, u *user.User, root string) error {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return fmt.Errorf("setup rootless: uid %q of %s: %w", u.Uid, u.Username, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return fmt.Errorf("setup rootless: gid %q of %s: %w", u.Gid, u.Username, err)
	}
	created, err := cgroups.PrepareV1(root, u.Username, uid, gid)
	for _, dir := range created {
		fmt.Fprintf(out, "created %s (owner %s)\n", dir, u.Username)
	}
	if err != nil {
		return fmt.Errorf("setup rootless: %w", err)
	}
	if len(created) == 0 {
		fmt.Fprintf(out, "the cgroup subtree of %s was already there; made sure it is theirs\n", u.Username)
	}
	self, err := os.Executable()
	if err != nil {
		self = "mcpbox"
	}
	fmt.Fprintf(out, "%s's mcpbox sessions can now enforce their memory, pids and cpu limits.\n"+
		"cgroupfs forgets this at every reboot: run it again at boot, e.g. with this line in root's crontab:\n"+
		"  @reboot %s setup rootless --user %s\n", u.Username, shellWord(self), u.Username)
	return nil
}

// shellWord quotes s for a shell when it needs quoting.
func shellWord(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`;&|<>()*?[]#~%") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
