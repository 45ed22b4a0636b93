package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/mcpbox/mcpbox/launcher"
	"github.com/mcpbox/mcpbox/launcher/clientconfig"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		OnUsageError: usageError,
		Name:         "doctor",
		Usage:        "check that this host can run mcpbox's sandboxes, and say how to fix what is missing",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the checks as JSON"},
		},
		Action: func(c *cli.Context) error {
			memfd, err := memfdSetting(c)
			if err != nil {
				return err
			}
			env := clientconfig.HostEnv()
			checks := launcher.Doctor(c.Context, launcher.DoctorOptions{
				Memfd:   memfd,
				Address: c.String("containerd-address"),
				Dirs:    launcher.DefaultDirs(),
				Clients: &env,
			})
			failed := 0
			for _, ch := range checks {
				if ch.Status == launcher.CheckFail {
					failed++
				}
			}
			if c.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(struct {
					OK     bool             `json:"ok"`
					Checks []launcher.Check `json:"checks"`
				}{failed == 0, checks}); err != nil {
					return err
				}
			} else {
				for _, ch := range checks {
					fmt.Fprintf(os.Stdout, "%s %s: %s\n", doctorMark(ch.Status), ch.Name, ch.Detail)
					if ch.Fix != "" && (ch.Status == launcher.CheckFail || ch.Status == launcher.CheckWarn) {
						fmt.Fprintf(os.Stdout, "    fix: %s\n", ch.Fix)
					}
				}
			}
			if failed > 0 {
				noun := "checks"
				if failed == 1 {
					noun = "check"
				}
				return &launcher.ExitError{Code: 1, Reason: fmt.Sprintf("doctor: %d %s failed", failed, noun)}
			}
			return nil
		},
	}
}

func doctorMark(status string) string {
	switch status {
	case launcher.CheckOK:
		return "✓"
	case launcher.CheckWarn:
		return "!"
	case launcher.CheckFail:
		return "✗"
	default:
		return "-"
	}
}
