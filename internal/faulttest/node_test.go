package faulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/cni"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/invariant"
	"github.com/vpcnet/vpcnet/internal/ipam/store"
	"github.com/vpcnet/vpcnet/internal/netnsx"
	"github.com/vpcnet/vpcnet/internal/probe"
	"github.com/vpcnet/vpcnet/internal/testenv"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

var bg = context.Background()

// node is one vpcnet node under test:
//   - vpcsim in this process, serving EC2 on a fixed loopback address with its state on disk,
//     so that it can be closed and started again on the same address; IMDS is served through a
//     stable listener that forwards to whichever vpcsim runs;
//   - a node network namespace whose eth0 carries the primary ENI's MAC and address; the plugin
//     runs there (exec'd through libcni from a thread inside it), as a container runtime runs it;
//   - a fabric that follows vpcsim as the lab's does: an ENI attached to the instance appears in
//     the node as eth<device index> with the ENI's MAC, and goes when it is detached;
//   - vpcnetd as a process inside the node namespace with VPCNET_HOST_NETWORKING=true (it sets
//     up each ENI, its table and rules), reaching vpcsim through loopback proxies in the node, and
//     in a private mount namespace held by a holder process, where its allocation store's
//     directory is a small tmpfs (the host never sees that mount; the test reaches the files
//     through /proc/<holder>/root).
type node struct {
	t   testing.TB
	dir string
	bin string // holds vpcnetd and vpcnet-cni

	simMu   sync.Mutex
	sim     *vpcsim.Server
	imdsH   http.Handler
	simAddr string
	simOpts vpcsim.Options
	ec2     *ec2.Client

	fabricMu  sync.Mutex
	fabricErr error // the first thing the fabric could not do

	instance   string
	primaryIP  netip.Addr
	primaryMAC string
	subnet     netip.Prefix
	nodeNS     ns.NetNS

	holder     *exec.Cmd // keeps the agent's mount namespace (and its tmpfs) alive
	holderDone chan struct{}
	stateDir   string // VPCNET_STATE_DIR (on the host's file system)
	storeDir   string // <stateDir>/ipam: the tmpfs inside the holder's mount namespace
	socket     string
	confDir    string
	metrics    string
	agentLog   string
	env        []string
	agent      *exec.Cmd
	agentDone  chan struct{}
	starts     int

	list *libcni.NetworkConfigList
	cni  *libcni.CNIConfig
}

// storeSize is the tmpfs under the agent's allocation store: room for a few thousand records.
const storeSize = "1m"

