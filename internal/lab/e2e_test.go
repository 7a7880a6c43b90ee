package lab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/fabric"
	"github.com/vpcnet/vpcnet/internal/netnsx"
	"github.com/vpcnet/vpcnet/internal/probe"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

// The end-to-end tests drive the real CLI, built with vpcnetd and vpcnet-cni beside it, and
// check what it claims against the namespaces, vpcsim's EC2 API and the processes.

var labSeq atomic.Int64

// cli builds the three binaries once per test process and returns the vpcnet path.
func cli(t *testing.T) string {
	t.Helper()
	testenv.RequireNetns(t)
	if p := os.Getenv(builtCLI); p != "" {
		return p
	}
	return testenv.CLI(t)
}

// builtCLI hands the CLI built by a test process to a copy of itself that it runs in a private
// mount namespace.
const builtCLI = "VPCNET_LAB_TEST_CLI"

// testLab is one lab owned by a test, always taken down at its end.
type testLab struct {
	t    *testing.T
	bin  string
	name string
}

// testLabRE matches the names of the labs these tests make: e<pid>x<n> and d<pid>x<n>.
var testLabRE = regexp.MustCompile(`^[ed]([0-9]+)x[0-9]+$`)

var sweepOnce sync.Once

// sweepDeadTestLabs removes labs left by test processes that were killed mid-test.
func sweepDeadTestLabs() {
	sweepOnce.Do(func() {
		for _, name := range lab.Labs() {
			m := testLabRE.FindStringSubmatch(name)
			if m == nil {
				continue
			}
			if pid, _ := strconv.Atoi(m[1]); pid != os.Getpid() && syscall.Kill(pid, 0) != nil {
				_ = lab.Sweep(name, func(string) {})
			}
		}
	})
}

func newLab(t *testing.T, upArgs ...string) *testLab {
	t.Helper()
	sweepDeadTestLabs()
	l := &testLab{t: t, bin: cli(t), name: fmt.Sprintf("e%dx%d", os.Getpid(), labSeq.Add(1))}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(lab.PathsFor(l.name).ControllerLog())
			t.Logf("controller log:\n%s", lastLines(string(b), 60))
			logs, _ := filepath.Glob(filepath.Join(lab.PathsFor(l.name).Dir, "nodes", "*", "vpcnetd.log"))
			for _, f := range logs {
				b, _ := os.ReadFile(f)
				t.Logf("%s:\n%s", f, lastLines(string(b), 30))
			}
		}
		if _, _, code := l.run("down"); code != 0 {
			t.Errorf("lab down failed")
		}
		left, err := lab.Leftovers(l.name)
		if err != nil || len(left) > 0 {
			t.Errorf("after lab down: left %v (%v)", left, err)
		}
	})
	if out, errOut, code := l.run(append([]string{"up"}, upArgs...)...); code != 0 {
		t.Fatalf("lab up: exit %d\n%s\n%s", code, out, errOut)
	}
	return l
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// run runs `vpcnet lab ARGS --name NAME` and returns stdout, stderr and the exit code.
func (l *testLab) run(args ...string) (string, string, int) {
	cmd := exec.Command(l.bin, append(append([]string{"lab"}, args...), "--name", l.name)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		l.t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

func (l *testLab) must(args ...string) string {
	l.t.Helper()
	out, errOut, code := l.run(args...)
	if code != 0 {
		l.t.Fatalf("vpcnet lab %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (l *testLab) status() lab.Status {
	l.t.Helper()
	var st lab.Status
	if err := json.Unmarshal([]byte(l.must("status", "--format", "json")), &st); err != nil {
		l.t.Fatal(err)
	}
	return st
}

func (l *testLab) pod(st lab.Status, name string) lab.PodInfo {
	l.t.Helper()
	for _, p := range st.Pods {
		if p.Name == name {
			return p
		}
	}
	l.t.Fatalf("no pod %s in %+v", name, st.Pods)
	return lab.PodInfo{}
}

// reachable checks ping both ways and a TCP transfer that keeps the source address.
func reachable(t *testing.T, a, b lab.PodInfo) {
	t.Helper()
	if _, err := lab.CrossNode(a, b); err != nil {
		t.Error(err)
	}
}

// imdsInstanceID asks IMDS, from inside the node's namespace, who the node is.
func imdsInstanceID(t *testing.T, nodeNS string) string {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: probe.Dialer(nodeNS)}}
	base := "http://" + fabric.IMDSAddr.String()
	req, _ := http.NewRequest(http.MethodPut, base+"/latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("IMDS token from %s: %v", nodeNS, err)
	}
	token, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodGet, base+"/latest/meta-data/instance-id", nil)
	req.Header.Set("X-aws-ec2-metadata-token", string(token))
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatalf("IMDS instance-id from %s: %v", nodeNS, err)
	}
	defer resp.Body.Close()
	id, _ := io.ReadAll(resp.Body)
	return string(id)
}

