package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Decide returns the actions that move the pool towards its targets. It is a pure function of
// s: no clock, no I/O, and the same state always gives the same plan.
func Decide(s State) Plan {
	c := Count(s)
	g := goalFor(s, c)
	p := Plan{Wake: nextCooldownEnd(s)}

	need := max(g.need, max(s.Demand, s.Waiting)-c.Free) - s.Pending.Addrs // ADDs waiting are served first
	if need > 0 {
		return grow(s, c, g, need, p)
	}
	return shrink(s, c, g, p)
}

// goal is what the active setting asks of the pool.
type goal struct {
	need     int                            // addresses missing
	canDrop  func(free, total, fp int) bool // may the pool shrink to these counts
	single   bool                           // may single addresses and prefixes be released (not only whole ENIs)
	prefixes bool                           // grow by /28 prefixes
	fill     bool                           // grow fills an ENI's room in one call, not only the shortfall
	unit     int                            // addresses per slot when growing
	ahead    int                            // of need, the addresses fetched ahead: asked for on ENIs with room, never the reason to attach one
	what     string                         // the setting, for reasons
}

func goalFor(s State, c Summary) goal {
	st := s.Settings
	g := goal{unit: 1}
	fallback := prefixFallback(s)
	if st.PrefixDelegation && !fallback {
		g.prefixes, g.unit = true, 16
	}
	switch {
	case st.Adaptive && !st.IPTargets():
		// Grow when fewer than Target are free (Target + 1 while the attached ENIs have no room:
		// the next grow attaches an ENI, several times slower than an assign): at least back to
		// that many free, and to Target + Batch free or resting (a resting address is back
		// within IP_COOLDOWN_PERIOD, as under the IP targets). The part beyond the target is
		// fetched ahead: asked for on ENIs with room, never the reason to attach one (three EC2
		// calls, and the addresses it comes with held from then on). Release only while Target
		// stay free and more than Target + Batch + 1 are free or resting: the band between is
		// what keeps calls per pod low (the +1 saved a release and its re-grow per 15 pods in
		// TestChurnTraceThroughPolicy for a point of utilisation).
		ad := AdaptiveOf(s)
		low := ad.Target
		if roomOn(s) == 0 {
			low++
		}
		if c.Free < low {
			g.need = max(low-c.Free, ad.Target+ad.Batch-c.Free-c.Cooldown)
			g.ahead = g.need - (low - c.Free)
		}
		high := ad.Target + ad.Batch + 1
		g.canDrop = func(free, _, _ int) bool { return free >= ad.Target && free+c.Cooldown >= high }
		g.single = true
		g.what = ad.Reason
	case st.IPTargets():
		// WARM_IP_TARGET counts resting addresses (IP_COOLDOWN_PERIOD) as available, as the
		// AWS VPC CNI does, with at least usableFloor of them free now, so an ADD never waits
		// for a resting address. A top-up asks for the shortfall plus a batch, and the surplus
		// is released only beyond WARM_IP_TARGET + batch free (resting ones not counted), after
		// the release delay: an address fetched ahead is taken by a pod or given back in the
		// one release the delay makes. The batch is half the pod starts one release delay sees
		// at the rate seen (AdaptiveOf's Batch; 0 before any start): the addresses that rest
		// after pods stop, counted as available but not as releasable, make the other half of
		// that band (about rate × IP_COOLDOWN_PERIOD, the same length by default).
		ad := AdaptiveOf(s)
		batch := (ad.Batch + 1) / 2
		floor := usableFloor(ad, st.WarmIPTarget, g.prefixes)
		g.need = max(st.WarmIPTarget-c.Free-c.Cooldown, floor-c.Free, st.MinimumIPTarget-c.Total)
		if g.need > 0 {
			g.need += batch
		}
		g.canDrop = func(free, total, _ int) bool {
			return free >= st.WarmIPTarget+batch && free >= floor && total >= st.MinimumIPTarget
		}
		g.single = true
		g.what = fmt.Sprintf("WARM_IP_TARGET=%d MINIMUM_IP_TARGET=%d", st.WarmIPTarget, st.MinimumIPTarget)
		if floor > 0 {
			g.what += fmt.Sprintf(" (resting addresses counted, %d of them free now)", floor)
		}
		if batch > 0 {
			g.what += fmt.Sprintf(" (top-ups of %d beyond the shortfall from %.2f pod starts/s)", batch, ad.StartRate)
		}
	case st.PrefixDelegation:
		// Prefix mode counts in /28s; WARM_ENI_TARGET does not apply (a whole ENI of prefixes
		// is 16 times an ENI of addresses). WARM_PREFIX_TARGET=0 keeps one free address, so a
		// /28 is added when the last free address is taken.
		want := st.WarmPrefixTarget
		keepFree := max(want*16, 1)
		switch {
		case fallback || want == 0:
			g.need = keepFree - c.Free
		default:
			g.need = (want - c.FreePrefixes) * 16
		}
		g.canDrop = func(free, _, fp int) bool { return fp >= want && free >= keepFree }
		g.single = true
		g.what = fmt.Sprintf("WARM_PREFIX_TARGET=%d", want)
	default:
		keep := st.WarmENITarget * s.Limits.Slots()
		// Resting addresses count as available, as in the AWS VPC CNI, with at least
		// usableFloor of them free now. Growing fills the ENI's room in one call, as far as
		// the subnet has addresses (see grow).
		floor := usableFloor(AdaptiveOf(s), keep, false)
		g.need = max(keep-c.Free-c.Cooldown, floor-c.Free)
		g.fill = true
		g.canDrop = func(free, _, _ int) bool { return free+c.Cooldown >= keep && free >= floor }
		g.what = fmt.Sprintf("WARM_ENI_TARGET=%d (%d free addresses, resting ones counted, %d of them free now)", st.WarmENITarget, keep, floor)
	}
	if fallback {
		g.what += ", single addresses while no aligned /28 is free"
	}
	return g
}

