package agent_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/testenv"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// TestHostNetworkingInNetns runs vpcnetd with VPCNET_HOST_NETWORKING=true inside a test network
// namespace where, as on an instance, each attached ENI appears as a device with its MAC: the
// agent sets up the secondary ENI's table and rule when it attaches it, SNAT at start, and tears
// the ENI down when it frees it.
func TestHostNetworkingInNetns(t *testing.T) {
	testenv.RequireNetns(t)
	netns := testenv.NewNS(t)
	var mu sync.Mutex
	var instance string
	hook := func(e vpcsim.Event) { // the "hypervisor": ENI devices come and go with attachments
		mu.Lock()
		mine := e.InstanceID == instance && instance != ""
		mu.Unlock()
		if !mine || e.DeviceIndex == 0 {
			return
		}
		mac, _ := net.ParseMAC(e.MAC)
		err := netns.Do(func(ns.NetNS) error {
			switch e.Kind {
			case "eni-attached":
				return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprint("eth", e.DeviceIndex), HardwareAddr: mac},
					PeerName: fmt.Sprint("fabric", e.DeviceIndex)})
			case "eni-detached":
				if l, err := netlink.LinkByName(fmt.Sprint("eth", e.DeviceIndex)); err == nil {
					return netlink.LinkDel(l)
				}
			}
			return nil
		})
		t.Logf("hook: %s %s device %d: %v", e.Kind, e.MAC, e.DeviceIndex, err)
	}
	x := newSimIn(t, netns, vpcsim.Options{Hook: hook}, "10.0.1.0/24", "m5.large")
	mu.Lock()
	instance = x.instance
	mu.Unlock()

	dir, err := os.MkdirTemp("", "vpcnetd-netns")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := buildDaemon(t, dir)
	socket := filepath.Join(dir, "run", "vpcnetd.sock")
	env := append(os.Environ(),
		"AWS_EC2_ENDPOINT="+x.s.Endpoint(), "AWS_EC2_METADATA_SERVICE_ENDPOINT="+x.imds, "AWS_REGION="+x.s.Region(),
		"VPCNET_SOCKET="+socket, "VPCNET_STATE_DIR="+filepath.Join(dir, "state"), "VPCNET_CNI_CONF_DIR="+filepath.Join(dir, "net.d"),
		"VPCNET_METRICS_ADDR=", "VPCNET_HOST_NETWORKING=true", "VPCNET_CLUSTER_NAME=netns",
		"WARM_IP_TARGET=3", "IP_COOLDOWN_PERIOD=200ms", "VPCNET_POOL_RELEASE_DELAY=1s", "VPCNET_RESYNC_PERIOD=1s", "VPCNET_EC2_MAX_BACKOFF=100ms")
	cmd := startDaemon(t, "nsenter", env, filepath.Join(dir, "log"), "--net="+netns.Path(), bin)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	conn, err := agentapi.Dial(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := &node{t: t, sim: x, client: agentapi.NewAgentClient(conn)}
	waitFor(t, 20*time.Second, "vpcnetd ready", func() bool {
		st, err := n.client.Status(bg, &agentapi.StatusRequest{Version: agentapi.Version})
		return err == nil && st.Ready
	}, func() string { return tail(filepath.Join(dir, "log")) })
	for i := range 8 {
		n.mustAdd(fmt.Sprint("pod", i))
	}
	var eniIP string
	waitFor(t, 20*time.Second, "eth1 set up with table 2 and its rule", func() bool {
		ok := false
		netns.Do(func(ns.NetNS) error {
			l, err := netlink.LinkByName("eth1")
			if err != nil || l.Attrs().Flags&net.FlagUp == 0 {
				return nil
			}
			routes, _ := netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: 2}, netlink.RT_FILTER_TABLE)
			rules, _ := netlink.RuleList(unix.AF_INET)
			for _, r := range rules {
				if r.Table == 2 && r.Src != nil {
					eniIP = r.Src.IP.String()
				}
			}
			for _, r := range routes {
				if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
					ok = r.Gw.String() == "10.0.1.1" && eniIP != ""
				}
			}
			return nil
		})
		return ok
	}, func() string { return tail(filepath.Join(dir, "log")) })
	out, err := exec_(netns, "nft", "list", "table", "inet", "vpcnet")
	if err == nil && !strings.Contains(out, "snat") {
		t.Errorf("no SNAT in the vpcnet nftables table:\n%s", out)
	}
	for i := range 8 {
		n.del(fmt.Sprint("pod", i))
	}
	waitFor(t, 20*time.Second, "eth1's table and rule gone with the ENI", func() bool {
		gone := true
		netns.Do(func(ns.NetNS) error {
			rules, _ := netlink.RuleList(unix.AF_INET)
			for _, r := range rules {
				if r.Table == 2 {
					gone = false
				}
			}
			return nil
		})
		return gone
	}, func() string { return tail(filepath.Join(dir, "log")) })
	t.Logf("ENI at device 1 (primary %s) set up and torn down", eniIP)
}
