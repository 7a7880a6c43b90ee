package cni_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/probe"
	"github.com/vpcnet/vpcnet/internal/testenv"
	"golang.org/x/sys/unix"
)

// sandbox is a pod sandbox of pod default/<podName> with its own container ID and namespace, as
// a runtime makes when it recreates a pod's sandbox.
func sandbox(t testing.TB, containerID, podName string) *pod {
	p := newPod(t, podName)
	p.name = containerID
	p.rt.ContainerID = containerID
	return p
}

// pluginJSON is the plugin's network config as a runtime passes it on stdin, at cniVersion v,
// with extra JSON members (`"k":v,...`) added.
func (c *cluster) pluginJSON(t testing.TB, v, extra string) []byte {
	t.Helper()
	p := map[string]any{}
	for k, val := range c.pluginConf {
		p[k] = val
	}
	p["stateDir"], p["cniVersion"], p["name"] = c.stateDir, v, "vpcnet"
	b, err := jsonMarshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if extra != "" {
		b = append(append(b[:len(b)-1], ','), extra+"}"...)
	}
	return b
}

// execPlugin runs vpcnet-cni in the node namespace through the CNI env protocol, as a runtime
// does, and returns its stdout or its CNI error.
func (c *cluster) execPlugin(t testing.TB, cmd string, stdin []byte, containerID, netns string) ([]byte, error) {
	t.Helper()
	env := []string{"CNI_COMMAND=" + cmd, "CNI_PATH=" + binDir}
	if containerID != "" {
		env = append(env, "CNI_CONTAINERID="+containerID, "CNI_NETNS="+netns, "CNI_IFNAME=eth0")
	}
	e := &testenv.NodeExec{Node: c.node}
	return e.ExecPlugin(bg, filepath.Join(binDir, "vpcnet-cni"), stdin, env)
}

