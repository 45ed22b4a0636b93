package sandbox

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// DefaultPath is the PATH HostRuntime searches for the program named in a
// "#!/usr/bin/env prog" line. Give the sandboxed process the same PATH so
// that it finds the same program.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// maxInterpreters bounds #! chains, as the kernel does (it allows 4).
const maxInterpreters = 4

// maxSymlinks bounds symlink resolution, as the kernel does (40).
const maxSymlinks = 40

// baseRuntime lists the host paths every host-rootfs sandbox gets, if they
// exist: the system programs and libraries, the CA certificates, the
// dynamic linker's cache and the time zone. Never /etc, /home, /root, /var
// or /run as a whole.
//
// On a merged-/usr system /bin, /sbin and /lib* are symlinks into /usr.
// They are bound like directories (a bind mount follows a symlink source),
// which costs a few mounts but keeps the root directory empty and needs no
// symlinks made by the caller; the program sees /lib/x86_64-linux-gnu and
// /usr/lib/x86_64-linux-gnu with the same contents.
func baseRuntime() []string {
	paths := []string{
		"/usr",
		"/bin", "/sbin",
		"/lib", "/lib32", "/lib64", "/libx32",
		"/etc/alternatives", // symlinks into /usr that /usr/bin/* links point at
		"/etc/ld.so.cache",
		"/etc/localtime",
		"/etc/ssl/certs",
	}
	ca, _ := filepath.Glob("/etc/ca-certificates*") // the pattern is valid
	return append(paths, ca...)
}

// UserPaths are the host paths that belong to the user rather than to the
// system: HostRuntime never binds them whole for a program's sake.
type UserPaths struct {
	// Homes are the user's home directories (from $HOME, the passwd entry,
	// sudo's user). /home and /root always count as homes.
	Homes []string
	// Secrets are files and directories that hold credentials (~/.ssh,
	// ~/.aws, ...): nothing in them is ever bound.
	Secrets []string
}

// HostRuntime returns the read-only binds that let the host program exe
// run in an empty root: the baseRuntime paths that exist on this host,
// and then whatever exe needs outside them:
//
//   - exe itself, its symlinks and what they point at;
//   - for an ELF program, its interpreter (PT_INTERP) and every shared
//     library it needs (transitively), looked up like ld.so does in
//     DT_RPATH and DT_RUNPATH ($ORIGIN expanded), the /etc/ld.so.conf
//     directories and the multiarch and standard directories;
//   - for a "#!" script, the interpreter's runtime, and for
//     "#!/usr/bin/env prog" also that of prog, found on DefaultPath.
//
// Every bind's Source is the host path with symlinks resolved; its
// Destination is the path the program uses.
//
// exe is covered by binding its directory, unless that directory is too
// broad to expose (a top-level directory such as /home or /opt, anything in
// /etc, /var/x, /run/x) or is the user's (a home, an ancestor of one, a
// directory inside one, see UserPaths): then only the file is bound.
// Interpreters and libraries outside the base runtime are always bound
// file by file, never their directory, and a library or interpreter is
// bound only if it is an ELF file of the program's class and machine: an
// RPATH of $ORIGIN/../../.ssh or a DT_NEEDED of /etc/shadow shows nothing.
// Nothing inside a secret is bound. A library that cannot be found, or one
// loaded with dlopen, is left out: the program then fails to start and
// ld.so says which library is missing. LD_LIBRARY_PATH plays no part: what
// it names is not bound.
//
// HostRuntime only reads the host: exe must be an absolute path to an ELF
// executable or a #! script.
func HostRuntime(exe string, user UserPaths) ([]Mount, error) {
	if !filepath.IsAbs(exe) {
		return nil, fmt.Errorf("sandbox: host runtime for %q: not an absolute path", exe)
	}
	exe = filepath.Clean(exe)
	r := &hostRuntime{elfSeen: map[string]bool{}}
	r.homes = withResolved(append([]string{"/home", "/root"}, user.Homes...))
	r.secrets = withResolved(user.Secrets)
	r.readMountPoints()
	for _, p := range baseRuntime() {
		if _, err := os.Stat(p); err == nil {
			r.add(p)
		}
	}
	if err := r.program(exe, 0); err != nil {
		return nil, fmt.Errorf("sandbox: host runtime for %s: %w", exe, err)
	}
	return r.mounts, nil
}

