package ipam

import (
	"net/netip"
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
