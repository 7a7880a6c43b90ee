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

// rulesFor returns the IPv4 rules at priority prio whose source or destination is ip.
func rulesFor(ip netip.Addr) ([]netlink.Rule, error) {
	rules, err := netlink.RuleList(unix.AF_INET)
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
