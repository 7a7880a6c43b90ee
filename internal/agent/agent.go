// Package agent is vpcnetd, the node agent: it keeps the node's warm pool of VPC addresses by
// running the ipam policy against the cloud, hands addresses to the CNI plugin over gRPC on a
// unix socket, keeps every allocation in the crash-safe store, and reports its state through
// status, Prometheus metrics and introspection JSON.
package agent

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/ipam"
	"github.com/vpcnet/vpcnet/internal/ipam/store"
)

// Config is everything the agent is told; cmd/vpcnetd fills it from the environment and flags.
type Config struct {
	Pool ipam.Settings

	ExternalSNAT bool
	ExcludeSNAT  []netip.Prefix
	MTU          int
	VethPrefix   string

	Socket         string
	StateDir       string
	CNIConfDir     string
	CNIConfName    string
	MetricsAddr    string // "" disables the HTTP listener
	ClusterName    string
	HostNetworking bool
	BlockPodIMDS   bool   // with HostNetworking: drop pods' traffic to IMDS (VPCNET_BLOCK_POD_IMDS)
	InstanceTypes  string // catalog file; "" for the built-in one

	// PortMap chains upstream's portmap plugin after vpcnet-cni in the CNI config
	// (VPCNET_CNI_PORTMAP), so pods' hostPort works; the runtime's CNI bin directory must hold
	// a portmap binary.
	PortMap bool

	// AddWait is how long an ADD that finds no free address waits for one the pool is
	// fetching (VPCNET_ADD_WAIT); 0 answers try-again at once.
	AddWait time.Duration

	Resync        time.Duration // how often the pool is compared with EC2 when nothing happens
	DetachedGrace time.Duration // how long a detached ENI of ours lives before it is deleted
	Cloud         cloud.Config
	Kube          Kube // nil: no Kubernetes side (kube.go)
}

// Agent is a running node agent.
type Agent struct {
	cfg   Config
	cloud cloud.Cloud // nil until connect succeeds; read only after ready is closed or in Run
	// connect makes the cloud client when New was given none (the region may need IMDS).
	connect func(context.Context) (cloud.Cloud, error)
	store   *store.Store
	log     *slog.Logger
	m       *Registry
	kick    chan struct{}
	ready   chan struct{} // closed once init is done

	mu  sync.Mutex
	st  pool
	sig addrSignal // wakes ADDs waiting for an address (addwait.go)
	dem demandLog  // pod starts and grow durations, the adaptive mode's input (demand.go)
}

// pool is the agent's mutable view of the node; guarded by Agent.mu.
type pool struct {
	started  bool
	id       cloud.Identity
	limits   ipam.Limits
	maxPods  int
	enis     map[string]cloud.ENI // attached ENIs, unmanaged ones included
	setUp    map[string]bool      // secondary ENIs whose device and table are set up (host networking)
	reserved map[netip.Addr]bool  // picked by an Add whose store write is under way
	leaving  map[netip.Addr]bool  // being unassigned or freed with their ENI
	released map[netip.Addr]time.Time
	pending  ipam.Pending
	ops      int  // actions in flight
	changes  int  // bumped by every local change, so a Describe started before one is not applied
	stale    bool // a call failed: compare with EC2 again as soon as nothing is in flight
	demand   int
	missed   int       // ADDs that found no free address and have not been served since (see waitingLocked)
	missedAt time.Time // the last such ADD

	exhausted    time.Time
	exhaustions  int
	noCIDRBlocks time.Time
	cloudErr     error     // last failure to reach the cloud; nil once a call succeeds
	failures     int       // cloud failures in a row
	retryAt      time.Time // no actions before then, after a failure
	lastPlan     ipam.Plan // for status and /v1/config
	overSince    time.Time // since when the plans have said the pool is above its target
	subnet       subnetCount
	confWritten  bool
	drift        drift                // the cloud changed behind the agent (drift.go)
	dotTried     map[string]time.Time // ENI ID -> last DeleteOnTermination attempt (termination.go)
}

// subnetCount is the node subnet's free address count: EC2's AvailableIpAddressCount when last
// described, kept up to date with this node's own assigns and releases since.
type subnetCount struct {
	free  int
	known bool      // EC2 has answered at least once
	tried time.Time // when EC2 was last asked
	gen   int       // bumped by every change of the count
}

// New makes an agent; Run starts it.
// reg is the registry the cloud client's observer reports to (see Registry.Observer).
func New(cfg Config, c cloud.Cloud, s *store.Store, reg *Registry, log *slog.Logger) *Agent {
	a := &Agent{cfg: cfg, cloud: c, store: s, log: log, m: reg, kick: make(chan struct{}, 1), ready: make(chan struct{})}
	reg.watch(a)
	a.st = pool{
		enis:     map[string]cloud.ENI{},
		setUp:    map[string]bool{},
		reserved: map[netip.Addr]bool{},
		leaving:  map[netip.Addr]bool{},
		released: s.Released(), // cooldowns survive restarts
		pending:  ipam.Pending{Busy: map[string]bool{}},
	}
	return a
}

// NewConnecting is New for an agent whose cloud client is made by connect once its listeners
// serve: until connect succeeds (retried with back-off, as every init call), STATUS, ADD and
// /healthz answer cloud-unreachable with connect's error.
func NewConnecting(cfg Config, connect func(context.Context) (cloud.Cloud, error), s *store.Store, reg *Registry, log *slog.Logger) *Agent {
	a := New(cfg, nil, s, reg, log)
	a.connect = connect
	return a
}

// Run reconciles the store with the plugin's records, serves the gRPC socket and the HTTP
// listener, then reaches the cloud, initialises the
// node and keeps the pool at its targets until ctx ends. Listeners come first so that the
// plugin and the operator hear why the node is not ready (cloud-unreachable) rather than
// finding no socket.
func (a *Agent) Run(ctx context.Context) error {
	a.restoreFromPlugin()
	srv, err := a.serveGRPC()
	if err != nil {
		return err
	}
	defer srv.Stop()
	if a.cfg.MetricsAddr != "" {
		stop, err := a.serveHTTP(a.cfg.MetricsAddr)
		if err != nil {
			return err
		}
		defer stop()
	}
	if a.cloud == nil {
		c, err := retry(ctx, a, func() (cloud.Cloud, error) { return a.connect(ctx) })
		if err != nil {
			return err
		}
		a.cloud = c
	}
	if err := a.init(ctx); err != nil {
		return err
	}
	close(a.ready)
	a.kubeStarted()
	a.loop(ctx)
	return nil
}

// poke asks the reconcile loop to run soon.
func (a *Agent) poke() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}
