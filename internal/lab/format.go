package lab

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteStatus prints the lab's state for a person.
func WriteStatus(w io.Writer, st Status) {
	fmt.Fprintf(w, "Lab %s (%s)\n", st.Name, st.Dir)
	fmt.Fprintf(w, "VPC %s %s\n\n", st.VPC.ID, st.VPC.CIDR)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBNET\tCIDR\tAZ\tUSED\tFREE\tUSABLE")
	for _, s := range st.Subnets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", s.ID, s.CIDR, s.AZ, s.Used, s.Free, s.Usable)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tINSTANCE\tTYPE\tPRIMARY IP\tENIS\tADDRESSES\tPODS\tAGENT")
	for _, n := range st.Nodes {
		addrs := 0
		for _, e := range n.ENIs {
			addrs += 1 + len(e.Secondary) + 16*len(e.Prefixes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%d\t%d/%d\t%s\n", n.Name, n.InstanceID, n.InstanceType, n.PrimaryIP,
			len(n.ENIs), n.MaxENIs, addrs, len(n.Pods), n.MaxPods, agentWord(n.Agent))
	}
	tw.Flush()
	fmt.Fprintln(w)
	WritePods(w, st.Pods)
}

// WritePods prints the pods like `kubectl get pods -o wide`.
func WritePods(w io.Writer, pods []PodInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POD\tIP\tNODE\tNETNS")
	for _, p := range pods {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.IP, p.Node, p.NS)
	}
	tw.Flush()
}

func agentWord(a AgentInfo) string {
	s := "ready"
	if !a.Ready {
		s = "not ready (" + a.Reason + ")"
	}
	if a.PID > 0 { // 0: not a process the lab supervises (the DaemonSet's agent pod)
		s += fmt.Sprintf(", pid %d", a.PID)
	}
	if a.Restarts > 0 {
		s += fmt.Sprintf(", %d restart(s)", a.Restarts)
	}
	return s
}

// WriteDescribeNode prints one node like `kubectl describe node`, with its address capacity.
func WriteDescribeNode(w io.Writer, n NodeInfo, pods []PodInfo) {
	kv := func(k string, v any) { fmt.Fprintf(w, "%-20s %v\n", k+":", v) }
	kv("Name", n.Name)
	kv("Instance", n.InstanceID)
	kv("Instance type", n.InstanceType)
	kv("Subnet", n.SubnetID)
	kv("Primary IP", n.PrimaryIP)
	kv("Namespace", n.NS)
	kv("Agent", agentWord(n.Agent))
	if n.Agent.Message != "" {
		kv("Agent says", n.Agent.Message)
	}
	fmt.Fprintln(w, "Network interfaces:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  DEVICE\tENI\tMAC\tPRIMARY\tSLOTS\tSECONDARY IPS / PREFIXES")
	slots := 0
	for _, e := range n.ENIs {
		slots += e.Slots()
		var extra []string
		for _, a := range e.Secondary {
			extra = append(extra, a.String())
		}
		for _, p := range e.Prefixes {
			extra = append(extra, p.String())
		}
		fmt.Fprintf(tw, "  eth%d\t%s\t%s\t%s\t%d/%d\t%s\n", e.DeviceIndex, e.ID, e.MAC, e.PrimaryIP, e.Slots(), n.IPv4PerENI, strings.Join(extra, " "))
	}
	tw.Flush()
	fmt.Fprintln(w, "Capacity:")
	kv("  ENIs", fmt.Sprintf("%d of %d attached", len(n.ENIs), n.MaxENIs))
	kv("  Address slots", fmt.Sprintf("%d of %d used (%d per ENI, the primary included)", slots, n.MaxENIs*n.IPv4PerENI, n.IPv4PerENI))
	kv("  Max pods", fmt.Sprintf("%d (pod addresses the node can hold, from its agent; kubelet's maxPods adds its host-network pods)", n.MaxPods))
	kv("  Pods", fmt.Sprintf("%d running, %d more fit", len(n.Pods), max(0, n.MaxPods-len(n.Pods))))
	kv("  Agent pool", fmt.Sprintf("%d address(es) held for pods, %d free now", n.Agent.Assigned, n.Agent.Free))
	fmt.Fprintln(w, "Pods:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tIP")
	for _, p := range pods {
		if p.Node == n.Name {
			fmt.Fprintf(tw, "  %s\t%s\n", p.Name, p.IP)
		}
	}
	tw.Flush()
}

// FindNode picks a node from the status by name, index, instance ID or namespace.
func FindNode(st Status, key string) (NodeInfo, error) {
	for _, n := range st.Nodes {
		if n.Name == key || n.InstanceID == key || fmt.Sprint(n.Index) == key || n.NS == key {
			return n, nil
		}
	}
	names := make([]string, 0, len(st.Nodes))
	for _, n := range st.Nodes {
		names = append(names, n.Name)
	}
	return NodeInfo{}, fmt.Errorf("lab %s has no node %q; nodes: %s", st.Name, key, strings.Join(names, ", "))
}
