package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vpcnet/vpcnet/internal/netnsx"
	"github.com/vpcnet/vpcnet/internal/probe"
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

// runDataplane measures TCP throughput and CPU cost (iperf3) and ping round trips pod to pod
// across two nodes, node to node over the same fabric (the limit: the primary ENIs, no pod hop),
// and over a VXLAN tunnel between the nodes (the overlay), in rounds that run every path once,
// and reports the median of the per-round ratios.
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
		if _, err := probe.Echo(p.clientNS, netip.Addr{}, p.server, 5*time.Second); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	plan := fullPlan
	if r.opts.Short {
		plan = shortPlan
	}
	tcp, err := measureTCP(ctx, paths, plan)
	if err != nil {
		return err
	}
	rtt, err := measureRTT(paths, plan)
	if err != nil {
		return err
	}
	pod, node, vx := paths[0].name, paths[1].name, paths[2].name
	r.add(
		pairedRow("pod-to-pod TCP", "Gbit/s", tcp.gbps, pod, node, &Target{Op: ">=", Limit: 0.95}),
		pairedRow("pod-to-pod TCP", "Gbit/s", tcp.gbps, pod, vx, nil),
		pairedRow("pod-to-pod TCP CPU per GB", "ms", tcp.cpuMsPerGB, pod, node, nil),
		pairedRow("pod-to-pod ping RTT", "µs", rtt, pod, node, &Target{Op: "<=", Limit: 1.05}),
		pairedRow("pod-to-pod ping RTT", "µs", rtt, pod, vx, nil),
	)
	r.note("dataplane: pods %s (%s) and %s (%s) on different nodes. TCP: iperf3, %d warm-up round(s) dropped, then %d rounds of %d s per path, paths interleaved with the first path rotating each round; "+
		"ping: %d rounds of %d Go ICMP echoes per path, interleaved echo by echo. Every ratio is the median of per-round ratios (each round measures all paths back to back), the values are per-path medians. "+
		"CPU per GB is the iperf3 client's and server's own CPU time (user+system, including the softirq work run on their behalf) per GB received: a cost figure that other load on the machine disturbs less than throughput. "+
		"Node-to-node runs between the nodes' primary ENIs over the same router; VXLAN is a tunnel (VNI %d, UDP %d, MTU 50 below the fabric's) the bench builds between the same primaries. RTT target: within 1/0.95 of the limit.",
		pods[0].name, pods[0].ip, pods[1].name, pods[1].ip, plan.warmup, plan.tcpRounds, plan.tcpSecs,
		plan.pingRounds, plan.pingsPerRound, vxlanID, vxlanPort)
	return nil
}

// dataplanePlan is how much the data plane scenario measures.
type dataplanePlan struct {
	warmup        int // iperf3 rounds run first and dropped (a fresh path's first seconds are slower)
	tcpRounds     int // measured iperf3 rounds; every round runs every path once
	tcpSecs       int // seconds per iperf3 run
	pingRounds    int // ping rounds; a round's figure per path is the median of its echoes
	pingsPerRound int // echoes per path per round
}

// Many short interleaved rounds: load from elsewhere on the machine then hits a few rounds of
// every path alike instead of a whole measurement of one path, and the median of per-round
// ratios drops the rounds it hit hardest.
var (
	fullPlan  = dataplanePlan{warmup: 1, tcpRounds: 9, tcpSecs: 2, pingRounds: 25, pingsPerRound: 12}
	shortPlan = dataplanePlan{warmup: 0, tcpRounds: 1, tcpSecs: 1, pingRounds: 1, pingsPerRound: 5}
)

// series holds, per path name, one figure per round.
type series map[string][]float64

// tcpFigures are the iperf3 results per round.
type tcpFigures struct {
	gbps       series
	cpuMsPerGB series
}

// rotated returns the paths in the order round i runs them: starting at path i mod len, so no
// path always runs first, or always right after the same other path.
func rotated(paths []path, i int) []path {
	out := make([]path, 0, len(paths))
	for j := range paths {
		out = append(out, paths[(i+j)%len(paths)])
	}
	return out
}

// measureTCP runs the warm-up and then the measured iperf3 rounds.
func measureTCP(ctx context.Context, paths []path, plan dataplanePlan) (tcpFigures, error) {
	f := tcpFigures{gbps: series{}, cpuMsPerGB: series{}}
	for i := range plan.warmup + plan.tcpRounds {
		for _, p := range rotated(paths, i) {
			res, err := iperf3(ctx, p, plan.tcpSecs)
			if err != nil {
				return f, fmt.Errorf("%s: %w", p.name, err)
			}
			if i < plan.warmup {
				continue
			}
			f.gbps[p.name] = append(f.gbps[p.name], res.bps/1e9)
			f.cpuMsPerGB[p.name] = append(f.cpuMsPerGB[p.name], res.cpuMsPerGB())
		}
	}
	return f, nil
}

