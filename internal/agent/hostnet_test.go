package agent_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/testenv"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// newHostSim starts a sim whose instance lives in netns as on EC2: each attached secondary ENI
// appears there as a device eth<device index> with the ENI's MAC (a veth), and goes when the
// ENI is detached, like the hypervisor's doing.
func newHostSim(t *testing.T, netns ns.NetNS) *sim {
	t.Helper()
	var mu sync.Mutex
	var instance string
	hook := func(e vpcsim.Event) {
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
	return x
}

// hostDaemonEnv is the environment of a vpcnetd with host networking against x, its socket
// (run/vpcnetd.sock), state and CNI config below dir, no metrics listener, cluster name cluster,
// and the extra settings.
func hostDaemonEnv(x *sim, dir, cluster string, extra ...string) []string {
	return append(append(os.Environ(),
		"AWS_EC2_ENDPOINT="+x.s.Endpoint(), "AWS_EC2_METADATA_SERVICE_ENDPOINT="+x.imds, "AWS_REGION="+x.s.Region(),
		"VPCNET_SOCKET="+filepath.Join(dir, "run", "vpcnetd.sock"), "VPCNET_STATE_DIR="+filepath.Join(dir, "state"),
		"VPCNET_CNI_CONF_DIR="+filepath.Join(dir, "net.d"), "VPCNET_METRICS_ADDR=", "VPCNET_HOST_NETWORKING=true",
		"VPCNET_CLUSTER_NAME="+cluster), extra...)
}

// TestHostNetworkingInNetns runs vpcnetd with VPCNET_HOST_NETWORKING=true inside a test network
// namespace where, as on an instance, each attached ENI appears as a device with its MAC: the
// agent sets up the secondary ENI's table and rule when it attaches it, SNAT at start, and tears
// the ENI down when it frees it.
func TestHostNetworkingInNetns(t *testing.T) {
	testenv.RequireNetns(t)
	netns := testenv.NewNS(t)
	x := newHostSim(t, netns)

	dir := keptDir(t, "vpcnetd-netns")
	bin := daemonBin(t)
	socket := filepath.Join(dir, "run", "vpcnetd.sock")
	env := hostDaemonEnv(x, dir, "netns",
		"WARM_IP_TARGET=3", "IP_COOLDOWN_PERIOD=200ms", "VPCNET_POOL_RELEASE_DELAY=1s", "VPCNET_RESYNC_PERIOD=1s", "VPCNET_EC2_MAX_BACKOFF=100ms")
	cmd := startDaemon(t, "nsenter", env, filepath.Join(dir, "log"), "--net="+netns.Path(), bin)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	conn, err := agentapi.Dial(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := &node{t: t, sim: x, client: agentapi.NewAgentClient(conn)}
	waitFor(t, 60*time.Second, "vpcnetd ready", func() bool {
		st, err := n.client.Status(bg, &agentapi.StatusRequest{Version: agentapi.Version})
		return err == nil && st.Ready
	}, func() string { return tail(filepath.Join(dir, "log")) })
	for i := range 8 {
		n.mustAdd(fmt.Sprint("pod", i))
	}
	var eniIP string
	waitFor(t, 60*time.Second, "eth1 set up with table 2 and its rule", func() bool {
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
	waitFor(t, 60*time.Second, "eth1's table and rule gone with the ENI", func() bool {
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

// table2Up reports whether, in netns, eth1 is up and table 2 routes by default through the
// subnet router on it (what SetupENI gives device 1).
func table2Up(netns ns.NetNS) bool {
	ok := false
	netns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName("eth1")
		if err != nil || l.Attrs().Flags&net.FlagUp == 0 {
			return nil
		}
		routes, _ := netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: 2}, netlink.RT_FILTER_TABLE)
		for _, r := range routes {
			if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == "10.0.1.1" && r.LinkIndex == l.Attrs().Index {
				ok = true
			}
		}
		return nil
	})
	return ok
}

// TestDetachedENIReattachedInNetns (issue 11 fault 6, host networking): an ENI holding a pod's
// address is force-detached while re-attaching is refused; its device leaves the node
// namespace, netlink tells the agent, which names the pod and hands none of the ENI's addresses
// out; once EC2 allows it the agent re-attaches the ENI at device 1 and sets its device and
// table 2 up again, so the pod's policy rule routes once more.
func TestDetachedENIReattachedInNetns(t *testing.T) {
	testenv.RequireNetns(t)
	netns := testenv.NewNS(t)
	x := newHostSim(t, netns)
	dir := keptDir(t, "vpcnetd-netns")
	bin := daemonBin(t)
	socket, log := filepath.Join(dir, "run", "vpcnetd.sock"), filepath.Join(dir, "log")
	env := hostDaemonEnv(x, dir, "netns",
		"WARM_IP_TARGET=3", "IP_COOLDOWN_PERIOD=200ms", "VPCNET_RESYNC_PERIOD=1s", "VPCNET_EC2_MAX_BACKOFF=100ms")
	cmd := startDaemon(t, "nsenter", env, log, "--net="+netns.Path(), bin)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	conn, err := agentapi.Dial(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := &node{t: t, sim: x, client: agentapi.NewAgentClient(conn)}
	waitFor(t, 60*time.Second, "vpcnetd ready", func() bool {
		st, err := n.client.Status(bg, &agentapi.StatusRequest{Version: agentapi.Version})
		return err == nil && st.Ready
	}, func() string { return tail(log) })
	var pod, eni string
	for i := 0; eni == ""; i++ {
		n.mustAdd(fmt.Sprint("pod", i))
		al, err := n.add(fmt.Sprint("pod", i)) // ADD is idempotent: the allocation again
		if err != nil {
			t.Fatal(err)
		}
		if al.DeviceIndex == 1 {
			pod, eni = fmt.Sprint("pod", i), al.EniId
		}
	}
	waitFor(t, 60*time.Second, "eth1 and table 2 set up", func() bool { return table2Up(netns) }, func() string { return tail(log) })
	ni, _ := x.eni(t, eni)
	onENI := addrsOf(ni)

	x.s.SetDeny("AttachNetworkInterface", true)
	if _, err := x.ec2.DetachNetworkInterface(bg, &ec2.DetachNetworkInterfaceInput{AttachmentId: ni.Attachment.AttachmentId, Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	detached := time.Now()
	named := fmt.Sprintf("pod has no cloud address\" pod=default/%s", pod)
	waitFor(t, 60*time.Second, "the pod named", func() bool {
		b, _ := os.ReadFile(log)
		return strings.Contains(string(b), named)
	}, func() string { return tail(log) })
	t.Logf("noticed %v after the detach", time.Since(detached).Round(time.Millisecond))
	for i := 100; i < 105; i++ {
		al, err := n.add(fmt.Sprint("pod", i))
		if err != nil {
			continue // growing: what matters is what is handed out
		}
		if ip := netip.MustParseAddr(al.Ip); onENI[ip] {
			t.Fatalf("pod%d got %s of the detached ENI", i, ip)
		}
	}

	x.s.SetDeny("AttachNetworkInterface", false)
	waitFor(t, 60*time.Second, "the ENI re-attached at device 1 and table 2 set up again", func() bool {
		b, _ := os.ReadFile(log)
		ni, ok := x.eni(t, eni)
		return ok && ni.Attachment != nil && aws.ToInt32(ni.Attachment.DeviceIndex) == 1 &&
			strings.Contains(string(b), "re-attached an ENI detached outside vpcnet") && table2Up(netns)
	}, func() string { return tail(log) })
}
