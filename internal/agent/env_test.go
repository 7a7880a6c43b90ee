package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/ipam"
	"github.com/vpcnet/vpcnet/internal/ipam/store"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

var bg = context.Background()

// sim is a vpcsim with one VPC, one subnet and one instance, driven through the real SDK.
type sim struct {
	s        *vpcsim.Server
	ec2      *ec2.Client
	vpc      string
	subnet   string
	instance string
	imds     string
}

func newSim(t testing.TB, opts vpcsim.Options, subnetCIDR, instanceType string) *sim {
	t.Helper()
	return newSimIn(t, nil, opts, subnetCIDR, instanceType)
}

// newSimIn runs the sim's listeners inside netns (nil: the test's own namespace); the test's
// SDK client dials into it.
func newSimIn(t testing.TB, netns ns.NetNS, opts vpcsim.Options, subnetCIDR, instanceType string) *sim {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	in := func(f func() error) error {
		if netns == nil {
			return f()
		}
		return netns.Do(func(ns.NetNS) error { return f() })
	}
	var s *vpcsim.Server
	if err := in(func() (err error) { s, err = vpcsim.Start("127.0.0.1:0", opts); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	dialer := &net.Dialer{}
	httpc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.DialContext = func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = in(func() error { c, err = dialer.DialContext(ctx, network, addr); return err })
			return c, err
		}
	})
	c := ec2.New(ec2.Options{Region: s.Region(), BaseEndpoint: aws.String(s.Endpoint()), HTTPClient: httpc,
		Credentials: s.CredentialsProvider(),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts, o.MaxBackoff, o.RateLimiter = 30, 20*time.Millisecond, ratelimit.None
		})})
	x := &sim{s: s, ec2: c}
	vpc, err := c.CreateVpc(bg, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	x.vpc = *vpc.Vpc.VpcId
	sn, err := c.CreateSubnet(bg, &ec2.CreateSubnetInput{VpcId: aws.String(x.vpc), CidrBlock: aws.String(subnetCIDR)})
	if err != nil {
		t.Fatal(err)
	}
	x.subnet = *sn.Subnet.SubnetId
	run, err := c.RunInstances(bg, &ec2.RunInstancesInput{InstanceType: types.InstanceType(instanceType), SubnetId: aws.String(x.subnet),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: aws.String("ami-12345678")})
	if err != nil {
		t.Fatal(err)
	}
	x.instance = *run.Instances[0].InstanceId
	if err := in(func() (err error) { x.imds, err = s.IMDSEndpoint(x.instance); return err }); err != nil {
		t.Fatal(err)
	}
	return x
}

// cloudAddrs returns every pod address EC2 shows on the instance's ENIs, and how many ENIs.
func (x *sim) cloudAddrs(t testing.TB) (map[netip.Addr]string, int) {
	t.Helper()
	out, err := x.ec2.DescribeNetworkInterfaces(bg, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{x.instance}}}})
	if err != nil {
		t.Fatal(err)
	}
	addrs := map[netip.Addr]string{}
	for _, ni := range out.NetworkInterfaces {
		for _, p := range ni.PrivateIpAddresses {
			if !aws.ToBool(p.Primary) {
				addrs[netip.MustParseAddr(*p.PrivateIpAddress)] = *ni.NetworkInterfaceId
			}
		}
		for _, p := range ni.Ipv4Prefixes {
			for _, a := range (ipam.ENI{Prefixes: []netip.Prefix{netip.MustParsePrefix(*p.Ipv4Prefix)}}).Addrs() {
				addrs[a] = *ni.NetworkInterfaceId
			}
		}
	}
	return addrs, len(out.NetworkInterfaces)
}

// keptDir makes a directory for a vpcnetd's state, socket and log below the system's temporary
// directory (short enough for a unix socket path), removed after the test unless it failed, so
// that a failed test's logs stay for a look.
func keptDir(t testing.TB, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(dir)
		}
	})
	return dir
}

// node is an agent running in the test process against a sim.
type node struct {
	t      testing.TB
	sim    *sim
	a      *agent.Agent
	cfg    agent.Config
	client agentapi.AgentClient
	http   *httptest.Server
	store  *store.Store
	stop   func()
}

// testConfig is a fast configuration: short cooldown, resync and back-off.
func testConfig(t testing.TB, x *sim) agent.Config {
	dir, err := os.MkdirTemp("", "vpcnetd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return agent.Config{
		Pool:          ipam.Settings{WarmENITarget: 1, Cooldown: 300 * time.Millisecond, Backoff: 100 * time.Millisecond, BackoffMax: time.Second, PrefixFallback: time.Minute},
		MTU:           9001,
		VethPrefix:    "eni",
		Socket:        filepath.Join(dir, "run", "vpcnetd.sock"),
		StateDir:      dir,
		CNIConfDir:    filepath.Join(dir, "net.d"),
		CNIConfName:   "10-vpcnet.conflist",
		ClusterName:   "test",
		Resync:        time.Second,
		DetachedGrace: time.Minute,
		SweepPeriod:   time.Minute,
		Cloud: cloud.Config{EC2Endpoint: x.s.Endpoint(), IMDSEndpoint: x.imds, Region: x.s.Region(), Cluster: "test",
			RatePerSec: 200, Burst: 50, MaxBackoff: 100 * time.Millisecond, CacheTTL: 100 * time.Millisecond},
	}
}

