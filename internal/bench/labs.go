package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/vpcnet/vpcnet/internal/lab"
)

// benchLab is one lab the bench brought up and will take down.
type benchLab struct {
	name   string
	cfg    lab.Config
	client *lab.Client
}

func (l *benchLab) dir() string      { return filepath.Join(lab.PathsFor(l.name).Dir, "bench") }
func (l *benchLab) cacheDir() string { return filepath.Join(l.dir(), "cni-cache") }

// labSpec is what a scenario asks of its lab.
type labSpec struct {
	suffix       string // appended to the bench's name
	instanceType string
	nodes        int
	subnet       netip.Prefix
	agent        map[string]string
	latency      map[string]time.Duration // vpcsim's EC2 latency by action
	runtime      string                   // lab.Config.Runtime: "" bare namespaces, "kubernetes"
}

// up brings a lab up and registers its teardown with the runner before anything can fail.
func (r *runner) up(ctx context.Context, spec labSpec) (*benchLab, error) {
	name := r.name + spec.suffix
	cfg := lab.DefaultConfig(name)
	cfg.InstanceType = spec.instanceType
	cfg.Subnets = []netip.Prefix{spec.subnet}
	cfg.Agent = spec.agent
	if len(spec.latency) > 0 {
		cfg.EC2Latency = map[string]lab.Duration{}
		for a, d := range spec.latency {
			cfg.EC2Latency[a] = lab.Duration(d)
		}
	}
	cfg.AgentBin, cfg.CNIBin = r.agentBin, r.cniBin
	cfg.Runtime = spec.runtime
	r.teardown(name)
	r.progress(fmt.Sprintf("lab %s: up with %d × %s, %v", name, spec.nodes, spec.instanceType, cfg.AgentEnv()))
	c, err := lab.Up(ctx, lab.UpOptions{Config: cfg, Nodes: spec.nodes, Controller: r.opts.Controller, Progress: func(string) {}})
	if err != nil {
		return nil, fmt.Errorf("lab %s: %w", name, err)
	}
	got, err := lab.ReadConfig(lab.PathsFor(name))
	if err != nil {
		return nil, err
	}
	l := &benchLab{name: name, cfg: got, client: c}
	if err := os.MkdirAll(l.cacheDir(), 0o700); err != nil {
		return nil, err
	}
	return l, nil
}

// down takes the lab down now (the runner's teardown at the end stays as a safety net).
func (r *runner) down(l *benchLab) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return lab.Down(ctx, l.name, func(string) {})
}

// teardown makes sure the named lab is gone when the run ends, whatever happens.
func (r *runner) teardown(name string) {
	r.cleanups = append(r.cleanups, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		return lab.Down(ctx, name, func(string) {})
	})
}

// nodes returns the lab's nodes.
func (l *benchLab) nodes(ctx context.Context) ([]lab.NodeInfo, error) {
	st, err := l.client.Status(ctx)
	if err != nil {
		return nil, err
	}
	if len(st.Nodes) == 0 {
		return nil, errors.New("lab " + l.name + " has no nodes")
	}
	return st.Nodes, nil
}

// waitFree waits until the node's agent has at least n addresses free to hand out.
func (l *benchLab) waitFree(ctx context.Context, node string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := l.client.Status(ctx)
		if err != nil {
			return err
		}
		n0, err := lab.FindNode(st, node)
		if err != nil {
			return err
		}
		if n0.Agent.Free >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s: %d addresses free after %s, want %d (%s: %s)", node, n0.Agent.Free, timeout, n, n0.Agent.Reason, n0.Agent.Message)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ControllerCommand runs the lab controller from the vpcnet binary at exe (for callers that
// are not vpcnet themselves, such as tests).
func ControllerCommand(exe string) func(name string) *exec.Cmd {
	return func(name string) *exec.Cmd { return exec.Command(exe, "lab", "controller", "--name", name) }
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
