package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/probe"
	"github.com/vpcnet/vpcnet/internal/netnsx"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// simNode is a node for the scale-out scenario: vpcsim with EC2-like latencies, served in a
// namespace of its own behind a proxy that records every call, and a real vpcnetd (addresses
// only, no host networking) launched as a fresh instance. The lab does not (yet) let one set
// vpcsim's latency knobs, so the scenario builds this small harness itself; it is named like a
// lab so that the lab's sweep removes whatever a crash leaves.
type simNode struct {
	name    string // lab-style name: namespaces vpcnet-<name>-..., state under lab.Root()
	ns      string
	paths   lab.NodePaths
	sim     *vpcsim.Server
	proxy   *http.Server
	proxyLn net.Listener
	hc      *http.Client
	start   time.Time     // when vpcnetd was started
	ready   time.Duration // when its CNI config appeared, after start
	agent   *exec.Cmd

	mu    sync.Mutex
	calls []recorded
}

// recorded is one EC2 call through the proxy.
type recorded struct {
	action     string
	start, end time.Time
}

// startSimNode builds the harness and launches an instance of itype, without the agent yet.
func startSimNode(ctx context.Context, name, itype, agentBin string, latency map[string]time.Duration) (*simNode, error) {
	n := &simNode{name: name, ns: lab.NodeNS(name, 1), paths: lab.PathsFor(name).Node(1)}
	if err := os.MkdirAll(n.paths.Dir, 0o700); err != nil {
		return n, err
	}
	h, err := netnsx.Create(n.ns)
	if err != nil {
		return n, err
	}
	h.Close()
	n.hc = &http.Client{Transport: &http.Transport{DialContext: probe.Dialer(n.ns)}}
	err = probe.In(n.ns, func() error {
		var err error
		if n.sim, err = vpcsim.Start("127.0.0.1:0", vpcsim.Options{Latency: latency}); err != nil {
			return err
		}
		n.proxyLn, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	})
	if err != nil {
		return n, err
	}
	target, _ := url.Parse(n.sim.Endpoint())
	n.proxy = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.forward(w, r, target) }), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = n.proxy.Serve(n.proxyLn) }()

	c := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(n.sim.Endpoint()), HTTPClient: n.hc,
		Credentials: credentials.NewStaticCredentialsProvider("vpcnet-bench", "vpcnet-bench", "")})
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.20.0.0/16")})
	if err != nil {
		return n, err
	}
	sn, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.20.0.0/20"), AvailabilityZone: aws.String("us-east-1a")})
	if err != nil {
		return n, err
	}
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-vpcnet-bench"), InstanceType: types.InstanceType(itype),
		SubnetId: sn.Subnet.SubnetId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		return n, err
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	var imds string
	if err := probe.In(n.ns, func() error {
		var err error
		imds, err = n.sim.IMDSEndpoint(id)
		return err
	}); err != nil {
		return n, err
	}
	for _, d := range []string{n.paths.AgentState(), n.paths.CNIConfDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return n, err
		}
	}
	n.agent = exec.Command(agentBin)
	n.agent.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=/root",
		"VPCNET_STATE_DIR=" + n.paths.AgentState(),
		"VPCNET_SOCKET=" + n.paths.AgentSocket(),
		"VPCNET_CNI_CONF_DIR=" + n.paths.CNIConfDir(),
		"VPCNET_CNI_CONF_NAME=10-vpcnet.conflist",
		"VPCNET_HOST_NETWORKING=false",
		"VPCNET_CLUSTER_NAME=" + name,
		"AWS_EC2_ENDPOINT=http://" + n.proxyLn.Addr().String(),
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + imds,
		"AWS_ACCESS_KEY_ID=vpcnet-bench", "AWS_SECRET_ACCESS_KEY=vpcnet-bench",
	}
	n.agent.Dir = n.paths.Dir
	return n, nil
}

// launch starts vpcnetd: the moment the node's agent starts is the scenario's zero.
func (n *simNode) launch() error {
	logf, err := os.OpenFile(n.paths.AgentLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	n.agent.Stdout, n.agent.Stderr = logf, logf
	n.start = time.Now()
	if err := lab.StartIn(n.ns, n.agent); err != nil {
		return err
	}
	go func() { _ = n.agent.Wait() }()
	return lab.WritePID(n.paths.AgentPID(), n.agent.Process.Pid)
}

// forward passes one EC2 request to vpcsim and records its action and timing.
func (n *simNode) forward(w http.ResponseWriter, r *http.Request, target *url.URL) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	action := "?"
	if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") != "" {
		action = v.Get("Action")
	}
	start := time.Now()
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, target.String()+r.URL.RequestURI(), bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := n.hc.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	n.mu.Lock()
	n.calls = append(n.calls, recorded{action: action, start: start, end: time.Now()})
	n.mu.Unlock()
}

// recordedCalls returns the calls so far, relative to the agent's start, with the configured
// latency of each action as the time the cloud kept it busy.
func (n *simNode) recordedCalls(latency map[string]time.Duration) ([]Call, map[string]int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Call, 0, len(n.calls))
	count := map[string]int{}
	for _, c := range n.calls {
		out = append(out, Call{Action: c.action, Start: c.start.Sub(n.start), Latency: latency[c.action]})
		count[c.action]++
	}
	return out, count
}

// confReady reports whether the agent has written its CNI config (it can hand out an address).
func (n *simNode) confReady() bool {
	_, err := os.Stat(filepath.Join(n.paths.CNIConfDir(), "10-vpcnet.conflist"))
	return err == nil
}

// metrics fetches the agent's Prometheus metrics from inside the node's namespace.
func (n *simNode) metrics(ctx context.Context) ([]Metric, error) {
	return agentMetrics(ctx, n.ns)
}

// close stops the agent, vpcsim and the proxy, and removes the namespace and state.
func (n *simNode) close() error {
	var errs []error
	if n.agent != nil && n.agent.Process != nil {
		errs = append(errs, lab.Terminate(n.agent.Process.Pid, 5*time.Second))
	}
	if n.proxy != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = n.proxy.Shutdown(ctx)
		cancel()
	}
	if n.sim != nil {
		errs = append(errs, n.sim.Close())
	}
	errs = append(errs, netnsx.Delete(n.ns), os.RemoveAll(lab.PathsFor(n.name).Dir))
	return errors.Join(errs...)
}

// agentMetrics fetches vpcnetd's /metrics from its default loopback address in the namespace.
func agentMetrics(ctx context.Context, nsName string) ([]Metric, error) {
	b, err := agentGet(ctx, nsName, "/metrics")
	if err != nil {
		return nil, err
	}
	return ParseMetrics(string(b)), nil
}

// agentGet fetches one path of vpcnetd's introspection server in the namespace.
func agentGet(ctx context.Context, nsName, path string) ([]byte, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: probe.Dialer(nsName), DisableKeepAlives: true}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:61678"+path, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("vpcnetd in %s: %w", nsName, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("vpcnetd in %s: %s: %s", nsName, path, resp.Status)
	}
	return b, err
}
