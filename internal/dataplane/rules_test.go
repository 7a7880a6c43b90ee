package dataplane_test

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/testenv"
	"golang.org/x/sys/unix"
)

// Many pods torn down at once (a kubelet runs DELs in parallel) leave none of their rules behind.
// The kernel resumes a rule dump by position, so a dump that runs while other rules are deleted
// skips some; a teardown that found the pod's rules in such a dump left one behind (issue 12:
// TestConcurrentAddDel100 saw `512: from all to 10.10.0.69 lookup main` after 100 DELs).
func TestConcurrentTeardownsRemoveEveryRule(t *testing.T) {
	const n = 400
	node := testenv.NewNS(t)
	host := func(a netip.Addr) *net.IPNet { return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)} }
	pods := make([]dataplane.Pod, n)
	do(t, node, func() error {
		for i := range pods {
			a := netip.AddrFrom4([4]byte{10, 0, byte(16 + i/200), byte(10 + i%200)})
			pods[i] = dataplane.Pod{HostVeth: fmt.Sprintf("eni%011d", i), Addr: a, Table: 2 + i%3}
			to := netlink.NewRule()
			to.Family, to.Priority, to.Dst, to.Table = unix.AF_INET, dataplane.RulePrioToPod, host(a), 254
			from := netlink.NewRule()
			from.Family, from.Priority, from.Src, from.Table = unix.AF_INET, dataplane.RulePrioFromPod, host(a), pods[i].Table
			for _, r := range []*netlink.Rule{to, from} {
				if err := netlink.RuleAdd(r); err != nil {
					return fmt.Errorf("add %s: %w", r, err)
				}
			}
		}
		return nil
	})
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = node.Do(func(ns.NetNS) error { return dataplane.TeardownPod(p) })
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("teardown of %s: %v", pods[i].Addr, err)
		}
	}
	var left []string
	do(t, node, func() error {
		rules, err := netlink.RuleList(unix.AF_INET)
		for _, r := range rules {
			if r.Priority == dataplane.RulePrioToPod || r.Priority == dataplane.RulePrioFromPod {
				left = append(left, r.String())
			}
		}
		return err
	})
	if len(left) > 0 {
		t.Fatalf("after %d concurrent teardowns %d rules are left, e.g. %v", n, len(left), left[:min(3, len(left))])
	}
}
