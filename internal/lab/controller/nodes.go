package controller

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/vpcnet/vpcnet/internal/catalog"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/fabric"
	"github.com/vpcnet/vpcnet/internal/netnsx"
)

// node is one lab node: a namespace, an instance and its agent.
type node struct {
	index        int
	name         string
	ns           string
	instanceID   string
	instanceType string
	subnetID     string
	primary      netip.Addr
	paths        lab.NodePaths
	agent        *agentProc
	keepLog      bool // the agent failed to start: removeNode keeps its log for the error to point at
}

// codedError is an error with a control API code (lab.Code*).
type codedError struct {
	code string
	err  error
}

func (e codedError) Error() string { return e.err.Error() }
func (e codedError) Unwrap() error { return e.err }

// errf makes a codedError.
func errf(code, format string, args ...any) error {
	return codedError{code: code, err: fmt.Errorf(format, args...)}
}

// resolveSubnet finds a lab subnet by ID or CIDR; "" is the first.
func (c *Controller) resolveSubnet(s string) (subnet, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s == "" && len(c.subnets) > 0 {
		return c.subnets[0], nil
	}
	for _, sn := range c.subnets {
		if sn.ID == s || sn.CIDR.String() == s {
			return sn, nil
		}
	}
	return subnet{}, errf(lab.CodeNotFound, "lab %s has no subnet %q", c.cfg.Name, s)
}

// addNode launches an instance, wires it into the fabric, starts its agent and waits until
// the agent can hand out addresses.
func (c *Controller) addNode(ctx context.Context, req lab.NodeRequest, step func(string)) (*node, error) {
	itype := req.InstanceType
	if itype == "" {
		itype = c.cfg.InstanceType
	}
	if _, err := catalog.Builtin().Lookup(itype); err != nil {
		return nil, errf(lab.CodeInvalid, "%v", err)
	}
	sn, err := c.resolveSubnet(req.Subnet)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	n := &node{index: c.nextIdx, instanceType: itype, subnetID: sn.ID}
	c.nextIdx++
	c.mu.Unlock()
	n.ns = lab.NodeNS(c.cfg.Name, n.index)
	n.paths = c.paths.Node(n.index)
	ok := false
	defer func() {
		if !ok {
			c.removeNode(n)
		}
	}()
	h, err := netnsx.Create(n.ns)
	if err != nil {
		return nil, err
	}
	h.Close()
	if err := os.MkdirAll(n.paths.Dir, 0o700); err != nil {
		return nil, err
	}
	step(fmt.Sprintf("launching a %s instance in %s (%s)", itype, sn.ID, sn.CIDR))
	out, err := c.ec2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-vpcnet-lab"), InstanceType: types.InstanceType(itype),
		SubnetId: aws.String(sn.ID), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		TagSpecifications: tags(types.ResourceTypeInstance, fmt.Sprintf("vpcnet-lab-%s-node-%d", c.cfg.Name, n.index))})
	if err != nil {
		return nil, c.cloudError(err, sn)
	}
	if len(out.Instances) != 1 {
		return nil, fmt.Errorf("RunInstances returned %d instances", len(out.Instances))
	}
	inst := out.Instances[0]
	n.instanceID = aws.ToString(inst.InstanceId)
	n.primary, _ = netip.ParseAddr(aws.ToString(inst.PrivateIpAddress))
	n.name = lab.NodeName(n.primary)
	if err := c.fab.Bind(n.instanceID, fabric.Node{Index: n.index, NS: n.ns}); err != nil {
		return nil, fmt.Errorf("wire %s into the fabric: %w", n.instanceID, err)
	}
	step(fmt.Sprintf("node %s: instance %s, primary ENI eth0 %s, namespace %s", n.name, n.instanceID, n.primary, n.ns))
	if c.cfg.DaemonSetAgent() {
		// The DaemonSet's vpcnetd runs once the node's kubelet does (the runtime's NodeAdded
		// starts it and waits for that agent); its socket and state are the node's usual paths.
		for _, d := range []string{n.paths.AgentState(), n.paths.CNIConfDir()} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return nil, err
			}
		}
		step(fmt.Sprintf("node %s: vpcnetd comes from the DaemonSet once kubelet runs", n.name))
	} else {
		if err := c.startAgent(n); err != nil {
			return nil, err
		}
		step(fmt.Sprintf("vpcnetd started on %s (pid %d, log %s)", n.name, n.agent.pid, n.paths.AgentLog()))
		if err := c.waitAgentReady(ctx, n, step); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	ok = true
	return n, nil
}