// usableFloor is how many of a warm target's addresses must be free now rather than resting
// (IP_COOLDOWN_PERIOD): the adaptive sizing's target (AdaptiveOf: the pods that start while one
// grow is on its way, plus one), never more than the setting's own target, so a target of 0
// keeps meaning "grow when a pod asks". In prefix mode it is one: a grow brings a whole /28,
// so only the pod that starts while it is asked for needs a free address, and holding two
// would cost a /28 for the second. The AWS VPC CNI counts resting addresses as available
// without a floor, and its pods wait for them when they are all that is left.
func usableFloor(ad Adaptive, target int, prefixes bool) int {
	if prefixes {
		return min(1, target)
	}
	return min(ad.Target, target)
}

func grow(s State, c Summary, g goal, need int, p Plan) Plan {
	st := s.Settings
	p.Short = need
	if st.MaxPods > 0 {
		room := st.MaxPods - c.Total - s.Pending.Addrs
		if room <= 0 {
			p.Reason = fmt.Sprintf("max pods: holding %d addresses, the cap is MAX_PODS=%d", c.Total, st.MaxPods)
			return p
		}
		need = min(need, room)
	}
	if !s.Exhausted.IsZero() {
		d := st.Backoff
		for i := 1; i < s.Exhaustions && d < st.BackoffMax; i++ {
			d *= 2
		}
		d = min(d, st.BackoffMax)
		if until := s.Exhausted.Add(d); s.Now.Before(until) {
			p.Actions = append(p.Actions, Action{Kind: Backoff, Until: until})
			p.Reason = fmt.Sprintf("subnet exhausted: backing off until %s (%d failures in a row), %s short", until.UTC().Format(time.RFC3339), s.Exhaustions, addressCount(need))
			p.Wake = earliest(p.Wake, until)
			return p
		}
	}
	slots := (need + g.unit - 1) / g.unit
	kind := AssignIPs
	if g.prefixes {
		kind = AssignPrefixes
	}
	// EC2 assigns all or nothing: a request for more addresses than the subnet has free gets
	// none and strands the last ones. With the subnet's count known, single-address requests
	// stay within it (left; -1 when unknown, and for prefixes, which need aligned /28s).
	left := -1
	if s.SubnetKnown && !g.prefixes {
		left = max(s.SubnetFree, 0)
	}
	podRoom := -1 // addresses MAX_PODS still allows; -1 for no cap
	if st.MaxPods > 0 {
		podRoom = st.MaxPods - c.Total - s.Pending.Addrs
	}
	asked, busyRoom := 0, 0
	for _, e := range byDevice(s.ENIs) {
		room := s.Limits.Slots() - e.Slots()
		if room <= 0 || slots <= 0 {
			continue
		}
		if s.Pending.Busy[e.ID] {
			busyRoom += room
			continue
		}
		if left == 0 && asked > 0 {
			break // this plan already asks for all the subnet has
		}
		podCap := -1
		if podRoom >= 0 {
			podCap = max(podRoom-asked, 0)
		}
		k := batch(min(room, slots), room, left, podCap, g.fill)
		p.Actions = append(p.Actions, Action{Kind: kind, ENI: e.ID, Count: k})
		slots -= k
		asked += k
		if left >= 0 {
			left = max(left-k, 0)
		}
	}
	p.Reason = fmt.Sprintf("%s short of %s", addressCount(need), g.what)
	if slots <= 0 || slots <= busyRoom {
		return p
	}
	if must := need - g.ahead; g.ahead > 0 && (asked+busyRoom)*g.unit >= must {
		p.Reason += fmt.Sprintf("; the %d fetched ahead only on ENIs with room", g.ahead)
		return p
	}
	maxENI := ManagedENIs(s)
	attached := len(s.ENIs) + s.SettingUp
	switch {
	case left == 0 && asked > 0:
		p.Reason += fmt.Sprintf("; the subnet has no more free addresses (%d asked for)", asked)
	case s.Pending.CreatingENI:
		p.Reason += "; an ENI is being attached"
	case attached >= maxENI:
		p.Reason += fmt.Sprintf("; all %d ENIs pods may use are full (%s)", attached, CapacityOf(s).Limit)
	default:
		podCap := -1
		if podRoom >= 0 {
			podCap = max(podRoom-asked, 0)
		}
		k := createCount(s.Limits.Slots(), slots-busyRoom, left, podCap, g.fill)
		p.Actions = append(p.Actions, Action{Kind: CreateENI, Count: k, ByPrefix: g.prefixes})
		what := "addresses"
		if g.prefixes {
			what = "prefixes"
		}
		p.Reason += fmt.Sprintf("; attaching another ENI with %d %s", k, what)
	}
	return p
}

