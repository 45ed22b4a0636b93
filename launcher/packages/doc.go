// Package packages turns the npx / uvx command a user had in their MCP client
// config into a package to install, decides how to install it, and keeps the
// installed packages in mcpbox's package cache.
//
// It owns:
//
//   - recognition: [Parse] reads `npx`, `npm exec`, `uvx`, `uv tool run` and
//     `pipx run` command lines into a [Spec], and refuses options it does not
//     understand rather than guess;
//   - the registry: [NPMRegistry], [PyPIIndex], [NPMCA] and [PyPICA] ask the
//     package manager's own configuration where its registry is and which
//     certificates reach it (no registry host is built in);
//   - the install plan: [Cache.Plan] says which command to run, with which
//     environment, host paths and egress allowlist, to install a package into
//     a fresh work directory; [Plan.Diagnose] turns a failed install's output
//     into an [InstallError] that says what to do;
//   - the cache: [Cache.Commit] records the lockfile's integrity map and a
//     manifest of every installed file, moves the work directory into place
//     atomically and pins the resolved version; [Cache.Lookup] finds the
//     pinned entry offline, checks it against its manifest and says what to
//     execute; [Cache.Lock] serialises installs of one package across
//     processes.
//
// It deliberately does not run anything, inside or outside a sandbox: the
// launcher runs [Plan.Argv] in [Plan.Dir], in a sandbox whose egress allows
// only [Plan.Allow]. The only commands this package starts are
// configuration queries: `npm config get registry` / `cafile`,
// `python3 -m pip config get global.index-url` / `global.cert`, and a
// one-line python3 query for the interpreter's real path (tests run more).
// It never names a registry host: registries come from the package
// manager's configuration at run time.
//
// # Cache layout
//
//	ROOT/npm/ESCAPED-NAME/.lock           flock(2) held by Cache.Lock; never deleted
//	ROOT/npm/ESCAPED-NAME/pins.json       requested spec ("", "latest", "^1.2") -> resolved version
//	ROOT/npm/ESCAPED-NAME/VERSION/        one installed version, never modified:
//	    package.json                      generated: the one dependency
//	    package-lock.json                 written by npm
//	    node_modules/...
//	    mcpbox.json                       Meta: integrity map, stamp, file manifest
//	ROOT/pypi/NORMALIZED-NAME/...         the same for Python packages, with
//	    site/...                          pip --target output and
//	    pip-report.json                   pip's install report (wheel hashes)
//	ROOT/.work/...                        installs in progress, renamed into place
//	                                      by Commit; left-overs of crashed installs
//	                                      are deleted a day later
//
// ESCAPED-NAME is the npm name with "/" replaced by "+" (npm names cannot
// contain "+"), so "@scope/name" is stored as "@scope+name". Python names
// take their PEP 503 normal form.
//
// # Verification
//
// Commit takes group and other write bits and setuid/setgid/sticky bits off
// every file and records its path, size, mode, mtime, symlink target and
// SHA-256, plus a stamp: one SHA-256 over all of it but the content hashes.
// Every Lookup stats the whole tree (fstatat, one goroutine per CPU) and
// compares the stamp, reading only the head of mcpbox.json; on a mismatch
// it reads the manifest to name the file that differs. That catches a
// missing, added, resized, re-moded or rewritten file (a rewrite moves the
// mtime). Hashing every file is left to [Entry.Verify] with full=true: for
// server-memory (96 packages, 3,690 files, 16.7 MiB) it takes ~130 ms on the
// 2-core reference machine against ~10-15 ms for the stat check, and a
// cached start has ~100 ms in all to spend.
package packages
