package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/ipam"
)

// loop runs the policy whenever something changes (an Add, a Del, an action finishing), when
// the plan says the state changes by itself (a cooldown ending), and every Resync.
//
// EC2 is not polled (issue 16 item 2): the node's ENIs are compared with IMDS every second
// (watchDrift), and DescribeNetworkInterfaces runs only when an answer is needed: a call failed,
// IMDS disagrees with the view, a repair needs EC2's word, or IMDS could not be read for a whole
// Resync period. A node whose pods do not change makes no EC2 call but the detached-ENI sweep.
func (a *Agent) loop(ctx context.Context) {
	lastRefresh := time.Now()
	nextSweep := time.Now().Add(sweepDelay(a.cfg.SweepPeriod, true))
	go a.watchDrift(ctx)
	a.mu.Lock()
	a.repairLocked(ctx) // pods restored from the store whose address the cloud took meanwhile
	a.mu.Unlock()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if a.dirty() || a.imdsBlind(lastRefresh) {
			if a.refresh(ctx) {
				lastRefresh = time.Now()
			}
		}
		a.mu.Lock()
		a.ensureDeleteOnTerminationLocked(ctx) // a failed attach-time DeleteOnTermination, retried
		a.mu.Unlock()
		if now := time.Now(); !now.Before(nextSweep) || a.sweepWanted(now) {
			nextSweep = now.Add(sweepDelay(a.cfg.SweepPeriod, false))
			a.mu.Lock()
			a.st.drift.swept = now
			a.mu.Unlock()
			go a.cleanup(ctx)
		}
		a.setupENIs()
		if a.subnetStaleForGrow(time.Now()) {
			_, _ = a.refreshSubnet(ctx, 0)
		}
		wake := a.reconcile(ctx)
		a.kubeStatus()
		d := min(a.cfg.Resync, max(time.Until(nextSweep), 10*time.Millisecond))
		if !wake.IsZero() {
			d = min(d, max(time.Until(wake), 10*time.Millisecond))
		}
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
			if !timer.Stop() {
				<-timer.C
			}
		case <-timer.C:
		}
	}
}

// imdsBlind reports whether the view has gone a whole Resync period, and two IMDS reads beyond
// it (a read slowed down by a loaded node is not blindness), without IMDS agreeing with it (IMDS
// unreadable, or a comparison never settled) and without a Describe: EC2 is asked then.
func (a *Agent) imdsBlind(lastRefresh time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now, blind := time.Now(), a.cfg.Resync+2*imdsCheckPeriod
	return now.Sub(lastRefresh) >= blind && now.Sub(a.st.drift.agreed) >= blind
}

// sweepDelay is how long until the next detached-ENI sweep: the period with ±25 % jitter, so
// that nodes started together do not sweep together; the first one comes at a uniformly random
// moment within the period (a whole cluster started at once spreads its sweeps over it).
func sweepDelay(period time.Duration, first bool) time.Duration {
	if period <= 0 {
		period = time.Hour
	}
	if first {
		return time.Duration(rand.Int64N(int64(period)))
	}
	return period*3/4 + time.Duration(rand.Int64N(int64(period)/2+1))
}

// sweepWanted reports whether a sweep should run now, ahead of its time: EC2 said the subnet is
// short of addresses, which leaked ENIs may hold, and no sweep ran within half the grace (an
// ENI detached more recently than the grace is not deleted anyway).
func (a *Agent) sweepWanted(now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.exhausted.After(a.st.drift.swept) && now.Sub(a.st.drift.swept) >= a.cfg.DetachedGrace/2
}

// reconcile runs the policy once and starts its actions; it returns when to look again.
func (a *Agent) reconcile(ctx context.Context) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	a.pruneReleasedLocked(now)
	s := a.stateLocked(now)
	plan := ipam.Decide(s)
	switch { // the release delay runs from the first plan that found the pool above its target
	case !plan.Over:
		a.st.overSince = time.Time{}
	case a.st.overSince.IsZero():
		a.st.overSince = now
	}
	a.st.demand = 0
	if plan.Reason != a.st.lastPlan.Reason && len(plan.Actions) > 0 {
		a.log.Info("pool", "reason", plan.Reason, "actions", len(plan.Actions))
	}
	a.st.lastPlan = plan
	a.maybeWriteConfLocked(ipam.Count(s))
	if now.Before(a.st.retryAt) { // the cloud failed: wait before calling it again
		return a.st.retryAt
	}
	for _, act := range plan.Actions {
		a.startLocked(ctx, act)
	}
	return plan.Wake
}

