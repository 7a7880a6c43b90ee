package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vpcnet/vpcnet/internal/lab/probe"
	"github.com/vpcnet/vpcnet/internal/netnsx"
)

// path is one way across the fabric: from a client namespace to a server address held in the
// server namespace.
type path struct {
	name     string
	clientNS string
	serverNS string
	server   netip.Addr
}

// The VXLAN tunnel the bench builds between the two nodes, over their primary addresses.
var (
	vxlanName = "vxbench"
	vxlanNet  = netip.MustParsePrefix("192.168.254.0/30")
	vxlanA    = netip.MustParseAddr("192.168.254.1")
	vxlanB    = netip.MustParseAddr("192.168.254.2")
)

const vxlanID, vxlanPort = 4242, 4789

// runDataplane measures TCP throughput (iperf3) and ping round trips pod to pod across two
// nodes, node to node over the same fabric (the limit: the primary ENIs, no pod hop), and over
// a VXLAN tunnel between the nodes (the overlay), interleaving the paths in every round.
func runDataplane(ctx context.Context, r *runner) error {
	if _, err := exec.LookPath("iperf3"); err != nil {
		return fmt.Errorf("iperf3 is not installed (apt-get install iperf3): %w", err)
	}
	l, err := r.mainLab(ctx)
	if err != nil {
		return err
	}
	nodes, err := l.nodes(ctx)
	if err != nil {
		return err
	}
	if len(nodes) < 2 {
		return fmt.Errorf("lab %s has %d node(s), the data plane needs 2", l.name, len(nodes))
	}
	a, b := nodes[0], nodes[1]
	var pods []*benchPod
	var rts []*cniNet
	defer func() {
		for i, p := range pods {
			_ = rts[i].del(context.WithoutCancel(ctx), p)
			_ = p.remove()
		}
	}()
	for i, n := range []int{0, 1} {
		rt, err := vpcnetRuntime(l, nodes[n])
		if err != nil {
			return err
		}
		p, err := newPod(l.name, fmt.Sprintf("d%d", i))
		if err != nil {
			return err
		}
		pods, rts = append(pods, p), append(rts, rt)
		if _, err := rt.addRetry(ctx, p, 50*time.Millisecond); err != nil {
			return err
		}
	}
	if err := addVXLAN(a.NS, a.PrimaryIP, b.PrimaryIP, vxlanA); err != nil {
		return err
	}
	defer delVXLAN(a.NS)
	if err := addVXLAN(b.NS, b.PrimaryIP, a.PrimaryIP, vxlanB); err != nil {
		return err
	}
	defer delVXLAN(b.NS)
	paths := []path{
		{"pod-to-pod", pods[0].ns, pods[1].ns, pods[1].ip},
		{"node-to-node", a.NS, b.NS, b.PrimaryIP},
		{"VXLAN node-to-node", a.NS, b.NS, vxlanB},
	}
	for _, p := range paths { // the first packets on a fresh path may go to ARP
		if _, err := probe.Ping(p.clientNS, netip.Addr{}, p.server, 5*time.Second); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	rounds, secs, pings := 3, 4, 40
	if r.opts.Short {
		rounds, secs, pings = 1, 1, 5
	}
	gbps := map[string][]float64{}
	rtt := map[string][]float64{}
	for range rounds {
		for _, p := range paths {
			bps, err := iperf3(ctx, p, secs)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			gbps[p.name] = append(gbps[p.name], bps/1e9)
		}
	}
	for range pings {
		for _, p := range paths {
			d, err := probe.Ping(p.clientNS, netip.Addr{}, p.server, 2*time.Second)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			rtt[p.name] = append(rtt[p.name], float64(d)/float64(time.Microsecond))
		}
	}
	pod, node, vx := paths[0].name, paths[1].name, paths[2].name
	r.add(
		NewRow("dataplane", "pod-to-pod TCP", "Gbit/s", Median(gbps[pod]), node, Median(gbps[node]), &Target{Op: ">=", Limit: 0.95}),
		NewRow("dataplane", "pod-to-pod TCP", "Gbit/s", Median(gbps[pod]), vx, Median(gbps[vx]), nil),
		NewRow("dataplane", "pod-to-pod ping RTT", "µs", Median(rtt[pod]), node, Median(rtt[node]), &Target{Op: "<=", Limit: 1.05}),
		NewRow("dataplane", "pod-to-pod ping RTT", "µs", Median(rtt[pod]), vx, Median(rtt[vx]), nil),
	)
	r.note("dataplane: pods %s (%s) and %s (%s) on different nodes; iperf3 %d s × %d round(s) per path, paths interleaved, median; %d Go ICMP echoes per path, median. Node-to-node runs between the nodes' primary ENIs over the same router; VXLAN is a tunnel (VNI %d, UDP %d, MTU 50 below the fabric's) the bench builds between the same primaries. RTT target: within 1/0.95 of the limit.",
		pods[0].name, pods[0].ip, pods[1].name, pods[1].ip, secs, rounds, pings, vxlanID, vxlanPort)
	return nil
}

// iperf3 runs an iperf3 server in the path's server namespace for one test, and the client in
// its client namespace; it returns the received bits per second.
func iperf3(ctx context.Context, p path, secs int) (float64, error) {
	port := "5201"
	srv := exec.CommandContext(ctx, "iperf3", "-s", "-1", "-B", p.server.String(), "-p", port)
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := probe.In(p.serverNS, srv.Start); err != nil {
		return 0, fmt.Errorf("iperf3 server in %s: %w", p.serverNS, err)
	}
	defer func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	}()
	var lastErr error
	for try := 0; try < 50; try++ { // the server needs a moment to listen
		cli := exec.CommandContext(ctx, "iperf3", "-c", p.server.String(), "-p", port, "-t", strconv.Itoa(secs), "-J")
		var out bytes.Buffer
		cli.Stdout = &out
		if err := probe.In(p.clientNS, cli.Start); err != nil {
			return 0, err
		}
		_ = cli.Wait()
		bps, err := ParseIperf3(out.Bytes())
		if err == nil {
			return bps, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "connect") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, fmt.Errorf("%w (server: %s)", lastErr, strings.TrimSpace(srvOut.String()))
}

// addVXLAN builds the bench's VXLAN device in a node's namespace: from local to remote over
// eth0, with addr on it.
func addVXLAN(nsName string, local, remote, addr netip.Addr) error {
	return withHandle(nsName, func(h *netlink.Handle) error {
		eth0, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		vx := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: vxlanName, MTU: eth0.Attrs().MTU - 50},
			VxlanId: vxlanID, VtepDevIndex: eth0.Attrs().Index, SrcAddr: local.AsSlice(), Group: remote.AsSlice(), Port: vxlanPort}
		if err := h.LinkAdd(vx); err != nil {
			return fmt.Errorf("vxlan in %s: %w", nsName, err)
		}
		l, err := h.LinkByName(vxlanName)
		if err != nil {
			return err
		}
		pfx := netip.PrefixFrom(addr, vxlanNet.Bits())
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(pfx)}); err != nil {
			return err
		}
		return h.LinkSetUp(l)
	})
}

func delVXLAN(nsName string) {
	_ = withHandle(nsName, func(h *netlink.Handle) error {
		l, err := h.LinkByName(vxlanName)
		if err != nil {
			return nil
		}
		return h.LinkDel(l)
	})
}

// withHandle runs f with a netlink handle in the named namespace.
func withHandle(nsName string, f func(*netlink.Handle) error) error {
	nsh, err := netns.GetFromPath(netnsx.Path(nsName))
	if err != nil {
		return err
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return err
	}
	defer h.Close()
	return f(h)
}
