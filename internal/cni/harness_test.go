package cni_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/cni"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/testenv"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// cluster is one node: an instance in an in-process vpcsim VPC, a node namespace, and the real
// vpcnetd (in the test's own namespace with VPCNET_HOST_NETWORKING=false, so it only hands out
// addresses; its unix socket is reachable from every namespace).
type cluster struct {
	sim        *vpcsim.Server
	ec2        *ec2.Client
	instance   string
	primaryIP  netip.Addr
	primaryMAC string
	subnet     netip.Prefix
	vpcCIDR    netip.Prefix
	node       ns.NetNS
	dir        string
	socket     string
	stateDir   string // the plugin's
	agentEnv   []string
	agent      *exec.Cmd
	agentDone  chan struct{}
	agentLog   string
	metrics    string         // the agent's metrics and introspection address
	pluginConf map[string]any // the plugin entry of the conflist the agent wrote
	cni        *libcni.CNIConfig

	hostNetworking bool
	router         ns.NetNS // the fabric, with hostNetworking
	fabricMu       sync.Mutex
	eniPrimaries   map[netip.Addr]bool // primary IPs of secondary ENIs the fabric wired
	fabricErr      error
}

type clusterOpts struct {
	instanceType string   // default m5.large
	env          []string // extra agent settings, KEY=VALUE
	// hostNetworking runs vpcnetd inside the node namespace with VPCNET_HOST_NETWORKING=true,
	// behind a router namespace playing the VPC fabric: every ENI the agent attaches appears in
	// the node as eth<device index> with the ENI's MAC, wired to the router.
	hostNetworking bool
}

var bg = context.Background()

func newCluster(t testing.TB, o clusterOpts) *cluster {
	t.Helper()
	needAgent(t)
	if o.instanceType == "" {
		o.instanceType = "m5.large"
	}
	c := &cluster{dir: t.TempDir(), vpcCIDR: netip.MustParsePrefix("10.10.0.0/16"), subnet: netip.MustParsePrefix("10.10.0.0/20"),
		hostNetworking: o.hostNetworking, eniPrimaries: map[netip.Addr]bool{}}
	c.node = testenv.NewNS(t)
	var hook func(vpcsim.Event)
	if o.hostNetworking {
		c.router = testenv.NewNS(t)
		hook = c.fabric
	}
	sim, err := vpcsim.Start("127.0.0.1:0", vpcsim.Options{Hook: hook})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	c.sim = sim
	c.ec2 = ec2.New(ec2.Options{Region: sim.Region(), BaseEndpoint: aws.String(sim.Endpoint()),
		Credentials: sim.CredentialsProvider()})
	vpc, err := c.ec2.CreateVpc(bg, &ec2.CreateVpcInput{CidrBlock: aws.String(c.vpcCIDR.String())})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := c.ec2.CreateSubnet(bg, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(c.subnet.String())})
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.ec2.RunInstances(bg, &ec2.RunInstancesInput{ImageId: aws.String("ami-00000001"),
		InstanceType: ec2types.InstanceType(o.instanceType), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: sn.Subnet.SubnetId})
	if err != nil {
		t.Fatal(err)
	}
	inst := run.Instances[0]
	c.instance = aws.ToString(inst.InstanceId)
	c.primaryIP = netip.MustParseAddr(aws.ToString(inst.PrivateIpAddress))
	for _, ni := range inst.NetworkInterfaces {
		if ni.Attachment != nil && aws.ToInt32(ni.Attachment.DeviceIndex) == 0 {
			c.primaryMAC = aws.ToString(ni.MacAddress)
		}
	}
	imdsURL, err := sim.IMDSEndpoint(c.instance)
	if err != nil {
		t.Fatal(err)
	}
	ec2URL := sim.Endpoint()

	// The node's eth0 carries the primary ENI's MAC and address. Without a fabric it is a veth
	// whose far end stays in the node (no dummy module needed); with one it leads to the router.
	c.do(t, func() error {
		hw, err := net.ParseMAC(c.primaryMAC)
		if err != nil {
			return fmt.Errorf("primary ENI MAC %q: %w", c.primaryMAC, err)
		}
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", HardwareAddr: hw}, PeerName: "fabric0"}
		if c.router != nil {
			v.PeerNamespace = netlink.NsFd(int(c.router.Fd()))
		}
		if err := netlink.LinkAdd(v); err != nil {
			return err
		}
		return dataplane.SetupENI(dataplane.ENI{MAC: c.primaryMAC, PrimaryIP: c.primaryIP, Subnet: c.subnet})
	})
	if c.router != nil {
		c.wireFabric(t, "fabric0", c.primaryIP)
		c.do(t, func() error { // the node's default route, as its OS would have it
			eth0, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			return netlink.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: c.subnet.Addr().Next().AsSlice()})
		})
		// The agent runs inside the node, whose loopback is not ours: carry the endpoints in.
		ec2URL = proxyInto(t, c.node, sim.Endpoint())
		imdsURL = proxyInto(t, c.node, imdsURL)
	}

	c.socket = filepath.Join(c.dir, "agent", "vpcnetd.sock")
	c.stateDir = filepath.Join(c.dir, "cni-state")
	metrics, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	c.metrics = metrics
	c.agentEnv = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + c.dir,
		"AWS_ACCESS_KEY_ID=" + c.sim.OperatorCredentials().AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + c.sim.OperatorCredentials().SecretAccessKey,
		"AWS_EC2_ENDPOINT=" + ec2URL, "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + imdsURL,
		fmt.Sprintf("VPCNET_HOST_NETWORKING=%v", o.hostNetworking),
		"VPCNET_SOCKET=" + c.socket,
		"VPCNET_STATE_DIR=" + filepath.Join(c.dir, "agent", "state"),
		"VPCNET_CNI_CONF_DIR=" + filepath.Join(c.dir, "net.d"),
		"VPCNET_METRICS_ADDR=" + metrics,
		"IP_COOLDOWN_PERIOD=0s",
	}, o.env...)
	c.agentLog = filepath.Join(c.dir, "vpcnetd.log")
	t.Cleanup(func() {
		if t.Failed() {
			exited := "running"
			if c.agent != nil {
				select {
				case <-c.agentDone:
					exited = "exited: " + c.agent.ProcessState.String()
				default:
				}
			}
			b, _ := os.ReadFile(c.agentLog)
			t.Logf("vpcnetd (%s) log (last 8k):\n%s", exited, tail(b, 8192))
		}
		c.stopAgent(t)
	})
	c.startAgent(t)
	c.cni = libcni.NewCNIConfigWithCacheDir([]string{binDir}, filepath.Join(c.dir, "cni-cache"), &testenv.NodeExec{Node: c.node})
	return c
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (c *cluster) do(t testing.TB, f func() error) {
	t.Helper()
	if err := c.node.Do(func(ns.NetNS) error { return f() }); err != nil {
		t.Fatal(err)
	}
}

