package dataplane_test

import (
	"net/netip"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

// BenchmarkSetupTeardownPod is the data-plane share of a CNI ADD+DEL (no process, no agent).
func BenchmarkSetupTeardownPod(b *testing.B) {
	node := testenv.NewNS(b)
	podNS := testenv.NewNS(b)
	p := dataplane.Pod{Netns: podNS.Path(), IfName: "eth0", HostVeth: dataplane.VethName("eni", "b", "bench"), Addr: netip.MustParseAddr("10.0.1.50"), Table: 2}
	err := node.Do(func(_ ns.NetNS) error {
		for i := 0; i < b.N; i++ {
			if _, err := dataplane.SetupPod(p); err != nil {
				return err
			}
			if err := dataplane.TeardownPod(p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
