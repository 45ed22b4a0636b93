// Command apparmorprofile writes mcpbox's AppArmor profile for the mcpbox
// executable at BINARY into DIR, under AppArmor's file name for it, and
// prints that file's path. `make install` and `make deb` render the profile
// with it (launcher/apparmor holds the text):
//
//	go run ./scripts/apparmorprofile [-check] -o DIR BINARY
//
// With -check (make install without DESTDIR: the binary is in place), a
// binary a user could replace gets no profile: it says why on stderr and
// prints nothing, and make installs none.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mcpbox/mcpbox/launcher/apparmor"
)

func main() {
	out := flag.String("o", ".", "directory to write the profile into")
	check := flag.Bool("check", false, "write nothing for a binary a user could replace (apparmor.CheckInstalled)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: apparmorprofile [-check] [-o DIR] BINARY")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if *check {
		if err := apparmor.CheckInstalled(flag.Arg(0)); err != nil {
			fmt.Fprintln(os.Stderr, "apparmorprofile: no AppArmor profile installed:", err)
			return
		}
	}
	if err := write(*out, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "apparmorprofile:", err)
		os.Exit(1)
	}
}

func write(dir, binary string) error {
	profile, err := apparmor.Profile(binary)
	if err != nil {
		return err
	}
	name, err := apparmor.FileName(binary)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, profile, 0o644); err != nil {
		return err
	}
	_, err = fmt.Println(path)
	return err
}