// RuntimeFiles returns the host files each program in exes needs to run,
// found as HostRuntime finds them (the program, its #! interpreters, its
// ELF interpreter and shared libraries), with every symlink on the way to
// them: what an image of the program's runtime must hold. It does not
// include the baseRuntime directories, nor RPATH directories as a whole.
// The paths are absolute, clean and sorted; a symlink's target is in the
// list as well.
func RuntimeFiles(exes ...string) ([]string, error) {
	r := &hostRuntime{elfSeen: map[string]bool{}, files: map[string]bool{}}
	for _, exe := range exes {
		if !filepath.IsAbs(exe) {
			return nil, fmt.Errorf("sandbox: runtime files of %q: not an absolute path", exe)
		}
		if err := r.program(filepath.Clean(exe), 0); err != nil {
			return nil, fmt.Errorf("sandbox: runtime files of %s: %w", exe, err)
		}
	}
	out := make([]string, 0, len(r.files))
	for f := range r.files {
		out = append(out, f)
	}
	slices.Sort(out)
	return out, nil
}

type hostRuntime struct {
	// files, when set, collects the files reached instead of binds (see
	// RuntimeFiles).
	files       map[string]bool
	mounts      []Mount
	elfSeen     map[string]bool
	mountPoints []string // the host's mount points, for visible
	ldConf      []string // directories from /etc/ld.so.conf, read once
	ldConfRead  bool
	// homes and secrets are UserPaths', clean, each also with symlinks
	// resolved.
	homes, secrets []string
}

// add binds the host path p at p, from where its symlinks lead.
func (r *hostRuntime) add(p string) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return
	}
	r.mounts = append(r.mounts, Mount{Source: real, Destination: p, ReadOnly: true})
}

// withResolved returns the clean absolute paths in ps, each followed by
// its symlink-free form when that differs. "/" is dropped: a home of /
// (some service accounts have one) holds everything, and the root is never
// bound anyway.
func withResolved(ps []string) []string {
	var out []string
	for _, p := range ps {
		if !filepath.IsAbs(p) {
			continue
		}
		p = filepath.Clean(p)
		if p == "/" {
			continue
		}
		out = append(out, p)
		if real, err := filepath.EvalSymlinks(p); err == nil && real != p && real != "/" {
			out = append(out, real)
		}
	}
	return out
}

// private reports whether the directory d is the user's: a home, inside
// one or above one, or a secret, inside one or above one. Such a
// directory is never bound whole for a program's sake. d is checked both
// as given and with its symlinks resolved, which is what a bind shows.
func (r *hostRuntime) private(d string) bool {
	paths := []string{d}
	if real, err := filepath.EvalSymlinks(d); err == nil && real != d {
		paths = append(paths, real)
	}
	for _, p := range paths {
		for _, list := range [][]string{r.homes, r.secrets} {
			for _, u := range list {
				if under(p, u) || under(u, p) {
					return true
				}
			}
		}
	}
	return false
}

// secret returns the secret that p (as given, or with its symlinks
// resolved) lies in, or "".
func (r *hostRuntime) secret(p string) string {
	paths := []string{p}
	if real, err := filepath.EvalSymlinks(p); err == nil && real != p {
		paths = append(paths, real)
	}
	for _, q := range paths {
		for _, s := range r.secrets {
			if under(q, s) {
				return s
			}
		}
	}
	return ""
}

// program makes path and everything it needs to run visible.
func (r *hostRuntime) program(path string, level int) error {
	if level > maxInterpreters {
		return errors.New("too many levels of #! interpreters")
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(real); err != nil {
		return err
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	f, err := os.Open(real)
	if err != nil {
		return err
	}
	head := make([]byte, 256) // the kernel reads this much of a #! line
	n, err := io.ReadFull(f, head)
	f.Close()
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return err
	}
	head = head[:n]
	if s := r.secret(path); s != "" {
		return fmt.Errorf("%s is in %s, which holds credentials: nothing there is bound into a sandbox", path, s)
	}
	// The program's own directory may be bound (when it is not the
	// user's); an interpreter is bound alone, since a script could name
	// any executable on the host to have its directory shown.
	r.reach(path, level == 0)
	switch {
	case bytes.HasPrefix(head, []byte("#!")):
		return r.script(path, head, level)
	case bytes.HasPrefix(head, []byte(elf.ELFMAG)):
		return r.elf(real, nil)
	default:
		return fmt.Errorf("%s: not an ELF executable or a #! script", path)
	}
}

// script handles a "#!interpreter [arg]" line the way the kernel splits
// it: the interpreter, then the rest of the line as one argument.
func (r *hostRuntime) script(path string, head []byte, level int) error {
	line, _, _ := bytes.Cut(head[2:], []byte("\n"))
	interp, arg, _ := strings.Cut(strings.TrimSpace(strings.ReplaceAll(string(line), "\t", " ")), " ")
	arg = strings.TrimSpace(arg)
	if !filepath.IsAbs(interp) {
		return fmt.Errorf("%s: #! interpreter %q is not an absolute path", path, interp)
	}
	if err := r.program(interp, level+1); err != nil {
		return fmt.Errorf("%s: interpreter: %w", path, err)
	}
	if filepath.Base(interp) != "env" {
		return nil
	}
	prog := envProgram(arg)
	if prog == "" {
		return nil
	}
	if !filepath.IsAbs(prog) {
		if prog = lookPath(prog); prog == "" {
			return nil // not found: env will say so when the sandbox starts
		}
	}
	if err := r.program(prog, level+1); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// A missing program is env's to report, as above.
		return fmt.Errorf("%s: %s: %w", path, prog, err)
	}
	return nil
}

