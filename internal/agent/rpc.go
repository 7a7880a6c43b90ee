package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/ipam/store"
)

// serveGRPC listens on the unix socket (socket 0600: root only). It changes only what it
// creates: a missing directory is made 0700, an existing one is left as it is; an existing
// socket is replaced only when nothing answers on it (a crashed agent's), never when a process
// still serves it (another agent: one agent per node), and a path naming anything but a socket
// is refused, never deleted.
func (a *Agent) serveGRPC() (*grpc.Server, error) {
	sock := a.cfg.Socket
	dir := filepath.Dir(sock)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("socket directory: %w", err)
		}
	}
	if err := removeStaleSocket(sock); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", sock, err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("socket %s: %w", sock, err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(a.observeRPC))
	agentapi.RegisterAgentServer(srv, rpcServer{a: a})
	go srv.Serve(ln)
	return srv, nil
}

// removeStaleSocket removes sock if it is a socket nobody answers on. A socket that accepts a
// connection belongs to a live process, named by its pid (SO_PEERCRED) in the error.
func removeStaleSocket(sock string) error {
	fi, err := os.Lstat(sock)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("socket %s: %w", sock, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("socket %s: exists and is not a socket; refusing to replace it", sock)
	}
	conn, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err == nil {
		pid := "unknown"
		if raw, err := conn.(*net.UnixConn).SyscallConn(); err == nil {
			raw.Control(func(fd uintptr) {
				if cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
					pid = fmt.Sprint(cred.Pid)
				}
			})
		}
		conn.Close()
		return fmt.Errorf("another process (pid %s) answers on %s: one agent per node; stop it first", pid, sock)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("socket %s: cannot tell whether a process serves it: %w", sock, err)
	}
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stale socket %s: %w", sock, err)
	}
	return nil
}

// observeRPC counts and times every request and checks its version.
func (a *Agent) observeRPC(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	op := filepath.Base(info.FullMethod)
	var resp any
	err := checkVersion(req)
	if err == nil {
		resp, err = h(ctx, req)
	}
	a.m.rpcCalls.WithLabelValues(op, status.Code(err).String()).Inc()
	a.m.rpcLatency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	return resp, err
}

func checkVersion(req any) error {
	v, ok := req.(interface{ GetVersion() uint32 })
	if !ok {
		return nil
	}
	if got := v.GetVersion(); got != agentapi.Version {
		return status.Errorf(codes.InvalidArgument, "API version %d not supported: this agent speaks version %d; install matching vpcnet-cni and vpcnetd", got, agentapi.Version)
	}
	return nil
}

type rpcServer struct {
	agentapi.UnimplementedAgentServer
	a *Agent
}

func key(k *agentapi.Key) (store.Key, error) {
	if k == nil || k.ContainerId == "" || k.Ifname == "" || k.Network == "" {
		return store.Key{}, status.Error(codes.InvalidArgument, "key needs network, container_id and ifname")
	}
	return store.Key{Network: k.Network, ContainerID: k.ContainerId, IfName: k.Ifname}, nil
}

func (s rpcServer) Add(ctx context.Context, req *agentapi.AddRequest) (*agentapi.AddReply, error) {
	a := s.a
	k, err := key(req.Key)
	if err != nil {
		return nil, err
	}
	if al, ok := a.store.Get(k); ok {
		return &agentapi.AddReply{Allocation: a.allocation(al)}, nil
	}
	select {
	case <-a.ready:
	default:
		st := a.view().status
		return nil, status.Errorf(codes.Unavailable, "%s: %s", st.Reason, st.Message)
	}
	a.mu.Lock()
	who := req.PodNamespace + "/" + req.PodName // one pod, however often its ADD is retried
	if req.PodName == "" {
		who = k.ContainerID
	}
	ip, eni, st, err := a.pickOrWaitLocked(ctx, who) // waits up to VPCNET_ADD_WAIT for an address on its way
	if err != nil {
		a.mu.Unlock()
		a.kubeAddRefused(req.PodNamespace, req.PodName, st)
		return nil, err
	}
	a.st.reserved[ip] = true
	a.mu.Unlock()
	err = a.store.Put(store.Alloc{Key: k, Addr: ip, ENI: eni.ID, PodNamespace: req.PodNamespace, PodName: req.PodName, PodUID: req.PodUid,
		Netns: req.Netns, At: time.Now().UTC()})
	a.mu.Lock()
	delete(a.st.reserved, ip)
	a.mu.Unlock()
	a.poke()
	switch {
	case errors.Is(err, store.ErrKeyHolds): // a concurrent Add for the same key won
		if al, ok := a.store.Get(k); ok {
			return &agentapi.AddReply{Allocation: a.allocation(al)}, nil
		}
		return nil, status.Errorf(codes.Aborted, "concurrent Add and Del for %s", k)
	case err != nil:
		return nil, status.Errorf(codes.Internal, "recording %s for %s: %v", ip, k, err)
	}
	al, _ := a.store.Get(k)
	a.log.Debug("add", "key", k.String(), "ip", ip, "eni", eni.ID)
	return &agentapi.AddReply{Allocation: a.allocation(al)}, nil
}

