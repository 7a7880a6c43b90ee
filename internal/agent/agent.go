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

	// Resync is how often the loop runs when nothing happens, and how long IMDS may be
	// unreadable before EC2 is described instead (VPCNET_RESYNC_PERIOD).
	Resync        time.Duration
	DetachedGrace time.Duration // how long a detached ENI of ours lives before it is deleted
	// SweepPeriod is the mean time between two sweeps for detached ENIs of the cluster
	// (VPCNET_DETACHED_ENI_SWEEP; ±25 % jitter; the first within one period of the start).
	SweepPeriod time.Duration
	Cloud       cloud.Config
	Kube        Kube // nil: no Kubernetes side (kube.go)
	// PodGCGrace is how long a pod must be gone from the API server before the Kubernetes side
	// releases its address (VPCNET_POD_GC_GRACE; internal/k8s's GC; 0 turns it off).
	PodGCGrace time.Duration
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

// pool is the agent's mutable view of the node; guarded by Agent.mu. It is split by purpose;
// the parts are embedded, so a field is named the same wherever it lives (a.st.enis).
type pool struct {
	inventory    // what the node has, as the cloud says
	allocations  // addresses on their way to or from pods, and ADDs waiting for one
	operations   // cloud actions in flight
	cloudHealth  // what the cloud answered lately: failures, exhaustion, back-offs
	policyMemory // what ipam.Decide said and is given back (OverSince), for the next pass and status

	started     bool // init is done
	confWritten bool // the CNI config is on disk
}

// inventory is the node as the cloud says: its instance, limits, ENIs and subnet.
type inventory struct {
	id       cloud.Identity
	limits   ipam.Limits
	maxPods  int
	enis     map[string]cloud.ENI // attached ENIs, unmanaged ones included
	setUp    map[string]bool      // secondary ENIs whose device and table are set up (host networking)
	subnet   subnetCount
	drift    drift                // the cloud changed behind the agent (drift.go)
	dotTried map[string]time.Time // ENI ID -> last DeleteOnTermination attempt (termination.go)
}

// allocations are the pool's addresses between the store and the cloud, and the ADDs that
// found none.
type allocations struct {
	reserved map[netip.Addr]bool      // picked by an Add whose store write is under way
	leaving  map[netip.Addr]bool      // being unassigned or freed with their ENI
	released map[netip.Addr]time.Time // when each recently released address was freed (cooldown)
	demand   int                      // ADDs that found no free address since the last pass
	missed   map[string]time.Time     // pods whose ADD found no free address and that were not served since, with their last try (see waitingLocked)
}

// operations are the cloud actions under way.
type operations struct {
	pending ipam.Pending
	ops     int  // actions in flight
	changes int  // bumped by every local change, so a Describe started before one is not applied
	stale   bool // a call failed: compare with EC2 again as soon as nothing is in flight
}

// cloudHealth is what the cloud answered lately.
type cloudHealth struct {
	exhausted    time.Time // last InsufficientFreeAddressesInSubnet
	exhaustions  int       // in a row
	noCIDRBlocks time.Time // last InsufficientCidrBlocks
	cloudErr     error     // last failure to reach the cloud; nil once a call succeeds
	failures     int       // cloud failures in a row
	retryAt      time.Time // no actions before then, after a failure
}

// policyMemory is what the policy's last answer left for the next pass and for status; like
// the demand log (demand.go), it goes back into ipam.State, never hidden in the policy.
type policyMemory struct {
	lastPlan  ipam.Plan // for status and /v1/config
	overSince time.Time // since when the plans have said the pool is above its target (ipam.State.OverSince)
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
		inventory: inventory{enis: map[string]cloud.ENI{}, setUp: map[string]bool{}},
		allocations: allocations{
			reserved: map[netip.Addr]bool{},
			leaving:  map[netip.Addr]bool{},
			released: s.Released(), // cooldowns survive restarts
		},
		operations: operations{pending: ipam.Pending{Busy: map[string]bool{}}},
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