func TestLabEndToEnd(t *testing.T) {
	main, small := netip.MustParsePrefix("10.10.1.0/24"), netip.MustParsePrefix("10.10.2.0/28")
	l := newLab(t, "--nodes", "2", "--subnet", main.String(), "--subnet", small.String(), "--ip-cooldown-period", "1s")

	// VPC, subnets and nodes, each node answered by IMDS as itself.
	st := l.status()
	if st.VPC.ID == "" || len(st.Subnets) != 2 || len(st.Nodes) != 2 {
		t.Fatalf("status after up: %+v", st)
	}
	for _, n := range st.Nodes {
		if !n.Agent.Ready || !lab.Alive(n.Agent.PID) {
			t.Errorf("node %s: agent %+v", n.Name, n.Agent)
		}
		if n.Name != lab.NodeName(n.PrimaryIP) || !main.Contains(n.PrimaryIP) {
			t.Errorf("node %s has primary %s", n.Name, n.PrimaryIP)
		}
		if err := lab.AgentHealthz(n.NS); err != nil {
			t.Error(err)
		}
		if id := imdsInstanceID(t, n.NS); id != n.InstanceID {
			t.Errorf("IMDS in %s says instance %q, want %s", n.NS, id, n.InstanceID)
		}
	}

	// Pods on both nodes get subnet addresses and reach each other without NAT or tunnels.
	l.must("pod", "run", "a", "--node", st.Nodes[0].Name)
	l.must("pod", "run", "b", "--node", st.Nodes[1].Name)
	st = l.status()
	a, b := l.pod(st, "a"), l.pod(st, "b")
	for _, p := range []lab.PodInfo{a, b} {
		if !main.Contains(p.IP) {
			t.Errorf("pod %s has %s, outside %s", p.Name, p.IP, main)
		}
		if err := lab.PodHasAddr(p.NS, p.IP); err != nil {
			t.Error(err)
		}
	}
	if a.IP == b.IP {
		t.Errorf("pods a and b share %s", a.IP)
	}
	reachable(t, a, b)
	if tunnels, _, err := lab.TunnelDevices(l.name); err != nil || len(tunnels) > 0 {
		t.Errorf("tunnel devices %v (%v)", tunnels, err)
	}
	if _, err := lab.ViaSNAT(l.name, a, st.Nodes[0].PrimaryIP); err != nil {
		t.Error(err)
	}

	// A new node serves pods that reach the others.
	l.must("node", "add")
	st = l.status()
	if len(st.Nodes) != 3 {
		t.Fatalf("%d nodes after node add", len(st.Nodes))
	}
	l.must("pod", "run", "c", "--node", st.Nodes[2].Name)
	st = l.status()
	reachable(t, l.pod(st, "c"), a)

	// A /28 runs dry: a clear error, then room again once pods go.
	l.must("node", "add", "--subnet", small.String())
	st = l.status()
	dryNode := st.Nodes[3].Name
	var ran []string
	var failure string
	for i := 1; i <= 20 && failure == ""; i++ {
		name := fmt.Sprintf("dry-%d", i)
		out, errOut, code := l.run("pod", "run", name, "--node", dryNode)
		switch code {
		case 0:
			ran = append(ran, name)
		default:
			failure = out + errOut
		}
	}
	if !strings.Contains(failure, "subnet exhausted") {
		t.Fatalf("after %d pods in %s: failure %q, want a 'subnet exhausted' error", len(ran), small, failure)
	}
	subnets, err := lab.EC2Client(l.name).DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subnets.Subnets {
		if aws.ToString(s.CidrBlock) == small.String() && aws.ToInt32(s.AvailableIpAddressCount) != 0 {
			t.Errorf("subnet %s has %d free addresses after the failure, want 0", small, aws.ToInt32(s.AvailableIpAddressCount))
		}
	}
	st = l.status()
	for _, name := range ran {
		if p := l.pod(st, name); !small.Contains(p.IP) {
			t.Errorf("pod %s has %s, outside %s", name, p.IP, small)
		}
	}
	l.must("pod", "rm", ran[0])
	l.must("pod", "rm", ran[1])
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, errOut, code := l.run("pod", "run", "again", "--node", dryNode)
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pod fits after removing two: %s", errOut)
		}
		time.Sleep(time.Second)
	}

	// describe and ls answer.
	if out := l.must("describe", "node", dryNode); !strings.Contains(out, "Max pods") {
		t.Errorf("describe node:\n%s", out)
	}
	if out := l.must("pod", "ls"); !strings.Contains(out, "again") {
		t.Errorf("pod ls:\n%s", out)
	}

	// lab down (in Cleanup) must leave nothing; node rm removes a node's namespace and pods.
	l.must("node", "rm", st.Nodes[2].Name)
	st = l.status()
	if len(st.Nodes) != 3 {
		t.Errorf("%d nodes after node rm", len(st.Nodes))
	}
	for _, p := range st.Pods {
		if p.Name == "c" {
			t.Errorf("pod c outlived its node")
		}
	}
}

