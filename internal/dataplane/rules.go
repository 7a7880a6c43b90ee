package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func hostPrefix(ip netip.Addr) *net.IPNet {
	return &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Masked().Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
}

// toRule is `to <ip> lookup main` at priority 512.
func toRule(ip netip.Addr) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = unix.AF_INET
	r.Priority = RulePrioToPod
	r.Dst = hostPrefix(ip)
	r.Table = mainTable
	return r
}

// fromRule is `from <ip> lookup <table>` at priority 1536.
func fromRule(ip netip.Addr, table int) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = unix.AF_INET
	r.Priority = RulePrioFromPod
	r.Src = hostPrefix(ip)
	r.Table = table
	return r
}

// podRuleKeys are the keys that match every rule of a pod address whatever its table: `to <ip>`
// at priority 512 and `from <ip>` at priority 1536, table unset (the kernel then matches any).
func podRuleKeys(ip netip.Addr) []*netlink.Rule {
	to, from := toRule(ip), fromRule(ip, 0)
	to.Table = 0
	return []*netlink.Rule{to, from}
}

// addRule adds r unless the same rule is there already (the kernel refuses duplicates).
func addRule(r *netlink.Rule) error {
	if err := netlink.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add rule %s: %w", r, err)
	}
	return nil
}

// delRule removes every copy of r; a rule that is not there is not an error.
func delRule(r *netlink.Rule) error {
	for i := 0; i < 16; i++ {
		err := netlink.RuleDel(r)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("delete rule %s: %w", r, err)
		}
	}
	return nil
}

// ruleThere reports whether a rule whose source or destination is ip/32 satisfies match. The
// kernel resumes a rule dump by position, so a dump taken while other rules are deleted (pods'
// DELs run in parallel) can skip rules that are there: a rule missing from one dump is looked
// for in up to two more before it is reported missing.
func ruleThere(ip netip.Addr, match func(netlink.Rule) bool) (bool, error) {
	for range 3 {
		rules, err := rulesFor(ip)
		if err != nil {
			return false, err
		}
		for _, r := range rules {
			if match(r) {
				return true, nil
			}
		}
	}
	return false, nil
}

// rulesFor returns the IPv4 rules whose source or destination is ip/32, from one dump (which can
// miss rules, see ruleThere); deletions go by key (podRuleKeys), never from a dump.
func rulesFor(ip netip.Addr) ([]netlink.Rule, error) {
	rules, err := dump(func() ([]netlink.Rule, error) { return netlink.RuleList(unix.AF_INET) })
	if err != nil {
		return nil, err
	}
	var out []netlink.Rule
	for _, r := range rules {
		for _, n := range []*net.IPNet{r.Src, r.Dst} {
			if n == nil {
				continue
			}
			if ones, _ := n.Mask.Size(); ones == 32 && n.IP.Equal(ip.AsSlice()) {
				out = append(out, r)
				break
			}
		}
	}
	return out, nil
}

// routesTo lists the main table's routes to ip/32.
func routesTo(ip netip.Addr) ([]netlink.Route, error) {
	return dump(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{Dst: hostPrefix(ip), Table: mainTable},
			netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	})
}

// dump runs a netlink dump again while the kernel says it was interrupted by a change
// (NLM_F_DUMP_INTR: netlink.ErrDumpInterrupted, with results that may be incomplete), up to
// five times; a node busy adding and deleting pods' veths and addresses interrupts dumps often.
func dump[T any](list func() ([]T, error)) ([]T, error) {
	var out []T
	var err error
	for range 5 {
		out, err = list()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return out, err
}
