// Package packaging holds how mcpbox is installed and packaged, and the
// tests that check it: nfpm.yaml (the Debian package `make deb` builds), the
// package's maintainer scripts (deb/), and apparmor.sh, which installs the
// AppArmor profile for `make install` and the package alike. It has no code
// to import; its tests run `make install` into a staging directory and
// `make deb`, and look at what they produce. Like e2e/ they build the
// binaries, and are skipped with -short.
package packaging
