package cni

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vpcnet/vpcnet/internal/agentapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Timeouts for agent calls. Add may wait for the agent to assign an address from the cloud.
const (
	addTimeout  = 20 * time.Second
	callTimeout = 5 * time.Second
)

// agent is a connection to vpcnetd on its unix socket.
type agent struct {
	socket string
	conn   *grpc.ClientConn
	api    agentapi.AgentClient
}

func dialAgent(socket string) (*agent, error) {
	conn, err := agentapi.Dial(socket)
	if err != nil {
		return nil, err
	}
	return &agent{socket: socket, conn: conn, api: agentapi.NewAgentClient(conn)}, nil
}

func (a *agent) Close() { a.conn.Close() }

func ctx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// unreachable reports whether err means the agent could not be asked at all (socket missing,
// nobody listening, not ready, or no answer in time), as opposed to an answer.
func unreachable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return false
}

// agentError turns an agent error on verb into a CNI error with the right code.
func (a *agent) agentError(verb string, err error) *types.Error {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.ResourceExhausted:
		// The agent words the cause and what frees an address (the pool growing, a full node, a
		// dry subnet, the cloud failing); the runtime retries.
		return types.NewError(types.ErrTryAgainLater, st.Message(), "try again later: no address is free on this node now; the message says why")
	case codes.Unavailable, codes.DeadlineExceeded:
		msg := fmt.Sprintf("node agent at %s is not reachable or not ready", a.socket)
		if _, serr := os.Stat(a.socket); errors.Is(serr, os.ErrNotExist) {
			msg = fmt.Sprintf("node agent socket %s does not exist (is vpcnetd running?)", a.socket)
		}
		return types.NewError(types.ErrTryAgainLater, msg, st.Message())
	case codes.NotFound:
		return types.NewError(types.ErrUnknownContainer, verb+": "+st.Message(), "")
	case codes.InvalidArgument:
		return types.NewError(types.ErrInternal, verb+": the agent refused the request: "+st.Message(), "plugin and agent versions may differ")
	}
	return types.NewError(types.ErrInternal, verb+": node agent: "+st.Message(), st.Code().String())
}

func (a *agent) add(network, containerID, ifname, netns, podNS, podName, podUID string) (*agentapi.Allocation, error) {
	c, cancel := ctx(addTimeout)
	defer cancel()
	rep, err := a.api.Add(c, &agentapi.AddRequest{Version: agentapi.Version,
		Key: &agentapi.Key{Network: network, ContainerId: containerID, Ifname: ifname}, Netns: netns,
		PodNamespace: podNS, PodName: podName, PodUid: podUID})
	if err != nil {
		return nil, err
	}
	if rep.GetAllocation() == nil {
		return nil, status.Error(codes.Internal, "agent answered Add without an allocation")
	}
	return rep.GetAllocation(), nil
}

func (a *agent) del(network, containerID, ifname string) (*agentapi.Allocation, error) {
	c, cancel := ctx(callTimeout)
	defer cancel()
	rep, err := a.api.Del(c, &agentapi.DelRequest{Version: agentapi.Version,
		Key: &agentapi.Key{Network: network, ContainerId: containerID, Ifname: ifname}})
	if err != nil {
		return nil, err
	}
	return rep.GetReleased(), nil
}

func (a *agent) check(network, containerID, ifname, ip string) (*agentapi.Allocation, error) {
	c, cancel := ctx(callTimeout)
	defer cancel()
	rep, err := a.api.Check(c, &agentapi.CheckRequest{Version: agentapi.Version,
		Key: &agentapi.Key{Network: network, ContainerId: containerID, Ifname: ifname}, Ip: ip})
	if err != nil {
		return nil, err
	}
	return rep.GetAllocation(), nil
}

func (a *agent) gc(network string, valid []types.GCAttachment) ([]*agentapi.Allocation, error) {
	c, cancel := ctx(callTimeout)
	defer cancel()
	req := &agentapi.GCRequest{Version: agentapi.Version, Network: network}
	for _, v := range valid {
		req.Valid = append(req.Valid, &agentapi.Key{Network: network, ContainerId: v.ContainerID, Ifname: v.IfName})
	}
	rep, err := a.api.GC(c, req)
	if err != nil {
		return nil, err
	}
	return rep.GetReleased(), nil
}

func (a *agent) status() (*agentapi.StatusReply, error) {
	c, cancel := ctx(callTimeout)
	defer cancel()
	return a.api.Status(c, &agentapi.StatusRequest{Version: agentapi.Version})
}

// flushPending sends the releases queued while the agent was away; every verb that reaches the
// agent calls it first, before it answers anything (STATUS included). It stops, leaving the
// rest queued, when the agent cannot be reached; a release the agent answers with an error is
// dropped (retrying would not help; the agent's GC reconciles). A queued key another process
// is working on now (its lock is held) is left for that verb, which flushes its own key: held
// is the key the caller itself holds locked, if any.
func (a *agent) flushPending(s store, network string, held *pendingRelease) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	queued, err := s.pending()
	if err != nil {
		return err
	}
	for _, p := range queued {
		var kl *keyLock
		if held == nil || *held != p {
			l, ok, err := s.lockKey(p.ContainerID, p.IfName, false)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			kl = l
		}
		err := a.sendRelease(s, network, p)
		if kl != nil {
			_, live, _ := s.loadRecord(p.ContainerID, p.IfName)
			kl.unlock(!live)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (a *agent) sendRelease(s store, network string, p pendingRelease) error {
	if _, err := a.del(network, p.ContainerID, p.IfName); err != nil && unreachable(err) {
		return err
	}
	return s.dropPending(p.ContainerID, p.IfName)
}
