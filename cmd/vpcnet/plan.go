package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vpcnet/vpcnet/internal/catalog"
	"github.com/vpcnet/vpcnet/internal/ipam"
	"github.com/vpcnet/vpcnet/internal/plan"
)

func init() { subcommands = append(subcommands, newPlanCmd) }

// catalogFlag is the --instance-types flag shared by the plan commands.
type catalogFlag struct{ path string }

// load returns the catalog from --instance-types, $VPCNET_INSTANCE_TYPES or the built-in set.
func (f *catalogFlag) load() (*catalog.Catalog, error) {
	c, err := catalog.Load(f.path)
	if err != nil {
		return nil, usagef("--instance-types: %v", err)
	}
	return c, nil
}

// lookup finds an instance type; an unknown one is a usage error naming the closest types.
func lookup(c *catalog.Catalog, name string) (catalog.InstanceType, error) {
	t, err := c.Lookup(name)
	var ue *catalog.UnknownTypeError
	if errors.As(err, &ue) {
		return t, usageError{err}
	}
	return t, err
}

func newPlanCmd() *cobra.Command {
	cf := &catalogFlag{}
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Capacity planning: max pods per instance type, and whether a cluster fits its subnets",
		Long: `Capacity planning, with no cloud access and no root.

  max-pods   kubelet's maxPods per instance type: the pods vpcnetd can give an address + host-network pods
  cluster    what a cluster takes from its subnets, how many more nodes fit, and what runs out
             first, under secondary-IP mode, prefix mode and an overlay side by side

Instance-type limits come from --instance-types FILE (the CSV format of instance-types.csv),
else from the file named by $` + catalog.EnvInstanceTypes + `, else from a small built-in set.`,
		Example: `  vpcnet plan max-pods m5.large t3.medium
  vpcnet plan cluster --vpc-cidr 10.10.0.0/16 --subnet 10.10.1.0/24 --instance-type m5.large --nodes 3 --pods-per-node 20`,
	}
	cmd.PersistentFlags().StringVar(&cf.path, "instance-types", "", "instance-type CSV `FILE` (default $"+catalog.EnvInstanceTypes+", else the built-in set)")
	cmd.AddCommand(newMaxPodsCmd(cf), newClusterCmd(cf))
	return cmd
}

func newMaxPodsCmd(cf *catalogFlag) *cobra.Command {
	var mode catalog.Mode
	var all, capped bool
	hostNetwork := plan.HostNetworkPods
	cmd := &cobra.Command{
		Use:   "max-pods [--prefix-delegation] [--custom-networking] [--cap] [--host-network-pods N] (--all | TYPE...)",
		Short: "Print kubelet's maxPods for instance types, one `TYPE N` line each, sorted by type",
		Long: `Print kubelet's maxPods for instance types, one "TYPE N" line each, sorted by type name: the
format of AWS's eni-max-pods.txt, usable as kubelet's maxPods (--max-pods, or maxPods in its
config file).

N is the pods vpcnetd can give a VPC address on a fresh node of the type (the agent's own
capacity function, the number its status reports as maxPods) plus --host-network-pods, the
node's hostNetwork pods, which need no address:

  secondary-IP mode:   ENIs x (IPs per ENI - 1) + host-network pods
  prefix delegation:   ENIs x (IPs per ENI - 1) x 16 + host-network pods     (Nitro types only)
  custom networking:   the primary ENI carries no pods, so ENIs - 1 in either formula
  --cap:               at most 110, or 250 for types with more than 30 vCPUs (the recommended cap;
                       the CSV has no vCPUs, so only types also in the built-in set can get 250);
                       stderr names the types it capped

--host-network-pods defaults to 2, as EKS's formula (aws-node and kube-proxy); count every
hostNetwork pod your nodes run (the vpcnet agent, kube-proxy, node exporters, ...). A node
whose ENIs are partly taken (no_manage ENIs, MAX_ENI, MAX_PODS) holds fewer: its agent reports
what it can really hold in /v1/status (maxPods).

An unknown type exits 2 and names the closest known types. With --all and --prefix-delegation,
types that are not Nitro-based are left out (a note on stderr says how many).`,
		Example: `  vpcnet plan max-pods m5.large
  vpcnet plan max-pods --host-network-pods 3 t3.medium
  vpcnet plan max-pods --prefix-delegation --cap m5.large m5.24xlarge
  vpcnet plan max-pods --all --instance-types ../shared/data/instance-types.csv`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all && len(args) > 0 {
				return usagef("--all and instance types given: use one or the other")
			}
			if !all && len(args) == 0 {
				return usagef("name one or more instance types, or give --all")
			}
			if hostNetwork < 0 || hostNetwork > maxHostNetworkPods {
				return usagef("--host-network-pods %d: expected 0 to %d", hostNetwork, maxHostNetworkPods)
			}
			c, err := cf.load()
			if err != nil {
				return err
			}
			names := args
			if all {
				names = c.Names()
			}
			return printMaxPods(cmd, c, names, mode, capped, all, hostNetwork)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&mode.PrefixDelegation, "prefix-delegation", false, "count /28 prefixes (16 pods per ENI slot); Nitro types only")
	f.BoolVar(&mode.CustomNetworking, "custom-networking", false, "leave the primary ENI out (pods on secondary ENIs only)")
	f.BoolVar(&capped, "cap", false, "apply the recommended cap: 110, or 250 above 30 vCPUs")
	f.BoolVar(&all, "all", false, "every type in the catalog")
	f.IntVar(&hostNetwork, "host-network-pods", plan.HostNetworkPods, "hostNetwork pods each node runs besides pods with a VPC address (EKS's formula assumes 2)")
	return cmd
}

// maxHostNetworkPods bounds --host-network-pods; no node runs more.
const maxHostNetworkPods = 1000

func printMaxPods(cmd *cobra.Command, c *catalog.Catalog, names []string, mode catalog.Mode, capped, all bool, hostNetwork int) error {
	type row struct {
		name string
		n    int
	}
	var rows []row
	var cappedNames []string
	seen := map[string]bool{}
	skipped, guessed := 0, 0
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		t, err := lookup(c, name)
		if err != nil {
			return err
		}
		if mode.PrefixDelegation && !t.Nitro() {
			if all {
				skipped++
				continue
			}
			return usagef("--prefix-delegation: instance type %s is not Nitro-based (hypervisor %q): prefix delegation needs Nitro", t.Name, t.Hypervisor)
		}
		n := plan.KubeletMaxPods(t, ipam.Settings{PrefixDelegation: mode.PrefixDelegation}, mode.CustomNetworking, hostNetwork)
		if capped {
			if _, known := catalog.RecommendedCap(t); !known && n > 110 {
				guessed++
			}
			if m := catalog.Capped(t, n); m < n {
				cappedNames = append(cappedNames, fmt.Sprintf("%s (%d)", t.Name, n))
				n = m
			}
		}
		rows = append(rows, row{name, n})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	sort.Strings(cappedNames)
	out := cmd.OutOrStdout()
	for _, r := range rows {
		fmt.Fprintf(out, "%s %d\n", r.name, r.n)
	}
	if len(cappedNames) > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "vpcnet: capped %d types at the recommended 110/250 (uncapped in brackets): %s\n", len(cappedNames), strings.Join(cappedNames, ", "))
	}
	if guessed > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "vpcnet: capped %d types at 110: the catalog does not know their vCPUs (250 applies above 30)\n", guessed)
	}
	if skipped > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "vpcnet: left out %d types that are not Nitro-based: prefix delegation needs Nitro\n", skipped)
	}
	return nil
}
