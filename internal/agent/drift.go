package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/ipam/store"
)

// The cloud changed behind the agent (issue 11 fault 6): someone detached, deleted or moved one
// of the node's ENIs, or unassigned an address or prefix, through the EC2 API. The agent
//
//   - notices it within a second: IMDS (local, outside EC2's rate limits) is read every
//     imdsCheckPeriod and, with host networking, at once when netlink reports a link of one of
//     the node's ENIs added, changed or removed; a difference from the agent's view withholds
//     what IMDS no longer shows (never handed out from then on) and asks EC2 (one Describe),
//     whose answer decides: IMDS may lag EC2 by a moment, EC2 is the authority;
//   - hands out only addresses EC2 assigns to one of its attached ENIs (pickLocked reads the
//     view, which holds nothing else; a detached ENI is kept in the view only to hold its device
//     index and slot, outside managedLocked);
//   - repairs what pods still use: a detached ENI of ours holding pods' addresses is
//     re-attached at its old device index (pods' policy rules name its table), an address or
//     prefix unassigned from an attached ENI is assigned back (never with AllowReassignment:
//     one another ENI took stays there), and CleanupDetached never deletes an ENI local pods
//     use, nor one another live instance's agent answers for;
//   - reports every pod whose address EC2 no longer assigns to the node: a warning naming the
//     pod when EC2 confirms it, status.podsWithoutCloudAddress, and the gauge
//     vpcnet_pods_without_cloud_address; a line when its address is back.

// imdsCheckPeriod is how often IMDS is compared with the agent's view.
const imdsCheckPeriod = time.Second

// imdsLagGrace is how long an address or ENI that IMDS did not show but EC2 did is not suspected
// again: IMDS lags EC2 after a change, and one Describe per lagging read is enough.
const imdsLagGrace = 30 * time.Second

// drift is the agent's record of the cloud changed behind it; guarded by Agent.mu.
type drift struct {
	lost     map[string]cloud.ENI        // ENIs of ours detached behind our back, pods' addresses on them
	gone     map[string]string           // ENI ID -> why it cannot come back (deleted, attached elsewhere)
	taken    map[netip.Addr]string       // pods' addresses EC2 gave to another interface since: not re-assigned
	suspect  map[netip.Addr]bool         // withheld because IMDS stopped listing them, until EC2 answers
	lagging  map[string]time.Time        // address or ENI ID -> when EC2 contradicted IMDS about it
	onPrefix map[netip.Addr]netip.Prefix // pods' addresses that left the view with their /28
	orphans  map[store.Key]orphan        // pods whose address EC2 does not assign to this node
	repair   map[string]bool             // ENI IDs with a re-attach or re-assign in flight
	checking bool                        // an IMDS comparison is running
	// removed: address or MAC -> when this agent unassigned or freed it, so that IMDS still
	// listing it for a moment (it lags EC2) is not taken for a change behind the agent.
	removed map[string]time.Time
	// extra: what IMDS listed beyond the view (an address, or "mac:" and a MAC) when the last
	// Describe was asked for; what EC2 then does not show either is IMDS lag (lagging).
	extra map[string]bool
	// agreed is when IMDS last agreed with the view: with IMDS unreadable for a resync period
	// the agent asks EC2 instead (reconcile.go).
	agreed time.Time
	swept  time.Time // when the last detached-ENI sweep started
}

// orphan is a pod whose address EC2 no longer assigns to the node.
type orphan struct {
	alloc store.Alloc
	why   string
	since time.Time
}

func (d *drift) init() {
	if d.lost != nil {
		return
	}
	d.lost, d.gone, d.taken = map[string]cloud.ENI{}, map[string]string{}, map[netip.Addr]string{}
	d.suspect, d.lagging, d.orphans = map[netip.Addr]bool{}, map[string]time.Time{}, map[store.Key]orphan{}
	d.repair, d.onPrefix = map[string]bool{}, map[netip.Addr]netip.Prefix{}
	d.removed, d.extra = map[string]time.Time{}, map[string]bool{}
}

