package launcher

import (
	"context"
	"path/filepath"

	"github.com/mcpbox/mcpbox/launcher/packages"
	"github.com/mcpbox/mcpbox/profiles"
)

// Catalog returns the profile catalog: the user's profiles in dirs.Config
// over the built-ins.
func Catalog(dirs Dirs) *profiles.Catalog {
	if dirs == (Dirs{}) {
		dirs = DefaultDirs()
	}
	return profiles.NewCatalog(filepath.Join(dirs.Config, "profiles"))
}

// PackageCache returns the cache of installed packages in dirs.Cache.
func PackageCache(dirs Dirs) *packages.Cache {
	if dirs == (Dirs{}) {
		dirs = DefaultDirs()
	}
	return &packages.Cache{Root: filepath.Join(dirs.Cache, "packages")}
}

// Pull installs the package that opts.Command runs (npx/uvx forms), in its
// sandbox, without running it; with opts.Update it installs the version
// requested again instead of reusing the pinned one.
func Pull(ctx context.Context, opts Options) (*packages.Entry, error) {
	opts.setDefaults()
	spec, isPkg, err := packages.Parse(opts.Command)
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	if !isPkg {
		return nil, &UsageError{Err: errNotAPackage}
	}
	prof, _, err := Catalog(opts.Dirs).Resolve(opts.Profile, spec.Ecosystem, spec.Name)
	if err != nil {
		return nil, &UsageError{Flag: "profile", Err: err}
	}
	return ensurePackage(ctx, opts, spec, prof)
}

// StarterProfile writes a commented starter profile for a command line.
func StarterProfile(command []string) ([]byte, error) {
	spec, isPkg, err := packages.Parse(command)
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	if !isPkg {
		if len(command) == 0 {
			return nil, &UsageError{Err: errNotAPackage}
		}
		return profiles.Starter("", filepath.Base(command[0]), command[1:]), nil
	}
	return profiles.Starter(spec.Ecosystem, spec.Name, spec.Args), nil
}
