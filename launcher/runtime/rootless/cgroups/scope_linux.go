package cgroups

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// supervisor is the leaf cgroup that the scope's own processes move into:
// cgroup v2 enables controllers for a cgroup's children only while no
// process lives in it directly. Session cgroups are its siblings.
const supervisor = "supervisor"

// StartScope asks the user's systemd (through the session bus) for a
// transient scope unitName (it must end in ".scope") with Delegate=yes that
// holds pid, a process of the caller's, waits until systemd has started it,
// then moves the scope's processes into a leaf cgroup and enables the limit
// controllers systemd delegated for the scope's children. The returned
// Delegation's Parent is the scope's cgroup; the processes pid starts from
// now on are in the leaf, beside the session cgroups runc will create.
//
// It works on cgroup v2 (unified) hosts only: systemd delegates no cgroup v1
// controller to users. It may run inside mcpbox's user namespace.
func StartScope(ctx context.Context, unitName string, pid int) (Delegation, error) {
	h := realHost(DefaultRoot)
	l, err := h.layout()
	if err != nil {
		return Delegation{}, err
	}
	if !l.unified {
		return Delegation{}, fmt.Errorf("cgroups: start scope %s: %s is not cgroup v2 (unified), and systemd delegates no cgroup v1 controller to users: "+
			"an administrator prepares a subtree with `sudo mcpbox setup rootless --user NAME`", unitName, h.root)
	}
	return startScope(ctx, userBus(h), h.root, unitName, pid)
}

// busDialer connects to the bus where the user's systemd answers.
type busDialer func(ctx context.Context) (*sdbus.Conn, error)

// userBus dials the user's session bus. It reads the address itself rather
// than let godbus find it, which would start a bus (dbus-launch) where none
// runs and export the address into this process's environment.
func userBus(h host) busDialer {
	return func(ctx context.Context) (*sdbus.Conn, error) {
		addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
		if addr == "" {
			if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
				if _, err := os.Stat(filepath.Join(dir, "bus")); err == nil {
					addr = "unix:path=" + filepath.Join(dir, "bus")
				}
			}
		}
		if addr == "" {
			return nil, errors.New("no user D-Bus session bus: neither DBUS_SESSION_BUS_ADDRESS nor $XDG_RUNTIME_DIR/bus is set " +
				"(a systemd user instance provides it: log in, or `sudo loginctl enable-linger $USER`)")
		}
		ids, err := readIDMap(h.uidMap)
		if err != nil {
			return nil, err
		}
		uid, ok := ids.outside(os.Getuid())
		if !ok {
			return nil, fmt.Errorf("uid %d of this user namespace has no uid on the host", os.Getuid())
		}
		return sdbus.NewConnection(func() (*dbus.Conn, error) {
			conn, err := dbus.Dial(addr, dbus.WithContext(ctx))
			if err != nil {
				return nil, err
			}
			// godbus (v5.1, v5.2) sends no identity with EXTERNAL,
			// so the bus takes the socket's credentials, which it
			// sees as the host's uid. Were one sent, it would have
			// to be that uid, not this namespace's 0.
			if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(uid))}); err != nil {
				conn.Close()
				return nil, err
			}
			if err := conn.Hello(); err != nil {
				conn.Close()
				return nil, err
			}
			return conn, nil
		})
	}
}

// scopeProperties are the transient unit's properties (systemd.scope(5),
// org.freedesktop.systemd1(5)).
func scopeProperties(pid int) []sdbus.Property {
	return []sdbus.Property{
		sdbus.PropDescription("mcpbox session: the cgroup its sandbox's limits live under"),
		sdbus.PropPids(uint32(pid)),
		{Name: "Delegate", Value: dbus.MakeVariant(true)},
		// A scope whose processes were killed goes away too, instead
		// of staying failed until someone resets it.
		{Name: "CollectMode", Value: dbus.MakeVariant("inactive-or-failed")},
	}
}

// startScope is StartScope with the bus and the unified hierarchy's mount
// point (mnt) given.
func startScope(ctx context.Context, dial busDialer, mnt, unitName string, pid int) (Delegation, error) {
	if !strings.HasSuffix(unitName, ".scope") || strings.Contains(unitName, "/") {
		return Delegation{}, fmt.Errorf("cgroups: %q is not a scope unit name", unitName)
	}
	fail := func(err error) (Delegation, error) {
		return Delegation{}, fmt.Errorf("cgroups: start scope %s: %w", unitName, err)
	}
	conn, err := dial(ctx)
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	done := make(chan string, 1) // go-systemd's dispatcher blocks on sending
	if _, err := conn.StartTransientUnitContext(ctx, unitName, "fail", scopeProperties(pid), done); err != nil {
		return fail(err)
	}
	select {
	case result := <-done:
		if result != "done" {
			return fail(fmt.Errorf("systemd's job ended %q", result))
		}
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	prop, err := conn.GetUnitTypePropertyContext(ctx, unitName, "Scope", "ControlGroup")
	if err != nil {
		return fail(err)
	}
	cg, _ := prop.Value.Value().(string)
	if !path.IsAbs(cg) || path.Clean(cg) != cg || cg == "/" {
		return fail(fmt.Errorf("systemd gave the scope the cgroup %q", cg))
	}
	if in, err := unifiedCgroup(fmt.Sprintf("/proc/%d/cgroup", pid)); err != nil {
		return fail(err)
	} else if in != cg {
		return fail(fmt.Errorf("process %d is in cgroup %s, not in the scope's %s", pid, in, cg))
	}
	enabled, err := enter(filepath.Join(mnt, cg))
	if err != nil {
		return fail(err)
	}
	d := Delegation{Parent: cg, Version: 2, Controllers: limits(enabled), How: "systemd user scope " + unitName}
	if len(d.Missing(limitControllers)) > 0 {
		d.Fix = fixV2
	}
	return d, nil
}

// enter turns the delegated cgroup dir into an inner node: it moves every
// process in it into the supervisor leaf, then enables the limit
// controllers that are available for its children. It returns the
// controllers enabled.
func enter(dir string) ([]string, error) {
	leaf := filepath.Join(dir, supervisor)
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	// A process may fork while its siblings move; a few rounds see the
	// children too.
	for round := 0; ; round++ {
		procs, err := readFields(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return nil, err
		}
		if len(procs) == 0 {
			break
		}
		if round == 10 {
			return nil, fmt.Errorf("processes keep appearing in %s", dir)
		}
		for _, p := range procs {
			err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(p), 0)
			if err != nil && !errors.Is(err, syscall.ESRCH) { // ESRCH: it exited
				return nil, err
			}
		}
	}
	available, err := readFields(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	if want := limits(available); len(want) > 0 {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+strings.Join(want, " +")), 0); err != nil {
			return nil, err
		}
	}
	return readFields(filepath.Join(dir, "cgroup.subtree_control"))
}
