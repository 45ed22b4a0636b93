package trial

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWrite: a trial's directory holds report.json, report.md and
// profile.yaml (limits at 1.5 × the peak), readable by the user alone,
// and --write-profile's file holds the same profile.
func TestWrite(t *testing.T) {
	rep := sampleReport()
	dir := filepath.Join(t.TempDir(), "trials", rep.DirName())
	extra := filepath.Join(t.TempDir(), "notes.yaml")
	if err := Write(dir, rep, untrusted(t), extra); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"report.json", "report.md", "profile.yaml"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	if _, err := ReadJSON(filepath.Join(dir, "report.json")); err != nil {
		t.Error(err)
	}
	var js, md bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	if err := WriteMarkdown(&md, rep); err != nil {
		t.Fatal(err)
	}
	wantProf := Profile(rep, untrusted(t), 1.5)
	for file, want := range map[string][]byte{
		filepath.Join(dir, "report.json"): js.Bytes(), filepath.Join(dir, "report.md"): md.Bytes(),
		filepath.Join(dir, "profile.yaml"): wantProf, extra: wantProf} {
		if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v\n%s\nwant\n%s", file, err, got, want)
		}
	}
}

func TestDirName(t *testing.T) {
	rep := sampleReport()
	if got, want := rep.DirName(), "server-notes-20250304T050607Z"; got != want {
		t.Errorf("DirName() = %q, want %q", got, want)
	}
	rep.Package = nil
	if got, want := rep.DirName(), "notes-20250304T050607Z"; got != want {
		t.Errorf("without a package: DirName() = %q, want %q", got, want)
	}
	rep.Command = nil
	if got, want := rep.DirName(), "server-20250304T050607Z"; got != want {
		t.Errorf("without a command: DirName() = %q, want %q", got, want)
	}
}
