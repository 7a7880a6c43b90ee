package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vpcnet/vpcnet/internal/bench"
	"github.com/vpcnet/vpcnet/internal/lab"
)

func newLabBenchCmd() *cobra.Command {
	var (
		names     []string
		short     bool
		realSpeed bool
		format    string
		prefix    string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure vpcnet against references in the same run: setup, burst, scale-out, churn, data plane, footprint",
		Long: `bench builds its own labs (named bench<pid> plus a two-character suffix, or
--name plus one), runs the scenarios, tears every lab
down (also on failure or Ctrl-C) and prints one table: each figure, its reference measured in
the same run, the ratio, and the target with pass or miss. Needs root, and for the references
the CNI plugins ptp and host-local in ` + bench.RefPluginDir + ` and iperf3.

Scenarios: ` + strings.Join(bench.Scenarios(), ", ") + `. --short runs a small version of each (CI).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return usagef("--format must be table or json")
			}
			if prefix != "" {
				// Each lab is the prefix plus a two-character suffix.
				if err := lab.ValidateName(prefix + "xx"); err != nil {
					return usagef("--name %q: a prefix of 1-18 lowercase letters and digits, starting with a letter (each lab adds a two-character suffix)", prefix)
				}
			}
			if cmd.Flags().Changed("scenario") && len(names) == 0 {
				return usagef("--scenario is empty: one of %s", strings.Join(bench.Scenarios(), ", "))
			}
			for _, s := range names {
				if !slices.Contains(bench.Scenarios(), s) {
					return usagef("--scenario %q: one of %s", s, strings.Join(bench.Scenarios(), ", "))
				}
			}
			if realSpeed && len(names) > 0 && !slices.Contains(names, "churn") {
				return usagef("--real-speed applies only to the churn scenario; add --scenario churn")
			}
			ctx, cancel := labContext()
			defer cancel()
			rep, err := bench.Run(ctx, bench.Options{Name: prefix, Scenarios: names, Short: short, RealSpeed: realSpeed, Progress: progress,
				Command: "vpcnet " + strings.Join(os.Args[1:], " ")})
			if err != nil {
				return err
			}
			if format == "json" {
				return bench.WriteJSON(os.Stdout, rep)
			}
			return bench.WriteTable(os.Stdout, rep)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&names, "scenario", nil, fmt.Sprintf("run only these scenarios, repeatable (%s)", strings.Join(bench.Scenarios(), ", ")))
	f.BoolVar(&short, "short", false, "a small version of each scenario (few iterations, fewer pods), for CI")
	f.BoolVar(&realSpeed, "real-speed", false, "churn: play the churn trace ten times slower (450 s a setting), as a cluster lives, with the agents' default 30 s timers: the settings with upstream real-speed figures, WARM_IP_TARGET=3 with MINIMUM_IP_TARGET=10, and the adaptive mode (also on the bursty trace)")
	f.StringVar(&format, "format", "table", "table or json")
	// bench's own --name (it shadows lab's): a prefix, not a lab's name.
	f.StringVar(&prefix, "name", "", "prefix of the labs' names, each lab adding a two-character suffix (default bench<pid>)")
	return cmd
}
