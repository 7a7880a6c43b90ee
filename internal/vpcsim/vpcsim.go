// Package vpcsim is an emulated AWS VPC that real AWS clients talk to: an EC2 Query API
// endpoint and IMDSv2 endpoints over a pure model (package model), with durable state
// (package store) and realism knobs (latency, throttling, injected failures, denied actions).
// A Hook follows every committed change to attachments and addresses, for a data plane.
package vpcsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/vpcnet/vpcnet/internal/catalog"
	"github.com/vpcnet/vpcnet/internal/vpcsim/auth"
	"github.com/vpcnet/vpcnet/internal/vpcsim/ec2api"
	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
	"github.com/vpcnet/vpcnet/internal/vpcsim/store"
)

// Event is a committed change a data plane follows (see docs/CONTRACTS.md).
type Event = model.Event

// Event kinds.
const (
	EventENIAttached       = model.EventENIAttached
	EventENIDetached       = model.EventENIDetached
	EventAddressAssigned   = model.EventAddressAssigned
	EventAddressUnassigned = model.EventAddressUnassigned
	EventPrefixAssigned    = model.EventPrefixAssigned
	EventPrefixUnassigned  = model.EventPrefixUnassigned
)

// Rate is a token bucket: PerSecond tokens refill each second up to Burst.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Options configure a Server. The zero value is an in-memory VPC in us-east-1 with no latency,
// throttling or failures.
type Options struct {
	Catalog  *catalog.Catalog         // nil: catalog.Builtin()
	StateDir string                   // "": in memory only
	Region   string                   // default "us-east-1"; AZs are Region+"a", "b", ...
	Latency  map[string]time.Duration // by EC2 action name
	Throttle map[string]Rate          // token bucket by action; "*" for all
	Fail     map[string]float64       // injected error rate 0..1 by action ("*" for all)
	// Deny answers UnauthorizedOperation for these actions ("*" for all).
	Deny map[string]bool
	// ExhaustionError is how a subnet out of addresses or /28 blocks is answered on
	// CreateNetworkInterface, AssignPrivateIpAddresses and AttachNetworkInterface:
	// ExhaustionCodes (default) or ExhaustionInvalidParameter, as EC2 sometimes does.
	ExhaustionError string
	// Operator is the access key pair the operator signs with (SigV4); it may call every
	// action. Zero: the one kept in StateDir (auth.json) or, the first time, a new random one.
	// Server.OperatorCredentials tells it; CredentialsFile writes it down.
	Operator Credentials
	// CredentialsFile, when set, is written (mode 0600) as an AWS shared credentials file holding
	// the operator credential in profile "default" (for AWS_SHARED_CREDENTIALS_FILE).
	CredentialsFile string
	// InstanceRole is the IAM role every instance has: IMDS serves its temporary credentials
	// under iam/security-credentials/ROLE. Default DefaultInstanceRole.
	InstanceRole string
	// RoleCredentialTTL is how long role credentials stay valid (default 6h, as EC2's); IMDS
	// hands out new ones every sixth of it.
	RoleCredentialTTL time.Duration
	// IMDSHopLimit is the IP TTL (hops) of IMDSv2 token responses, EC2's
	// HttpPutResponseHopLimit: with 1 (the default) a token reaches the instance itself but not
	// a pod or container one routing hop behind it.
	IMDSHopLimit int
	// Hook follows the data plane: called after each committed change, in commit order, with
	// the server's lock held (it must not call back into the Server). When StateDir holds
	// state, Start first replays one eni-attached event per attached ENI.
	Hook   func(Event)
	Seed   int64
	Logger *slog.Logger
}

// Server is a running vpcsim.
type Server struct {
	log  *slog.Logger
	hook func(Event)

	mu     sync.Mutex // the model, the store, pending timers
	m      *model.Model
	st     *store.Store
	broken error
	closed bool
	timers map[*time.Timer]bool

	knobMu   sync.Mutex
	latency  map[string]time.Duration
	limiters map[string]*rateLimiter
	fail     map[string]float64
	deny     map[string]bool
	exhaust  string
	rng      *rand.Rand

	auth     *auth.Keys
	role     string
	roleTTL  time.Duration
	hopLimit int

	ln   net.Listener
	http *http.Server
	ec2  *ec2api.Handler

	imdsMu sync.Mutex
	imds   map[string]*imdsEndpoint
}