func (s rpcServer) Del(ctx context.Context, req *agentapi.DelRequest) (*agentapi.DelReply, error) {
	k, err := key(req.Key)
	if err != nil {
		return nil, err
	}
	al, ok, err := s.a.store.Delete(k)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "releasing %s: %v", k, err)
	}
	if !ok {
		return &agentapi.DelReply{}, nil
	}
	s.a.released(al)
	return &agentapi.DelReply{Released: s.a.allocation(al)}, nil
}

func (s rpcServer) Check(ctx context.Context, req *agentapi.CheckRequest) (*agentapi.CheckReply, error) {
	k, err := key(req.Key)
	if err != nil {
		return nil, err
	}
	al, ok := s.a.store.Get(k)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "%s holds no address", k)
	}
	if req.Ip != "" && req.Ip != al.Addr.String() {
		return nil, status.Errorf(codes.NotFound, "%s holds %s, not %s", k, al.Addr, req.Ip)
	}
	return &agentapi.CheckReply{Allocation: s.a.allocation(al)}, nil
}

func (s rpcServer) GC(ctx context.Context, req *agentapi.GCRequest) (*agentapi.GCReply, error) {
	if req.Network == "" {
		return nil, status.Error(codes.InvalidArgument, "GC needs a network")
	}
	var valid []store.Key
	for _, k := range req.Valid {
		valid = append(valid, store.Key{Network: k.Network, ContainerID: k.ContainerId, IfName: k.Ifname})
	}
	gone, err := s.a.store.GC(req.Network, valid)
	rep := &agentapi.GCReply{}
	for _, al := range gone {
		s.a.released(al)
		rep.Released = append(rep.Released, s.a.allocation(al))
	}
	if err != nil {
		return rep, status.Errorf(codes.Internal, "GC: %v", err)
	}
	return rep, nil
}

func (s rpcServer) Status(ctx context.Context, req *agentapi.StatusRequest) (*agentapi.StatusReply, error) {
	st := s.a.view().status
	return &agentapi.StatusReply{Ready: st.Ready, Reason: st.Reason, Message: st.Message, Free: uint32(st.Free), Assigned: uint32(st.Assigned), MaxPods: uint32(st.MaxPods)}, nil
}

// released starts the cooldown of a released address and lets the pool react.
func (a *Agent) released(al store.Alloc) {
	a.mu.Lock()
	a.st.released[al.Addr] = time.Now()
	a.mu.Unlock()
	a.log.Debug("del", "key", al.Key.String(), "ip", al.Addr)
	a.poke()
}

// allocation is what the plugin needs to wire an address.
func (a *Agent) allocation(al store.Alloc) *agentapi.Allocation {
	a.mu.Lock()
	e, ok := a.eniOfLocked(al.Addr)
	id := a.st.id
	a.mu.Unlock()
	out := &agentapi.Allocation{
		Key:          &agentapi.Key{Network: al.Key.Network, ContainerId: al.Key.ContainerID, Ifname: al.Key.IfName},
		Ip:           al.Addr.String(),
		EniId:        al.ENI,
		PodNamespace: al.PodNamespace,
		PodName:      al.PodName,
		Netns:        al.Netns,
		PodUid:       al.PodUID,
	}
	if ok {
		out.EniId, out.EniMac = e.ID, e.MAC
		out.DeviceIndex, out.RouteTable = uint32(e.DeviceIndex), uint32(dataplane.TableForDevice(e.DeviceIndex))
	}
	if id.SubnetCIDR.IsValid() {
		out.SubnetCidr = id.SubnetCIDR.String()
		out.SubnetGateway = id.SubnetCIDR.Masked().Addr().Next().String()
	}
	for _, p := range id.VPCCIDRs {
		out.VpcCidrs = append(out.VpcCidrs, p.String())
	}
	return out
}
