package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// The demo's steps, in the order of the seed's process table. Each returns what it observed,
// or an error saying what it observed instead.

func (d *demo) status() (Status, error) {
	ctx, cancel := context.WithTimeout(d.ctx, 20*time.Second)
	defer cancel()
	return d.c.Status(ctx)
}

func (d *demo) createVPC(up UpOptions) (string, error) {
	c, err := Up(d.ctx, UpOptions{Config: up.Config, Progress: d.progress})
	if err != nil {
		return "", err
	}
	d.c = c
	st, err := d.status()
	if err != nil {
		return "", err
	}
	if st.VPC.ID == "" || st.VPC.CIDR != up.Config.VPCCIDR {
		return "", fmt.Errorf("VPC is %q %s, want %s", st.VPC.ID, st.VPC.CIDR, up.Config.VPCCIDR)
	}
	if len(st.Subnets) != len(up.Config.Subnets) {
		return "", fmt.Errorf("%d subnets, want %d", len(st.Subnets), len(up.Config.Subnets))
	}
	parts := []string{fmt.Sprintf("%s %s", st.VPC.ID, st.VPC.CIDR)}
	for _, s := range st.Subnets {
		parts = append(parts, fmt.Sprintf("%s %s (%d free)", s.ID, s.CIDR, s.Free))
	}
	return strings.Join(parts, "; "), nil
}

func (d *demo) nodesRegistered() (string, error) {
	for range 2 {
		n, err := d.c.AddNode(d.ctx, NodeRequest{}, d.progress)
		if err != nil {
			return "", err
		}
		d.nodes = append(d.nodes, n)
	}
	st, err := d.status()
	if err != nil {
		return "", err
	}
	var parts []string
	for _, n := range st.Nodes {
		if n.InstanceID == "" || n.Name != NodeName(n.PrimaryIP) || !demoMain.Contains(n.PrimaryIP) {
			return "", fmt.Errorf("node %+v is not registered with an instance and an address in %s", n, demoMain)
		}
		parts = append(parts, fmt.Sprintf("%s (%s %s)", n.Name, n.InstanceID, n.InstanceType))
	}
	if len(st.Nodes) != 2 {
		return "", fmt.Errorf("%d nodes, want 2", len(st.Nodes))
	}
	return strings.Join(parts, ", "), nil
}

func (d *demo) agentsReady() (string, error) {
	st, err := d.status()
	if err != nil {
		return "", err
	}
	var parts []string
	for _, n := range st.Nodes {
		if !n.Agent.Ready || !Alive(n.Agent.PID) {
			return "", fmt.Errorf("vpcnetd on %s: ready=%v pid %d (%s %s)", n.Name, n.Agent.Ready, n.Agent.PID, n.Agent.Reason, n.Agent.Message)
		}
		if err := AgentHealthz(n.NS); err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("pid %d ready", n.Agent.PID))
	}
	return fmt.Sprintf("vpcnetd on %d/%d nodes (%s), /healthz ok, CNI config written", len(st.Nodes), len(st.Nodes), strings.Join(parts, ", ")), nil
}

func (d *demo) enisAssigned() (string, error) {
	st, err := d.status()
	if err != nil {
		return "", err
	}
	var parts []string
	for _, n := range st.Nodes {
		addrs := 0
		for _, e := range n.ENIs {
			addrs += len(e.Secondary) + 16*len(e.Prefixes)
		}
		if len(n.ENIs) == 0 || addrs == 0 {
			return "", fmt.Errorf("node %s holds %d ENIs and %d secondary addresses", n.Name, len(n.ENIs), addrs)
		}
		parts = append(parts, fmt.Sprintf("%s: %d ENI(s), %d secondary IP(s)", shortNode(n.Name), len(n.ENIs), addrs))
	}
	return strings.Join(parts, "; "), nil
}

func shortNode(name string) string { return strings.TrimSuffix(name, ".ec2.internal") }

// runPod starts a pod and checks its address is in want.
func (d *demo) runPod(name, node string, want netip.Prefix) (PodInfo, error) {
	p, err := d.c.RunPod(d.ctx, PodRequest{Name: name, Node: node}, d.progress)
	if err != nil {
		return p, err
	}
	if !want.Contains(p.IP) {
		return p, fmt.Errorf("pod %s got %s, outside the subnet %s", name, p.IP, want)
	}
	if err := PodHasAddr(p.NS, p.IP); err != nil {
		return p, err
	}
	d.pods[name] = p
	return p, nil
}

