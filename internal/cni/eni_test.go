package cni_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/cni"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/probe"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

// record reads the plugin's state record of p.
func (c *cluster) record(t testing.TB, p *pod) cni.Record {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(c.stateDir, "vpcnet", "attachments", "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var r cni.Record
		if json.Unmarshal(b, &r) == nil && r.ContainerID == p.rt.ContainerID {
			return r
		}
	}
	t.Fatalf("no state record for %s", p.rt.ContainerID)
	return cni.Record{}
}

// podsUntilSecondaryENI adds pods named prefix-0, prefix-1, … through list until one gets an
// address of a secondary ENI (its state record names a routing table), 27 at the most. It
// returns every pod added, the one on the secondary ENI and its record; it fails the test if
// no pod got there.
func (c *cluster) podsUntilSecondaryENI(t testing.TB, list *libcni.NetworkConfigList, prefix string) ([]*pod, *pod, cni.Record) {
	t.Helper()
	var pods []*pod
	for i := 0; i < 27; i++ {
		p := newPod(t, fmt.Sprintf("%s-%d", prefix, i))
		if err := c.addRetry(list, p, 30*time.Second); err != nil {
			t.Fatalf("ADD %s: %v", p.name, err)
		}
		pods = append(pods, p)
		if r := c.record(t, p); r.Table != 0 {
			return pods, p, r
		}
	}
	t.Fatal("no pod got an address of a secondary ENI")
	return nil, nil, cni.Record{}
}

// delPods runs DEL through list for each of pods.
func (c *cluster) delPods(t testing.TB, list *libcni.NetworkConfigList, pods []*pod) {
	t.Helper()
	for _, p := range pods {
		if err := c.cni.DelNetworkList(bg, list, p.rt); err != nil {
			t.Fatal(err)
		}
	}
}

// A pod given an address of a secondary ENI leaves through that ENI's routing table: the test
// plays the fabric (a router namespace behind a veth carrying the ENI's MAC) and the agent's
// node-level part (dataplane.SetupENI), as vpcnetd does with VPCNET_HOST_NETWORKING=true.
func TestSecondaryENIPod(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	list := c.conflist(t, "1.1.0")
	pods, onENI, rec := c.podsUntilSecondaryENI(t, list, "fill")
	out, err := c.ec2.DescribeNetworkInterfaces(bg, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{rec.ENI}})
	if err != nil || len(out.NetworkInterfaces) != 1 {
		t.Fatalf("describe %s: %v", rec.ENI, err)
	}
	ni := out.NetworkInterfaces[0]
	eni := dataplane.ENI{MAC: aws.ToString(ni.MacAddress), DeviceIndex: int(aws.ToInt32(ni.Attachment.DeviceIndex)),
		PrimaryIP: netip.MustParseAddr(aws.ToString(ni.PrivateIpAddress)), Subnet: c.subnet}
	if rec.Table != dataplane.TableForDevice(eni.DeviceIndex) {
		t.Fatalf("pod %s on device %d uses table %d", onENI.ip, eni.DeviceIndex, rec.Table)
	}
	dev := fmt.Sprintf("eth%d", eni.DeviceIndex)
	router := testenv.NewNS(t)
	vpcHost := netip.MustParseAddr("10.10.200.1") // in the VPC, outside the node's subnet
	c.do(t, func() error {
		hw, _ := net.ParseMAC(eni.MAC)
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: dev, HardwareAddr: hw},
			PeerName: "fabric1", PeerNamespace: netlink.NsFd(int(router.Fd()))}); err != nil {
			return err
		}
		return dataplane.SetupENI(eni)
	})
	if err := router.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName("fabric1")
		if err != nil {
			return err
		}
		gw, _ := netlink.ParseAddr(eni.Router().String() + "/20")
		if err := netlink.AddrAdd(l, gw); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		if err := addAddr("lo", vpcHost); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{Dst: &net.IPNet{IP: onENI.ip.AsSlice(), Mask: net.CIDRMask(32, 32)}, Gw: eni.PrimaryIP.AsSlice()})
	}); err != nil {
		t.Fatal(err)
	}
	var txBefore uint64
	c.do(t, func() error {
		veth, err := netlink.LinkByName(rec.HostVeth)
		if err != nil {
			return err
		}
		routes, err := netlink.RouteGetWithOptions(vpcHost.AsSlice(), &netlink.RouteGetOptions{IifIndex: veth.Attrs().Index, SrcAddr: onENI.ip.AsSlice()})
		if err != nil {
			return err
		}
		l, _ := netlink.LinkByName(dev)
		if len(routes) != 1 || routes[0].LinkIndex != l.Attrs().Index {
			t.Errorf("route from pod %s to %s: %v, want via %s dev %s", onENI.ip, vpcHost, routes, eni.Router(), dev)
		}
		txBefore = l.Attrs().Statistics.TxPackets
		return nil
	})
	// The node's main table has no default route at all: only the ENI's table can carry this.
	if err := probe.WaitPing(onENI.ns.Path(), vpcHost, 30*time.Second); err != nil {
		t.Fatalf("pod %s on %s -> %s: %v", onENI.ip, dev, vpcHost, err)
	}
	if n, err := probe.Ping(onENI.ns.Path(), vpcHost, 5, 10*time.Second); err != nil || n != 5 {
		t.Fatalf("ping: %d/5, %v", n, err)
	}
	c.do(t, func() error {
		l, _ := netlink.LinkByName(dev)
		if d := l.Attrs().Statistics.TxPackets - txBefore; d < 5 {
			t.Errorf("%s sent %d packets, want >= 5 echo requests", dev, d)
		}
		return nil
	})
	// CHECK covers what the pod's path through the ENI needs (issue 12 item 6).
	if err := c.cni.CheckNetworkList(bg, list, onENI.rt); err != nil {
		t.Fatalf("CHECK of the pod on %s: %v", dev, err)
	}
	rpFilter := "/proc/sys/net/ipv4/conf/" + dev + "/rp_filter"
	c.do(t, func() error { return writeFile(rpFilter, "1") })
	if err := c.cni.CheckNetworkList(bg, list, onENI.rt); err == nil || !strings.Contains(err.Error(), "rp_filter") {
		t.Fatalf("CHECK with strict rp_filter on %s: %v, want an error naming rp_filter", dev, err)
	}
	c.do(t, func() error { return writeFile(rpFilter, "2") })
	c.do(t, func() error { return dataplane.TeardownENI(eni) }) // the ENI's table goes
	if err := c.cni.CheckNetworkList(bg, list, onENI.rt); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("table %d", rec.Table)) {
		t.Fatalf("CHECK with table %d gone: %v, want an error naming the table", rec.Table, err)
	}
	c.do(t, func() error { return dataplane.SetupENI(eni) })
	if err := c.cni.CheckNetworkList(bg, list, onENI.rt); err != nil {
		t.Fatalf("CHECK with the ENI set up again: %v", err)
	}
	c.delPods(t, list, pods)
	c.do(t, func() error { return dataplane.TeardownENI(eni) })
	if left := c.leftovers(t); len(left) > 0 {
		t.Fatalf("after DEL and TeardownENI: %v", left)
	}
}