// nodeState is what of the node namespace a plugin call could change: links, addresses,
// routes of every table, rules.
func (c *cluster) nodeState(t testing.TB) []string {
	t.Helper()
	var out []string
	c.do(t, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			a := l.Attrs()
			out = append(out, fmt.Sprintf("link %s %s mtu %d %v", a.Name, a.HardwareAddr, a.MTU, a.Flags))
			addrs, _ := netlink.AddrList(l, netlink.FAMILY_ALL)
			for _, ad := range addrs {
				out = append(out, "addr "+a.Name+" "+ad.IPNet.String())
			}
		}
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 0}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return err
		}
		for _, r := range routes {
			out = append(out, "route "+r.String())
		}
		rules, err := netlink.RuleList(netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range rules {
			out = append(out, "rule "+r.String())
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// Issue 11 fault 1: a runtime recreates pod default/web's sandbox (sbB) and then DELs the old
// one (sbA). The old sandbox's DEL removes only what is sbA's: sandbox B keeps its eth0, its
// host route and rules, and the agent keeps its address.
func TestDelOfOldSandboxKeepsNewOne(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	list := c.conflist(t, "1.1.0")
	sbA, sbB := sandbox(t, "sbA", "web"), sandbox(t, "sbB", "web")
	for _, p := range []*pod{sbA, sbB} {
		if err := c.addRetry(list, p, 30*time.Second); err != nil {
			t.Fatalf("ADD %s: %v", p.name, err)
		}
	}
	if sbA.res.Interfaces[0].Name == sbB.res.Interfaces[0].Name {
		t.Fatalf("both sandboxes of pod web got host veth %s", sbA.res.Interfaces[0].Name)
	}
	c.assertInvariant(t, sbA, sbB)
	if err := c.cni.DelNetworkList(bg, list, sbA.rt); err != nil {
		t.Fatalf("DEL sbA: %v", err)
	}
	if err := c.cni.CheckNetworkList(bg, list, sbB.rt); err != nil {
		t.Fatalf("CHECK sbB after the DEL of sbA: %v", err)
	}
	c.assertInvariant(t, sbA, sbB)
	held := map[string]bool{}
	for _, a := range c.agentAllocs(t) {
		held[a.Key.ContainerID+"="+a.Addr.String()] = true
	}
	if !held["sbB="+sbB.ip.String()] || len(held) != 1 {
		t.Fatalf("agent holds %v after DEL sbA, want only sbB=%s", held, sbB.ip)
	}
	// Sandbox B still talks through the node: its host route and rule 512 carry traffic.
	other := newPod(t, "other")
	if err := c.addRetry(list, other, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := probe.WaitPing(other.ns.Path(), sbB.ip, 30*time.Second); err != nil {
		t.Fatalf("pod %s -> sandbox B %s: %v", other.ip, sbB.ip, err)
	}
	// The same sandbox's DEL again, and with CNI_NETNS naming B's namespace: still nothing of B.
	sbA.rt.NetNS = sbB.ns.Path()
	if err := c.cni.DelNetworkList(bg, list, sbA.rt); err != nil {
		t.Fatalf("DEL sbA again: %v", err)
	}
	if err := c.cni.CheckNetworkList(bg, list, sbB.rt); err != nil {
		t.Fatalf("CHECK sbB after a second DEL of sbA: %v", err)
	}
	// GC that lists only B and the other pod removes nothing of B either.
	gc := []types.GCAttachment{{ContainerID: "sbB", IfName: "eth0"}, {ContainerID: other.rt.ContainerID, IfName: "eth0"}}
	if err := c.cni.GCNetworkList(bg, list, &libcni.GCArgs{ValidAttachments: gc}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if err := c.cni.CheckNetworkList(bg, list, sbB.rt); err != nil {
		t.Fatalf("CHECK sbB after GC: %v", err)
	}
	c.assertInvariant(t, sbA, sbB, other)
	for _, p := range []*pod{sbB, other} {
		if err := c.cni.DelNetworkList(bg, list, p.rt); err != nil {
			t.Fatal(err)
		}
	}
	if left := c.leftovers(t); len(left) > 0 {
		t.Fatalf("after every DEL: %v", left)
	}
}

// Issue 11 fault 4: CNI_NETNS naming the node's own namespace fails before anything changes, and
// the DEL that follows changes nothing in the node either.
func TestNodeNamespaceAsPodNamespace(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	list := c.conflist(t, "1.1.0")
	gw := c.subnet.Addr().Next()
	c.do(t, func() error { // the node's default route, as its OS would have it
		eth0, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw.AsSlice()})
	})
	before := c.nodeState(t)
	p := newPod(t, "confused")
	for _, netns := range []string{"/proc/self/ns/net", c.node.Path()} {
		p.rt.NetNS = netns
		_, err := c.cni.AddNetworkList(bg, list, p.rt)
		if cniCode(err) != types.ErrInvalidEnvironmentVariables || !strings.Contains(err.Error(), "CNI_NETNS") {
			t.Fatalf("ADD with CNI_NETNS=%s (the node's): %v, want code 4 naming CNI_NETNS", netns, err)
		}
		// skel itself refuses the node's namespace, but only after our DEL ran (code 8):
		// what matters is that our DEL changed nothing.
		if err := c.cni.DelNetworkList(bg, list, p.rt); err != nil && cniCode(err) != types.ErrInvalidNetNS {
			t.Fatalf("DEL with CNI_NETNS=%s: %v", netns, err)
		}
	}
	if after := c.nodeState(t); !slices.Equal(before, after) {
		t.Fatalf("the node changed:\nbefore %v\nafter  %v", before, after)
	}
	c.do(t, func() error {
		routes, err := netlink.RouteGet(net.IPv4(8, 8, 8, 8)) // a lookup only; nothing is sent
		if err != nil || len(routes) == 0 || !routes[0].Gw.Equal(gw.AsSlice()) {
			t.Errorf("node default route after ADD+DEL: %v, %v; want via %s", routes, err, gw)
		}
		return nil
	})
	if st := c.agentStatus(t); st.Assigned != 0 {
		t.Fatalf("agent holds %d addresses after a refused ADD", st.Assigned)
	}
}

// Issue 11 fault 5: ADD, DEL and ADD of one key at once, in random order, many times. The verbs
// of one key run one at a time, so after each round the node keeps the invariant: no pod wired
// with an address the agent considers free, no address on two pods.
func TestConcurrentVerbsOneKey(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	list := c.conflist(t, "1.1.0")
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	t.Logf("seed %d", seed)
	p := newPod(t, "contested")
	const rounds = 15
	for round := range rounds {
		verbs := []string{"ADD", "DEL", "ADD"}
		rng.Shuffle(len(verbs), func(i, j int) { verbs[i], verbs[j] = verbs[j], verbs[i] })
		var wg sync.WaitGroup
		errs := make([]error, len(verbs))
		for i, v := range verbs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rt := *p.rt
				if v == "ADD" {
					_, errs[i] = c.cni.AddNetworkList(bg, list, &rt)
				} else {
					errs[i] = c.cni.DelNetworkList(bg, list, &rt)
				}
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil && cniCode(err) != types.ErrTryAgainLater {
				t.Fatalf("round %d (%v): %s: %v", round, verbs, verbs[i], err)
			}
		}
		c.assertInvariant(t, p)
	}
	if err := c.cni.DelNetworkList(bg, list, p.rt); err != nil {
		t.Fatal(err)
	}
	c.assertInvariant(t, p)
	if left := c.leftovers(t); len(left) > 0 {
		t.Fatalf("after the last DEL: %v", left)
	}
	if st := c.agentStatus(t); st.Assigned != 0 {
		t.Fatalf("agent holds %d addresses after the last DEL", st.Assigned)
	}
}

// Issue 11 fault 8: a release queued while the agent was down is sent by whichever verb reaches
// the agent next (ADD, DEL, CHECK, GC, STATUS), before it answers.
func TestQueuedReleasesFlushedByEveryVerb(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	list := c.conflist(t, "1.1.0")
	keep := newPod(t, "keeper")
	if err := c.addRetry(list, keep, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	queued := filepath.Join(c.stateDir, "vpcnet", "pending", "*.json")
	verbs := []struct {
		name string
		run  func(i int) error
	}{
		{"ADD", func(i int) error { return c.add(list, newPod(t, fmt.Sprintf("fresh-%d", i))) }},
		{"DEL", func(i int) error {
			return c.cni.DelNetworkList(bg, list, newPod(t, fmt.Sprintf("never-added-%d", i)).rt)
		}},
		{"CHECK", func(int) error { return c.cni.CheckNetworkList(bg, list, keep.rt) }},
		{"GC", func(int) error {
			valid := []types.GCAttachment{{ContainerID: keep.rt.ContainerID, IfName: "eth0"}}
			for _, a := range c.agentAllocs(t) { // pods added by the ADD round stay valid
				valid = append(valid, types.GCAttachment{ContainerID: a.Key.ContainerID, IfName: a.Key.IfName})
			}
			return c.cni.GCNetworkList(bg, list, &libcni.GCArgs{ValidAttachments: valid})
		}},
		{"STATUS", func(int) error { return c.cni.GetStatusNetworkList(bg, list) }},
	}
	for i, v := range verbs {
		gone := newPod(t, fmt.Sprintf("gone-%d", i))
		if err := c.addRetry(list, gone, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		c.stopAgent(t)
		if err := c.cni.DelNetworkList(bg, list, gone.rt); err != nil {
			t.Fatalf("DEL with the agent down: %v", err)
		}
		if q, _ := filepath.Glob(queued); len(q) != 1 {
			t.Fatalf("queued releases: %v, want 1", q)
		}
		c.startAgent(t)
		if err := v.run(i); err != nil {
			t.Fatalf("%s after the agent came back: %v", v.name, err)
		}
		if q, _ := filepath.Glob(queued); len(q) != 0 {
			t.Fatalf("%s left the queued release: %v", v.name, q)
		}
		for _, a := range c.agentAllocs(t) {
			if a.Key.ContainerID == gone.rt.ContainerID {
				t.Fatalf("%s: the agent still holds %s for the deleted %s", v.name, a.Addr, gone.name)
			}
		}
	}
}

// Issue 14 item 3: STATUS says whether the node's network can work. A short outage of an agent
// that worked does not fail it; one longer than statusGracePeriod does (51); a restarted agent
// makes it ready again.
func TestStatusGracePeriod(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	c.pluginConf["statusGracePeriod"] = "300ms"
	list := c.conflist(t, "1.1.0")
	if err := c.cni.GetStatusNetworkList(bg, list); err != nil {
		t.Fatalf("STATUS of a working node: %v", err)
	}
	for range 2 { // the grace starts again after each recovery
		c.stopAgent(t)
		start := time.Now()
		if err := c.cni.GetStatusNetworkList(bg, list); err != nil {
			t.Fatalf("STATUS right after the agent went away: %v, want ready within the grace", err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			err := c.cni.GetStatusNetworkList(bg, list)
			if cniCode(err) == types.ErrLimitedConnectivity {
				if time.Since(start) < 300*time.Millisecond {
					t.Fatalf("STATUS failed %v after the outage began, before the grace ended", time.Since(start))
				}
				// The message stays the same while the outage lasts (kubelet folds equal
				// events): ask again for well over a second.
				first, since := err.Error(), time.Now()
				for time.Since(since) < 1500*time.Millisecond {
					time.Sleep(100 * time.Millisecond)
					if again := c.cni.GetStatusNetworkList(bg, list); again == nil || again.Error() != first {
						t.Fatalf("STATUS of the same outage changed its message:\n%s\n%v", first, again)
					}
				}
				break
			}
			if err != nil || time.Now().After(deadline) {
				t.Fatalf("STATUS with the agent down for %v: %v, want code 51 after 300ms", time.Since(start), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.startAgent(t)
		if err := c.cni.GetStatusNetworkList(bg, list); err != nil {
			t.Fatalf("STATUS with the agent back: %v", err)
		}
	}
}

// Issue 14 item 3: the conflist the agent writes for every runtime (cniVersion 1.0.0, cniVersions
// [1.0.0, 1.1.0]). An older runtime reads it at 1.0.0 (ADD, CHECK, DEL); a newer one picks 1.1.0
// (STATUS, GC too). A version the plugin cannot answer in changes nothing.
func TestConflistForEveryRuntime(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	conf := func(withVersions bool) *libcni.NetworkConfigList {
		p := map[string]any{}
		for k, v := range c.pluginConf {
			p[k] = v
		}
		p["stateDir"] = c.stateDir
		m := map[string]any{"cniVersion": "1.0.0", "name": "vpcnet", "plugins": []any{p}}
		if withVersions {
			m["cniVersions"] = []string{"1.0.0", "1.1.0"}
		}
		b, _ := jsonMarshal(m)
		l, err := libcni.ConfListFromBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	old, current := conf(false), conf(true)
	if current.CNIVersion != "1.1.0" {
		t.Fatalf("libcni picked cniVersion %s from cniVersions, want 1.1.0", current.CNIVersion)
	}
	a, b := newPod(t, "old-runtime"), newPod(t, "new-runtime")
	raw, err := c.cni.AddNetworkList(bg, old, a.rt)
	if err != nil {
		t.Fatalf("ADD at 1.0.0: %v", err)
	}
	if raw.Version() != "1.0.0" {
		t.Errorf("ADD at 1.0.0 answered a %s result", raw.Version())
	}
	if err := c.cni.CheckNetworkList(bg, old, a.rt); err != nil {
		t.Fatalf("CHECK at 1.0.0: %v", err)
	}
	if err := c.addRetry(current, b, 30*time.Second); err != nil {
		t.Fatalf("ADD at 1.1.0: %v", err)
	}
	if err := c.cni.GetStatusNetworkList(bg, current); err != nil {
		t.Fatalf("STATUS at 1.1.0: %v", err)
	}
	valid := []types.GCAttachment{{ContainerID: a.rt.ContainerID, IfName: "eth0"}}
	if err := c.cni.GCNetworkList(bg, current, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
		t.Fatalf("GC at 1.1.0: %v", err)
	}
	if st := c.agentStatus(t); st.Assigned != 1 {
		t.Fatalf("agent holds %d after GC kept one pod", st.Assigned)
	}
	if err := c.cni.DelNetworkList(bg, old, a.rt); err != nil {
		t.Fatalf("DEL at 1.0.0: %v", err)
	}
	// A version the plugin does not speak: refused (1) before the agent is asked or the node
	// touched.
	before := c.nodeState(t)
	p := newPod(t, "too-old")
	l := conf(false)
	l.CNIVersion, l.Plugins[0].Network.CNIVersion = "0.3.1", "0.3.1"
	if _, err := c.cni.AddNetworkList(bg, l, p.rt); cniCode(err) != types.ErrIncompatibleCNIVersion {
		t.Fatalf("ADD at 0.3.1: %v, want code 1", err)
	}
	if after := c.nodeState(t); !slices.Equal(before, after) {
		t.Fatalf("a refused ADD changed the node:\nbefore %v\nafter  %v", before, after)
	}
	if st := c.agentStatus(t); st.Assigned != 0 {
		t.Fatalf("agent holds %d after a refused ADD", st.Assigned)
	}
	if left := c.leftovers(t); len(left) > 0 {
		t.Fatalf("left: %v", left)
	}
}

// Issue 12 item 9: a GC whose valid-attachments has an entry without containerID fails with 7
// and releases nothing.
func TestGCRefusesIncompleteValidAttachments(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	list := c.conflist(t, "1.1.0")
	p := newPod(t, "survivor")
	if err := c.addRetry(list, p, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// Straight through the CNI env protocol: libcni's GC would DEL the attachments it does not
	// see listed before it runs the plugin's GC.
	for _, bad := range []string{`[{"ifname":"eth0"}]`, `[{"containerID":"` + p.rt.ContainerID + `"}]`, `[{}]`} {
		conf := c.pluginJSON(t, "1.1.0", `"cni.dev/valid-attachments":`+bad)
		_, err := c.execPlugin(t, "GC", conf, "", "")
		if cniCode(err) != types.ErrInvalidNetworkConfig || !strings.Contains(err.Error(), "valid-attachments") {
			t.Fatalf("GC with valid-attachments %s: %v, want code 7 naming valid-attachments", bad, err)
		}
	}
	if err := c.cni.CheckNetworkList(bg, list, p.rt); err != nil {
		t.Fatalf("CHECK after the refused GCs: %v", err)
	}
	c.assertInvariant(t, p)
	if st := c.agentStatus(t); st.Assigned != 1 {
		t.Fatalf("agent holds %d after a refused GC, want 1", st.Assigned)
	}
}

// Issue 12 item 6: CHECK verifies everything ADD made and the node settings the pod's path needs,
// and says what is wrong.
func TestCheckNamesWhatIsBroken(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	list := c.conflist(t, "1.1.0")
	p := newPod(t, "inspected")
	if err := c.addRetry(list, p, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	veth := p.res.Interfaces[0].Name
	sysctl := func(ns, key, v string) {
		t.Helper()
		if err := probe.In(ns, func() error { return writeFile("/proc/sys/"+key, v) }); err != nil {
			t.Fatal(err)
		}
	}
	inPod := func(f func(l netlink.Link) error) {
		t.Helper()
		if err := probe.In(p.ns.Path(), func() error {
			l, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			return f(l)
		}); err != nil {
			t.Fatal(err)
		}
	}
	gw := &net.IPNet{IP: dataplane.Gateway.AsSlice(), Mask: net.CIDRMask(32, 32)}
	for _, tc := range []struct {
		name         string
		break_, mend func()
		want         string
	}{
		{"node ip_forward off",
			func() { sysctl(c.node.Path(), "net/ipv4/ip_forward", "0") },
			func() { sysctl(c.node.Path(), "net/ipv4/ip_forward", "1") },
			"net.ipv4.ip_forward"},
		{"forwarding off on the host veth",
			func() { sysctl(c.node.Path(), "net/ipv4/conf/"+veth+"/forwarding", "0") },
			func() { sysctl(c.node.Path(), "net/ipv4/conf/"+veth+"/forwarding", "1") },
			"forwarding"},
		{"the pod's 169.254.1.1 link route deleted",
			func() {
				inPod(func(l netlink.Link) error {
					return netlink.RouteDel(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: gw, Scope: netlink.SCOPE_LINK})
				})
			},
			func() {
				inPod(func(l netlink.Link) error {
					return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: gw, Scope: netlink.SCOPE_LINK})
				})
			},
			"route 169.254.1.1"},
		{"the pod's neighbour entry deleted",
			func() {
				inPod(func(l netlink.Link) error {
					return netlink.NeighDel(&netlink.Neigh{LinkIndex: l.Attrs().Index, IP: dataplane.Gateway.AsSlice(), Family: netlink.FAMILY_V4})
				})
			},
			func() {
				inPod(func(l netlink.Link) error {
					var hw net.HardwareAddr
					c.do(t, func() error {
						h, err := netlink.LinkByName(veth)
						if err == nil {
							hw = h.Attrs().HardwareAddr
						}
						return err
					})
					return netlink.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, IP: dataplane.Gateway.AsSlice(), Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT, HardwareAddr: hw})
				})
			},
			"neighbour 169.254.1.1"},
		{"host veth MTU changed",
			func() {
				c.do(t, func() error {
					l, err := netlink.LinkByName(veth)
					if err != nil {
						return err
					}
					return netlink.LinkSetMTU(l, 1400)
				})
			},
			func() {
				c.do(t, func() error {
					l, err := netlink.LinkByName(veth)
					if err != nil {
						return err
					}
					return netlink.LinkSetMTU(l, dataplane.DefaultMTU)
				})
			},
			"MTU 1400"},
		{"pod eth0 down",
			func() { inPod(netlink.LinkSetDown) },
			nil, // last: a link going down takes its routes with it
			"eth0 is down"},
	} {
		tc.break_()
		err := c.cni.CheckNetworkList(bg, list, p.rt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CHECK with %s: %v, want an error naming %q", tc.name, err, tc.want)
		} else {
			t.Logf("CHECK with %s: %v", tc.name, err)
		}
		if tc.mend == nil {
			continue
		}
		tc.mend()
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := c.cni.CheckNetworkList(bg, list, p.rt)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("CHECK after mending %s: %v", tc.name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := c.cni.DelNetworkList(bg, list, p.rt); err != nil {
		t.Fatal(err)
	}
}

// Issue 16 item 5: DEL of a pod whose sandbox still exists leaves the host veth to go with the
// sandbox's namespace, but takes the pod's network: no address in the pod, no host route or
// rules, the address back with the agent. The runtime's deletion of the namespace removes the veth.
func TestDelLeavesVethToSandbox(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	list := c.conflist(t, "1.1.0")
	// The sandbox is a namespace held only by a file descriptor (its path /proc/<pid>/fd/<n>),
	// not bind-mounted under /run/netns, where mount propagation into other mount namespaces
	// on a shared machine can keep a namespace alive after it is unmounted here.
	h := fdNetns(t)
	t.Cleanup(func() { h.Close() })
	p, peer := newPod(t, "leaving"), newPod(t, "peer")
	p.ns, p.rt.NetNS = h, h.Path()
	for _, q := range []*pod{p, peer} {
		if err := c.addRetry(list, q, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	veth := p.res.Interfaces[0].Name
	if err := c.cni.DelNetworkList(bg, list, p.rt); err != nil {
		t.Fatal(err)
	}
	if err := probe.In(p.ns.Path(), func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if len(addrs) != 0 {
			t.Errorf("the deleted pod's eth0 still carries %v", addrs)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n, _ := probe.Ping(peer.ns.Path(), p.ip, 1, 300*time.Millisecond); n != 0 {
		t.Fatalf("deleted pod %s still answers", p.ip)
	}
	c.assertInvariant(t, p, peer)
	for _, l := range c.leftovers(t) { // the peer's own wiring and record stay
		if strings.Contains(l, veth) || strings.Contains(l, " "+p.ip.String()+"/") {
			t.Fatalf("after DEL, the deleted pod's %s is left", l)
		}
	}
	// The runtime removes the sandbox: the veth goes with it.
	ino, _ := os.Readlink(h.Path())
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second) // the kernel dismantles a namespace in a workqueue
	for {
		var err error
		c.do(t, func() error { _, err = netlink.LinkByName(veth); return nil })
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			out, _ := exec.Command("sh", "-c", fmt.Sprintf("for f in /proc/%d/fd/* /proc/%d/task/*/ns/net; do echo $f $(readlink $f); done | grep net:", os.Getpid(), os.Getpid())).CombinedOutput()
			t.Fatalf("host veth %s outlived its sandbox's namespace (%s)\n%s", veth, ino, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.cni.DelNetworkList(bg, list, peer.rt); err != nil {
		t.Fatal(err)
	}
	if left := c.leftovers(t); len(left) > 0 {
		t.Fatalf("after every DEL: %v", left)
	}
}

// fdNetns makes a fresh network namespace held only by an open file descriptor of this process;
// closing the handle ends the namespace. Its Path is /proc/<pid>/fd/<n>.
func fdNetns(t testing.TB) ns.NetNS {
	t.Helper()
	type made struct {
		h   ns.NetNS
		err error
	}
	ch := make(chan made, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread changed namespace and dies with us
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- made{err: err}
			return
		}
		fd, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- made{err: err}
			return
		}
		h, err := ns.GetNS(fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd))
		unix.Close(fd)
		if err != nil {
			ch <- made{err: err}
			return
		}
		ch <- made{h: fdNS{h, fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), h.Fd())}}
	}()
	m := <-ch
	if m.err != nil {
		t.Fatal(m.err)
	}
	return m.h
}

// fdNS is a namespace handle whose path is its own descriptor's.
type fdNS struct {
	ns.NetNS
	path string
}

func (f fdNS) Path() string { return f.path }

// Issue 14 item 3: STATUS fails when the node truly cannot network. An agent that serves its
// socket but never started (here: IMDS unreachable, so it cannot learn its instance) answers 50;
// once the plugin has seen the agent work, the same state is a restart and gets the grace period.
func TestStatusAgentNeverStarted(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	c.stopAgent(t)
	dead, err := freePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	env := []string{}
	for _, kv := range c.agentEnv {
		if strings.HasPrefix(kv, "AWS_EC2_METADATA_SERVICE_ENDPOINT=") {
			kv = "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://" + dead
		}
		env = append(env, kv)
	}
	logf, err := os.Create(filepath.Join(c.dir, "vpcnetd-nocloud.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(agentBin)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for { // the agent serves its socket before it reaches the cloud
		if conn, err := net.Dial("unix", c.socket); err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("vpcnetd without IMDS never served %s:\n%s", c.socket, tail(b, 2048))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := c.agentStatus(t); st.Ready || st.MaxPods != 0 {
		t.Fatalf("agent without IMDS: ready=%v maxPods=%d reason %q, want not started", st.Ready, st.MaxPods, st.Reason)
	}
	fresh := c.conflist(t, "1.1.0") // a state dir where the agent never worked
	if err := c.cni.GetStatusNetworkList(bg, fresh); cniCode(err) != types.ErrPluginNotAvailable {
		t.Fatalf("STATUS with an agent that never started: %v, want code 50", err)
	}
	c.stateDir = filepath.Join(c.dir, "cni-state-worked")
	worked := c.conflist(t, "1.1.0")
	if err := os.MkdirAll(filepath.Join(c.stateDir, "vpcnet"), 0o700); err != nil {
		t.Fatal(err)
	}
	st := fmt.Sprintf(`{"worked":%q}`, time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano))
	if err := os.WriteFile(filepath.Join(c.stateDir, "vpcnet", "agent.json"), []byte(st), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.cni.GetStatusNetworkList(bg, worked); err != nil {
		t.Fatalf("STATUS with a restarting agent that worked before: %v, want ready within the grace", err)
	}
}