// Start opens the state (if any) and serves the EC2 API on addr ("127.0.0.1:0" in tests).
func Start(addr string, opts Options) (*Server, error) {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Catalog == nil {
		opts.Catalog = catalog.Builtin()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, hook: opts.Hook, timers: map[*time.Timer]bool{}, latency: map[string]time.Duration{},
		limiters: map[string]*rateLimiter{}, fail: map[string]float64{}, deny: map[string]bool{},
		rng: rand.New(rand.NewPCG(uint64(opts.Seed), 0x5eed)), imds: map[string]*imdsEndpoint{}}
	for a, d := range opts.Latency {
		s.latency[a] = d
	}
	for a, r := range opts.Throttle {
		s.limiters[a] = newRateLimiter(r)
	}
	for a, f := range opts.Fail {
		s.fail[a] = f
	}
	for a, d := range opts.Deny {
		s.deny[a] = d
	}
	if err := s.SetExhaustionError(opts.ExhaustionError); err != nil {
		return nil, err
	}
	if err := s.open(opts); err != nil {
		return nil, err
	}
	if err := s.configureAuth(opts); err != nil {
		if s.st != nil {
			s.st.Close()
		}
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if s.st != nil {
			s.st.Close()
		}
		return nil, fmt.Errorf("vpcsim: listen %s: %w", addr, err)
	}
	s.ln = ln
	s.ec2 = ec2api.NewHandler(s, log)
	mux := http.NewServeMux()
	mux.Handle("/", s.ec2)
	mux.HandleFunc(stsPath, s.serveSTS)
	mux.HandleFunc("/sts", s.serveSTS)
	mux.HandleFunc("GET /vpcsim/imds/{instance}", s.serveIMDSLookup)
	mux.HandleFunc("GET /vpcsim/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.http.Serve(ln)
	log.Info("vpcsim: serving", "endpoint", s.Endpoint(), "region", s.m.Region(), "state", opts.StateDir)
	return s, nil
}

// open loads the state directory (snapshot, then journal replay) or starts empty.
func (s *Server) open(opts Options) error {
	if opts.StateDir == "" {
		s.m = model.New(opts.Region, opts.Catalog, opts.Seed)
		return nil
	}
	st, ld, err := store.Open(opts.StateDir)
	if err != nil {
		return fmt.Errorf("vpcsim: %w", err)
	}
	if ld.State != nil {
		if s.m, err = model.Restore(ld.State, opts.Catalog); err != nil {
			st.Close()
			return fmt.Errorf("vpcsim: %s: %w", opts.StateDir, err)
		}
		if s.m.Region() != opts.Region {
			s.log.Warn("vpcsim: state directory keeps its region", "state", s.m.Region(), "asked", opts.Region)
		}
	} else {
		s.m = model.New(opts.Region, opts.Catalog, opts.Seed)
	}
	for _, rec := range ld.Records {
		mu, err := model.DecodeMutation(rec.Action, rec.Input)
		if err == nil {
			_, _, err = s.m.Apply(rec.Time, mu)
		}
		if err != nil {
			st.Close()
			return fmt.Errorf("vpcsim: %s: replaying journal record %d (%s): %w", opts.StateDir, rec.Seq, rec.Action, err)
		}
	}
	s.st = st
	if len(ld.Records) > 0 {
		if err := s.snapshotLocked(); err != nil {
			st.Close()
			return err
		}
	}
	if s.hook != nil {
		for _, ev := range s.m.AttachedEvents() {
			s.hook(ev)
		}
	}
	attaching, detaching := s.m.Pending()
	for _, id := range attaching {
		s.scheduleLocked(s.latencyOf("AttachNetworkInterface"), &model.CompleteAttachmentInput{AttachmentID: id})
	}
	for _, id := range detaching {
		s.scheduleLocked(s.latencyOf("DetachNetworkInterface"), &model.CompleteDetachmentInput{AttachmentID: id})
	}
	return nil
}

// Endpoint is the EC2 API URL, e.g. "http://127.0.0.1:PORT".
func (s *Server) Endpoint() string { return "http://" + s.ln.Addr().String() }

// Region is the emulated region.
func (s *Server) Region() string { return s.m.Region() }

// compactEvery is the journal length after which the state is snapshotted.
const compactEvery = 10000

// Mutate commits one change: apply to the model, journal it durably, then deliver its events.
// It implements ec2api.Backend.
func (s *Server) Mutate(_ context.Context, mu model.Mutation) (any, error) {
	switch in := mu.(type) {
	case *model.AttachNetworkInterfaceInput:
		in.Pending = s.latencyOf("AttachNetworkInterface") > 0
	case *model.DetachNetworkInterfaceInput:
		in.Pending = s.latencyOf("DetachNetworkInterface") > 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out, err := s.commitLocked(mu)
	if err != nil {
		return nil, s.exhaustionAnswer(mu, err)
	}
	switch in := mu.(type) {
	case *model.AttachNetworkInterfaceInput:
		if in.Pending {
			s.scheduleLocked(s.latencyOf("AttachNetworkInterface"), &model.CompleteAttachmentInput{AttachmentID: out.(string)})
		}
	case *model.DetachNetworkInterfaceInput:
		if in.Pending {
			s.scheduleLocked(s.latencyOf("DetachNetworkInterface"), &model.CompleteDetachmentInput{AttachmentID: in.AttachmentID})
		}
	}
	return out, nil
}

func (s *Server) commitLocked(mu model.Mutation) (any, error) {
	if s.closed {
		return nil, model.Errf(model.CodeInternalError, "vpcsim is shutting down")
	}
	if s.broken != nil {
		return nil, model.Errf(model.CodeInternalError, "vpcsim cannot write its state (%v); restart it", s.broken)
	}
	now := time.Now()
	out, events, err := s.m.Apply(now, mu)
	if err != nil {
		return nil, err
	}
	if s.st != nil {
		if err := s.st.Append(model.ActionOf(mu), now, mu); err != nil {
			// The model is ahead of the disk: refuse all further changes rather than diverge.
			s.broken = err
			s.log.Error("vpcsim: journal write failed; refusing further changes", "err", err)
			return nil, model.Internal()
		}
		if s.st.Entries() >= compactEvery {
			if err := s.snapshotLocked(); err != nil {
				s.log.Warn("vpcsim: snapshot failed; the journal keeps growing", "err", err)
			}
		}
	}
	if s.hook != nil {
		for _, ev := range events {
			s.hook(ev)
		}
	}
	return out, nil
}

func (s *Server) snapshotLocked() error {
	data, err := s.m.MarshalState()
	if err != nil {
		return err
	}
	return s.st.Snapshot(data)
}

// scheduleLocked commits mu after d (an attach or detach completing).
func (s *Server) scheduleLocked(d time.Duration, mu model.Mutation) {
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.timers, t)
		if s.closed {
			return
		}
		if _, err := s.commitLocked(mu); err != nil {
			s.log.Warn("vpcsim: completing", "action", model.ActionOf(mu), "err", err)
		}
	})
	s.timers[t] = true
}