// createCount is how many slots a new ENI is created with, in the same CreateNetworkInterface
// call: the shortfall still open (share), filled up to the ENI's room under fill as an assign on
// an existing ENI would be (see batch). The ENI's own primary address takes one of the subnet's
// free addresses (left, -1 when unknown); since EC2 creates all or nothing, a known count bounds
// the request, down to none: the ENI alone is still progress.
func createCount(room, share, left, podRoom int, fill bool) int {
	share = min(share, room)
	if left < 0 {
		return batch(share, room, -1, podRoom, fill)
	}
	rest := max(left-1, 0)
	return min(batch(share, room, rest, podRoom, fill), rest)
}

// batch is how many slots to ask for on one ENI. share is the shortfall's part on it. With
// fill set and the subnet's count known (left >= 0), the request grows to the ENI's room as far
// as the subnet has addresses and MAX_PODS allows (podRoom, -1 for no cap); an unknown count
// keeps it at share. When the subnet has fewer than share free, the request takes what it has
// (partial progress rather than a refusal). With none known free the share is asked anyway:
// the count may be stale, and EC2's answer starts the exhaustion back-off.
func batch(share, room, left, podRoom int, fill bool) int {
	k := share
	if fill && left >= 0 {
		k = max(min(room, left), share)
		if podRoom >= 0 {
			k = max(min(k, podRoom), share)
		}
	}
	if left > 0 && left < share {
		k = left
	}
	return k
}

