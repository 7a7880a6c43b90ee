package agent

import (
	"net/netip"
	"slices"
	"time"

	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/ipam"
)

// managedLocked returns the ENIs pods may use, by device index: not marked no_manage, not
// detached behind the agent's back (drift.go) and, with host networking, set up (the primary
// always is).
func (a *Agent) managedLocked() []cloud.ENI {
	var out []cloud.ENI
	for _, e := range a.st.enis {
		if !e.Unmanaged && !a.isLost(e.ID) && (e.DeviceIndex == 0 || a.st.setUp[e.ID] || !a.cfg.HostNetworking) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(x, y cloud.ENI) int { return x.DeviceIndex - y.DeviceIndex })
	return out
}

// stateLocked is the pool as the policy sees it. Addresses being released are left out;
// addresses being handed out count as assigned.
func (a *Agent) stateLocked(now time.Time) ipam.State {
	s := ipam.State{
		Now:          now,
		Settings:     a.cfg.Pool,
		Limits:       a.st.limits,
		Assigned:     map[netip.Addr]bool{},
		Released:     a.st.released,
		Pending:      a.st.pending,
		Demand:       a.st.demand,
		Waiting:      a.waitingLocked(now),
		Exhausted:    a.st.exhausted,
		Exhaustions:  a.st.exhaustions,
		NoCIDRBlocks: a.st.noCIDRBlocks,
		OverSince:    a.st.overSince,
		SubnetFree:   a.st.subnet.free,
		SubnetKnown:  a.st.subnet.known,
		History:      a.dem.historyLocked(),
	}
	for _, e := range a.st.enis {
		switch {
		case e.Unmanaged:
			s.Unmanaged++
		case a.isLost(e.ID), e.DeviceIndex != 0 && a.cfg.HostNetworking && !a.st.setUp[e.ID]:
			s.SettingUp++ // a lost ENI (drift.go) holds its slot until it is re-attached
		}
	}
	for _, e := range a.managedLocked() {
		ie := ipam.ENI{ID: e.ID, DeviceIndex: e.DeviceIndex, Keep: !e.Ours()}
		for _, ip := range e.IPs {
			if !a.st.leaving[ip] {
				ie.IPs = append(ie.IPs, ip)
			}
		}
		for _, p := range e.Prefixes {
			if !a.st.leaving[p.Addr()] {
				ie.Prefixes = append(ie.Prefixes, p)
			}
		}
		s.ENIs = append(s.ENIs, ie)
	}
	for _, al := range a.store.List() {
		s.Assigned[al.Addr] = true
	}
	for ip := range a.st.reserved {
		s.Assigned[ip] = true
	}
	return s
}

// capacityLocked is what the node can hold (ipam.CapacityOf) and the pool as counted now.
func (a *Agent) capacityLocked(now time.Time) (ipam.Capacity, ipam.Summary) {
	s := a.stateLocked(now)
	return ipam.CapacityOf(s), ipam.Count(s)
}

// pickLocked is freeLocked for an ADD's first look: an ADD that finds no address counts as
// waiting (missed, see waitingLocked) until one is handed out.
// who names the pod (see waitingLocked).
func (a *Agent) pickLocked(now time.Time, who string) (netip.Addr, cloud.ENI, bool) {
	if ip, e, ok := a.freeLocked(now); ok {
		delete(a.st.missed, who)
		return ip, e, true
	}
	a.missLocked(who, now)
	return netip.Addr{}, cloud.ENI{}, false
}

// freeLocked finds an address Add may hand out now: on the lowest ENI, not held, reserved,
// leaving or cooling down. It finds none once pods hold as many addresses as the node can hold
// (ipam.CapacityOf, MAX_PODS included): a lowered MAX_PODS is enforced at once, whatever the
// pool still holds until its release delay is over.
func (a *Agent) freeLocked(now time.Time) (netip.Addr, cloud.ENI, bool) {
	if c, sum := a.capacityLocked(now); sum.Assigned >= c.Pods {
		return netip.Addr{}, cloud.ENI{}, false
	}
	s := ipam.State{Now: now, Settings: a.cfg.Pool, Released: a.st.released}
	for _, e := range a.managedLocked() {
		for _, ip := range (ipam.ENI{IPs: e.IPs, Prefixes: e.Prefixes}).Addrs() {
			if a.st.reserved[ip] || a.st.leaving[ip] || s.InCooldown(ip) {
				continue
			}
			if _, held := a.store.Holder(ip); held {
				continue
			}
			return ip, e, true
		}
	}
	return netip.Addr{}, cloud.ENI{}, false
}

// waitWindow is how long ADDs that found no free address count as waiting for one: the runtime
// retries a pod whose ADD answered try-again within seconds.
const waitWindow = 10 * time.Second

// waitingLocked is how many ADDs wait for an address (ipam.State.Waiting): those that found none
// and were not served since, while the last of them is less than waitWindow old. With a short
// release delay, an address fetched for them is then not given back before their retry.
//
// Waiting pods are counted once each, by pod (namespace/name; the container ID outside
// Kubernetes): a runtime that retries one pod's ADD again and again (kubelet, each retry with a
// new sandbox) is one pod waiting, not one more per try. Counting tries made a node in an
// exhausted subnet believe, after a few minutes of retries, that 80 and more pods waited.
func (a *Agent) waitingLocked(now time.Time) int {
	n := 0
	for who, t := range a.st.missed {
		if now.Sub(t) >= waitWindow {
			delete(a.st.missed, who)
			continue
		}
		n++
	}
	return n
}

// missLocked records that who's ADD found no free address at now.
func (a *Agent) missLocked(who string, now time.Time) {
	if a.st.missed == nil {
		a.st.missed = map[string]time.Time{}
	}
	a.st.missed[who] = now
}

func (a *Agent) onPrefix(e cloud.ENI, ip netip.Addr) bool {
	for _, p := range e.Prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// eniOfLocked returns the ENI holding ip.
func (a *Agent) eniOfLocked(ip netip.Addr) (cloud.ENI, bool) {
	for _, e := range a.st.enis {
		if slices.Contains(e.IPs, ip) || a.onPrefix(e, ip) {
			return e, true
		}
	}
	return cloud.ENI{}, false
}

// pruneReleasedLocked forgets release times whose cooldown is over.
func (a *Agent) pruneReleasedLocked(now time.Time) {
	for ip, t := range a.st.released {
		if !now.Before(t.Add(a.cfg.Pool.Cooldown)) {
			delete(a.st.released, ip)
		}
	}
}

// nextDeviceLocked is the lowest device index no attached ENI uses.
func (a *Agent) nextDeviceLocked() int {
	used := map[int]bool{}
	for _, e := range a.st.enis {
		used[e.DeviceIndex] = true
	}
	d := 1
	for used[d] {
		d++
	}
	return d
}

// view is a consistent snapshot for metrics and status.
type view struct {
	sum        ipam.Summary
	capacity   ipam.Capacity
	subnetFree int
	status     Status
}

func (a *Agent) view() view {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	c, sum := a.capacityLocked(now)
	return view{sum: sum, capacity: c, subnetFree: a.st.subnet.free, status: a.statusLocked(now, sum)}
}
