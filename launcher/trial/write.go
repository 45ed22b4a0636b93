package trial

import (
	"os"
	"path/filepath"

	"github.com/mcpbox/mcpbox/profiles"
)

// profileHeadroom is how far above the peak usage seen the limits of a
// generated profile sit.
const profileHeadroom = 1.5

// Write writes a trial's report.json, report.md and profile.yaml (rep's
// least-privilege profile on top of base) into dir, which it creates,
// and the profile to profileFile as well unless that is "".
func Write(dir string, rep *Report, base *profiles.Profile, profileFile string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	write := func(name string, fn func(f *os.File) error) error {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if err := write("report.json", func(f *os.File) error { return WriteJSON(f, rep) }); err != nil {
		return err
	}
	if err := write("report.md", func(f *os.File) error { return WriteMarkdown(f, rep) }); err != nil {
		return err
	}
	prof := Profile(rep, base, profileHeadroom)
	if err := write("profile.yaml", func(f *os.File) error { _, err := f.Write(prof); return err }); err != nil {
		return err
	}
	if profileFile != "" {
		return os.WriteFile(profileFile, prof, 0o644)
	}
	return nil
}

// DirName names a trial's directory when the user gives none: the
// server's name and the time the trial started, e.g.
// "server-memory-20250102T150405Z".
func (r *Report) DirName() string {
	return serverName(r) + "-" + r.Started.Format("20060102T150405Z")
}

func serverName(r *Report) string {
	if r.Package != nil {
		return filepath.Base(r.Package.Name)
	}
	if len(r.Command) > 0 {
		return filepath.Base(r.Command[len(r.Command)-1])
	}
	return "server"
}