// shrink releases the pool's surplus once it has been over its target for the release delay
// (Settings.ReleaseDelayOf).
func shrink(s State, c Summary, g goal, p Plan) Plan {
	p = release(s, c, g, p)
	if len(p.Actions) == 0 {
		return p
	}
	p.Over = true
	since := s.OverSince
	if since.IsZero() || since.After(s.Now) {
		since = s.Now // the agent records this moment as OverSince
	}
	if at := since.Add(s.Settings.ReleaseDelayOf()); s.Now.Before(at) {
		n := 0
		for _, a := range p.Actions {
			n += len(a.IPs) + 16*len(a.Prefixes)
			if a.Kind == FreeENI {
				n += len(eniByID(s, a.ENI).Addrs())
			}
		}
		p.Reason = fmt.Sprintf("above %s by %d addresses since %s: released at %s unless pods take them", g.what, n,
			since.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		p.Actions = nil
		p.Wake = earliest(p.Wake, at)
	}
	return p
}

// release plans giving back everything beyond the target, one action per ENI.
func release(s State, c Summary, g goal, p Plan) Plan {
	if s.Pending.Addrs > 0 || s.Pending.CreatingENI {
		p.Reason = fmt.Sprintf("at %s with operations in flight: %d free, %d assigned", g.what, c.Free, c.Assigned)
		return p
	}
	free, total, fp := c.Free, c.Total, c.FreePrefixes
	maxPods := s.Settings.MaxPods
	canDrop := g.canDrop
	g.canDrop = func(f, t, x int) bool { return f >= s.Waiting && canDrop(f, t, x) } // keep what waiting ADDs will take
	ok := func(f, t, x int) bool { return g.canDrop(f, t, x) || (maxPods > 0 && t >= maxPods) }
	// Whole ENIs first: an ENI with nothing assigned or resting gives back all its addresses.
	enis := byDevice(s.ENIs)
	slices.SortStableFunc(enis, func(a, b ENI) int { return b.DeviceIndex - a.DeviceIndex })
	freed := map[string]bool{}
	for _, e := range enis {
		if e.DeviceIndex == 0 || e.Keep || s.Pending.Busy[e.ID] || !allUsable(s, e.Addrs()) {
			continue
		}
		n, np := len(e.Addrs()), len(e.Prefixes)
		if !g.canDrop(free-n, total-n, fp-np) {
			continue
		}
		p.Actions = append(p.Actions, Action{Kind: FreeENI, ENI: e.ID})
		free, total, fp = free-n, total-n, fp-np
		freed[e.ID] = true
	}
	if g.single || (maxPods > 0 && total > maxPods) {
		for _, e := range byLoad(s, enis) {
			if freed[e.ID] || s.Pending.Busy[e.ID] {
				continue
			}
			var ips []netip.Addr
			for _, a := range slices.Backward(e.IPs) {
				if s.Usable(a) && ok(free-1, total-1, fp) && (g.single || total > maxPods) {
					ips = append(ips, a)
					free, total = free-1, total-1
				}
			}
			var pfx []netip.Prefix
			for _, x := range slices.Backward(e.Prefixes) {
				if allUsable(s, ENI{Prefixes: []netip.Prefix{x}}.Addrs()) && ok(free-16, total-16, fp-1) && (g.single || total-16 >= maxPods) {
					pfx = append(pfx, x)
					free, total, fp = free-16, total-16, fp-1
				}
			}
			if len(ips) == len(e.IPs) && len(pfx) == len(e.Prefixes) && len(ips)+len(pfx) > 0 && e.DeviceIndex != 0 && !e.Keep {
				// Emptied: the ENI goes with its addresses, in one call rather than two.
				p.Actions = append(p.Actions, Action{Kind: FreeENI, ENI: e.ID})
				continue
			}
			if len(ips) > 0 {
				p.Actions = append(p.Actions, Action{Kind: UnassignIPs, ENI: e.ID, IPs: ips})
			}
			if len(pfx) > 0 {
				p.Actions = append(p.Actions, Action{Kind: UnassignPrefixes, ENI: e.ID, Prefixes: pfx})
			}
			if resting(s, e) && ok(free-1, total-1, fp) {
				// This ENI drains further once its resting addresses are free: wait for them
				// rather than release addresses on an ENI that will stay.
				break
			}
		}
	}
	if len(p.Actions) > 0 {
		p.Reason = fmt.Sprintf("releasing down to %s: free %d -> %d, held %d -> %d", g.what, c.Free, free, c.Total, total)
	} else {
		p.Reason = fmt.Sprintf("at target %s: %d free, %d assigned, %d cooling down", g.what, c.Free, c.Assigned, c.Cooldown)
	}
	return p
}

// roomOn is how many more slots the attached ENIs not busy with a call can take.
func roomOn(s State) int {
	room := 0
	for _, e := range s.ENIs {
		if !s.Pending.Busy[e.ID] {
			room += max(s.Limits.Slots()-e.Slots(), 0)
		}
	}
	return room
}

func eniByID(s State, id string) ENI {
	for _, e := range s.ENIs {
		if e.ID == id {
			return e
		}
	}
	return ENI{}
}

// resting reports whether any address on e is cooling down.
func resting(s State, e ENI) bool {
	for _, a := range e.Addrs() {
		if s.InCooldown(a) {
			return true
		}
	}
	return false
}

func allUsable(s State, addrs []netip.Addr) bool {
	for _, a := range addrs {
		if !s.Usable(a) {
			return false
		}
	}
	return true
}

// byDevice returns the ENIs ordered by device index (primary first).
func byDevice(enis []ENI) []ENI {
	out := slices.Clone(enis)
	slices.SortFunc(out, func(a, b ENI) int { return a.DeviceIndex - b.DeviceIndex })
	return out
}

// byLoad orders ENIs for release: fewest addresses held by pods first (a resting address will
// soon be free, so it does not count), then highest device index, so that releases empty whole
// ENIs.
func byLoad(s State, enis []ENI) []ENI {
	load := map[string]int{}
	for _, e := range enis {
		for _, a := range e.Addrs() {
			if s.Assigned[a] {
				load[e.ID]++
			}
		}
	}
	out := slices.Clone(enis)
	slices.SortStableFunc(out, func(a, b ENI) int {
		if load[a.ID] != load[b.ID] {
			return load[a.ID] - load[b.ID]
		}
		return b.DeviceIndex - a.DeviceIndex
	})
	return out
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// addressCount is n with "address" or "addresses": "1 address", "9 addresses".
func addressCount(n int) string {
	if n == 1 {
		return "1 address"
	}
	return fmt.Sprintf("%d addresses", n)
}