func TestAgentRestartKeepsPods(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		// The default warm pool attaches a second ENI, so the agent restarts with two ENIs.
		{"warm ENI target", nil},
		// A warm IP target keeps the pool on the primary ENI.
		{"warm IP target", []string{"--warm-ip-target", "2"}},
	} {
		t.Run(tc.name, func(t *testing.T) { agentRestart(t, tc.args) })
	}
}

// agentRestart SIGKILLs a node's vpcnetd while pods run and checks that, once the lab has
// restarted it, every pod keeps its address and connectivity.
func agentRestart(t *testing.T, args []string) {
	l := newLab(t, append([]string{"--nodes", "2"}, args...)...)
	st := l.status()
	l.must("pod", "run", "p1", "--node", st.Nodes[0].Name)
	l.must("pod", "run", "p2", "--node", st.Nodes[0].Name)
	l.must("pod", "run", "q1", "--node", st.Nodes[1].Name)
	before := l.status()
	victim := before.Nodes[0]
	if err := syscall.Kill(victim.Agent.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The lab restarts the agent, as kubelet restarts the aws-node pod.
	deadline := time.Now().Add(60 * time.Second)
	var after lab.Status
	for {
		after = l.status()
		n, _ := lab.FindNode(after, victim.Name)
		if n.Agent.PID != victim.Agent.PID && n.Agent.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent on %s not back: %+v", victim.Name, n.Agent)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range before.Pods {
		q := l.pod(after, p.Name)
		if q.IP != p.IP {
			t.Errorf("pod %s: %s before the restart, %s after", p.Name, p.IP, q.IP)
		}
		if err := lab.PodHasAddr(q.NS, q.IP); err != nil {
			t.Error(err)
		}
	}
	reachable(t, l.pod(after, "p1"), l.pod(after, "q1"))
	reachable(t, l.pod(after, "q1"), l.pod(after, "p2"))
	// The restarted agent still knows what it handed out: a new pod gets a fresh address.
	l.must("pod", "run", "p3", "--node", victim.Name)
	after = l.status()
	p3 := l.pod(after, "p3")
	for _, p := range before.Pods {
		if p.IP == p3.IP {
			t.Errorf("new pod p3 got %s, still held by %s", p3.IP, p.Name)
		}
	}
	reachable(t, p3, l.pod(after, "q1"))
}

func TestDemo(t *testing.T) {
	bin := cli(t)
	sweepDeadTestLabs()
	name := fmt.Sprintf("d%dx%d", os.Getpid(), labSeq.Add(1))
	t.Cleanup(func() { _ = lab.Sweep(name, func(string) {}) })
	cmd := exec.Command(bin, "lab", "demo", "--runtime", "none", "--name", name)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("lab demo: %v\n%s", err, out)
	}
	for _, step := range []string{"1 ", "2 ", "3 ", "3b ", "4 ", "5 ", "5b ", "6 ", "7 ", "7b ", "8 "} {
		found := false
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, step) && strings.Contains(line, "  yes  ") {
				found = true
			}
		}
		if !found {
			t.Errorf("demo step %q not verified:\n%s", step, out)
		}
	}
	if left, _ := lab.Leftovers(name); len(left) > 0 {
		t.Errorf("demo left %v", left)
	}
}