// envProgram returns the program an env(1) argument string runs. The
// kernel passes the rest of the #! line as one argument: without an option
// env takes all of it as the program name; with -S it splits it, skips
// options and NAME=VALUE assignments, and runs the first word left.
func envProgram(arg string) string {
	if !strings.HasPrefix(arg, "-") {
		if strings.Contains(arg, "=") {
			return "" // an assignment and no program
		}
		return arg
	}
	fields := strings.Fields(arg)
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		switch {
		case f == "-u" || f == "-C" || f == "--unset" || f == "--chdir":
			i++ // the option's value
		case strings.HasPrefix(f, "--split-string="):
			fields[i] = strings.TrimPrefix(f, "--split-string=")
			i--
		case strings.HasPrefix(f, "-S") && len(f) > 2:
			fields[i] = f[2:] // -Snode
			i--
		case strings.HasPrefix(f, "-") || strings.Contains(f, "="):
		default:
			return f
		}
	}
	return ""
}

func lookPath(name string) string {
	if strings.Contains(name, "/") {
		return ""
	}
	for _, dir := range filepath.SplitList(DefaultPath) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// elf makes the interpreter and the libraries of the ELF file at path (a
// path without symlinks) visible. rpath is the DT_RPATH inherited from the
// objects that load this one.
func (r *hostRuntime) elf(path string, rpath []string) error {
	if r.elfSeen[path] {
		return nil
	}
	r.elfSeen[path] = true
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return fmt.Errorf("%s: read PT_INTERP: %w", path, err)
		}
		if interp := strings.TrimRight(string(b), "\x00"); filepath.IsAbs(interp) && compatible(interp, f) {
			r.reach(interp, false)
		}
	}

	needed, runpath, ownRPath, err := dynStrings(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	origin := filepath.Dir(path)
	var search []string
	if len(runpath) == 0 {
		// ld.so uses RPATH only when there is no RUNPATH, and RPATH is
		// inherited by the libraries the object loads.
		rpath = append(expandSearchPath(ownRPath, origin), rpath...)
		search = append(search, rpath...)
	} else {
		rpath = nil
	}
	// RPATH and RUNPATH directories are searched, never bound whole: the
	// program chose them, and $ORIGIN/../.. reaches anywhere.
	search = append(search, expandSearchPath(runpath, origin)...)
	search = append(search, r.ldConfDirs()...)
	search = append(search, standardLibDirs(f.Machine, f.Class)...)

	for _, name := range needed {
		lib := ""
		if strings.Contains(name, "/") {
			// ld.so opens a name with a slash as it is (a relative one
			// from the working directory, which is the sandbox's own);
			// only a library is bound, whatever file the name points at.
			if filepath.IsAbs(name) && compatible(name, f) {
				lib = name
			}
		} else {
			for _, d := range search {
				if p := filepath.Join(d, name); compatible(p, f) {
					lib = p
					break
				}
			}
		}
		if lib == "" {
			continue // ld.so will name it when the program starts
		}
		r.reach(lib, false)
		if real, err := filepath.EvalSymlinks(lib); err == nil {
			// A library that does not parse is ld.so's to report.
			_ = r.elf(real, rpath)
		}
	}
	return nil
}

