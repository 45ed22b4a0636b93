package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
)

func selftestCommand() *cli.Command {
	return &cli.Command{
		OnUsageError: usageError,
		Name:         "selftest",
		Usage:        "run the escape probe inside a sandbox and show what it could and could not do",
		Description: "Runs mcpbox-probe (installed next to mcpbox) in a sandbox built from a profile, exactly as a server\n" +
			"with that profile would run, and prints one line per escape attempt. Every line should say ✓;\n" +
			"the exit status is 1 if one does not.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "profile", Value: "untrusted", Usage: "profile NAME or FILE to build the sandbox from"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			&cli.StringFlag{Name: "run", Usage: "only the probes whose name matches this regexp"},
			&cli.StringFlag{Name: "probe", Usage: "path of mcpbox-probe", DefaultText: "next to mcpbox", Hidden: true},
		},
		Action: func(c *cli.Context) error {
			if done, err := enterRootless(c); done {
				return err
			}
			log, err := logger(c)
			if err != nil {
				return err
			}
			memfd, err := memfdSetting(c)
			if err != nil {
				return err
			}
			opts := launcher.Options{
				Address:   c.String("containerd-address"),
				Namespace: c.String("namespace"),
				RunDir:    c.String("run-dir"),
				Profile:   c.String("profile"),
				Memfd:     memfd,
				Stderr:    os.Stderr,
				Logger:    log,
			}
			if err := chooseRuntime(c, &opts); err != nil {
				return err
			}
			rep, err := launcher.Selftest(c.Context, opts, launcher.SelftestOptions{ProbePath: c.String("probe"), Run: c.String("run")})
			if err != nil {
				if rep != nil && len(rep.Results) > 0 {
					printSelftest(rep) // what ran before it broke
				}
				return err
			}
			if c.Bool("json") {
				e := json.NewEncoder(os.Stdout)
				e.SetIndent("", "  ")
				if err := e.Encode(rep); err != nil {
					return err
				}
			} else {
				printSelftest(rep)
			}
			if !rep.OK() {
				return &launcher.ExitError{Code: 1}
			}
			return nil
		},
	}
}

func printSelftest(rep *launcher.SelftestReport) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PROBE\tEXPECTED\tGOT\t")
	for _, r := range rep.Results {
		got := r.Outcome
		if r.Errno != "" {
			got += " " + r.Errno
		}
		if r.Signal != "" {
			got += " " + r.Signal
		}
		mark := "✓"
		if !r.Pass {
			mark = "✗ " + r.Detail
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.Name, expected(r), got, mark)
	}
	w.Flush()
	fmt.Printf("\nprofile %s: %d/%d probes passed", rep.Profile, rep.Passed, len(rep.Results))
	if rep.Summary.Total != len(rep.Results) {
		fmt.Printf(" (the probe counted %d: some results were lost)", rep.Summary.Total)
	}
	fmt.Println()
}

// expected says what a passing probe sees.
func expected(r launcher.ProbeResult) string {
	switch {
	case r.Category == "identity", r.Category == "environment":
		return "as required"
	case strings.HasPrefix(r.Name, "resources/"):
		return "stopped at limit"
	}
	return "denied"
}