func startNode(t testing.TB, x *sim, cfg agent.Config) *node {
	t.Helper()
	st, err := store.Open(filepath.Join(cfg.StateDir, "ipam"))
	if err != nil {
		t.Fatal(err)
	}
	reg := agent.NewRegistry()
	cfg.Cloud.Observer = reg.Observer()
	cl, err := cloud.New(bg, cfg.Cloud)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a := agent.New(cfg, cl, st, reg, log)
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	conn, err := agentapi.Dial(cfg.Socket)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, sim: x, a: a, cfg: cfg, client: agentapi.NewAgentClient(conn), http: httptest.NewServer(a.Handler()), store: st}
	var once bool
	n.stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("agent: %v", err)
		}
		conn.Close()
		n.http.Close()
		st.Close()
	}
	t.Cleanup(n.stop)
	waitFor(t, 60*time.Second, "the agent to start", func() bool {
		st, err := n.client.Status(bg, &agentapi.StatusRequest{Version: agentapi.Version})
		return err == nil && st.Reason != agent.ReasonStarting
	})
	return n
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func key(id string) *agentapi.Key {
	return &agentapi.Key{Network: "vpcnet", ContainerId: id, Ifname: "eth0"}
}

func (n *node) add(id string) (*agentapi.Allocation, error) {
	r, err := n.client.Add(bg, &agentapi.AddRequest{Version: agentapi.Version, Key: key(id), PodNamespace: "default", PodName: id})
	if err != nil {
		return nil, err
	}
	return r.Allocation, nil
}

func (n *node) mustAdd(id string) netip.Addr {
	n.t.Helper()
	var al *agentapi.Allocation
	// Retry what the plugin turns into "try again later" (CNI code 11), as kubelet does: no
	// free address yet (ResourceExhausted) and an agent not ready yet (Unavailable, e.g. "the
	// pool is growing" while a slow or flaky cloud fills it).
	waitFor(n.t, 60*time.Second, "ADD "+id, func() bool {
		var err error
		al, err = n.add(id)
		if c := status.Code(err); c == codes.ResourceExhausted || c == codes.Unavailable {
			return false
		}
		if err != nil {
			n.t.Fatalf("ADD %s: %v", id, err)
		}
		return true
	})
	return netip.MustParseAddr(al.Ip)
}

func (n *node) del(id string) {
	n.t.Helper()
	if _, err := n.client.Del(bg, &agentapi.DelRequest{Version: agentapi.Version, Key: key(id)}); err != nil {
		n.t.Fatalf("DEL %s: %v", id, err)
	}
}

func (n *node) status() *agentapi.StatusReply {
	n.t.Helper()
	st, err := n.client.Status(bg, &agentapi.StatusRequest{Version: agentapi.Version})
	if err != nil {
		n.t.Fatal(err)
	}
	return st
}

// pool is the pool as EC2 shows it, with the agent's assigned count.
type poolView struct {
	total, enis, assigned, free int
}

func (n *node) pool() poolView {
	addrs, enis := n.sim.cloudAddrs(n.t)
	st := n.status()
	return poolView{total: len(addrs), enis: enis, assigned: int(st.Assigned), free: int(st.Free)}
}

// settle waits until the cloud's pool matches want and stays so across a few reconciles.
func (n *node) settle(what string, want func(p poolView) bool) poolView {
	n.t.Helper()
	var p poolView
	stable := 0
	waitFor(n.t, 60*time.Second, what, func() bool {
		p = n.pool()
		if want(p) {
			stable++
		} else {
			stable = 0
		}
		return stable >= 4
	}, func() string { return fmt.Sprintf("%+v; %s", p, n.get("/v1/status")) })
	return p
}

func (n *node) get(path string) string {
	r, err := http.Get(n.http.URL + path)
	if err != nil {
		return err.Error()
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// metric returns the sum of the samples of a metric whose line starts with prefix.
func (n *node) metric(prefix string) float64 {
	var sum float64
	for _, l := range strings.Split(n.get("/metrics"), "\n") {
		if strings.HasPrefix(l, prefix) && !strings.HasPrefix(l, "#") {
			var v float64
			fmt.Sscanf(l[strings.LastIndexByte(l, ' ')+1:], "%g", &v)
			sum += v
		}
	}
	return sum
}

func waitFor(t testing.TB, d time.Duration, what string, ok func() bool, detail ...func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			msg := ""
			for _, f := range detail {
				msg += ": " + f()
			}
			t.Fatalf("timed out after %s waiting for %s%s", d, what, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// enisFromAgent returns the addresses the agent's /v1/enis shows on managed ENIs.
func enisFromAgent(t testing.TB, base string) map[netip.Addr]string {
	r, err := http.Get(base + "/v1/enis")
	if err != nil {
		t.Logf("introspection: %v", err)
		return nil
	}
	defer r.Body.Close()
	var enis []agent.ENIView
	if err := json.NewDecoder(r.Body).Decode(&enis); err != nil {
		t.Fatal(err)
	}
	out := map[netip.Addr]string{}
	for _, e := range enis {
		if e.Unmanaged {
			continue
		}
		for a, state := range e.Addresses {
			out[netip.MustParseAddr(a)] = state
		}
	}
	return out
}

// detached counts the available (unattached) ENIs in the subnet.
func (x *sim) detached(t testing.TB) int {
	out, err := x.ec2.DescribeNetworkInterfaces(bg, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		{Name: aws.String("subnet-id"), Values: []string{x.subnet}}, {Name: aws.String("status"), Values: []string{"available"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.NetworkInterfaces)
}