// dynStrings returns the DT_NEEDED, DT_RUNPATH and DT_RPATH values of f.
// Unlike elf.File.DynString it reads only those strings, not the whole
// string table (node's is 5 MB, and the start-up of every session pays
// for it). A file without a dynamic section (a static program) has none.
func dynStrings(f *elf.File) (needed, runpath, rpath []string, err error) {
	ds := f.SectionByType(elf.SHT_DYNAMIC)
	if ds == nil {
		return nil, nil, nil, nil
	}
	if int(ds.Link) >= len(f.Sections) {
		return nil, nil, nil, errors.New("dynamic section links to no string table")
	}
	strtab := f.Sections[ds.Link]
	data, err := ds.Data()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read dynamic section: %w", err)
	}
	size := 16
	if f.Class == elf.ELFCLASS32 {
		size = 8
	}
	for len(data) >= size {
		var tag elf.DynTag
		var val uint64
		if size == 16 {
			tag, val = elf.DynTag(f.ByteOrder.Uint64(data)), f.ByteOrder.Uint64(data[8:])
		} else {
			tag, val = elf.DynTag(f.ByteOrder.Uint32(data)), uint64(f.ByteOrder.Uint32(data[4:]))
		}
		data = data[size:]
		var list *[]string
		switch tag {
		case elf.DT_NULL:
			return needed, runpath, rpath, nil
		case elf.DT_NEEDED:
			list = &needed
		case elf.DT_RUNPATH:
			list = &runpath
		case elf.DT_RPATH:
			list = &rpath
		default:
			continue
		}
		str, err := cString(strtab, val)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("read dynamic string: %w", err)
		}
		*list = append(*list, str)
	}
	return needed, runpath, rpath, nil
}

// cString reads the NUL-terminated string at off in sec, up to 4 KiB.
func cString(sec *elf.Section, off uint64) (string, error) {
	if off >= sec.Size {
		return "", fmt.Errorf("offset %d outside the string table", off)
	}
	buf := make([]byte, min(4096, sec.Size-off))
	n, err := sec.ReadAt(buf, int64(off))
	if i := bytes.IndexByte(buf[:n], 0); i >= 0 {
		return string(buf[:i]), nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = errors.New("unterminated string")
	}
	return "", err
}

// expandSearchPath splits RPATH/RUNPATH values into absolute directories,
// with $ORIGIN replaced. Entries with other dynamic string tokens ($LIB,
// $PLATFORM) or relative ones (ld.so takes those from the working
// directory, which in the sandbox is its own) are dropped.
func expandSearchPath(values []string, origin string) []string {
	var dirs []string
	for _, v := range values {
		for _, d := range strings.Split(v, ":") {
			d = strings.ReplaceAll(d, "${ORIGIN}", origin)
			d = strings.ReplaceAll(d, "$ORIGIN", origin)
			if d == "" || strings.Contains(d, "$") || !filepath.IsAbs(d) {
				continue
			}
			dirs = append(dirs, filepath.Clean(d))
		}
	}
	return dirs
}

// compatible reports whether p is an ELF file of the same class and
// machine as f, as ld.so requires of a library it loads.
func compatible(p string, f *elf.File) bool {
	lf, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer lf.Close()
	return lf.Class == f.Class && lf.Machine == f.Machine
}

func standardLibDirs(m elf.Machine, c elf.Class) []string {
	triplet := map[elf.Machine]string{
		elf.EM_X86_64:  "x86_64-linux-gnu",
		elf.EM_386:     "i386-linux-gnu",
		elf.EM_AARCH64: "aarch64-linux-gnu",
		elf.EM_ARM:     "arm-linux-gnueabihf",
		elf.EM_RISCV:   "riscv64-linux-gnu",
		elf.EM_PPC64:   "powerpc64le-linux-gnu",
		elf.EM_S390:    "s390x-linux-gnu",
	}[m]
	var dirs []string
	if triplet != "" {
		dirs = append(dirs, "/lib/"+triplet, "/usr/lib/"+triplet)
	}
	if c == elf.ELFCLASS64 {
		dirs = append(dirs, "/lib64", "/usr/lib64")
	}
	return append(dirs, "/lib", "/usr/lib")
}

// ldConfDirs returns the directories listed in /etc/ld.so.conf and the
// files it includes: ld.so.cache, which is bound, points into them.
func (r *hostRuntime) ldConfDirs() []string {
	if !r.ldConfRead {
		r.ldConfRead = true
		r.ldConf = readLdConf("/etc/ld.so.conf", 0)
	}
	return r.ldConf
}

func readLdConf(path string, level int) []string {
	if level > 8 {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.FieldsFunc(line, func(r rune) bool {
			return r == ' ' || r == '\t' || r == ',' || r == ':'
		})
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "include":
			for _, pat := range fields[1:] {
				if !filepath.IsAbs(pat) {
					pat = filepath.Join(filepath.Dir(path), pat)
				}
				files, _ := filepath.Glob(pat) // a bad pattern matches nothing
				for _, inc := range files {
					dirs = append(dirs, readLdConf(inc, level+1)...)
				}
			}
		case "hwcap":
		default:
			for _, d := range fields {
				if filepath.IsAbs(d) {
					dirs = append(dirs, filepath.Clean(d))
				}
			}
		}
	}
	return dirs
}

