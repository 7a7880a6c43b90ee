package controller

import (
	"context"
	"net/netip"
	"sort"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/vpcnet/vpcnet/internal/catalog"
	"github.com/vpcnet/vpcnet/internal/ipam"
	"github.com/vpcnet/vpcnet/internal/lab"
)

// status gathers the lab's state from vpcsim (through its EC2 API), the agents and itself.
func (c *Controller) status(ctx context.Context) (lab.Status, error) {
	c.mu.Lock()
	st := lab.Status{Name: c.cfg.Name, Dir: c.paths.Dir, VPC: lab.VPCInfo{ID: c.vpcID, CIDR: c.cfg.VPCCIDR},
		Subnets: []lab.SubnetInfo{}, Nodes: []lab.NodeInfo{}, Pods: []lab.PodInfo{}}
	nodes := append([]*node(nil), c.nodes...)
	pods := make([]*pod, 0, len(c.pods))
	for _, p := range c.pods {
		pods = append(pods, p)
	}
	c.mu.Unlock()

	subnets, err := c.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil {
		return st, err
	}
	for _, s := range subnets.Subnets {
		cidr, _ := netip.ParsePrefix(aws.ToString(s.CidrBlock))
		usable := 1<<(32-cidr.Bits()) - 5
		free := int(aws.ToInt32(s.AvailableIpAddressCount))
		st.Subnets = append(st.Subnets, lab.SubnetInfo{ID: aws.ToString(s.SubnetId), CIDR: cidr, AZ: aws.ToString(s.AvailabilityZone),
			Usable: usable, Free: free, Used: usable - free})
	}
	sort.Slice(st.Subnets, func(i, j int) bool { return st.Subnets[i].CIDR.Addr().Less(st.Subnets[j].CIDR.Addr()) })

	enis, err := c.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
	if err != nil {
		return st, err
	}
	byInstance := map[string][]lab.ENIInfo{}
	for _, e := range enis.NetworkInterfaces {
		if e.Attachment == nil || e.Attachment.InstanceId == nil {
			continue
		}
		info := lab.ENIInfo{ID: aws.ToString(e.NetworkInterfaceId), DeviceIndex: int(aws.ToInt32(e.Attachment.DeviceIndex)),
			MAC: aws.ToString(e.MacAddress), SubnetID: aws.ToString(e.SubnetId)}
		for _, a := range e.PrivateIpAddresses {
			ip, _ := netip.ParseAddr(aws.ToString(a.PrivateIpAddress))
			if aws.ToBool(a.Primary) {
				info.PrimaryIP = ip
			} else {
				info.Secondary = append(info.Secondary, ip)
			}
		}
		for _, p := range e.Ipv4Prefixes {
			if pf, err := netip.ParsePrefix(aws.ToString(p.Ipv4Prefix)); err == nil {
				info.Prefixes = append(info.Prefixes, pf)
			}
		}
		id := aws.ToString(e.Attachment.InstanceId)
		byInstance[id] = append(byInstance[id], info)
	}
	for _, n := range nodes {
		ni := lab.NodeInfo{Name: n.name, Index: n.index, NS: n.ns, InstanceID: n.instanceID, InstanceType: n.instanceType,
			SubnetID: n.subnetID, PrimaryIP: n.primary, Agent: c.agentStatus(ctx, n), ENIs: append([]lab.ENIInfo{}, byInstance[n.instanceID]...), Pods: []string{}}
		sort.Slice(ni.ENIs, func(i, j int) bool { return ni.ENIs[i].DeviceIndex < ni.ENIs[j].DeviceIndex })
		if t, err := catalog.Builtin().Lookup(n.instanceType); err == nil {
			ni.MaxENIs, ni.IPv4PerENI = t.MaxENIs, t.IPv4PerENI
			if m, err := strconv.Atoi(c.cfg.Agent["MAX_ENI"]); err == nil && m > 0 {
				ni.MaxENIs = min(ni.MaxENIs, m) // what the agent may attach, as its capacity counts it
			}
			ni.MaxPods = c.emptyNodeCapacity(t)
		}
		if ni.Agent.MaxPods > 0 { // the agent knows what the node can really hold (no_manage ENIs, slots taken)
			ni.MaxPods = ni.Agent.MaxPods
		}
		for _, p := range pods {
			if p.node == n.name {
				ni.Pods = append(ni.Pods, p.name)
			}
		}
		sort.Strings(ni.Pods)
		st.Nodes = append(st.Nodes, ni)
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].Index < st.Nodes[j].Index })
	for _, p := range pods {
		st.Pods = append(st.Pods, podInfo(p))
	}
	sort.Slice(st.Pods, func(i, j int) bool { return st.Pods[i].Name < st.Pods[j].Name })
	return st, nil
}

// emptyNodeCapacity is the pod addresses a node of type t can hold under the lab's agent
// settings, by the agent's own capacity function, before its agent answers.
func (c *Controller) emptyNodeCapacity(t catalog.InstanceType) int {
	atoi := func(k string) int { n, _ := strconv.Atoi(c.cfg.Agent[k]); return max(n, 0) }
	return ipam.CapacityOf(ipam.State{
		Limits:   ipam.Limits{MaxENIs: t.MaxENIs, IPv4PerENI: t.IPv4PerENI},
		Settings: ipam.Settings{PrefixDelegation: c.cfg.Agent["ENABLE_PREFIX_DELEGATION"] == "true", MaxENI: atoi("MAX_ENI"), MaxPods: atoi("MAX_PODS")},
	}).Pods
}

func podInfo(p *pod) lab.PodInfo {
	return lab.PodInfo{Name: p.name, Node: p.node, NS: p.ns, IP: p.ip, ContainerID: p.containerID}
}