// cloudError turns an EC2 error into one that says what to do.
func (c *Controller) cloudError(err error, sn subnet) error {
	var code interface{ ErrorCode() string }
	if errors.As(err, &code) && code.ErrorCode() == "InsufficientFreeAddressesInSubnet" {
		return errf(lab.CodeSubnetExhausted, "subnet %s (%s) is exhausted: no free address for a new instance; remove pods or nodes, or add a subnet", sn.ID, sn.CIDR)
	}
	return err
}

// removeNode deletes the node's pods, stops its agent, terminates its instance, deletes the
// ENIs the agent left and removes the namespace. Each step runs even if an earlier one failed.
func (c *Controller) removeNode(n *node) {
	for _, p := range c.podsOn(n.name) {
		if err := c.deletePod(p); err != nil {
			c.logf("node %s: remove pod %s: %v", n.name, p.name, err)
		}
	}
	c.stopAgent(n)
	if n.instanceID != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c.terminate(ctx, n)
		cancel()
		_ = c.fab.Unbind(n.instanceID)
	}
	if n.ns != "" {
		if err := netnsx.Delete(n.ns); err != nil {
			c.logf("node %s: %v", n.name, err)
		}
	}
	removeNodeDir(n)
	c.mu.Lock()
	for i, m := range c.nodes {
		if m == n {
			c.nodes = append(c.nodes[:i], c.nodes[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
}

// removeNodeDir removes the node's directory, all but the agent's log when n.keepLog says an
// error points at it (lab down removes it with the lab's directory).
func removeNodeDir(n *node) {
	if !n.keepLog {
		_ = os.RemoveAll(n.paths.Dir)
		return
	}
	entries, _ := os.ReadDir(n.paths.Dir)
	for _, e := range entries {
		if p := filepath.Join(n.paths.Dir, e.Name()); p != n.paths.AgentLog() {
			_ = os.RemoveAll(p)
		}
	}
}

// terminate ends the instance and deletes the ENIs that stay behind once it is gone.
func (c *Controller) terminate(ctx context.Context, n *node) {
	enis, _ := c.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
	var mine []string
	if enis != nil {
		for _, e := range enis.NetworkInterfaces {
			if e.Attachment != nil && aws.ToString(e.Attachment.InstanceId) == n.instanceID {
				mine = append(mine, aws.ToString(e.NetworkInterfaceId))
			}
		}
	}
	if _, err := c.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{n.instanceID}}); err != nil {
		c.logf("node %s: terminate %s: %v", n.name, n.instanceID, err)
		return
	}
	for _, id := range mine {
		for range 50 {
			_, err := c.ec2.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)})
			var code interface{ ErrorCode() string }
			if err == nil || (errors.As(err, &code) && code.ErrorCode() == "InvalidNetworkInterfaceID.NotFound") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// nodeByName finds a node by its name, index or instance ID.
func (c *Controller) nodeByName(name string) (*node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.name == name || n.instanceID == name || fmt.Sprint(n.index) == name || n.ns == name {
			return n, nil
		}
	}
	return nil, errf(lab.CodeNotFound, "lab %s has no node %q (see `vpcnet lab status`)", c.cfg.Name, name)
}

// teardownAll removes every node (and so every pod) and the internet namespace.
func (c *Controller) teardownAll() {
	c.mu.Lock()
	nodes := append([]*node(nil), c.nodes...)
	c.mu.Unlock()
	for _, n := range nodes {
		c.removeNode(n)
	}
	_ = netnsx.Delete(lab.InternetNS(c.cfg.Name))
}