func TestUpRecoversFromACrashedLab(t *testing.T) {
	l := newLab(t, "--nodes", "1")
	st := l.status()
	agent := st.Nodes[0].Agent.PID
	ctl := lab.ReadPID(lab.PathsFor(l.name).ControllerPID())
	// The controller dies without tearing down: its agent, namespaces and files stay.
	if err := syscall.Kill(ctl, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for lab.Alive(ctl) {
		time.Sleep(20 * time.Millisecond)
	}
	if !lab.Alive(agent) {
		t.Fatalf("the agent died with the controller; nothing to recover")
	}
	if out, errOut, code := l.run("up", "--nodes", "1"); code != 0 {
		t.Fatalf("lab up over a crashed lab: exit %d\n%s\n%s", code, out, errOut)
	}
	if lab.Alive(agent) {
		t.Errorf("the crashed lab's vpcnetd (pid %d) still runs", agent)
	}
	st = l.status()
	if len(st.Nodes) != 1 || !st.Nodes[0].Agent.Ready {
		t.Fatalf("after recovery: %+v", st.Nodes)
	}
	l.must("pod", "run", "x")
}

// TestDownAfterIPNetnsAdd: `ip netns add` runs while a lab is up (it makes /run/netns a bind
// mount of itself unless it already is one), and `lab down` must still remove every namespace
// of the lab. It runs in a private mount namespace on a fresh tmpfs at /run, so /run/netns
// starts as the plain directory a freshly booted node has (and the host's is not touched).
func TestDownAfterIPNetnsAdd(t *testing.T) {
	const inside = "VPCNET_LAB_TEST_PRIVATE_MNTNS"
	bin := cli(t)
	if os.Getenv(inside) == "" {
		cmd := exec.Command("unshare", "--mount", "--propagation", "private",
			os.Args[0], "-test.run=^TestDownAfterIPNetnsAdd$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), inside+"=1", builtCLI+"="+bin)
		out, err := cmd.CombinedOutput()
		t.Logf("inside a private mount namespace:\n%s", out)
		if err != nil || !strings.Contains(string(out), "--- PASS: TestDownAfterIPNetnsAdd") {
			t.Fatalf("the test inside the private mount namespace failed: %v", err)
		}
		return
	}
	if err := syscall.Mount("tmpfs", "/run", "tmpfs", 0, "size=64m"); err != nil {
		t.Fatal(err)
	}
	theirs := testenv.NSName("ip")
	ipNetns := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"netns"}, args...)...).CombinedOutput(); err != nil {
			t.Errorf("ip netns %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() { ipNetns("del", theirs) }) // runs after the lab's own cleanup (lab down)
	l := newLab(t, "--nodes", "1")
	ipNetns("add", theirs)
	if nss, _ := netnsx.List(lab.NSPrefix(l.name)); len(nss) == 0 {
		t.Fatalf("the lab has no namespaces to remove")
	}
	// newLab's cleanup runs lab down and fails the test on an error or anything left behind.
}

// TestUpStopsAtAnAgentThatExitsAtStart: a node's vpcnetd that exits before it is ever ready is
// not restarted until a 90 s deadline: `lab up` fails at once with the agent's exit and the end
// of its log, and the log stays where the error says. The agent is the real vpcnetd, started
// through a wrapper that gives it a state directory it cannot create (its settings check, run
// by lab up beforehand, still sees the lab's own settings).
func TestUpStopsAtAnAgentThatExitsAtStart(t *testing.T) {
	bin := cli(t)
	sweepDeadTestLabs()
	dir := t.TempDir()
	agent := filepath.Join(dir, "vpcnetd")
	script := "#!/bin/sh\ncase \"$1\" in --check-settings) exec " + filepath.Join(filepath.Dir(bin), "vpcnetd") + " \"$@\";; esac\n" +
		"VPCNET_STATE_DIR=/proc/vpcnet-none/state exec " + filepath.Join(filepath.Dir(bin), "vpcnetd") + " \"$@\"\n"
	if err := os.WriteFile(agent, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := lab.DefaultConfig(fmt.Sprintf("e%dx%d", os.Getpid(), labSeq.Add(1)))
	cfg.AgentBin, cfg.CNIBin = agent, filepath.Join(filepath.Dir(bin), "vpcnet-cni")
	t.Cleanup(func() {
		if err := lab.Down(context.Background(), cfg.Name, func(string) {}); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if left, err := lab.Leftovers(cfg.Name); err != nil || len(left) > 0 {
			t.Errorf("after lab down: left %v (%v)", left, err)
		}
	})
	start := time.Now()
	_, err := lab.Up(context.Background(), lab.UpOptions{Config: cfg, Nodes: 1,
		Controller: func(name string) *exec.Cmd { return exec.Command(bin, "lab", "controller", "--name", name) }})
	took := time.Since(start)
	if err == nil {
		t.Fatalf("lab up with an agent that cannot start succeeded")
	}
	t.Logf("lab up failed after %v: %v", took, err)
	if took > 45*time.Second {
		t.Errorf("lab up took %v to give up on an agent that exits at start; want well under its 90 s readiness deadline", took)
	}
	if !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "/proc/vpcnet-none") {
		t.Errorf("the error does not say the agent exited and does not show its log's last lines:\n%v", err)
	}
	logPath := lab.PathsFor(cfg.Name).Node(1).AgentLog() // nodes count from 1
	if !strings.Contains(err.Error(), logPath) {
		t.Errorf("the error does not name the agent's log %s", logPath)
	}
	b, rerr := os.ReadFile(logPath)
	if rerr != nil || !strings.Contains(string(b), "/proc/vpcnet-none") {
		t.Errorf("the agent's log %s is gone or does not hold its error (%v): %q", logPath, rerr, b)
	}
	if n := strings.Count(string(b), "/proc/vpcnet-none"); n != 1 {
		t.Errorf("the agent started %d times; want once, not restarted before it was ever ready", n)
	}
}

// TestUpChecksAgentSettingsFirst: a setting vpcnetd refuses stops `lab up` before it creates
// anything, with vpcnetd's one line and exit code 2 (issue 12 item 7), instead of a lab whose
// agents restart until a deadline.
func TestUpChecksAgentSettingsFirst(t *testing.T) {
	l := &testLab{t: t, bin: cli(t), name: fmt.Sprintf("e%dx%d", os.Getpid(), labSeq.Add(1))}
	t.Cleanup(func() { _ = lab.Sweep(l.name, func(string) {}) })
	for _, tc := range []struct{ flag, value, names string }{
		{"--warm-ip-target", "abc", "WARM_IP_TARGET"},
		{"--ip-cooldown-period", "-5s", "IP_COOLDOWN_PERIOD"},
		{"--max-pods", "0", "MAX_PODS"},
	} {
		start := time.Now()
		out, errOut, code := l.run("up", "--nodes", "1", tc.flag, tc.value)
		took := time.Since(start)
		if code != 2 {
			t.Errorf("lab up %s %s: exit %d, want 2\n%s\n%s", tc.flag, tc.value, code, out, errOut)
		}
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], tc.names) {
			t.Errorf("lab up %s %s: stderr %q, want one line naming %s", tc.flag, tc.value, errOut, tc.names)
		}
		if took > 20*time.Second {
			t.Errorf("lab up %s %s took %v to refuse", tc.flag, tc.value, took)
		}
		if left, err := lab.Leftovers(l.name); err != nil || len(left) > 0 {
			t.Errorf("lab up %s %s created %v (%v)", tc.flag, tc.value, left, err)
		}
		if _, err := os.Stat(lab.PathsFor(l.name).Dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("lab up %s %s left its directory (%v)", tc.flag, tc.value, err)
		}
	}
}

// TestUpWaitsForTheVPC: `lab up` adds its nodes only once the controller has made the VPC and
// its subnets, however slowly EC2 answers; it once asked for a node first on a loaded machine
// and failed with "lab has no subnet". A slow CreateSubnet makes that order certain.
func TestUpWaitsForTheVPC(t *testing.T) {
	l := newLab(t, "--nodes", "1", "--ec2-latency", "CreateSubnet=2s")
	if st := l.status(); len(st.Nodes) != 1 || !st.Nodes[0].Agent.Ready {
		t.Fatalf("after lab up: %+v", st.Nodes)
	}
}
