// Package packaging holds how mcpbox is installed, and the tests that check
// it: apparmor.sh, which installs the AppArmor profile for `make install`.
// It has no code to import; its tests run `make install` into a staging
// directory and look at what it produces. Like e2e/ they build the
// binaries, and are skipped with -short.
package packaging