// noteRemovedLocked records addresses and a MAC this agent just unassigned or freed: IMDS may
// list them for a moment yet.
func (a *Agent) noteRemovedLocked(mac string, ips []netip.Addr) {
	d := &a.st.drift
	d.init()
	now := time.Now()
	if mac != "" {
		d.removed["mac:"+strings.ToLower(mac)] = now
	}
	for _, ip := range ips {
		d.removed[ip.String()] = now
	}
}

// isLost reports whether the ENI is one of ours the agent believes detached.
func (a *Agent) isLost(id string) bool {
	_, ok := a.st.drift.lost[id]
	return ok
}

// watchDrift compares IMDS with the agent's view every imdsCheckPeriod, and at once when the
// node's links say an ENI came or went.
func (a *Agent) watchDrift(ctx context.Context) {
	links := a.watchLinks(ctx)
	t := time.NewTicker(imdsCheckPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-links:
		}
		a.checkIMDS(ctx)
	}
}

// checkIMDS reads the attached ENIs from IMDS and withholds what the view has and IMDS does
// not: an ENI whose MAC is gone is marked lost, an address or prefix IMDS no longer lists is
// taken out of the view. Either asks for a Describe at once (stale), which decides.
func (a *Agent) checkIMDS(ctx context.Context) {
	a.mu.Lock()
	a.st.drift.init()
	if !a.st.started || a.st.drift.checking {
		a.mu.Unlock()
		return
	}
	a.st.drift.checking = true
	changes := a.st.changes
	a.mu.Unlock()
	ifcs, err := a.cloud.Interfaces(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st.drift.checking = false
	if err != nil {
		a.log.Debug("IMDS interfaces", "err", err)
		return
	}
	if a.st.changes != changes { // an action of ours landed meanwhile: compare on the next tick
		return
	}
	now := time.Now()
	d := &a.st.drift
	found := false
	for id, e := range a.st.enis {
		if e.Unmanaged || a.isLost(id) || a.st.pending.Busy[id] || d.repair[id] {
			continue
		}
		ifc, ok := ifcs[strings.ToLower(e.MAC)]
		if !ok {
			if e.DeviceIndex == 0 || now.Sub(d.lagging[id]) < imdsLagGrace { // the primary cannot be detached
				continue
			}
			a.log.Warn("IMDS no longer lists an ENI of the node: its addresses are withheld until EC2 says", "eni", id, "mac", e.MAC, "device", e.DeviceIndex)
			d.lost[id] = e
			a.st.setUp[id] = false
			found = true
			continue
		}
		var gone []netip.Addr
		keepIPs := e.IPs[:0:0]
		for _, ip := range e.IPs {
			if !slices.Contains(ifc.Addrs, ip) && !a.st.leaving[ip] && now.Sub(d.lagging[ip.String()]) >= imdsLagGrace {
				gone = append(gone, ip)
				d.suspect[ip] = true
				continue
			}
			keepIPs = append(keepIPs, ip)
		}
		keepPfx := e.Prefixes[:0:0]
		for _, p := range e.Prefixes {
			if !slices.Contains(ifc.Prefixes, p) && !a.st.leaving[p.Addr()] && now.Sub(d.lagging[p.Addr().String()]) >= imdsLagGrace {
				gone = append(gone, p.Addr())
				d.suspect[p.Addr()] = true
				d.notePrefix(p)
				continue
			}
			keepPfx = append(keepPfx, p)
		}
		if len(gone) > 0 {
			a.log.Warn("IMDS no longer lists addresses of an ENI: withheld until EC2 says", "eni", id, "addresses", gone)
			e.IPs, e.Prefixes = keepIPs, keepPfx
			a.st.enis[id] = e
			found = true
		}
	}
	if !found && a.st.ops == 0 {
		found = a.imdsExtraLocked(ifcs, now)
		if !found {
			d.agreed = now
		}
	}
	if found {
		a.st.changes++ // a Describe started before this must not put them back
		a.st.stale = true
		a.poke()
	}
}

// imdsExtraLocked looks for what IMDS lists and the view lacks: an attached ENI the agent does
// not know (attached outside vpcnet, or a lost one attached again), or an address or prefix on
// a known ENI (assigned outside vpcnet). Only with no action of the agent's in flight (an
// ENI being created shows in IMDS before CreateENI returns), and never what the agent itself
// removed within imdsLagGrace, nor what EC2 contradicted within it. Each finding is recorded in
// extra and asks for a Describe; nothing is handed out before EC2 shows it.
func (a *Agent) imdsExtraLocked(ifcs map[string]cloud.Interface, now time.Time) bool {
	d := &a.st.drift
	fresh := func(key string) bool {
		return now.Sub(d.removed[key]) >= imdsLagGrace && now.Sub(d.lagging[key]) >= imdsLagGrace
	}
	byMAC := map[string]cloud.ENI{}
	for _, e := range a.st.enis {
		byMAC[strings.ToLower(e.MAC)] = e
	}
	found := false
	for mac, ifc := range ifcs {
		e, ok := byMAC[mac]
		switch {
		case !ok || a.isLost(e.ID):
			if key := "mac:" + mac; fresh(key) {
				a.log.Warn("IMDS lists an ENI the agent does not hold as attached: asking EC2", "mac", mac)
				d.extra[key], found = true, true
			}
			continue
		case e.Unmanaged || a.st.pending.Busy[e.ID] || d.repair[e.ID]:
			continue
		}
		for _, ip := range ifc.Addrs {
			if ip != e.PrimaryIP && !slices.Contains(e.IPs, ip) && !onAnyPrefix(e.Prefixes, ip) && fresh(ip.String()) {
				a.log.Warn("IMDS lists an address the agent does not hold on the ENI: asking EC2", "eni", e.ID, "ip", ip)
				d.extra[ip.String()], found = true, true
			}
		}
		for _, p := range ifc.Prefixes {
			if !slices.Contains(e.Prefixes, p) && fresh(p.Addr().String()) {
				a.log.Warn("IMDS lists a prefix the agent does not hold on the ENI: asking EC2", "eni", e.ID, "prefix", p)
				d.extra[p.Addr().String()], found = true, true
			}
		}
	}
	return found
}

// applyDriftLocked follows applyLocked's installing of EC2's attached ENIs (before, the view
// before it): ENIs of ours that left it while pods use their addresses are kept as lost,
// lost ones EC2 shows attached again are back, withheld addresses EC2 still assigns are
// remembered as IMDS lag, and the pods without a cloud address are recounted and reported.
func (a *Agent) applyDriftLocked(before map[string]cloud.ENI, now time.Time) {
	d := &a.st.drift
	d.init()
	allocs := a.store.List()
	for id, e := range before {
		for _, p := range e.Prefixes {
			if cur, ok := a.st.enis[id]; !ok || !slices.Contains(cur.Prefixes, p) {
				d.notePrefix(p)
			}
		}
		if _, still := a.st.enis[id]; still || !e.Ours() {
			continue
		}
		if _, ok := d.lost[id]; !ok && usesENI(allocs, e) {
			a.log.Warn("an ENI of the node was detached outside vpcnet while pods use its addresses: re-attaching it", "eni", id, "device", e.DeviceIndex)
			d.lost[id] = e
		}
	}
	for id, e := range d.lost {
		if cur, ok := a.st.enis[id]; ok { // EC2 shows it attached: IMDS lagged, or it is back
			if !a.isRepairing(id) {
				if now.Sub(d.lagging[id]) > imdsLagGrace {
					a.log.Info("ENI attached again", "eni", id, "device", cur.DeviceIndex)
				}
				d.lagging[id] = now
			}
			delete(d.lost, id)
			continue
		}
		if !usesENI(allocs, e) {
			a.log.Info("a detached ENI of the node no longer holds pods' addresses: left to the detached-ENI cleanup", "eni", id)
			delete(d.lost, id)
			continue
		}
		e.AttachmentID = ""
		a.st.enis[id] = e // holds its device index and its slot; not managed, so nothing is handed out
		a.st.setUp[id] = false
	}
	if len(d.extra) > 0 {
		held := map[string]bool{}
		for _, e := range a.st.enis {
			if e.AttachmentID == "" {
				continue
			}
			held["mac:"+strings.ToLower(e.MAC)] = true
			for _, ip := range e.IPs {
				held[ip.String()] = true
			}
			for _, p := range e.Prefixes {
				held[p.Addr().String()] = true
			}
		}
		for k := range d.extra {
			if !held[k] { // EC2 does not show it: IMDS lags; not asked about again for a while
				d.lagging[k] = now
			}
			delete(d.extra, k)
		}
	}
	for ip := range d.suspect {
		if _, ok := a.eniOfLocked(ip); ok {
			d.lagging[ip.String()] = now
		}
		delete(d.suspect, ip)
	}
	for k, t := range d.lagging {
		if now.Sub(t) > 2*imdsLagGrace {
			delete(d.lagging, k)
		}
	}
	a.forgetLocked(allocs)
	a.recountOrphansLocked(allocs, now)
}

// notePrefix remembers the /28 its addresses were on, so that a pod's address is asked back
// with its prefix.
func (d *drift) notePrefix(p netip.Prefix) {
	for x := p.Masked().Addr(); p.Contains(x); x = x.Next() {
		d.onPrefix[x] = p
	}
}

// forgetLocked drops records about addresses and ENIs no pod holds or names any more.
func (a *Agent) forgetLocked(allocs []store.Alloc) {
	d := &a.st.drift
	held, named := map[netip.Addr]bool{}, map[string]bool{}
	for _, al := range allocs {
		held[al.Addr], named[al.ENI] = true, true
	}
	for ip := range d.taken {
		if !held[ip] {
			delete(d.taken, ip)
		}
	}
	for ip := range d.onPrefix {
		if !held[ip] {
			delete(d.onPrefix, ip)
		}
	}
	for id := range d.gone {
		if !named[id] {
			delete(d.gone, id)
		}
	}
}

func (a *Agent) isRepairing(id string) bool { return a.st.drift.repair[id] }

// usesENI reports whether an allocation holds an address on the ENI (or names it as its own).
func usesENI(allocs []store.Alloc, e cloud.ENI) bool {
	for _, al := range allocs {
		if al.ENI == e.ID || slices.Contains(e.IPs, al.Addr) || onAnyPrefix(e.Prefixes, al.Addr) {
			return true
		}
	}
	return false
}

func onAnyPrefix(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// recountOrphansLocked finds the pods whose address is on no attached ENI of ours as EC2 last
// said, logs each one newly found (and each one whose address is back), and records them.
func (a *Agent) recountOrphansLocked(allocs []store.Alloc, now time.Time) {
	d := &a.st.drift
	managed := a.managedLocked()
	next := map[store.Key]orphan{}
	for _, al := range allocs {
		if onENIs(managed, al.Addr) {
			continue
		}
		o := orphan{alloc: al, why: a.whyLocked(al), since: now}
		if prev, ok := d.orphans[al.Key]; ok {
			o.since = prev.since
			if prev.why != o.why {
				a.log.Warn("pod has no cloud address", "pod", podName(al), "container", al.Key.ContainerID, "ip", al.Addr, "eni", al.ENI, "why", o.why)
			}
		} else {
			a.log.Warn("pod has no cloud address", "pod", podName(al), "container", al.Key.ContainerID, "ip", al.Addr, "eni", al.ENI, "why", o.why)
		}
		next[al.Key] = o
	}
	for k, o := range d.orphans {
		if _, still := next[k]; !still {
			if _, live := a.store.Get(k); live {
				a.log.Info("pod's address is assigned to the node again", "pod", podName(o.alloc), "ip", o.alloc.Addr, "after", now.Sub(o.since).Round(time.Millisecond))
			}
		}
	}
	d.orphans = next
}

func onENIs(enis []cloud.ENI, ip netip.Addr) bool {
	for _, e := range enis {
		if slices.Contains(e.IPs, ip) || onAnyPrefix(e.Prefixes, ip) {
			return true
		}
	}
	return false
}

// whyLocked says why the pod's address is not on an attached ENI of ours.
func (a *Agent) whyLocked(al store.Alloc) string {
	d := &a.st.drift
	switch {
	case d.taken[al.Addr] != "":
		return d.taken[al.Addr]
	case d.gone[al.ENI] != "":
		return d.gone[al.ENI]
	case a.isLost(al.ENI):
		return fmt.Sprintf("ENI %s was detached outside vpcnet; re-attaching it", al.ENI)
	}
	if e, ok := a.st.enis[al.ENI]; ok && !e.Unmanaged {
		return fmt.Sprintf("unassigned from ENI %s outside vpcnet; assigning it back", al.ENI)
	}
	return fmt.Sprintf("ENI %s is not attached to this node", al.ENI)
}

func podName(al store.Alloc) string {
	if al.PodName == "" {
		return al.Key.ContainerID
	}
	return al.PodNamespace + "/" + al.PodName
}

// repairLocked starts, in the background, what brings pods' addresses back: a re-attach per
// lost ENI, an exact re-assign per attached ENI that lost pods' addresses. Each is one action
// in flight (no Describe is applied meanwhile) and marks its ENI busy, so the pool leaves it.
func (a *Agent) repairLocked(ctx context.Context) {
	d := &a.st.drift
	d.init()
	byENI := map[string][]store.Alloc{}
	for _, o := range d.orphans {
		if _, live := a.store.Get(o.alloc.Key); !live || d.taken[o.alloc.Addr] != "" || d.gone[o.alloc.ENI] != "" {
			continue
		}
		byENI[o.alloc.ENI] = append(byENI[o.alloc.ENI], o.alloc)
	}
	for id, e := range d.lost {
		if d.repair[id] || a.st.pending.Busy[id] {
			continue
		}
		d.repair[id] = true
		a.st.pending.Busy[id] = true
		me := a.st.id
		a.run(ctx, func() error { return a.reattach(ctx, me, e) })
	}
	for id, als := range byENI {
		e, ok := a.st.enis[id]
		if !ok || a.isLost(id) || e.Unmanaged || d.repair[id] || a.st.pending.Busy[id] {
			continue
		}
		var ips []netip.Addr
		var pfx []netip.Prefix
		for _, al := range als {
			if p, ok := d.onPrefix[al.Addr]; ok {
				if !slices.Contains(pfx, p) {
					pfx = append(pfx, p)
				}
			} else {
				ips = append(ips, al.Addr)
			}
		}
		d.repair[id] = true
		a.st.pending.Busy[id] = true
		a.run(ctx, func() error { return a.reassign(ctx, id, ips, pfx) })
	}
}

// reattach brings a lost ENI back: EC2 says where it is; detached, it is attached again at its
// device index and set up; deleted or attached elsewhere, its pods are reported as such.
func (a *Agent) reattach(ctx context.Context, me cloud.Identity, lost cloud.ENI) error {
	done := func(back *cloud.ENI, gone string) {
		a.mu.Lock()
		defer a.mu.Unlock()
		d := &a.st.drift
		delete(d.repair, lost.ID)
		delete(a.st.pending.Busy, lost.ID)
		switch {
		case back != nil:
			delete(d.lost, lost.ID)
			a.st.enis[lost.ID] = *back
			a.st.changes++ // an IMDS read from before the attach must not find it missing
			d.lagging[lost.ID] = time.Now()
		case gone != "":
			delete(d.lost, lost.ID)
			delete(a.st.enis, lost.ID)
			delete(a.st.setUp, lost.ID)
			d.gone[lost.ID] = gone
			a.log.Error("a detached ENI cannot be re-attached: its pods have no cloud address", "eni", lost.ID, "why", gone)
		}
		a.recountOrphansLocked(a.store.List(), time.Now())
	}
	got, err := a.cloud.DescribeENIs(ctx, []string{lost.ID})
	if err != nil {
		done(nil, "")
		return err
	}
	if len(got) == 0 {
		done(nil, fmt.Sprintf("ENI %s was deleted outside vpcnet", lost.ID))
		return nil
	}
	cur := got[0]
	switch {
	case cur.AttachedTo == me.InstanceID:
		done(nil, "") // attached to us again (by someone, or still detaching): the next Describe shows it
		a.mu.Lock()
		a.st.stale = true
		a.mu.Unlock()
		return nil
	case cur.AttachedTo != "":
		done(nil, fmt.Sprintf("ENI %s was moved to instance %s outside vpcnet", lost.ID, cur.AttachedTo))
		return nil
	case !cur.Ours() || cur.Tags[cloud.TagInstanceID] != me.InstanceID:
		done(nil, fmt.Sprintf("ENI %s is no longer tagged as this node's", lost.ID))
		return nil
	}
	dev := lost.DeviceIndex
	if v, err := strconv.Atoi(cur.Tags[cloud.TagDeviceIndex]); err == nil && v > 0 {
		dev = v
	}
	eni, err := a.cloud.AttachENI(ctx, me, cur, dev)
	if err != nil {
		done(nil, "")
		return err
	}
	serr := a.setupENI(eni)
	a.mu.Lock()
	a.st.setUp[eni.ID] = serr == nil
	a.mu.Unlock()
	a.log.Info("re-attached an ENI detached outside vpcnet", "eni", eni.ID, "device", dev, "addresses", len(eni.IPs), "prefixes", len(eni.Prefixes), "setUp", serr == nil)
	done(&eni, "")
	return serr
}

// reassign asks EC2 to give the ENI back the pods' addresses (or their /28 prefixes) that were
// unassigned outside vpcnet. EC2 assigns all or none; when it says one is in use (another
// interface took it since), each is asked for alone. What another interface has is recorded as
// taken: reported, never asked for again, never handed out.
func (a *Agent) reassign(ctx context.Context, eniID string, ips []netip.Addr, pfx []netip.Prefix) error {
	var taken []netip.Prefix // a taken address as a /32
	err := a.cloud.AssignExact(ctx, eniID, ips, pfx)
	if err != nil && cloud.KindOf(err) == cloud.KindInUse {
		err = nil
		var okIPs []netip.Addr
		var okPfx []netip.Prefix
		for _, ip := range ips {
			switch e := a.cloud.AssignExact(ctx, eniID, []netip.Addr{ip}, nil); {
			case e == nil:
				okIPs = append(okIPs, ip)
			case cloud.KindOf(e) == cloud.KindInUse:
				taken = append(taken, netip.PrefixFrom(ip, 32))
			default:
				err = e
			}
		}
		for _, p := range pfx {
			switch e := a.cloud.AssignExact(ctx, eniID, nil, []netip.Prefix{p}); {
			case e == nil:
				okPfx = append(okPfx, p)
			case cloud.KindOf(e) == cloud.KindInUse:
				taken = append(taken, p)
			default:
				err = e
			}
		}
		ips, pfx = okIPs, okPfx
	} else if err != nil {
		ips, pfx = nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	d := &a.st.drift
	delete(d.repair, eniID)
	delete(a.st.pending.Busy, eniID)
	if e, ok := a.st.enis[eniID]; ok && len(ips)+len(pfx) > 0 {
		e.IPs = union(e.IPs, ips)
		e.Prefixes = union(e.Prefixes, pfx)
		a.st.enis[eniID] = e
		a.st.changes++
		a.log.Info("assigned pods' addresses back to their ENI", "eni", eniID, "addresses", ips, "prefixes", pfx)
	}
	for _, p := range taken {
		for x := p.Masked().Addr(); p.Contains(x); x = x.Next() {
			d.taken[x] = fmt.Sprintf("unassigned from ENI %s outside vpcnet, and EC2 has given it to another interface since", eniID)
		}
	}
	a.recountOrphansLocked(a.store.List(), time.Now())
	return err
}

// inUseByPods reports whether local pods hold addresses on the ENI; CleanupDetached keeps it.
func (a *Agent) inUseByPods(e cloud.ENI) bool { return usesENI(a.store.List(), e) }

// driftStatusLocked adds the pods without a cloud address to status.
func (a *Agent) driftStatusLocked(st *Status) {
	var names []string
	for k, o := range a.st.drift.orphans {
		if _, live := a.store.Get(k); live {
			names = append(names, fmt.Sprintf("%s (%s: %s)", podName(o.alloc), o.alloc.Addr, o.why))
		}
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	st.PodsWithoutCloudAddress = names
	st.Message += fmt.Sprintf("; %d pods have an address EC2 no longer assigns to this node: %s", len(names), strings.Join(names, ", "))
}
