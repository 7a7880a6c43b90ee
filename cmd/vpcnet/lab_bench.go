package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vpcnet/vpcnet/internal/bench"
)

func newLabBenchCmd() *cobra.Command {
	var (
		names     []string
		short     bool
		realSpeed bool
		format    string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure vpcnet against references in the same run: setup, burst, scale-out, churn, data plane, footprint",
		Long: `bench builds its own labs (named bench<pid>..., or --name), runs the scenarios, tears every lab
down (also on failure or Ctrl-C) and prints one table: each figure, its reference measured in
the same run, the ratio, and the target with pass or miss. Needs root, and for the references
the CNI plugins ptp and host-local in ` + bench.RefPluginDir + ` and iperf3.

Scenarios: ` + strings.Join(bench.Scenarios(), ", ") + `. --short runs a small version of each (CI).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return usagef("--format must be table or json")
			}
			name := ""
			if cmd.Flags().Changed("name") {
				name = labName
			}
			for _, s := range names {
				if !slices.Contains(bench.Scenarios(), s) {
					return usagef("--scenario %q: one of %s", s, strings.Join(bench.Scenarios(), ", "))
				}
			}
			ctx, cancel := labContext()
			defer cancel()
			rep, err := bench.Run(ctx, bench.Options{Name: name, Scenarios: names, Short: short, RealSpeed: realSpeed, Progress: progress,
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
	return cmd
}
