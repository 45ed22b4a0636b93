// Command apparmorprofile writes mcpbox's AppArmor profile for the mcpbox
// executable at BINARY into DIR, under AppArmor's file name for it, and
// prints that file's path. `make install` and `make deb` render the profile
// with it (launcher/apparmor holds the text):
//
//	go run ./scripts/apparmorprofile -o DIR BINARY
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
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: apparmorprofile [-o DIR] BINARY")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
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
