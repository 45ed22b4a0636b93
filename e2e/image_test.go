package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpbox/mcpbox/internal/testutil"
	"github.com/mcpbox/mcpbox/launcher"
)

// TestImageMode builds an image of the host's node, runs server-filesystem
// on it through the Go SDK client, checks from inside that nothing of the
// host's root shows, runs the selftest on it, and checks that a profile
// pinned to another digest, or naming an image that is not there, is
// refused.
func TestImageMode(t *testing.T) {
	e := newEnv(t)
	node, server := testutil.Server(t, "server-filesystem")
	ctx := testutil.Context(t, 5*time.Minute)
	global := []string{"--containerd-address", e.addr, "--namespace", e.namespace, "--run-dir", e.runDir}
	image := func(args ...string) (string, string, int) {
		t.Helper()
		return e.mcpbox(append(append(global[:len(global):len(global)], "image"), args...)...)
	}

	tag := "mcpbox.local/test/node:" + e.namespace
	out, stderr, code := image("build", "--runtime", "node", "--tag", tag)
	// Registered after newEnv's check, so it runs before it: the image's
	// own snapshots go with it.
	t.Cleanup(func() {
		if _, stderr, code := image("rm", tag); code != 0 {
			t.Errorf("image rm %s: exit %d\n%s", tag, code, stderr)
		}
		if out, _, _ := image("ls"); strings.Contains(out, tag) {
			t.Errorf("image ls after rm still lists %s:\n%s", tag, out)
		}
	})
	if code != 0 {
		t.Fatalf("image build: exit %d\n%s", code, stderr)
	}
	ref := strings.TrimSpace(out)
	if !strings.HasPrefix(ref, tag+"@sha256:") || len(ref) != len(tag)+len("@sha256:")+64 {
		t.Fatalf("image build printed %q, want %s@sha256:<digest>", ref, tag)
	}
	if again, stderr, code := image("build", "--runtime", "node", "--tag", tag); code != 0 || strings.TrimSpace(again) != ref {
		t.Errorf("a second build of the same host's runtime gave %q (exit %d), want the same digest %s\n%s", again, code, ref, stderr)
	}
	if ls, _, _ := image("ls"); !strings.Contains(ls, tag+"\t"+strings.TrimPrefix(ref, tag+"@")) {
		t.Errorf("image ls does not list %s:\n%s", ref, ls)
	}

	dir := t.TempDir()
	profile := func(name, body string) string {
		p := filepath.Join(dir, name+".yaml")
		writeFile(t, p, "name: "+name+"\n"+body)
		return p
	}
	fsProfile := profile("image-fs", "extends: filesystem\nrootfs: image\nimage: "+ref+"\n")

	// A granted directory, read and written through the server.
	grant := t.TempDir()
	if err := os.Chmod(grant, 0o777); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(grant, "in.txt"), "from the host")
	cs, _ := e.connect(ctx, "--profile", fsProfile, "--mount", grant+":rw", "--", node, server, grant)
	call := func(cs *mcp.ClientSession, name string, args map[string]any) (string, bool) {
		t.Helper()
		r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return text(r), r.IsError
	}
	if got, isErr := call(cs, "read_text_file", map[string]any{"path": filepath.Join(grant, "in.txt")}); isErr || got != "from the host" {
		t.Errorf("read a granted file = %q (error %v)", got, isErr)
	}
	if got, isErr := call(cs, "write_file", map[string]any{"path": filepath.Join(grant, "out.txt"), "content": "from the sandbox"}); isErr {
		t.Errorf("write into the granted dir: %s", got)
	}
	if b, err := os.ReadFile(filepath.Join(grant, "out.txt")); err != nil || string(b) != "from the sandbox" {
		t.Errorf("the sandbox's write reached the host as %q, %v", b, err)
	}
	cs.Close()

	// The root as the server sees it: the image, the sandbox's own files,
	// the grants, nothing else of the host.
	rootProfile := profile("image-root", "rootfs: image\nimage: "+ref+"\n")
	cs, _ = e.connect(ctx, "--profile", rootProfile, "--", node, server, "/")
	list := func(p string) (string, bool) { return call(cs, "list_directory", map[string]any{"path": p}) }
	if got, isErr := list("/usr"); isErr || strings.Contains(got, "share") || strings.Contains(got, "sbin") || !strings.Contains(got, "bin") {
		t.Errorf("/usr inside = %q (error %v), want only the image's bin and lib dirs", got, isErr)
	}
	if got, isErr := list("/etc"); isErr || strings.Contains(got, "os-release") || strings.Contains(got, "shadow") || !strings.Contains(got, "passwd") {
		t.Errorf("/etc inside = %q (error %v), want the image's ssl and mcpbox's synthetic files only", got, isErr)
	}
	if got, isErr := list("/usr/bin"); isErr || strings.TrimSpace(got) != "[FILE] node" {
		t.Errorf("/usr/bin inside = %q (error %v), want node alone", got, isErr)
	}
	if got, isErr := list("/root"); !isErr {
		t.Errorf("/root is visible inside: %q", got)
	}
	if got, isErr := list("/home"); isErr || strings.TrimSpace(got) != "[DIR] sandbox" {
		t.Errorf("/home inside = %q (error %v), want the sandbox's home alone", got, isErr)
	}
	if got, isErr := call(cs, "read_text_file", map[string]any{"path": "/etc/os-release"}); !isErr {
		t.Errorf("the host's /etc/os-release is readable inside: %q", got)
	}
	cs.Close()

	// The probe, in the same image sandbox, passes every check.
	net := newTestNet(t, nil)
	cmd := exec.Command(e.bin, append(global[:len(global):len(global)], "selftest", "--json", "--profile", fsProfile)...)
	cmd.Env = e.environ()
	var serr strings.Builder
	cmd.Stderr = &serr
	sout, err := net.wrap(cmd).Output()
	var rep launcher.SelftestReport
	if jerr := json.Unmarshal(sout, &rep); jerr != nil {
		t.Fatalf("selftest: %v, %v\n%s\n%s", err, jerr, sout, serr.String())
	}
	if err != nil || !rep.OK() || len(rep.Results) < 40 {
		t.Errorf("selftest in image mode: %v, %d results", err, len(rep.Results))
	}
	for _, r := range rep.Results {
		if !r.Pass {
			t.Errorf("%s: %s %s %s: %s", r.Name, r.Outcome, r.Errno, r.Signal, r.Detail)
		}
	}

	// A killed mcpbox leaves its container and the image view: gc
	// removes both (newEnv's check finds any snapshot but the image's).
	kill := e.command("--profile", fsProfile, "--mount", grant+":rw", "--", node, server, grant)
	stdin, _ := kill.StdinPipe()
	defer stdin.Close()
	if err := kill.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	kill.Process.Kill()
	kill.Wait()
	gc := exec.Command(e.bin, append(global[:len(global):len(global)], "gc")...)
	if out, err := gc.CombinedOutput(); err != nil || !strings.Contains(string(out), "removed mcpbox-") {
		t.Errorf("gc after a killed image-mode session: %v\n%s", err, out)
	}

	// A pin to another digest, and an image that is not there.
	refuse := func(p, want string) {
		t.Helper()
		cmd := e.command("--profile", p, "--mount", grant+":rw", "--", node, server, grant)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("run with %s: %v, want a refusal saying %q:\n%s", filepath.Base(p), err, want, out)
		}
	}
	wrong := tag + "@sha256:" + strings.Repeat("0", 64)
	refuse(profile("image-wrong", "extends: filesystem\nrootfs: image\nimage: "+wrong+"\n"), "but the profile pins sha256:"+strings.Repeat("0", 64))
	refuse(profile("image-missing", "extends: filesystem\nrootfs: image\nimage: mcpbox.local/test/none:1\n"), "mcpbox --namespace "+e.namespace+" image build")
}
