package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vpcnet/vpcnet/internal/bench"
	"github.com/vpcnet/vpcnet/internal/ipam"
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
		Short: "Measure vpcnet against references: setup, burst, scale-out, churn, data plane, footprint",
		Long: `bench builds its own labs (named bench<pid> plus a two-character suffix, or
--name plus one), runs the scenarios, tears every lab
down (also on failure or Ctrl-C) and prints one table: each figure, its reference, the ratio,
and the target with pass or miss. References are measured in the same run (ptp + host-local,
node to node, the default setting, ...), but for two kinds of churn rows: those against
"upstream" compare with the upstream AWS VPC CNI's fixed figures on the full churn trace,
copied from issue 16 (not measured by the bench), and the ceiling rows give what any agent can
reach on the trace that ran (computed, internal/bench/frontier). Needs root, and for the
references the CNI plugins ptp and host-local in ` + bench.RefPluginDir + ` and iperf3.

Scenarios: ` + strings.Join(bench.Scenarios(), ", ") + `.
--short runs a small version of each (CI); its churn rows are a smoke run on a shortened
trace: no pass or miss, no upstream comparison.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return usagef("--format must be table or json")
			}
			if prefix != "" {
				if err := bench.CheckNamePrefix(prefix); err != nil {
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
	f.BoolVar(&realSpeed, "real-speed", false, fmt.Sprintf("churn: play the churn trace ten times slower (450 s a setting), as a cluster lives, with the agents' default timers (IP_COOLDOWN_PERIOD 30s, VPCNET_POOL_RELEASE_DELAY %s, VPCNET_WARM_ENI_RELEASE_DELAY %s): the settings with upstream real-speed figures, WARM_IP_TARGET=3 with MINIMUM_IP_TARGET=10, and the adaptive mode (also on the bursty trace)",
		ipam.DefaultReleaseDelay, ipam.DefaultWarmENIReleaseDelay))
	f.StringVar(&format, "format", "table", "table or json")
	// bench's own --name (it shadows lab's): a prefix, not a lab's name.
	f.StringVar(&prefix, "name", "", "prefix of the labs' names, each lab adding a two-character suffix (default bench<pid>)")
	return cmd
}
