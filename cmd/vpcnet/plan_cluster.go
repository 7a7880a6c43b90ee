package main

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vpcnet/vpcnet/internal/plan"
)

// clusterFlags are the inputs of `vpcnet plan cluster`.
type clusterFlags struct {
	vpc, instanceType, format string
	subnets                   []string
	nodes, pods, maxPods      int
	prefix                    bool
	warm                      plan.Warm
}

func newClusterCmd(cf *catalogFlag) *cobra.Command {
	fl := &clusterFlags{}
	cmd := &cobra.Command{
		Use:   "cluster --vpc-cidr CIDR --subnet CIDR... --instance-type TYPE --nodes N --pods-per-node N",
		Short: "Plan a cluster's addresses: per node, per subnet, headroom, and the IP modes side by side",
		Long: `Plan what a cluster takes from its VPC subnets.

Per node: pods, the addresses (or /28 prefixes) it holds including its warm pool, the ENIs it
uses, and whether its pods exceed max pods. Per subnet: size, the 5 addresses AWS reserves, node
and ENI primary addresses, pod and warm addresses, what is left and how full it is. Headroom: how
many more nodes of this shape fit, and what runs out first. Then the same cluster under
secondary-IP mode, prefix mode and an overlay, side by side.

Nodes spread over the subnets round robin in the order given. Every ENI takes one primary address
from its node's subnet that is never a pod address. --pods-per-node counts pods that need a pod
address; max pods leaves room for 2 host-network pods besides. The warm settings keep the names
and meanings of the AWS VPC CNI's environment variables; docs/planning.md has the formulas.`,
		Example: `  vpcnet plan cluster --vpc-cidr 10.10.0.0/16 --subnet 10.10.1.0/24 --instance-type m5.large --nodes 3 --pods-per-node 20
  vpcnet plan cluster --vpc-cidr 10.10.0.0/16 --subnet 10.10.1.0/24 --subnet 10.10.2.0/24 \
      --instance-type m5.xlarge --nodes 10 --pods-per-node 40 --prefix-delegation --warm-prefix-target 1
  vpcnet plan cluster --vpc-cidr 10.10.0.0/16 --subnet 10.10.1.0/24 --instance-type t3.medium \
      --nodes 4 --pods-per-node 10 --warm-ip-target 2 --minimum-ip-target 8 --format json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := fl.input(cmd, cf)
			if err != nil {
				return err
			}
			r, err := plan.Plan(in)
			var ie *plan.InputError
			if errors.As(err, &ie) {
				return usagef("--%s", ie)
			}
			if err != nil {
				return err
			}
			if fl.format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			return renderPlan(cmd.OutOrStdout(), r)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.vpc, "vpc-cidr", "", "the VPC's IPv4 `CIDR`, /16 to /28 (required)")
	f.StringArrayVar(&fl.subnets, "subnet", nil, "a subnet `CIDR` inside the VPC, /16 to /28; repeat it or separate with commas (required)")
	f.StringVar(&fl.instanceType, "instance-type", "", "the nodes' instance `TYPE` (required)")
	f.IntVar(&fl.nodes, "nodes", 0, "number of nodes, 1 or more (required)")
	f.IntVar(&fl.pods, "pods-per-node", 0, "pods per node that need a pod address (required)")
	f.BoolVar(&fl.prefix, "prefix-delegation", false, "plan prefix mode (ENABLE_PREFIX_DELEGATION): /28 prefixes instead of single addresses")
	f.IntVar(&fl.warm.ENITarget, "warm-eni-target", plan.DefaultWarm().ENITarget, "WARM_ENI_TARGET: keep this many ENIs' worth of free addresses (secondary-IP mode)")
	f.IntVar(&fl.warm.IPTarget, "warm-ip-target", 0, "WARM_IP_TARGET: keep this many free addresses; set, it overrides the ENI and prefix targets")
	f.IntVar(&fl.warm.MinimumIPTarget, "minimum-ip-target", 0, "MINIMUM_IP_TARGET: hold at least this many addresses; set, it overrides the ENI and prefix targets")
	f.IntVar(&fl.warm.PrefixTarget, "warm-prefix-target", plan.DefaultWarm().PrefixTarget, "WARM_PREFIX_TARGET: keep this many free /28 prefixes (prefix mode; 0 adds a /28 when the last free address is taken), as vpcnetd does")
	f.IntVar(&fl.maxPods, "max-pods", 0, "the nodes' max pods (default: the AWS formula, capped at 110/250 in prefix mode)")
	f.StringVar(&fl.format, "format", "table", "output `FORMAT`: table or json")
	return cmd
}

// input turns the flags into a planner input; every error names its flag.
func (fl *clusterFlags) input(cmd *cobra.Command, cf *catalogFlag) (plan.Input, error) {
	for _, name := range []string{"vpc-cidr", "subnet", "instance-type", "nodes", "pods-per-node"} {
		if !cmd.Flags().Changed(name) {
			return plan.Input{}, usagef("--%s is required (see vpcnet plan cluster --help)", name)
		}
	}
	if fl.format != "table" && fl.format != "json" {
		return plan.Input{}, usagef("--format %q: expected table or json", fl.format)
	}
	in := plan.Input{Nodes: fl.nodes, PodsPerNode: fl.pods, PrefixDelegation: fl.prefix, Warm: fl.warm, MaxPods: fl.maxPods}
	var err error
	if in.VPC, err = parseCIDR("vpc-cidr", fl.vpc); err != nil {
		return in, err
	}
	for _, arg := range fl.subnets {
		for _, s := range strings.Split(arg, ",") {
			p, err := parseCIDR("subnet", s)
			if err != nil {
				return in, err
			}
			in.Subnets = append(in.Subnets, p)
		}
	}
	c, err := cf.load()
	if err != nil {
		return in, err
	}
	if in.Type, err = lookup(c, fl.instanceType); err != nil {
		return in, usagef("--instance-type: %v", err)
	}
	return in, nil
}

func parseCIDR(flag, s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, usagef("--%s %q: not a CIDR such as 10.10.0.0/16", flag, s)
	}
	return p, nil
}