// startAgent runs vpcnetd and waits for the CNI config it writes once it can hand out an address.
func (c *cluster) startAgent(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(c.agentLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(c.dir, "net.d", "10-vpcnet.conflist")
	_ = os.Remove(conf)
	cmd := exec.Command(agentBin)
	cmd.Env = c.agentEnv
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig follows the thread that forked, not the process: start and wait on a thread that
	// lives exactly as long as the agent (another thread may exit at any time, e.g. one that was
	// switched into a namespace, and would take the agent with it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done, started := make(chan struct{}), make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if c.hostNetworking {
			if err := c.node.Set(); err != nil { // the agent starts inside the node
				started <- err
				return
			}
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(done)
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	logf.Close()
	c.agent, c.agentDone = cmd, done
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(conf)
		if err == nil {
			var list struct {
				Plugins []map[string]any `json:"plugins"`
			}
			if err := json.Unmarshal(b, &list); err != nil || len(list.Plugins) == 0 {
				t.Fatalf("agent wrote %s: %s (%v)", conf, b, err)
			}
			c.pluginConf = list.Plugins[0]
			return
		}
		select {
		case <-c.agentDone:
			b, _ := os.ReadFile(c.agentLog)
			t.Fatalf("vpcnetd exited before it was ready:\n%s", tail(b, 4096))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("vpcnetd wrote no CNI config in 60s")
		}
	}
}

func (c *cluster) stopAgent(t testing.TB) {
	if c.agent == nil {
		return
	}
	_ = c.agent.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.agentDone:
	case <-time.After(10 * time.Second):
		_ = c.agent.Process.Kill()
		<-c.agentDone
	}
	c.agent = nil
}

