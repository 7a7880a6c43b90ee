package controller

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/fabric"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// Controller is one running lab.
type Controller struct {
	cfg   lab.Config
	paths lab.Paths
	logf  func(format string, args ...any)
	sim   *vpcsim.Server
	fab   *fabric.Fabric
	ec2   *ec2.Client
	calls *callLog // every EC2 call vpcsim served

	op sync.Mutex // serializes changes to nodes and pods

	mu      sync.Mutex // guards what follows
	vpcID   string
	subnets []subnet
	nodes   []*node
	pods    map[string]*pod
	nextIdx int
	servers []*http.Server
	done    chan struct{}
}

type subnet struct {
	ID   string
	CIDR netip.Prefix
	AZ   string
}

// Run runs the named lab's controller until ctx ends or the CLI asks it to shut down. It
// expects to be started inside the lab's router namespace, with lab.json in place.
func Run(ctx context.Context, name string) error {
	paths := lab.PathsFor(name)
	cfg, err := lab.ReadConfig(paths)
	if err != nil {
		return fmt.Errorf("lab %s: %w", name, err)
	}
	logger := log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
	c := &Controller{cfg: cfg, paths: paths, logf: logger.Printf, pods: map[string]*pod{}, nextIdx: 1, done: make(chan struct{})}
	if err := os.WriteFile(paths.ControllerPID(), []byte(fmt.Sprint(os.Getpid())), 0o600); err != nil {
		return err
	}
	if err := c.start(); err != nil {
		c.logf("start: %v", err)
		c.stop()
		return err
	}
	c.logf("lab %s up: VPC %s %s", name, c.vpcID, cfg.VPCCIDR)
	select {
	case <-ctx.Done():
	case <-c.done:
	}
	c.stop()
	return nil
}

// start brings up the fabric, vpcsim, the listeners and the VPC.
func (c *Controller) start() error {
	if err := fabric.SetupRouter(lab.RouterNS(c.cfg.Name), lab.InternetNS(c.cfg.Name)); err != nil {
		return err
	}
	c.fab = fabric.New(lab.RouterNS(c.cfg.Name), c.logf)
	latency := map[string]time.Duration{}
	for a, d := range c.cfg.EC2Latency {
		latency[a] = time.Duration(d)
	}
	sim, err := vpcsim.Start("127.0.0.1:0", vpcsim.Options{
		StateDir: c.paths.SimState(),
		// The operator credential, for the lab's own clients (lab.EC2Client); the nodes' agents
		// sign with their instance role's credentials from IMDS.
		CredentialsFile: c.paths.OperatorCredentials(),
		Latency:         latency,
		Hook:            func(ev vpcsim.Event) { c.fab.Handle(fabricEvent(ev)) },
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		return err
	}
	c.sim = sim
	c.calls = newCallLog(lab.EC2CallsKept)
	c.ec2 = newEC2(sim.Endpoint(), &http.Client{Transport: recordingTransport{base: http.DefaultTransport, caller: lab.CallerController, log: c.calls}}, sim.CredentialsProvider())
	if err := c.serve(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.createVPC(ctx); err != nil {
		return err
	}
	// The control API opens last: `lab up` takes its first answer for "the lab is up", so a
	// node request never reaches a controller whose VPC and subnets are not made yet (on a
	// loaded machine one did: "lab has no subnet").
	return c.listen("unix", c.paths.ControlSocket(), c.controlAPI())
}

// serve opens the listeners: IMDS and EC2 for the nodes (router namespace) and the EC2 API on
// a unix socket for the root namespace (start opens the control API's socket once the VPC is
// made). Every EC2 call is recorded, the
// nodes' with the instance their source address belongs to.
func (c *Controller) serve() error {
	simURL, _ := url.Parse(c.sim.Endpoint())
	ec2Proxy := httputil.NewSingleHostReverseProxy(simURL)
	bySource := func(r *http.Request) string {
		id, err := c.sim.IdentifyBySource(r)
		if err != nil {
			return ""
		}
		return id
	}
	unknown := func(*http.Request) string { return "" }
	listeners := []struct {
		network, addr string
		h             http.Handler
	}{
		{"tcp", netip.AddrPortFrom(fabric.IMDSAddr, 80).String(), c.sim.IMDSHandler(c.sim.IdentifyBySource)},
		{"tcp", netip.AddrPortFrom(fabric.EC2Addr, 80).String(), recordCalls(ec2Proxy, bySource, c.calls)},
		{"unix", c.paths.EC2Socket(), recordCalls(ec2Proxy, unknown, c.calls)},
	}
	for _, l := range listeners {
		if err := c.listen(l.network, l.addr, l.h); err != nil {
			return err
		}
	}
	return nil
}

// listen serves h on addr (a unix socket is replaced and made 0600) until stop.
func (c *Controller) listen(network, addr string, h http.Handler) error {
	if network == "unix" {
		_ = os.Remove(addr)
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	if network == "unix" {
		_ = os.Chmod(addr, 0o600)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	c.servers = append(c.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.logf("serve %s: %v", addr, err)
		}
	}()
	return nil
}

// shutdown asks Run to return.
func (c *Controller) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
	default:
		close(c.done)
	}
}

// stop tears the lab down: pods, agents, node and internet namespaces, listeners, vpcsim.
// The router namespace, the state directory and anything a crash left are the CLI's to sweep.
func (c *Controller) stop() {
	c.op.Lock()
	defer c.op.Unlock()
	c.teardownAll()
	for _, s := range c.servers {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.Shutdown(ctx)
		cancel()
	}
	if c.sim != nil {
		_ = c.sim.Close()
	}
	c.logf("lab %s: controller stopped", c.cfg.Name)
}

// fabricEvent copies a vpcsim event into the fabric's own type.
func fabricEvent(ev vpcsim.Event) fabric.Event {
	return fabric.Event{Kind: ev.Kind, InstanceID: ev.InstanceID, ENIID: ev.ENIID, MAC: ev.MAC,
		DeviceIndex: ev.DeviceIndex, Subnet: ev.Subnet, Addrs: ev.Addrs, Prefixes: ev.Prefixes, Addr: ev.Addr, Prefix: ev.Prefix}
}
