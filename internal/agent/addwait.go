package agent

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/ipam"
)

// DefaultAddWait is VPCNET_ADD_WAIT's default: how long an ADD that finds no free address waits
// for one the pool is fetching. A warm pool's replenish (one AssignPrivateIpAddresses, or an ENI
// create and attach) takes well under it on EC2; the runtime's own back-off after a "try again"
// is longer (kubelet: seconds).
const DefaultAddWait = 5 * time.Second

// addWaitRecheck bounds how long a waiting ADD sleeps between looks when nothing signals: a
// cooldown ending or an ENI's device being set up hands out addresses without a cloud call.
const addWaitRecheck = 100 * time.Millisecond

// addrSignal wakes ADDs waiting for an address whenever the pool may have gained one (a cloud
// action finished). Guarded by Agent.mu.
type addrSignal struct {
	ch chan struct{} // closed and replaced by broadcastLocked
}

// changedLocked returns a channel closed at the next broadcast.
func (s *addrSignal) changedLocked() <-chan struct{} {
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// broadcastLocked wakes every waiting ADD.
func (s *addrSignal) broadcastLocked() {
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// pickOrWaitLocked returns an address for an ADD. When none is free and the pool is fetching
// some (an assign or ENI create in flight, or the policy asks for one now), it waits up to
// Config.AddWait for one, re-checking whenever a cloud action finishes. It fails with
// RESOURCE_EXHAUSTED (CNI code 11, try again later) when nothing is being fetched, when the wait
// ends, or when ctx ends; the message says what it waited for and why the pool has no address,
// and the Status returned is the node's at that moment (for the pod's event).
// Called with a.mu held; returns with it held (it is released while waiting).
func (a *Agent) pickOrWaitLocked(ctx context.Context, who string) (netip.Addr, cloud.ENI, Status, error) {
	now := time.Now()
	if ip, eni, ok := a.pickLocked(now, who); ok {
		a.dem.startLocked(now) // a pod start, counted once when served (a retried ADD is one pod)
		return ip, eni, Status{}, nil
	}
	a.st.demand++ // pickLocked counted this ADD as waiting (missed) until it is served
	a.poke()
	start := now
	deadline := start.Add(a.cfg.AddWait)
	for {
		fetching, what := a.fetchingLocked(now)
		if !fetching || !now.Before(deadline) {
			st := a.statusLocked(now, ipam.Count(a.stateLocked(now)))
			waited := ""
			switch {
			case fetching:
				waited = fmt.Sprintf("waited %s (VPCNET_ADD_WAIT) for %s; ", a.cfg.AddWait, what)
			case now.Sub(start) > 0 && a.cfg.AddWait > 0:
				waited = fmt.Sprintf("waited %s, then nothing more was being fetched; ", now.Sub(start).Round(time.Millisecond))
			default:
				waited = "no address is being fetched; "
			}
			return netip.Addr{}, cloud.ENI{}, st, status.Errorf(codes.ResourceExhausted, "no free address on this node: %s%s", waited, st.Message)
		}
		changed := a.sig.changedLocked()
		a.mu.Unlock()
		t := time.NewTimer(min(time.Until(deadline), addWaitRecheck))
		select {
		case <-ctx.Done():
		case <-changed:
		case <-t.C:
		}
		t.Stop()
		a.mu.Lock()
		if err := ctx.Err(); err != nil {
			st := a.statusLocked(time.Now(), ipam.Count(a.stateLocked(time.Now())))
			return netip.Addr{}, cloud.ENI{}, st, status.Errorf(codes.ResourceExhausted, "no free address on this node: the caller gave up after %s waiting for one", time.Since(start).Round(time.Millisecond))
		}
		now = time.Now()
		if ip, eni, ok := a.freeLocked(now); ok {
			delete(a.st.missed, who) // served: no longer waiting
			a.dem.startLocked(start)
			a.m.addWaited.Inc()
			return ip, eni, Status{}, nil
		}
		a.missLocked(who, now) // still waiting: the pool keeps what is fetched for it
	}
}

// fetchingLocked reports whether addresses are on their way to the pool: an assign or ENI
// create in flight, or a plan made now would start one (the loop runs it at its next pass), and
// the cloud is not being backed off from. It also says what is being fetched, for the ADD's
// error message.
func (a *Agent) fetchingLocked(now time.Time) (bool, string) {
	p := a.st.pending
	if p.Addrs > 0 || p.CreatingENI {
		what := fmt.Sprintf("the %d addresses being assigned", p.Addrs)
		if p.CreatingENI {
			what += " (an ENI is being created and attached)"
		}
		return true, what
	}
	if a.st.cloudErr != nil || now.Before(a.st.retryAt) {
		return false, ""
	}
	plan := ipam.Decide(a.stateLocked(now))
	for _, act := range plan.Actions {
		switch act.Kind {
		case ipam.CreateENI, ipam.AssignIPs, ipam.AssignPrefixes:
			return true, "the addresses the pool is about to ask for (" + plan.Reason + ")"
		}
	}
	return false, ""
}