func (d *demo) podsStart() (string, error) {
	var parts []string
	for i, n := range d.nodes {
		p, err := d.runPod(fmt.Sprintf("web-%d", i+1), n.Name, demoMain)
		if err != nil {
			return strings.Join(parts, ", "), err
		}
		parts = append(parts, fmt.Sprintf("%s %s on %s", p.Name, p.IP, shortNode(p.Node)))
	}
	return strings.Join(parts, ", ") + " (in " + demoMain.String() + ", on the pods' eth0)", nil
}

func (d *demo) podToPod() (string, error) {
	a, b := d.pods["web-1"], d.pods["web-2"]
	obs, err := CrossNode(a, b)
	if err != nil {
		return obs, err
	}
	tunnels, count, err := TunnelDevices(d.name)
	if err != nil {
		return obs, err
	}
	if len(tunnels) > 0 {
		return obs, fmt.Errorf("tunnel devices found: %s", strings.Join(tunnels, ", "))
	}
	return fmt.Sprintf("%s; no tunnel device in %d namespaces", obs, count), nil
}

func (d *demo) internet() (string, error) {
	st, err := d.status()
	if err != nil {
		return "", err
	}
	p := d.pods["web-1"]
	n, err := FindNode(st, p.Node)
	if err != nil {
		return "", err
	}
	return ViaSNAT(d.name, p, n.PrimaryIP)
}

func (d *demo) podIPs() (string, error) {
	st, err := d.status()
	if err != nil {
		return "", err
	}
	var parts []string
	for _, p := range st.Pods {
		if !demoVPC.Contains(p.IP) {
			return "", fmt.Errorf("pod %s has %s, outside the VPC", p.Name, p.IP)
		}
		if err := PodHasAddr(p.NS, p.IP); err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("%s=%s", p.Name, p.IP))
	}
	return strings.Join(parts, ", ") + ": every pod IP is a VPC subnet address", nil
}

func (d *demo) scale() (string, error) {
	n, err := d.c.AddNode(d.ctx, NodeRequest{}, d.progress)
	if err != nil {
		return "", err
	}
	p, err := d.runPod("web-3", n.Name, demoMain)
	if err != nil {
		return "", err
	}
	obs, err := CrossNode(p, d.pods["web-1"])
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s joined with %d ENI(s); web-3 %s; %s", shortNode(n.Name), len(n.ENIs), p.IP, obs), nil
}

func (d *demo) exhaust() (string, error) {
	n, err := d.c.AddNode(d.ctx, NodeRequest{Subnet: demoSmall.String()}, d.progress)
	if err != nil {
		return "", err
	}
	var got []string
	var failure *APIError
	for i := 1; i <= 40; i++ {
		name := fmt.Sprintf("dry-%d", i)
		_, err := d.runPod(name, n.Name, demoSmall)
		if err == nil {
			got = append(got, name)
			continue
		}
		if errors.As(err, &failure) {
			break
		}
		return "", err
	}
	if failure == nil {
		return "", fmt.Errorf("%d pods started in %s and none failed", len(got), demoSmall)
	}
	if failure.Code != CodeSubnetExhausted {
		return "", fmt.Errorf("pod %d failed, but not for an exhausted subnet: %s", len(got)+1, failure.Msg)
	}
	st, err := d.status()
	if err != nil {
		return "", err
	}
	free := -1
	for _, s := range st.Subnets {
		if s.CIDR == demoSmall {
			free = s.Free
		}
	}
	obs := fmt.Sprintf("%s in %s: %d pods, then %q (subnet free: %d)", shortNode(n.Name), demoSmall, len(got), failure.Msg, free)
	if len(got) < 2 {
		return obs, fmt.Errorf("only %d pods fit before the subnet ran dry", len(got))
	}
	for _, name := range got[:2] {
		if err := d.c.RemovePod(d.ctx, name, d.progress); err != nil {
			return obs, err
		}
	}
	// The freed addresses return to the pool after the cooldown.
	deadline := time.Now().Add(60 * time.Second)
	for {
		p, err := d.runPod("dry-again", n.Name, demoSmall)
		if err == nil {
			return obs + fmt.Sprintf("; after removing 2 pods, dry-again got %s", p.IP), nil
		}
		if !errors.As(err, &failure) || time.Now().After(deadline) {
			return obs, fmt.Errorf("after removing 2 pods: %w", err)
		}
		time.Sleep(time.Second)
	}
}

func (d *demo) teardown() (string, error) {
	if err := Down(d.ctx, d.name, d.progress); err != nil {
		return "", err
	}
	left, err := Leftovers(d.name)
	if err != nil {
		return "", err
	}
	if len(left) > 0 {
		return "", fmt.Errorf("left behind: %s", strings.Join(left, ", "))
	}
	return "lab down: no namespace, process or file of the lab left", nil
}