// reach makes the file at p visible, and with it every path the kernel
// passes through while following symlinks from p to the file. dir allows
// binding the directories of those paths rather than the files alone.
func (r *hostRuntime) reach(p string, dir bool) {
	if r.files != nil {
		for _, l := range landings(p) {
			r.files[filepath.Clean(l)] = true
		}
		return
	}
	for _, l := range landings(p) {
		r.need(l, dir)
	}
}

// need makes the path l visible: by binding its directory when dir allows
// it and the directory is neither too broad nor the user's, else by
// binding the file it leads to at l. Nothing in a secret is bound.
func (r *hostRuntime) need(l string, dir bool) {
	if r.visible(l) {
		return
	}
	for _, d := range systemDirs() {
		if under(l, d) {
			return
		}
	}
	if r.secret(l) != "" {
		return
	}
	if d := filepath.Dir(l); dir && !tooBroad(d) && !r.private(d) {
		r.bindDir(d)
		if r.visible(l) {
			return
		}
	}
	real, err := filepath.EvalSymlinks(l)
	if err != nil {
		return
	}
	if fi, err := os.Stat(real); err == nil && !fi.IsDir() {
		r.mounts = append(r.mounts, Mount{Source: real, Destination: l, ReadOnly: true})
	}
}

// bindDir binds the directory d, if it exists, is not visible yet and is
// neither too broad to expose nor the user's.
func (r *hostRuntime) bindDir(d string) {
	if tooBroad(d) || r.private(d) || r.visible(d) {
		return
	}
	for _, s := range systemDirs() {
		if under(d, s) {
			return
		}
	}
	if fi, err := os.Stat(d); err == nil && fi.IsDir() {
		r.add(d)
	}
}

// tooBroad reports whether binding the directory d would show more of
// the host than a program's own files: a top-level directory (/, /home,
// /etc, /opt, ...), a direct child of /home, /var or /run (a user's home,
// /var/lib, /run/secrets), a user's runtime directory, or anything in /etc.
func tooBroad(d string) bool {
	if depth(d) <= 1 || under(d, "/etc") {
		return true
	}
	switch filepath.Dir(d) {
	case "/home", "/var", "/run", "/run/user":
		return true
	}
	return false
}

// visible reports whether the path p shows inside the sandbox through one
// of the binds: a bind at or above it, with no host mount point between
// the bind and p (binds are not recursive, so such a mount would be
// hidden).
func (r *hostRuntime) visible(p string) bool {
	for _, m := range r.mounts {
		if !under(p, m.Destination) {
			continue
		}
		if p == m.Destination || !r.mountBetween(m.Destination, p) {
			return true
		}
	}
	return false
}

// mountBetween reports whether a host mount point lies below the bind
// source top and at or above the directory holding p.
func (r *hostRuntime) mountBetween(top, p string) bool {
	if len(r.mountPoints) == 0 {
		return false
	}
	realTop, err := filepath.EvalSymlinks(top)
	if err != nil {
		return false
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return false
	}
	for _, mp := range r.mountPoints {
		if mp != realTop && under(mp, realTop) && under(dir, mp) {
			return true
		}
	}
	return false
}

// readMountPoints reads the host's mount points from
// /proc/self/mountinfo. Without it, visible assumes there are none below
// the binds.
func (r *hostRuntime) readMountPoints() {
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		return
	}
	for _, m := range mounts {
		r.mountPoints = append(r.mountPoints, m.Mountpoint)
	}
}

// landings returns p and each path the kernel goes on to resolve after it
// replaces a symlink on the way, so that the last one is p's target. A
// component that does not exist ends the walk.
func landings(p string) []string {
	out := []string{p}
	comps := splitPath(p)
	cur := "/"
	hops := 0
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		switch c {
		case ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c)
		fi, err := os.Lstat(next)
		if err != nil {
			return out
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > maxSymlinks {
			return out
		}
		target, err := os.Readlink(next)
		if err != nil {
			return out
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		comps = append(splitPath(target), comps...)
		out = append(out, filepath.Join(cur, strings.Join(comps, "/")))
	}
	return out
}

func splitPath(p string) []string {
	var comps []string
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			comps = append(comps, c)
		}
	}
	return comps
}
