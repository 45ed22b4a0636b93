package launcher

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/mcpbox/mcpbox/launcher/image"
	"github.com/mcpbox/mcpbox/sandbox"
)

// profileImageError makes an image reference of the profile that
// image.Ensure cannot read a usage error of --profile; other errors pass
// unchanged.
func profileImageError(err error) error {
	var arg *image.ArgError
	if errors.As(err, &arg) {
		return &UsageError{Flag: "profile", Err: arg.Err}
	}
	return err
}

// imageLink is a symlink of the image that is made in the session's root
// rather than bound: a bind would follow it on the host.
type imageLink struct{ path, target string }

// imageBinds returns the read-only binds that show the image mounted at
// dir in the session's root, and the symlinks to create there. An entry
// of the image is bound whole unless something else is mounted at or
// below its path (taken: the synthetic /etc files, grants, the package
// cache, the sandbox's own mounts); then its children are, except the
// taken paths themselves.
func imageBinds(dir string, taken []string) ([]sandbox.Mount, []imageLink, error) {
	var mounts []sandbox.Mount
	var links []imageLink
	var walk func(rel string) error
	walk = func(rel string) error {
		entries, err := os.ReadDir(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		for _, e := range entries {
			p := filepath.Join("/", rel, e.Name())
			exact, below := false, false
			for _, t := range taken {
				exact = exact || t == p
				below = below || strings.HasPrefix(t, p+"/")
			}
			switch {
			case exact:
			case e.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(filepath.Join(dir, p))
				if err != nil {
					return err
				}
				links = append(links, imageLink{path: p, target: target})
			case !below:
				mounts = append(mounts, sandbox.Mount{Source: filepath.Join(dir, p), Destination: p, ReadOnly: true})
			case e.IsDir():
				if err := walk(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk("/"); err != nil {
		return nil, nil, fmt.Errorf("launcher: image root: %w", err)
	}
	return mounts, links, nil
}

// inImage reports whether p resolves to a file in the image mounted at dir,
// following its symlinks inside the image.
func inImage(dir, p string) bool {
	full, err := securejoin.SecureJoin(dir, p)
	if err != nil {
		return false
	}
	fi, err := os.Stat(full)
	return err == nil && fi.Mode().IsRegular()
}