// conflist is the agent's plugin entry (with a test state dir) at cniVersion v, followed by more.
func (c *cluster) conflist(t testing.TB, v string, more ...map[string]any) *libcni.NetworkConfigList {
	t.Helper()
	p := map[string]any{}
	for k, val := range c.pluginConf {
		p[k] = val
	}
	p["stateDir"] = c.stateDir
	plugins := []any{p}
	for _, m := range more {
		plugins = append(plugins, m)
	}
	b, err := json.Marshal(map[string]any{"cniVersion": v, "name": "vpcnet", "plugins": plugins})
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// pod is a pod sandbox: a namespace and the runtime config the runtime passes for it.
type pod struct {
	name string
	ns   ns.NetNS
	rt   *libcni.RuntimeConf
	res  *current.Result
	ip   netip.Addr
}

func newPod(t testing.TB, name string) *pod {
	h := testenv.NewNS(t)
	return &pod{name: name, ns: h, rt: &libcni.RuntimeConf{
		ContainerID: "ctr-" + name, NetNS: h.Path(), IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", name}},
	}}
}

func (c *cluster) add(list *libcni.NetworkConfigList, p *pod) error {
	r, err := c.cni.AddNetworkList(bg, list, p.rt)
	if err != nil {
		return err
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return err
	}
	p.res = res
	if len(res.IPs) != 1 {
		return fmt.Errorf("ADD result has %d IPs: %+v", len(res.IPs), res)
	}
	p.ip, _ = netip.AddrFromSlice(res.IPs[0].Address.IP.To4())
	return nil
}

// addRetry adds like a kubelet: a "try again later" (code 11) is retried.
func (c *cluster) addRetry(list *libcni.NetworkConfigList, p *pod, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := c.add(list, p)
		if cniCode(err) != types.ErrTryAgainLater || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func cniCode(err error) uint {
	var e *types.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// agentStatus asks the agent directly.
func (c *cluster) agentStatus(t testing.TB) *agentapi.StatusReply {
	t.Helper()
	conn, err := agentapi.Dial(c.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	rep, err := agentapi.NewAgentClient(conn).Status(ctx, &agentapi.StatusRequest{Version: agentapi.Version})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// leftovers lists anything of pods still in the node namespace or the plugin's state.
func (c *cluster) leftovers(t testing.TB) []string {
	t.Helper()
	var left []string
	recorded := map[string]bool{}
	recs, err := cni.Attachments(c.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		recorded[r.HostVeth] = true
	}
	c.do(t, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			// A DEL of a pod whose namespace still exists leaves the veth to go with the
			// namespace (dataplane.UnwirePod): a veth tagged as vpcnet's with nothing routed to
			// it (the routes are listed below) and no record is not left behind.
			if strings.HasPrefix(l.Attrs().Name, "eni") && !(strings.HasPrefix(l.Attrs().Alias, "vpcnet ") && !recorded[l.Attrs().Name]) {
				left = append(left, "link "+l.Attrs().Name)
			}
		}
		rules, err := netlink.RuleList(netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		c.fabricMu.Lock()
		defer c.fabricMu.Unlock()
		for _, r := range rules {
			if r.Priority == dataplane.RulePrioFromPod && r.Src != nil && c.eniPrimaries[netip.AddrFrom4([4]byte(r.Src.IP.To4()))] {
				continue // the agent's rule for an ENI's own address
			}
			if r.Priority == dataplane.RulePrioToPod || r.Priority == dataplane.RulePrioFromPod {
				left = append(left, "rule "+r.String())
			}
		}
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 254}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Dst != nil && c.subnet.Contains(netip.AddrFrom4([4]byte(r.Dst.IP.To4()))) && r.Scope == netlink.SCOPE_LINK {
				if ones, _ := r.Dst.Mask.Size(); ones == 32 {
					left = append(left, "route "+r.String())
				}
			}
		}
		return nil
	})
	files, _ := filepath.Glob(filepath.Join(c.stateDir, "*", "attachments", "*.json"))
	for _, f := range files {
		left = append(left, "state "+f)
	}
	locks, _ := filepath.Glob(filepath.Join(c.stateDir, "*", "locks", "*"))
	for _, f := range locks { // a finished key keeps no lock file
		left = append(left, "lock "+f)
	}
	return left
}
