package cgroups

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/mcpbox/mcpbox/internal/testutil"
)

// TestPrepareV1Runc: runc itself, run as the user inside a user namespace
// (as mcpbox's rootless runtime runs it), accepts a cgroupsPath under the
// prepared subtree and enforces the spec's memory limit there. This is what
// the subtree is for, and what a check of memory, pids and cpu alone would
// miss: runc joins every controller hierarchy once a path is set, and
// copies cpuset.cpus down from the subtree.
func TestPrepareV1Runc(t *testing.T) {
	testutil.RequiresRoot(t)
	runc := testutil.RequiresCommand(t, "runc")
	h := realHost(DefaultRoot)
	l, err := h.layout()
	if err != nil {
		t.Fatal(err)
	}
	if l.unified {
		t.Skip("cgroup v2 host: PrepareV1 refuses it (TestPrepareV1)")
	}
	created, err := PrepareV1(DefaultRoot, "nobody", nobody, nobody)
	for _, dir := range created {
		t.Cleanup(func() { removeTree(t, dir) })
	}
	if err != nil {
		t.Fatal(err)
	}

	dir := sharedDir(t)
	bundle, state := filepath.Join(dir, "bundle"), filepath.Join(dir, "state")
	id := fmt.Sprintf("cgroups-test-%d", os.Getpid())
	cgroupsPath := "/" + dirName(nobody) + "/" + id
	for _, hier := range l.v1 {
		t.Cleanup(func() { removeTree(t, filepath.Join(hier.dir, cgroupsPath)) })
	}
	for _, d := range []string{bundle, state, filepath.Join(bundle, "rootfs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	// The host's /usr under an empty root; on merged-/usr hosts /bin,
	// /lib and /lib64 (where the ELF interpreter is) are links into it.
	for _, link := range []string{"bin", "lib", "lib64", "sbin"} {
		if target, err := os.Readlink("/" + link); err == nil && strings.HasPrefix(target, "usr/") {
			if err := os.Symlink(target, filepath.Join(bundle, "rootfs", link)); err != nil {
				t.Fatal(err)
			}
		}
	}
	spec := runcSpec(t, cgroupsPath, 48<<20,
		`grep -E '^[0-9]+:memory:' /proc/self/cgroup; head -c 400000000 /dev/zero | tail >/dev/null; echo "over the limit: $?"`)
	config, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), config, 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(runc, "--root", state, "run", "--bundle", bundle, id)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = userNamespace(true)
	out, err := cmd.CombinedOutput()
	t.Logf("runc as nobody:\n%s", out)
	if err != nil {
		t.Fatalf("runc run: %v", err)
	}
	if !strings.Contains(string(out), ":memory:"+cgroupsPath+"\n") {
		t.Errorf("the container is not in the memory cgroup %s", cgroupsPath)
	}
	if !strings.Contains(string(out), "over the limit: 137") {
		t.Errorf("the process over the memory limit was not killed (want status 137)")
	}
}

// runcSpec is a minimal rootless bundle's config: the host's /usr read-only
// under an empty root, no capabilities, a user namespace of its own, and a
// memory limit.
func runcSpec(t *testing.T, cgroupsPath string, memory int64, script string) *specs.Spec {
	t.Helper()
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{
			User:            specs.User{UID: 0, GID: 0},
			Cwd:             "/",
			Env:             []string{"PATH=/usr/bin:/bin"},
			Args:            []string{"/usr/bin/sh", "-c", script},
			NoNewPrivileges: true,
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/usr", Type: "bind", Source: "/usr", Options: []string{"rbind", "ro"}},
		},
		Linux: &specs.Linux{
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 1}},
			GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 1}},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.UserNamespace}, {Type: specs.NetworkNamespace},
			},
			CgroupsPath: cgroupsPath,
			Resources: &specs.LinuxResources{
				Memory: &specs.LinuxMemory{Limit: &memory, Swap: &memory},
				Pids:   &specs.LinuxPids{Limit: 64},
			},
		},
	}
}