func newNode(t testing.TB, extraEnv ...string) *node {
	t.Helper()
	testenv.RequireNetns(t)
	for _, b := range []string{"unshare", "nsenter", "mount"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is needed: %v", b, err)
		}
	}
	n := &node{t: t, dir: t.TempDir(), bin: filepath.Dir(testenv.CLI(t)), subnet: netip.MustParsePrefix("10.10.0.0/20")}
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	n.simAddr = addr
	n.nodeNS = testenv.NewNS(t)
	// vpcsim checks signatures: the test's client and vpcnetd sign with this operator credential.
	n.simOpts = vpcsim.Options{StateDir: filepath.Join(n.dir, "vpcsim"),
		Operator: vpcsim.Credentials{AccessKeyID: "AKIDFAULTTEST", SecretAccessKey: "secret"}, Hook: n.fabric}
	if err := n.startSim(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.stopSim() })
	n.ec2 = ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + n.simAddr),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFAULTTEST", "secret", "")})
	vpc, err := n.ec2.CreateVpc(bg, &ec2.CreateVpcInput{CidrBlock: aws.String("10.10.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := n.ec2.CreateSubnet(bg, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(n.subnet.String())})
	if err != nil {
		t.Fatal(err)
	}
	run, err := n.ec2.RunInstances(bg, &ec2.RunInstancesInput{ImageId: aws.String("ami-00000001"),
		InstanceType: ec2types.InstanceTypeM5Large, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: sn.Subnet.SubnetId})
	if err != nil {
		t.Fatal(err)
	}
	inst := run.Instances[0]
	n.instance = aws.ToString(inst.InstanceId)
	n.primaryIP = netip.MustParseAddr(aws.ToString(inst.PrivateIpAddress))
	for _, ni := range inst.NetworkInterfaces {
		if ni.Attachment != nil && aws.ToInt32(ni.Attachment.DeviceIndex) == 0 {
			n.primaryMAC = aws.ToString(ni.MacAddress)
		}
	}
	imdsURL := n.serveIMDS()

	// The node's eth0 carries the primary ENI's MAC and address (the far end of its veth stays
	// in the node: there is no router), and the default route its OS would have.
	if err := n.nodeNS.Do(func(ns.NetNS) error {
		hw, err := net.ParseMAC(n.primaryMAC)
		if err != nil {
			return err
		}
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", HardwareAddr: hw}, PeerName: "fabric0"}); err != nil {
			return err
		}
		if err := dataplane.SetupENI(dataplane.ENI{MAC: n.primaryMAC, PrimaryIP: n.primaryIP, Subnet: n.subnet}); err != nil {
			return err
		}
		eth0, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: n.subnet.Addr().Next().AsSlice()})
	}); err != nil {
		t.Fatal(err)
	}
	if err := n.fabricError(); err != nil {
		t.Fatal(err)
	}

	n.stateDir = filepath.Join(n.dir, "agent-state")
	n.storeDir = filepath.Join(n.stateDir, "ipam")
	n.socket = filepath.Join(n.dir, "vpcnetd.sock")
	n.confDir = filepath.Join(n.dir, "net.d")
	n.agentLog = filepath.Join(n.dir, "vpcnetd.log")
	n.metrics = "127.0.0.1:61678" // inside the node namespace
	n.env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + n.dir,
		"AWS_ACCESS_KEY_ID=AKIDFAULTTEST", "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_EC2_ENDPOINT=" + n.proxyInto("http://"+n.simAddr), "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + n.proxyInto(imdsURL),
		"VPCNET_HOST_NETWORKING=true",
		"VPCNET_SOCKET=" + n.socket,
		"VPCNET_STATE_DIR=" + n.stateDir,
		"VPCNET_CNI_CONF_DIR=" + n.confDir,
		"VPCNET_METRICS_ADDR=" + n.metrics,
		"IP_COOLDOWN_PERIOD=0s", // released addresses are handed out again at once: duplicates show
	}, extraEnv...)
	n.startHolder()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(n.agentLog)
			t.Logf("vpcnetd log (last 6k):\n%s", tail(b, 6144))
		}
		n.killAgent()
		n.stopHolder()
	})
	n.startAgent()
	n.cni = libcni.NewCNIConfigWithCacheDir([]string{n.bin}, filepath.Join(n.dir, "cni-cache"), &testenv.NodeExec{Node: n.nodeNS})
	return n
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// startSim starts vpcsim on n.simAddr with its state directory (a restart keeps the VPC).
func (n *node) startSim() error {
	var s *vpcsim.Server
	var err error
	for deadline := time.Now().Add(60 * time.Second); ; {
		if s, err = vpcsim.Start(n.simAddr, n.simOpts); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the old listener's port is being released
	}
	if err != nil {
		return err
	}
	n.simMu.Lock()
	n.sim = s
	n.imdsH = s.IMDSHandler(func(*http.Request) (string, error) { return n.instance, nil })
	n.simMu.Unlock()
	return nil
}

func (n *node) stopSim() {
	n.simMu.Lock()
	s := n.sim
	n.sim, n.imdsH = nil, nil
	n.simMu.Unlock()
	if s != nil {
		_ = s.Close()
	}
}

