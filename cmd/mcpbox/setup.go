package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/apparmor"
	"github.com/mcpbox/mcpbox/launcher/runtime/rootless/cgroups"
)

// setupCommand groups the one-time host preparations that need root, so
// that everything after them runs as the user.
func setupCommand() *cli.Command {
	return &cli.Command{
		OnUsageError: usageError,
		Name:         "setup",
		Usage:        "prepare this host, once and as root, for users who run mcpbox without root",
		Subcommands:  []*cli.Command{setupRootlessCommand(), setupAppArmorCommand()},
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
			"was not designed for unprivileged delegation: the user gains creating cgroups inside that subtree\n" +
			"in every hierarchy (runc needs all of them), setting their files and moving their own processes\n" +
			"into them; with net_cls and net_prio that includes the class id and priority of their own\n" +
			"traffic, which firewall or tc rules keyed on cgroup class ids would then see. The sandboxed\n" +
			"servers themselves reach none of it.\n\n" +
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

// checkReplace refuses to let the profile for binary replace file unless
// file is missing or is mcpbox's profile for binary already.
func checkReplace(file, binary string) error {
	fi, err := os.Lstat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("setup apparmor: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("setup apparmor: %s is there and is not a regular file: mcpbox does not replace it; remove it if it is yours to remove", file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("setup apparmor: %w", err)
	}
	other, ok := apparmor.Binary(b)
	switch {
	case !ok:
		return fmt.Errorf("setup apparmor: %s is there and is not mcpbox's profile (its first line is not mcpbox's): "+
			"it is another program's, or an administrator's, and mcpbox does not replace it; "+
			"if it is yours to replace, move it away and run this again", file)
	case other != binary:
		return fmt.Errorf("setup apparmor: %s is mcpbox's profile for %s, whose path gives the same file name as %s: "+
			"mcpbox does not replace it; remove it if that mcpbox is gone (sudo rm %s), or install mcpbox at a path that does not collide", file, other, binary, file)
	}
	return nil
}

// shellWord quotes s for a shell when it needs quoting.
func shellWord(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`;&|<>()*?[]#~%") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func setupAppArmorCommand() *cli.Command {
	return &cli.Command{
		OnUsageError: usageError,
		Name:         "apparmor",
		Usage:        "install the AppArmor profile that lets this mcpbox create user namespaces where the host restricts them (Ubuntu 23.10+)",
		Description: "Ubuntu 23.10 and later let only programs with an AppArmor profile that allows `userns` create\n" +
			"unprivileged user namespaces, which the rootless runtime needs. This command writes such a profile\n" +
			"for the mcpbox binary (symlinks resolved: the kernel matches the real path) to /etc/apparmor.d,\n" +
			"after the host's apparmor_parser has accepted it, and loads it. The profile confines nothing else\n" +
			"(flags=(unconfined)); local additions go to /etc/apparmor.d/local/.\n\n" +
			"It installs a profile only for an executable named mcpbox that nobody but root can replace: the file\n" +
			"and every directory above it root's, not writable by group or others, on no nosuid mount — as\n" +
			"`sudo make install` and the Debian package leave it. It never replaces a file in /etc/apparmor.d\n" +
			"that is not mcpbox's profile for that same binary. --print shows the profile for any path.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "binary", Usage: "the mcpbox binary the profile is for", DefaultText: "this mcpbox"},
			&cli.BoolFlag{Name: "print", Usage: "print the profile instead of installing it (no root needed)"},
			&cli.StringFlag{Name: "parser", Value: "apparmor_parser", Usage: "the apparmor_parser to check and load the profile with"},
			&cli.StringFlag{Name: "dir", Value: apparmor.Dir, Usage: "where profiles live", Hidden: true},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return &launcher.UsageError{Err: fmt.Errorf("unexpected argument %q (see `mcpbox setup apparmor --help`)", c.Args().First())}
			}
			binary := c.String("binary")
			if binary == "" {
				exe, err := os.Executable()
				if err != nil {
					return err
				}
				binary = exe
			}
			real, err := filepath.EvalSymlinks(binary)
			if err != nil {
				return &launcher.UsageError{Flag: "binary", Err: err}
			}
			profile, err := apparmor.Profile(real)
			if err != nil {
				return &launcher.UsageError{Flag: "binary", Err: err}
			}
			if c.Bool("print") {
				_, err := os.Stdout.Write(profile)
				return err
			}
			return installAppArmor(c.Context, os.Stdout, c.String("parser"), c.String("dir"), real, profile)
		},
	}
}

// installAppArmor checks profile with the host's parser, writes it to dir
// and loads it where AppArmor is enabled. A profile the parser refuses is
// never written: it would fail every boot's profile load. Nor is one for
// a binary others than root could replace (the profile would lift the
// user-namespace restriction for whatever they put there), nor one that
// would replace a file in dir that is not mcpbox's profile for binary:
// another program's profile, an administrator's, or mcpbox's for another
// path that has the same file name (/a/b.c/mcpbox and /a.b/c/mcpbox).
func installAppArmor(ctx context.Context, out io.Writer, parser, dir, binary string, profile []byte) error {
	if os.Geteuid() != 0 {
		return errors.New("setup apparmor: needs root: run it with sudo")
	}
	if err := apparmor.CheckInstalled(binary); err != nil {
		return fmt.Errorf("setup apparmor: %w; the profile would let whatever is put there create user namespaces: "+
			"install mcpbox where only root may write (`sudo make install`, or the Debian package) and run "+
			"`sudo mcpbox setup apparmor --binary PATH` with that path (--print shows the profile for any path)", err)
	}
	name, err := apparmor.FileName(binary)
	if err != nil {
		return err
	}
	file := filepath.Join(dir, name)
	if err := checkReplace(file, binary); err != nil {
		return err
	}
	path, err := exec.LookPath(parser)
	if err != nil {
		return fmt.Errorf("setup apparmor: %s not found: install AppArmor's tools (`sudo apt install apparmor`), or there is no AppArmor to configure here", parser)
	}
	if err := apparmor.Check(ctx, path, profile); err != nil {
		return fmt.Errorf("setup apparmor: %s refuses the profile (AppArmor 4 is needed for `userns` rules; older hosts do not restrict user namespaces and need no profile): %w", path, err)
	}
	// A dot file: AppArmor skips it at boot should mcpbox die before the
	// rename.
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("setup apparmor: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(profile)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		return fmt.Errorf("setup apparmor: write %s: %w", file, err)
	}
	fmt.Fprintf(out, "wrote %s for %s\n", file, binary)
	if b, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled"); strings.TrimSpace(string(b)) != "Y" {
		fmt.Fprintln(out, "AppArmor is not enabled on this kernel: the profile loads at the next boot with AppArmor")
		return nil
	}
	if o, err := exec.CommandContext(ctx, path, "-r", file).CombinedOutput(); err != nil {
		return fmt.Errorf("setup apparmor: load %s: %v: %s", file, err, strings.TrimSpace(string(o)))
	}
	fmt.Fprintln(out, "loaded: this mcpbox may now create user namespaces")
	return nil
}
