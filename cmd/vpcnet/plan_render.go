package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/vpcnet/vpcnet/internal/plan"
)

// modeNames are the column heads and prose names of the modes.
var modeNames = map[plan.Mode]string{plan.Secondary: "secondary-IP", plan.Prefix: "prefix", plan.Overlay: "overlay"}

// renderPlan writes the plan as tables a user reads at a glance: the chosen mode in detail, then
// the three modes side by side. Every number is a field of plan.Result, as in --format json.
func renderPlan(w io.Writer, r plan.Result) error {
	m := r.Selected()
	var b strings.Builder
	fmt.Fprintf(&b, "%d x %s, %d pods each, %s mode, VPC %s, %s\n",
		r.Nodes, r.InstanceType.Name, r.PodsPerNode, modeNames[r.Mode], r.VPC.CIDR, plural(len(m.Subnets), "subnet"))
	fmt.Fprintf(&b, "warm pool: %s\n\n", m.Node.Rule)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	renderNode(tw, r, m)
	tw.Flush()
	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	renderSubnets(tw, r.Mode, m.Subnets)
	tw.Flush()
	b.WriteString("\n")
	renderHeadroom(&b, r, m)
	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	renderModes(tw, r)
	tw.Flush()
	// tabwriter pads the last cell of a row; drop the trailing blanks.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n"))
	return err
}

func nodeWord(n int) string {
	if n == 1 {
		return "node"
	}
	return "nodes"
}

