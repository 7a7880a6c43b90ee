package ipam

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Summary is the pool counted in addresses.
type Summary struct {
	ENIs         int
	Total        int // pod addresses held on all ENIs (secondary IPs and prefix addresses)
	Assigned     int // held by pods
	Cooldown     int // released less than IP_COOLDOWN_PERIOD ago; not handed out
	Free         int // can be handed out now
	Prefixes     int
	FreePrefixes int // prefixes with no address assigned or cooling down
}

// InCooldown reports whether a released address still rests at now.
func (s State) InCooldown(a netip.Addr) bool {
	t, ok := s.Released[a]
	return ok && !s.Assigned[a] && s.Now.Before(t.Add(s.Settings.Cooldown))
}

// Usable reports whether Add may hand the address out now.
func (s State) Usable(a netip.Addr) bool { return !s.Assigned[a] && !s.InCooldown(a) }

// Count summarises the pool.
func Count(s State) Summary {
	var c Summary
	c.ENIs = len(s.ENIs)
	for _, e := range s.ENIs {
		for _, a := range e.IPs {
			c.add(s, a)
		}
		for _, p := range e.Prefixes {
			c.Prefixes++
			free := true
			for a := p.Masked().Addr(); p.Contains(a); a = a.Next() {
				c.add(s, a)
				free = free && s.Usable(a)
			}
			if free {
				c.FreePrefixes++
			}
		}
	}
	return c
}

func (c *Summary) add(s State, a netip.Addr) {
	c.Total++
	switch {
	case s.Assigned[a]:
		c.Assigned++
	case s.InCooldown(a):
		c.Cooldown++
	default:
		c.Free++
	}
}

// nextCooldownEnd is the earliest moment a resting address becomes usable; zero if none rests.
func nextCooldownEnd(s State) time.Time {
	var t time.Time
	for a, at := range s.Released {
		if !s.InCooldown(a) {
			continue
		}
		end := at.Add(s.Settings.Cooldown)
		if t.IsZero() || end.Before(t) {
			t = end
		}
	}
	return t
}

// Capacity is how many pods a node can hold addresses for, and what bounds that number. It is
// the one answer to "how many pods fit here": the agent's status, its max-pods refusal at ADD,
// its metric and introspection, the lab's views and the planner's max pods all read it.
type Capacity struct {
	// Pods is the most pod addresses the node can hold at once: on each ENI it may manage, the
	// addresses it holds plus its free slots, each slot worth one address, or one /28 prefix (16
	// addresses) in prefix mode while no prefix fallback is in force; capped by MAX_PODS.
	// kubelet's maxPods for the node is Pods plus its host-network pods (see docs/planning.md).
	Pods int `json:"pods"`
	// ENIs is how many ENIs pods may use, the primary included: the instance type's limit or
	// MAX_ENI, whichever is lower, less the attached ENIs tagged no_manage.
	ENIs int `json:"enis"`
	// ByMaxPods says MAX_PODS is what bounds Pods; otherwise the ENIs are.
	ByMaxPods bool `json:"byMaxPods"`
	// Limit says what bounds Pods, for people: "MAX_PODS=2", or the ENIs and slots behind it.
	Limit string `json:"limit"`
}

// ManagedENIs is how many ENIs pods may use (Capacity.ENIs), never less than zero.
func ManagedENIs(s State) int {
	n := s.Limits.MaxENIs
	if s.Settings.MaxENI > 0 {
		n = min(n, s.Settings.MaxENI)
	}
	return max(n-s.Unmanaged, 0)
}

// prefixFallback reports whether prefix mode assigns single addresses now: EC2 said
// InsufficientCidrBlocks (no free aligned /28 in the subnet) less than PrefixFallback ago.
func prefixFallback(s State) bool {
	st := s.Settings
	return st.PrefixDelegation && !s.NoCIDRBlocks.IsZero() && s.Now.Before(s.NoCIDRBlocks.Add(st.PrefixFallback))
}

// CapacityOf computes the node's Capacity from the pool's state. It is pure.
func CapacityOf(s State) Capacity {
	slots := s.Limits.Slots()
	unit := 1
	if s.Settings.PrefixDelegation && !prefixFallback(s) {
		unit = 16
	}
	c := Capacity{ENIs: ManagedENIs(s)}
	attached := len(s.ENIs) + s.SettingUp
	for _, e := range s.ENIs {
		c.Pods += len(e.Addrs()) + max(slots-e.Slots(), 0)*unit
	}
	c.Pods += (s.SettingUp + max(c.ENIs-attached, 0)) * slots * unit
	per := "addresses"
	if unit == 16 {
		per = "/28 prefixes of 16"
	}
	c.Limit = fmt.Sprintf("%d ENIs x %d %s", c.ENIs, slots, per)
	var why []string
	if s.Settings.MaxENI > 0 && s.Settings.MaxENI < s.Limits.MaxENIs {
		why = append(why, fmt.Sprintf("MAX_ENI=%d", s.Settings.MaxENI))
	} else {
		why = append(why, fmt.Sprintf("the instance type's %d", s.Limits.MaxENIs))
	}
	if s.Unmanaged > 0 {
		why = append(why, fmt.Sprintf("less %d tagged no_manage", s.Unmanaged))
	}
	if s.Settings.PrefixDelegation && unit == 1 {
		why = append(why, "single addresses while no aligned /28 is free")
	}
	c.Limit += " (" + strings.Join(why, ", ") + ")"
	if mp := s.Settings.MaxPods; mp > 0 && mp < c.Pods {
		c.Pods, c.ByMaxPods, c.Limit = mp, true, fmt.Sprintf("MAX_PODS=%d", mp)
	}
	return c
}
