package agent_test

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/testenv"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// TestENIMTUOnEveryENI: with AWS_VPC_ENI_MTU=1500 (`vpcnet lab up --eni-mtu 1500`) the primary
// ENI's device gets MTU 1500 too, not only the secondary ENIs (issue 12 item 5); CheckENI
// confirms both and reports a device whose MTU was changed behind the agent's back.
func TestENIMTUOnEveryENI(t *testing.T) {
	testenv.RequireNetns(t)
	netns := testenv.NewNS(t)
	var mu sync.Mutex
	var instance string
	hook := func(e vpcsim.Event) { // the "hypervisor": secondary ENI devices come and go with attachments
		mu.Lock()
		mine := e.InstanceID == instance && instance != ""
		mu.Unlock()
		if !mine || e.DeviceIndex == 0 || e.Kind != "eni-attached" {
			return
		}
		mac, _ := net.ParseMAC(e.MAC)
		_ = netns.Do(func(ns.NetNS) error {
			return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprint("eth", e.DeviceIndex), HardwareAddr: mac, MTU: dataplane.DefaultMTU},
				PeerName: fmt.Sprint("fabric", e.DeviceIndex)})
		})
	}
	x := newSimIn(t, netns, vpcsim.Options{Hook: hook}, "10.0.1.0/24", "m5.large")
	mu.Lock()
	instance = x.instance
	mu.Unlock()
	out, err := x.ec2.DescribeNetworkInterfaces(bg, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{x.instance}}}})
	if err != nil || len(out.NetworkInterfaces) != 1 {
		t.Fatalf("the instance's primary ENI: %v %v", out, err)
	}
	prim := out.NetworkInterfaces[0]
	primary := dataplane.ENI{MAC: aws.ToString(prim.MacAddress), DeviceIndex: 0, PrimaryIP: netip.MustParseAddr(aws.ToString(prim.PrivateIpAddress)),
		Subnet: netip.MustParsePrefix("10.0.1.0/24"), MTU: 1500}
	// The instance's own eth0, as the instance boots with it: MTU 9001, its address, up.
	err = netns.Do(func(ns.NetNS) error {
		mac, _ := net.ParseMAC(primary.MAC)
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", HardwareAddr: mac, MTU: dataplane.DefaultMTU}, PeerName: "fabric0"}); err != nil {
			return err
		}
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: primary.PrimaryIP.AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	})
	if err != nil {
		t.Fatal(err)
	}

	dir := keptDir(t, "vpcnetd-mtu")
	bin := daemonBin(t)
	socket := filepath.Join(dir, "run", "vpcnetd.sock")
	env := hostDaemonEnv(x, dir, "mtu", "AWS_VPC_ENI_MTU=1500",
		"WARM_IP_TARGET=12", "IP_COOLDOWN_PERIOD=200ms", "VPCNET_POOL_RELEASE_DELAY=1s", "VPCNET_RESYNC_PERIOD=1s", "VPCNET_EC2_MAX_BACKOFF=100ms")
	cmd := startDaemon(t, "nsenter", env, filepath.Join(dir, "log"), "--net="+netns.Path(), bin)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	conn, err := agentapi.Dial(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := agentapi.NewAgentClient(conn)
	waitFor(t, 60*time.Second, "vpcnetd ready", func() bool {
		st, err := client.Status(bg, &agentapi.StatusRequest{Version: agentapi.Version})
		return err == nil && st.Ready
	}, func() string { return tail(filepath.Join(dir, "log")) })

	secondary := primary
	var last string
	waitFor(t, 60*time.Second, "eth0 and eth1 at MTU 1500, as CheckENI sees them", func() bool {
		ok := false
		_ = netns.Do(func(ns.NetNS) error {
			l, err := netlink.LinkByName("eth1")
			if err != nil {
				last = err.Error()
				return nil
			}
			rules, _ := netlink.RuleList(netlink.FAMILY_V4)
			for _, r := range rules {
				if r.Table == dataplane.TableForDevice(1) && r.Src != nil {
					secondary.PrimaryIP, _ = netip.AddrFromSlice(r.Src.IP.To4())
				}
			}
			secondary.MAC, secondary.DeviceIndex = l.Attrs().HardwareAddr.String(), 1
			e0, e1 := dataplane.CheckENI(primary), dataplane.CheckENI(secondary)
			last = fmt.Sprintf("eth0: %v; eth1: %v", e0, e1)
			ok = e0 == nil && e1 == nil
			return nil
		})
		return ok
	}, func() string { return last + "\n" + tail(filepath.Join(dir, "log")) })

	// Changed behind the agent's back: CheckENI says which device and what it wants.
	err = netns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetMTU(l, dataplane.DefaultMTU); err != nil {
			return err
		}
		cerr := dataplane.CheckENI(primary)
		if cerr == nil || !strings.Contains(cerr.Error(), "MTU 9001, want 1500") {
			t.Errorf("CheckENI on eth0 at 9001: %v", cerr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