func plural(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, what)
	}
	if strings.HasSuffix(what, "s") {
		return fmt.Sprintf("%d %ses", n, what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// limitText explains what stopped a node's pool.
var limitText = map[string]string{
	plan.PoolMaxENIs: "all ENIs are full before the warm target is met",
	plan.PoolMaxPods: "kubelet admits no more pods: max pods less the 2 host-network pods",
}

func renderNode(tw io.Writer, r plan.Result, m plan.ModeResult) {
	n := m.Node
	fmt.Fprintf(tw, "NODE (each of %d)\n", r.Nodes)
	fmt.Fprintf(tw, "  pods\t%d (max pods %d: room for %d pods with an address + %d host-network pods)\n",
		n.Pods, n.MaxPods, n.MaxPods-plan.HostNetworkPods, plan.HostNetworkPods)
	held := fmt.Sprintf("%d addresses", n.Addresses)
	if r.Mode == plan.Prefix {
		held = fmt.Sprintf("%d /28 prefixes = %d addresses", n.Prefixes, n.Addresses)
	}
	fmt.Fprintf(tw, "  holds\t%s: %d for pods + %d warm\n", held, n.PodsWithAddress, n.Warm)
	fmt.Fprintf(tw, "  ENIs\t%d of %d\n", n.ENIs, n.MaxENIs)
	fmt.Fprintf(tw, "  from its subnet\t%d addresses: %s + %d held\n", n.SubnetAddresses, plural(n.ENIs, "ENI primary address"), n.Addresses)
	if n.Limit != "" {
		fmt.Fprintf(tw, "  pool limit\t%s: %s\n", n.Limit, limitText[n.Limit])
	}
	if n.ExceedsMaxPods {
		fmt.Fprintf(tw, "  WARNING\t%d pods + %d host-network pods exceed max pods %d\n", n.Pods, plan.HostNetworkPods, n.MaxPods)
	}
	if n.PodsWithoutAddress > 0 {
		fmt.Fprintf(tw, "  WARNING\t%d pods per node get no address (%s)\n", n.PodsWithoutAddress, n.Limit)
	}
}

func renderSubnets(tw io.Writer, mode plan.Mode, subnets []plan.Subnet) {
	head := "SUBNET\tSIZE\tRESERVED\tNODES\tNODE IPS\tENI IPS\tPOD IPS\tWARM IPS\tFREE\tUSED\tMORE NODES\t"
	if mode == plan.Prefix {
		head = "SUBNET\tSIZE\tRESERVED\tNODES\tNODE IPS\tENI IPS\tPREFIXES\tPOD IPS\tWARM IPS\tFREE\tFREE /28s\tUSED\tMORE NODES\t"
	}
	// Numbers align right; pad the first column so that it reads left-aligned.
	width := len("SUBNET")
	for _, s := range subnets {
		width = max(width, len(s.CIDR.String()))
	}
	fmt.Fprintf(tw, "%-*s%s\n", width, "SUBNET", strings.TrimPrefix(head, "SUBNET"))
	for _, s := range subnets {
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%d\t%d\t", width, s.CIDR, s.Size, s.Reserved, s.Nodes, s.NodePrimaries, s.ENIPrimaries)
		if mode == plan.Prefix {
			fmt.Fprintf(tw, "%d\t", s.Prefixes)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t", s.PodAddresses, s.WarmAddresses, s.Free)
		if mode == plan.Prefix {
			fmt.Fprintf(tw, "%d\t", s.FreeBlocks)
		}
		fmt.Fprintf(tw, "%.1f%%\t%d\t\n", s.Utilisation, s.MoreNodes)
	}
	fmt.Fprintln(tw, "  NODE IPS: one primary per node; ENI IPS: primaries of the nodes' other ENIs; USED: share of SIZE - RESERVED")
	for _, s := range subnets {
		switch {
		case s.Shortfall > 0:
			fmt.Fprintf(tw, "WARNING: %s is %s short for its %s\n", s.CIDR, plural(s.Shortfall, "address"), plural(s.Nodes, "node"))
		case s.FreeBlocks < 0:
			fmt.Fprintf(tw, "WARNING: %s is %s short for the prefixes of its %s\n", s.CIDR, plural(-s.FreeBlocks, "aligned /28"), plural(s.Nodes, "node"))
		}
	}
}

func renderHeadroom(b *strings.Builder, r plan.Result, m plan.ModeResult) {
	h := m.Headroom
	fmt.Fprintf(b, "HEADROOM  %d more %s fit; spreading round robin, %s runs out of %s first, after %d more\n",
		h.MoreNodes, nodeWord(h.MoreNodes), h.FirstExhausted, h.RunsOut, h.RoundRobin)
	if r.Mode == plan.Prefix {
		fmt.Fprintf(b, "          if EC2 scatters ENI primaries one per /28: %d more %s\n", h.MoreNodesIfScattered, nodeWord(h.MoreNodesIfScattered))
	}
	fmt.Fprintf(b, "VPC       %d of %d addresses are in no subnet (room to add subnets)\n", r.VPC.OutsideSubnets, r.VPC.Size)
}

func renderModes(tw io.Writer, r plan.Result) {
	fmt.Fprint(tw, "MODES")
	for _, m := range r.Modes {
		name := modeNames[m.Mode]
		if m.Mode == r.Mode {
			name += " (planned)"
		}
		fmt.Fprintf(tw, "\t%s", name)
	}
	fmt.Fprintln(tw, "\t")
	row := func(label string, f func(plan.ModeResult) string) {
		fmt.Fprintf(tw, "%s", label)
		for _, m := range r.Modes {
			if m.Unavailable != "" {
				fmt.Fprint(tw, "\tn/a")
				continue
			}
			fmt.Fprintf(tw, "\t%s", f(m))
		}
		fmt.Fprintln(tw, "\t")
	}
	row("subnet addresses per node", func(m plan.ModeResult) string { return fmt.Sprint(m.Node.SubnetAddresses) })
	row("ENIs per node", func(m plan.ModeResult) string { return fmt.Sprint(m.Node.ENIs) })
	row("max pods", func(m plan.ModeResult) string { return fmt.Sprint(m.Node.MaxPods) })
	row("pods without an address", func(m plan.ModeResult) string { return fmt.Sprint(m.Node.PodsWithoutAddress) })
	row("subnet addresses, cluster", func(m plan.ModeResult) string { return fmt.Sprint(m.SubnetAddresses) })
	row("free addresses", func(m plan.ModeResult) string {
		return fmt.Sprint(sum(m.Subnets, func(s plan.Subnet) int { return s.Free }))
	})
	row("more nodes fit", func(m plan.ModeResult) string {
		if m.Mode == plan.Prefix {
			return fmt.Sprintf("%d (%d if scattered)", m.Headroom.MoreNodes, m.Headroom.MoreNodesIfScattered)
		}
		return fmt.Sprint(m.Headroom.MoreNodes)
	})
	row("runs out first", func(m plan.ModeResult) string { return m.Headroom.RunsOut })
	for _, m := range r.Modes {
		if m.Unavailable != "" {
			fmt.Fprintf(tw, "%s: %s\n", modeNames[m.Mode], m.Unavailable)
		}
	}
	fmt.Fprintln(tw, "overlay: pod addresses come from a separate range; the subnets hold only the nodes")
}

func sum(subnets []plan.Subnet, f func(plan.Subnet) int) int {
	t := 0
	for _, s := range subnets {
		t += f(s)
	}
	return t
}