// serveIMDS serves the instance's IMDS on a loopback listener that outlives vpcsim restarts
// (a restarted vpcsim forgets the tokens it issued, as a replaced IMDS would).
func (n *node) serveIMDS() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		n.t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.simMu.Lock()
		h := n.imdsH
		n.simMu.Unlock()
		if h == nil {
			http.Error(w, "vpcsim is restarting", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	n.t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// startHolder starts the process whose private mount namespace the agent runs in: a slave of
// the host's (namespaces mounted later under /run/netns show inside), with a tmpfs of storeSize
// on the allocation store's directory.
func (n *node) startHolder() {
	if err := os.MkdirAll(n.storeDir, 0o700); err != nil {
		n.t.Fatal(err)
	}
	ready := filepath.Join(n.dir, "holder.ready")
	cmd := exec.Command("unshare", "--mount", "--propagation", "slave", "--", "sh", "-c",
		`mount -t tmpfs -o size=`+storeSize+`,mode=0700 vpcnet-faulttest "$1" && touch "$2" && exec sleep 100000`, "holder", n.storeDir, ready)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	n.holder, n.holderDone = startOnOwnThread(n.t, cmd, nil)
	for deadline := time.Now().Add(60 * time.Second); ; {
		if _, err := os.Stat(ready); err == nil {
			return
		}
		select {
		case <-n.holderDone:
			n.t.Fatalf("the mount namespace holder exited: %s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("the mount namespace holder did not mount its tmpfs in 60s")
		}
	}
}

func (n *node) stopHolder() {
	if n.holder != nil {
		_ = n.holder.Process.Kill()
		<-n.holderDone
	}
}

// storePath is a path inside the agent's allocation store directory, seen through the holder.
func (n *node) storePath(name string) string {
	return filepath.Join(fmt.Sprintf("/proc/%d/root", n.holder.Process.Pid), n.storeDir, name)
}

// startOnOwnThread starts cmd from a locked thread that lives exactly as long as the process,
// so that Pdeathsig (which follows the forking thread) kills it only when the test process
// dies. enter, if set, runs on that thread first (e.g. to switch namespaces).
func startOnOwnThread(t testing.TB, cmd *exec.Cmd, enter func() error) (*exec.Cmd, chan struct{}) {
	t.Helper()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	done, started := make(chan struct{}), make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if enter != nil {
			if err := enter(); err != nil {
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
	return cmd, done
}

// startAgent starts vpcnetd inside the holder's mount namespace and waits until it is ready: its
// CNI config written and its introspection answering.
func (n *node) startAgent() {
	t := n.t
	t.Helper()
	logf, err := os.OpenFile(n.agentLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	n.starts++
	fmt.Fprintf(logf, "---- faulttest: start %d\n", n.starts)
	conf := filepath.Join(n.confDir, "10-vpcnet.conflist")
	_ = os.Remove(conf)
	cmd := exec.Command("nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", n.holder.Process.Pid), "--", filepath.Join(n.bin, "vpcnetd"))
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = logf, logf
	n.agent, n.agentDone = startOnOwnThread(t, cmd, func() error { return n.nodeNS.Set() }) // the agent runs in the node
	logf.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(conf); err == nil && n.allocsErr() == nil {
			if n.list == nil {
				list, err := libcni.ConfListFromBytes(b)
				if err != nil {
					t.Fatalf("the agent's CNI config %s: %v", conf, err)
				}
				n.list = list
			}
			return
		}
		select {
		case <-n.agentDone:
			b, _ := os.ReadFile(n.agentLog)
			t.Fatalf("vpcnetd exited before it was ready (%s):\n%s", n.agent.ProcessState, tail(b, 4096))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("vpcnetd not ready in 60s")
		}
	}
}

// killAgent kills the agent with SIGKILL (no chance to tidy up) and waits until it is gone.
func (n *node) killAgent() {
	if n.agent == nil {
		return
	}
	_ = n.agent.Process.Kill()
	<-n.agentDone
	n.agent = nil
}

// allocs reads the agent's allocations from its introspection endpoint /v1/pods.
func (n *node) allocs() ([]invariant.Allocation, error) {
	cl := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: probe.Dialer(n.nodeNS.Path())}}
	defer cl.CloseIdleConnections()
	resp, err := cl.Get("http://" + n.metrics + "/v1/pods")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/v1/pods: %s", resp.Status)
	}
	var as []store.Alloc
	if err := json.NewDecoder(resp.Body).Decode(&as); err != nil {
		return nil, fmt.Errorf("/v1/pods: %w", err)
	}
	return invariant.FromStore(as), nil
}

func (n *node) allocsErr() error { _, err := n.allocs(); return err }

// pluginStateDir is the stateDir the agent's CNI config gives the plugin.
func (n *node) pluginStateDir() string {
	var conf struct {
		Plugins []struct {
			StateDir string `json:"stateDir"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(n.list.Bytes, &conf); err != nil || len(conf.Plugins) == 0 || conf.Plugins[0].StateDir == "" {
		n.t.Fatalf("no stateDir in the agent's CNI config (%v): %s", err, n.list.Bytes)
	}
	return conf.Plugins[0].StateDir
}

// pod is one sandbox: its own network namespace and the runtime config kubelet passes for it.
type pod struct {
	name string
	ns   string // namespace name under /run/netns
	rt   *libcni.RuntimeConf
	ip   netip.Addr // from the acknowledged ADD
}

func (n *node) newPod(name string) *pod {
	nsName := testenv.NSName(name)
	h, err := netnsx.Create(nsName)
	if err != nil {
		n.t.Fatal(err)
	}
	h.Close()
	n.t.Cleanup(func() { _ = netnsx.Delete(nsName) })
	return &pod{name: name, ns: nsName, rt: &libcni.RuntimeConf{
		ContainerID: "ctr-" + name, NetNS: netnsx.Path(nsName), IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", name}},
	}}
}

func (n *node) add(p *pod) error {
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	r, err := n.cni.AddNetworkList(ctx, n.list, p.rt)
	if err != nil {
		return err
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return err
	}
	if len(res.IPs) != 1 {
		return fmt.Errorf("ADD result has %d IPs: %+v", len(res.IPs), res)
	}
	p.ip, _ = netip.AddrFromSlice(res.IPs[0].Address.IP.To4())
	return nil
}

// addRetry adds as kubelet does: an answer "try again later" (CNI code 11) is retried until
// within has passed.
func (n *node) addRetry(p *pod, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := n.add(p)
		if cniCode(err) != types.ErrTryAgainLater || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *node) del(p *pod) error {
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	return n.cni.DelNetworkList(ctx, n.list, p.rt)
}

func (n *node) check(p *pod) error {
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	return n.cni.CheckNetworkList(ctx, n.list, p.rt)
}

// statusRetry runs the CNI STATUS verb (CNI spec 1.1) until it succeeds or within ends; STATUS
// first sends the releases DEL queued while the agent was away.
func (n *node) statusRetry(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(bg, 30*time.Second)
		err := n.cni.GetStatusNetworkList(ctx, n.list)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func cniCode(err error) uint {
	var e *types.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// snapshot collects the node for invariant.Check. pods are the sandboxes that exist.
func (n *node) snapshot(pods []*pod) (invariant.Snapshot, error) {
	as, err := n.allocs()
	if err != nil {
		return invariant.Snapshot{}, fmt.Errorf("the agent's allocations: %w", err)
	}
	src := invariant.Source{NodeNetns: n.nodeNS.Path(), StateDir: n.pluginStateDir(), Allocations: as}
	for _, p := range pods {
		src.PodNetns = append(src.PodNetns, p.rt.NetNS)
	}
	return invariant.Collect(src)
}

// records returns the plugin's attachment records by container ID.
func (n *node) records() (map[string]cni.Record, error) {
	recs, err := cni.Attachments(n.pluginStateDir())
	if err != nil {
		return nil, err
	}
	out := map[string]cni.Record{}
	for _, r := range recs {
		out[r.ContainerID] = r
	}
	return out, nil
}

// secondaryENIs lists the instance's attached ENIs other than the primary.
func (n *node) secondaryENIs() ([]string, error) {
	out, err := n.ec2.DescribeNetworkInterfaces(bg, &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{n.instance}}}})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range out.NetworkInterfaces {
		if e.Attachment != nil && aws.ToInt32(e.Attachment.DeviceIndex) > 0 && e.Attachment.Status == ec2types.AttachmentStatusAttached {
			ids = append(ids, aws.ToString(e.NetworkInterfaceId))
		}
	}
	return ids, nil
}

// attachedAddrs returns the private addresses EC2 assigns to ENIs attached to the instance.
func (n *node) attachedAddrs() (map[netip.Addr]bool, error) {
	out, err := n.ec2.DescribeNetworkInterfaces(bg, &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{n.instance}}}})
	if err != nil {
		return nil, err
	}
	addrs := map[netip.Addr]bool{}
	for _, e := range out.NetworkInterfaces {
		if e.Attachment == nil || e.Attachment.Status != ec2types.AttachmentStatusAttached {
			continue
		}
		for _, a := range e.PrivateIpAddresses {
			if ip, err := netip.ParseAddr(aws.ToString(a.PrivateIpAddress)); err == nil {
				addrs[ip] = true
			}
		}
	}
	return addrs, nil
}

// detach force-detaches an ENI through the EC2 API, as an operator or another tool might.
func (n *node) detach(eni string) error {
	out, err := n.ec2.DescribeNetworkInterfaces(bg, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni}})
	if err != nil {
		return err
	}
	if len(out.NetworkInterfaces) != 1 || out.NetworkInterfaces[0].Attachment == nil {
		return fmt.Errorf("%s is not attached", eni)
	}
	_, err = n.ec2.DetachNetworkInterface(bg, &ec2.DetachNetworkInterfaceInput{
		AttachmentId: out.NetworkInterfaces[0].Attachment.AttachmentId, Force: aws.Bool(true)})
	return err
}

// fillDisk fills the allocation store's tmpfs with a file until the file system is full.
func (n *node) fillDisk() error {
	f, err := os.OpenFile(n.storePath("faulttest-filler"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return err
		}
	}
}

func (n *node) freeDisk() error { return os.Remove(n.storePath("faulttest-filler")) }

// damageJournal changes one byte in the middle line of the allocation store's journal. It
// returns what it changed, for the log; an empty or one-line journal is left alone ("").
func (n *node) damageJournal() (string, error) {
	var journal string
	err := filepath.WalkDir(n.storePath(""), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".journal") && journal == "" {
			journal = p
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if journal == "" {
		return "", nil
	}
	b, err := os.ReadFile(journal)
	if err != nil {
		return "", err
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) < 3 {
		return "", nil
	}
	i := len(lines) / 2
	line := lines[i]
	off := 0
	for j := range bytes.TrimRight(line, "\n") { // the middle of the line, on a digit or a letter
		if j >= len(line)/2 && (line[j] >= '0' && line[j] <= '9' || line[j] >= 'a' && line[j] <= 'z') {
			off = j
			break
		}
	}
	old := line[off]
	switch {
	case old >= '0' && old <= '8', old >= 'a' && old <= 'y':
		line[off] = old + 1
	default:
		line[off] = old - 1
	}
	if err := os.WriteFile(journal, bytes.Join(lines, nil), 0o600); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: line %d of %d, byte %d %q -> %q", filepath.Base(journal), i+1, len(lines), off, old, line[off]), nil
}

// fabric follows vpcsim as the lab's fabric does: an ENI attached to the instance appears in the
// node as eth<device index> with the ENI's MAC (a veth whose far end stays in the node), and a
// detached one disappears. It runs under vpcsim's lock and must not call back into vpcsim. A
// restarted vpcsim replays the attachments; a device already there is kept.
func (n *node) fabric(e vpcsim.Event) {
	if e.DeviceIndex == 0 || (e.Kind != "eni-attached" && e.Kind != "eni-detached") {
		return
	}
	dev, far := fmt.Sprintf("eth%d", e.DeviceIndex), fmt.Sprintf("fabric%d", e.DeviceIndex)
	err := n.nodeNS.Do(func(ns.NetNS) error {
		old, err := netlink.LinkByName(dev)
		if err == nil && e.Kind == "eni-attached" && strings.EqualFold(old.Attrs().HardwareAddr.String(), e.MAC) {
			return nil // already there (a replay after a vpcsim restart)
		}
		if err == nil && (e.Kind == "eni-attached" || strings.EqualFold(old.Attrs().HardwareAddr.String(), e.MAC)) {
			if err := netlink.LinkDel(old); err != nil {
				return err
			}
		}
		if e.Kind == "eni-detached" {
			return nil
		}
		hw, err := net.ParseMAC(e.MAC)
		if err != nil {
			return err
		}
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: dev, HardwareAddr: hw}, PeerName: far})
	})
	if err != nil {
		n.fabricMu.Lock()
		if n.fabricErr == nil {
			n.fabricErr = fmt.Errorf("fabric: %s of %s (%s): %w", e.Kind, e.ENIID, dev, err)
		}
		n.fabricMu.Unlock()
	}
}

func (n *node) fabricError() error {
	n.fabricMu.Lock()
	defer n.fabricMu.Unlock()
	return n.fabricErr
}

// proxyInto listens on 127.0.0.1 inside the node namespace and forwards every connection to
// target (an http://127.0.0.1:port URL of the test's own namespace); it returns the URL to use
// inside the node. The listener outlives vpcsim restarts (it dials anew per connection).
func (n *node) proxyInto(target string) string {
	host := strings.TrimPrefix(target, "http://")
	var ln net.Listener
	if err := n.nodeNS.Do(func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp4", host) // from a thread of the test's namespace
				if err != nil {
					return
				}
				defer out.Close()
				go func() { _, _ = io.Copy(out, in); out.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}