// startLocked marks what act touches as busy and runs it in the background: an ENI attach
// never blocks Add or actions on other ENIs.
func (a *Agent) startLocked(ctx context.Context, act ipam.Action) {
	p := &a.st.pending
	switch act.Kind {
	case ipam.Backoff:
		return
	case ipam.CreateENI:
		// The ENI comes with its addresses: they count as being assigned until it is attached.
		n := act.Count
		if act.ByPrefix {
			n *= 16
		}
		p.CreatingENI, p.Addrs = true, p.Addrs+n
		dev, id := a.nextDeviceLocked(), a.st.id
		began := time.Now()
		a.run(ctx, func() error {
			eni, err := a.createENI(ctx, id, dev, act.Count, act.ByPrefix)
			if err != nil {
				a.mu.Lock()
				p.CreatingENI, p.Addrs = false, p.Addrs-n
				a.mu.Unlock()
				return err
			}
			// Attached: the ENI is ours to track even if its set-up fails (retried each pass).
			// Its addresses are handed out once it is set up (managedLocked).
			serr := a.setupENI(eni)
			a.mu.Lock()
			defer a.mu.Unlock()
			p.CreatingENI, p.Addrs = false, p.Addrs-n
			got := len(eni.IPs) + 16*len(eni.Prefixes)
			a.adjustSubnetLocked(1 + got) // the ENI's primary address and the ones it came with
			a.st.enis[eni.ID] = eni
			a.st.changes++ // an IMDS read from before the attach must not find it missing (drift.go)
			a.st.setUp[eni.ID] = serr == nil
			if got > 0 {
				a.st.exhaustions, a.st.exhausted = 0, time.Time{}
				a.dem.replenishedLocked(time.Since(began)) // the adaptive mode's replenish latency
			}
			a.log.Info("attached ENI", "eni", eni.ID, "device", dev, "mac", eni.MAC, "addresses", len(eni.IPs), "prefixes", len(eni.Prefixes), "setUp", serr == nil)
			return serr
		})
	case ipam.AssignIPs, ipam.AssignPrefixes:
		n := act.Count
		if act.Kind == ipam.AssignPrefixes {
			n *= 16
		}
		p.Busy[act.ENI], p.Addrs = true, p.Addrs+n
		began := time.Now()
		a.run(ctx, func() error {
			var ips []netip.Addr
			var pfx []netip.Prefix
			var err error
			if act.Kind == ipam.AssignIPs {
				ips, err = a.assignIPs(ctx, act.ENI, act.Count)
			} else {
				pfx, err = a.cloud.AssignPrefixes(ctx, act.ENI, act.Count)
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			delete(p.Busy, act.ENI)
			p.Addrs -= n
			if err == nil {
				a.adjustSubnetLocked(len(ips) + 16*len(pfx))
			}
			if e, ok := a.st.enis[act.ENI]; ok && err == nil {
				e.IPs = union(e.IPs, ips)
				e.Prefixes = union(e.Prefixes, pfx)
				a.st.enis[act.ENI] = e
				a.st.changes++
				a.st.exhaustions, a.st.exhausted = 0, time.Time{}
				a.dem.replenishedLocked(time.Since(began)) // the adaptive mode's replenish latency
			}
			return err
		})
	case ipam.UnassignIPs, ipam.UnassignPrefixes, ipam.FreeENI:
		eni := a.st.enis[act.ENI]
		gone := act.IPs
		gone = append(gone, ipam.ENI{Prefixes: act.Prefixes}.Addrs()...)
		if act.Kind == ipam.FreeENI {
			gone = ipam.ENI{IPs: eni.IPs, Prefixes: eni.Prefixes}.Addrs()
		}
		for _, ip := range gone {
			a.st.leaving[ip] = true
		}
		p.Busy[act.ENI] = true
		a.run(ctx, func() error {
			var err error
			switch act.Kind {
			case ipam.UnassignIPs:
				err = a.cloud.UnassignIPs(ctx, act.ENI, act.IPs)
			case ipam.UnassignPrefixes:
				err = a.cloud.UnassignPrefixes(ctx, act.ENI, act.Prefixes)
			case ipam.FreeENI:
				if err = a.teardownENI(eni); err == nil {
					err = a.cloud.FreeENI(ctx, eni)
				}
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			delete(p.Busy, act.ENI)
			for _, ip := range gone {
				delete(a.st.leaving, ip)
			}
			if err == nil {
				back := len(gone)
				mac := ""
				if act.Kind == ipam.FreeENI {
					back++ // the ENI's primary address
					mac = eni.MAC
				}
				a.adjustSubnetLocked(-back)
				a.noteRemovedLocked(mac, gone) // IMDS may list them for a moment yet
			}
			// On failure too the addresses leave the local view: whether EC2 still holds them is
			// for the next Describe to say, and until then none of them is handed out.
			if act.Kind == ipam.FreeENI {
				delete(a.st.enis, act.ENI)
				delete(a.st.setUp, act.ENI)
			} else if e, ok := a.st.enis[act.ENI]; ok {
				e.IPs = slices.DeleteFunc(slices.Clone(e.IPs), func(ip netip.Addr) bool { return slices.Contains(act.IPs, ip) })
				e.Prefixes = slices.DeleteFunc(slices.Clone(e.Prefixes), func(x netip.Prefix) bool { return slices.Contains(act.Prefixes, x) })
				a.st.enis[act.ENI] = e
			}
			return err
		})
	}
}

// run executes f in the background as one action in flight, records its outcome, and pokes
// the loop when it is done.
func (a *Agent) run(ctx context.Context, f func() error) {
	a.st.ops++
	go func() {
		err := f()
		if err != nil && cloud.KindOf(err) == cloud.KindSubnetFull {
			_, _ = a.refreshSubnet(ctx, 1) // the count was too high: learn the real one
		}
		a.mu.Lock()
		a.st.ops--
		a.st.changes++
		a.noteLocked(err)
		a.sig.broadcastLocked() // ADDs waiting for an address look again
		a.mu.Unlock()
		a.poke()
	}()
}

// noteLocked records what a cloud error means for the pool and for status.
func (a *Agent) noteLocked(err error) {
	if err == nil {
		a.st.cloudErr, a.st.failures = nil, 0
		return
	}
	a.st.stale = true
	switch cloud.KindOf(err) {
	case cloud.KindSubnetFull: // InsufficientFreeAddressesInSubnet, or EC2's InvalidParameterValue saying so
		a.st.exhausted, a.st.exhaustions = time.Now(), a.st.exhaustions+1
		a.m.exhausted.Inc()
		a.log.Warn("subnet exhausted", "subnet", a.st.id.SubnetID, "err", err)
	case cloud.KindNoCIDRBlocks: // InsufficientCidrBlocks, or the same InvalidParameterValue for prefixes
		a.st.noCIDRBlocks = time.Now()
		a.log.Warn("no free aligned /28 in the subnet: single addresses for now", "subnet", a.st.id.SubnetID, "err", err)
	default:
		if errors.Is(err, context.Canceled) {
			return
		}
		// Throttled or failing after retries, refused, unreachable: status says so while the
		// pool cannot serve.
		a.st.cloudErr = err
		a.st.failures++
		a.st.retryAt = time.Now().Add(min(100*time.Millisecond<<min(a.st.failures, 10), 30*time.Second))
		a.log.Error("cloud call failed", "code", cloud.Code(err), "kind", cloud.KindOf(err), "err", err, "retryIn", time.Until(a.st.retryAt).Round(time.Millisecond))
	}
}

func (a *Agent) dirty() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.stale && a.st.ops == 0 && !time.Now().Before(a.st.retryAt)
}

// refresh replaces the local view of the ENIs with EC2's, unless an action ran meanwhile.
// It reports whether it did.
func (a *Agent) refresh(ctx context.Context) bool {
	a.mu.Lock()
	id, changes, ops := a.st.id, a.st.changes, a.st.ops
	a.mu.Unlock()
	if ops > 0 {
		return false
	}
	enis, err := a.cloud.ENIs(ctx, id.InstanceID)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.noteLocked(err)
		return false
	}
	if a.st.changes != changes || a.st.ops > 0 {
		return false
	}
	a.applyLocked(enis)
	a.st.stale = false
	a.st.cloudErr = nil
	a.repairLocked(ctx)
	return true
}

// applyLocked installs EC2's list of attached ENIs, keeps those of ours detached behind the
// agent's back while pods use them, and reports pods whose address no attached ENI holds
// (applyDriftLocked).
func (a *Agent) applyLocked(enis []cloud.ENI) {
	before := a.st.enis
	a.st.enis = map[string]cloud.ENI{}
	for _, e := range enis {
		a.st.enis[e.ID] = e
	}
	for id := range a.st.setUp {
		if _, ok := a.st.enis[id]; !ok {
			delete(a.st.setUp, id)
		}
	}
	a.applyDriftLocked(before, time.Now())
}

// cleanup deletes ENIs of ours left detached longer than the grace period, but none that local
// pods use, nor any another live instance answers for.
func (a *Agent) cleanup(ctx context.Context) {
	a.mu.Lock()
	self := a.st.id.InstanceID
	a.mu.Unlock()
	ids, err := a.cloud.CleanupDetached(ctx, a.cfg.DetachedGrace, self, a.inUseByPods)
	if err != nil {
		a.log.Warn("cleaning up detached ENIs", "err", err)
	}
	if len(ids) > 0 {
		a.log.Info("deleted detached ENIs", "enis", ids)
	}
}

func union[T comparable](a, b []T) []T {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