// Read runs fn with the model locked. It implements ec2api.Backend.
func (s *Server) Read(fn func(m *model.Model) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(s.m)
}

// Metadata is an instance's IMDS view, read now.
func (s *Server) metadata(instanceID string) (*model.Metadata, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Metadata(instanceID)
}

// InstanceByAddr names the instance that holds a private address on an attached ENI.
func (s *Server) InstanceByAddr(a netip.Addr) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.InstanceByAddr(a.Unmap())
}

// Close stops serving, finishes nothing pending (pending attachments complete after restart),
// snapshots the state and releases the state directory.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.http.Close()
	}
	s.imdsMu.Lock()
	for id, ep := range s.imds {
		ep.close()
		delete(s.imds, id)
	}
	s.imdsMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for t := range s.timers {
		t.Stop()
	}
	if s.st != nil {
		if s.broken == nil {
			if serr := s.snapshotLocked(); serr != nil && err == nil {
				err = serr
			}
		}
		if cerr := s.st.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

var _ ec2api.Backend = (*Server)(nil)

// RunningInstances lists the IDs of instances that are not terminated.
func (s *Server) RunningInstances() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, id := range s.m.Instances() {
		if md, err := s.m.Metadata(id); err == nil && md.State != model.InstanceTerminated {
			out = append(out, id)
		}
	}
	return out
}