// measureRTT runs the ping rounds: every echo goes to each path in turn, and a round's figure
// for a path is the median of its echoes in microseconds.
func measureRTT(paths []path, plan dataplanePlan) (series, error) {
	out := series{}
	for i := range plan.pingRounds {
		round := map[string][]float64{}
		for range plan.pingsPerRound {
			for _, p := range rotated(paths, i) {
				d, err := probe.Echo(p.clientNS, netip.Addr{}, p.server, 2*time.Second)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", p.name, err)
				}
				round[p.name] = append(round[p.name], float64(d)/float64(time.Microsecond))
			}
		}
		for name, xs := range round {
			out[name] = append(out[name], Median(xs))
		}
	}
	return out, nil
}

// pairedRow is a row whose value and reference are the medians of their rounds and whose ratio
// is the median of the per-round ratios value/reference: a round that load slowed down slows
// both paths in it, and its ratio still reads true.
func pairedRow(figure, unit string, s series, path, ref string, t *Target) Row {
	row := NewRow("dataplane", figure, unit, Median(s[path]), ref, Median(s[ref]), t)
	row.Ratio = PairedRatio(s[path], s[ref])
	if t != nil {
		ok := t.Met(row.Value, row.Ratio)
		row.Pass = &ok
	}
	return row
}

// PairedRatio returns the median of xs[i]/refs[i] over the rounds both have (a zero reference is
// skipped), or 0 when there is none.
func PairedRatio(xs, refs []float64) float64 {
	var rs []float64
	for i := range min(len(xs), len(refs)) {
		if refs[i] != 0 {
			rs = append(rs, xs[i]/refs[i])
		}
	}
	return Median(rs)
}

// iperf3Result is what one iperf3 run measured.
type iperf3Result struct {
	bps      float64 // received bits per second
	bytes    float64 // bytes received
	seconds  float64 // how long the client sent
	cpuTotal float64 // client's plus server's CPU use, in percent of one CPU over the run
}

// cpuMsPerGB is the CPU time client and server spent per GB received, in milliseconds.
func (r iperf3Result) cpuMsPerGB() float64 {
	if r.bytes <= 0 {
		return 0
	}
	return r.cpuTotal / 100 * r.seconds * 1e3 / (r.bytes / 1e9)
}

// ParseIperf3Run reads an iperf3 client's JSON report (-J): throughput, bytes, duration and the
// CPU use iperf3 measured with getrusage on both ends.
func ParseIperf3Run(out []byte) (iperf3Result, error) {
	bps, err := ParseIperf3(out)
	if err != nil {
		return iperf3Result{}, err
	}
	var r struct {
		End struct {
			SumSent struct {
				Seconds float64 `json:"seconds"`
			} `json:"sum_sent"`
			SumReceived struct {
				Bytes float64 `json:"bytes"`
			} `json:"sum_received"`
			CPU struct {
				Host   float64 `json:"host_total"`
				Remote float64 `json:"remote_total"`
			} `json:"cpu_utilization_percent"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return iperf3Result{}, fmt.Errorf("iperf3 output: %w", err)
	}
	e := r.End
	if e.SumSent.Seconds <= 0 || e.SumReceived.Bytes <= 0 {
		return iperf3Result{}, fmt.Errorf("iperf3 reported no duration or no bytes received")
	}
	if e.CPU.Host < 0 || e.CPU.Remote < 0 {
		return iperf3Result{}, fmt.Errorf("iperf3 reported negative CPU use")
	}
	return iperf3Result{bps: bps, bytes: e.SumReceived.Bytes, seconds: e.SumSent.Seconds, cpuTotal: e.CPU.Host + e.CPU.Remote}, nil
}

// iperf3 runs an iperf3 server in the path's server namespace for one test, and the client in
// its client namespace. Neither is pinned to a CPU: pinning (client on CPU 0, server on CPU 1
// for every path) gave the same ratios here, and under load from elsewhere a pinned process
// cannot move off a busy CPU.
func iperf3(ctx context.Context, p path, secs int) (iperf3Result, error) {
	port := "5201"
	srv := exec.CommandContext(ctx, "iperf3", "-s", "-1", "-B", p.server.String(), "-p", port)
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := probe.In(p.serverNS, srv.Start); err != nil {
		return iperf3Result{}, fmt.Errorf("iperf3 server in %s: %w", p.serverNS, err)
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
			return iperf3Result{}, err
		}
		_ = cli.Wait()
		res, err := ParseIperf3Run(out.Bytes())
		if err == nil {
			return res, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "connect") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return iperf3Result{}, fmt.Errorf("%w (server: %s)", lastErr, strings.TrimSpace(srvOut.String()))
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
