package dataplane_test

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/probe"
)

// sourceSeen sends one datagram from the pod to dst and returns the source the router saw.
func sourceSeen(t *testing.T, tp *topo, podPath string, dst netip.Addr, port uint16) (netip.Addr, bool) {
	t.Helper()
	return sourceSeenAt(t, tp, podPath, dst, dst, port)
}

// sourceSeenAt sends datagrams from the pod to sendTo and returns the source a listener on the
// router's address at saw (sendTo differs when the node DNATs it to at).
func sourceSeenAt(t *testing.T, tp *topo, podPath string, sendTo, at netip.Addr, port uint16) (netip.Addr, bool) {
	t.Helper()
	c, err := probe.ListenUDP(tp.router.Path(), netip.AddrPortFrom(at, port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 10; i++ {
		if err := probe.SendUDP(podPath, netip.AddrPort{}, netip.AddrPortFrom(sendTo, port), []byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, from, ok, err := probe.RecvUDP(c, 300*time.Millisecond); err != nil || ok {
			return from.Addr(), ok
		}
	}
	return netip.Addr{}, false
}

func TestSNAT(t *testing.T) {
	tp := newTopo(t)
	do(t, tp.node, func() error { return dataplane.SetupENI(eni1) })
	snat := dataplane.SNAT{PrimaryIP: nodeIP, VPCCIDRs: []netip.Prefix{vpcCIDR}, Exclude: []netip.Prefix{exclCIDR}}
	for i := 0; i < 2; i++ {
		do(t, tp.node, func() error { return dataplane.SetupSNAT(snat) })
	}
	// The pod is on the secondary ENI: outside the VPC it must still leave as the node.
	p, podNS := tp.addPod(t, "snat", netip.MustParseAddr("10.0.2.50"), dataplane.TableForDevice(1))
	tp.routeToPod(t, p.Addr, eni1IP)

	cases := []struct {
		dst  netip.Addr
		want netip.Addr
	}{
		{inetHost, nodeIP}, // internet: SNAT to the primary IP
		{vpcHost, p.Addr},  // inside the VPC: no SNAT
		{exclHost, p.Addr}, // excluded CIDR: no SNAT
	}
	for i, c := range cases {
		got, ok := sourceSeen(t, tp, podNS.Path(), c.dst, uint16(8000+i))
		if !ok || got != c.want {
			t.Errorf("pod -> %s seen from %v (arrived %v), want %s", c.dst, got, ok, c.want)
		}
	}

	// Many flows share the primary IP: each keeps its own source port (a second pod to the same
	// destination and port still gets through).
	q, qNS := tp.addPod(t, "snat-2", netip.MustParseAddr("10.0.1.51"), 0)
	tp.routeToPod(t, q.Addr, nodeIP)
	for i, path := range []string{podNS.Path(), qNS.Path(), podNS.Path()} {
		if got, ok := sourceSeen(t, tp, path, inetHost, 8053); !ok || got != nodeIP {
			t.Errorf("flow %d to %s:8053 seen from %v (arrived %v), want %s", i, inetHost, got, ok, nodeIP)
		}
	}

	do(t, tp.node, func() error { return dataplane.SetupSNAT(dataplane.SNAT{External: true}) })
	do(t, tp.node, func() error { return dataplane.SetupSNAT(dataplane.SNAT{External: true}) })
	if got, ok := sourceSeen(t, tp, podNS.Path(), inetHost, 8100); !ok || got != p.Addr {
		t.Errorf("with external SNAT, pod -> %s seen from %v (arrived %v), want %s", inetHost, got, ok, p.Addr)
	}
	do(t, tp.node, dataplane.Remove)
}

// kubeProxyDNAT stands for kube-proxy in the node namespace: table ip kubeproxy-test, chain at
// prerouting priority dstnat, `ip daddr <service> dnat to <backend>` for each pair.
func kubeProxyDNAT(t *testing.T, tp *topo, services map[netip.Addr]netip.Addr) {
	t.Helper()
	do(t, tp.node, func() error {
		conn, err := nftables.New()
		if err != nil {
			return err
		}
		tb := conn.AddTable(&nftables.Table{Name: "kubeproxy-test", Family: nftables.TableFamilyIPv4})
		ch := conn.AddChain(&nftables.Chain{Name: "services", Table: tb, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
		for svc, backend := range services {
			s, b := svc.As4(), backend.As4()
			conn.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: []expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: s[:]},
				&expr.Immediate{Register: 1, Data: b[:]},
				&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegAddrMax: 1},
			}})
		}
		return conn.Flush()
	})
}

// oldMarkChain makes the snat_mark chain as agents before the fix did: prerouting at mangle,
// marking every packet from the VPC (a stand-in for its rules, which saw the ClusterIP as
// outside the VPC).
func oldMarkChain(t *testing.T, tp *topo) {
	t.Helper()
	do(t, tp.node, func() error {
		conn, err := nftables.New()
		if err != nil {
			return err
		}
		tb := conn.AddTable(&nftables.Table{Name: dataplane.TableName, Family: nftables.TableFamilyINet})
		ch := conn.AddChain(&nftables.Chain{Name: "snat_mark", Table: tb, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityMangle})
		conn.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: []expr.Any{
			&expr.Immediate{Register: 1, Data: []byte{0x80, 0, 0, 0}},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
		}})
		return conn.Flush()
	})
}

// Issue 15 item 1: pod -> ClusterIP -> pod elsewhere in the VPC must keep the client pod's
// address; the SNAT decision is taken on the destination after kube-proxy's DNAT.
func TestSNATDecidesAfterServiceDNAT(t *testing.T) {
	tp := newTopo(t)
	do(t, tp.node, func() error { return dataplane.SetupENI(eni1) })
	oldMarkChain(t, tp) // an agent upgraded in place finds its predecessor's chain
	snat := dataplane.SNAT{PrimaryIP: nodeIP, VPCCIDRs: []netip.Prefix{vpcCIDR}}
	for range 2 {
		do(t, tp.node, func() error { return dataplane.SetupSNAT(snat) })
	}
	do(t, tp.node, func() error {
		conn, err := nftables.New()
		if err != nil {
			return err
		}
		chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
		if err != nil {
			return err
		}
		n := 0
		for _, c := range chains {
			if c.Table.Name == dataplane.TableName && c.Name == "snat_mark" {
				n++
				if *c.Hooknum != *nftables.ChainHookPrerouting || *c.Priority != *nftables.ChainPriorityNATDest+10 {
					t.Errorf("snat_mark hooks %v at priority %d, want prerouting at dstnat+10 (-90)", *c.Hooknum, *c.Priority)
				}
			}
		}
		if n != 1 {
			t.Errorf("%d snat_mark chains, want 1", n)
		}
		return nil
	})

	clusterIP := netip.MustParseAddr("172.20.0.10")  // a Service whose backend is a pod elsewhere in the VPC
	externalIP := netip.MustParseAddr("172.20.0.11") // a Service whose backend is outside the VPC
	kubeProxyDNAT(t, tp, map[netip.Addr]netip.Addr{clusterIP: vpcHost, externalIP: inetHost})
	p, podNS := tp.addPod(t, "svc-client", netip.MustParseAddr("10.0.2.60"), dataplane.TableForDevice(1))
	tp.routeToPod(t, p.Addr, eni1IP)
	q, qNS := tp.addPod(t, "svc-client-2", netip.MustParseAddr("10.0.1.61"), 0)
	tp.routeToPod(t, q.Addr, nodeIP)

	for i, c := range []struct {
		pod        dataplane.Pod
		path       string
		sendTo, at netip.Addr
		want       netip.Addr
		what       string
	}{
		{p, podNS.Path(), clusterIP, vpcHost, p.Addr, "ClusterIP -> VPC backend, pod on a secondary ENI"},
		{q, qNS.Path(), clusterIP, vpcHost, q.Addr, "ClusterIP -> VPC backend, pod on the primary ENI"},
		{p, podNS.Path(), externalIP, inetHost, nodeIP, "ClusterIP -> backend outside the VPC"},
		{p, podNS.Path(), inetHost, inetHost, nodeIP, "straight to outside the VPC"},
		{p, podNS.Path(), vpcHost, vpcHost, p.Addr, "straight to the VPC"},
	} {
		got, ok := sourceSeenAt(t, tp, c.path, c.sendTo, c.at, uint16(8200+i))
		if !ok || got != c.want {
			t.Errorf("%s: %s -> %s (at %s) seen from %v (arrived %v), want %s", c.what, c.pod.Addr, c.sendTo, c.at, got, ok, c.want)
		}
	}
	do(t, tp.node, dataplane.Remove)
}

// Replies to a SNATed flow of a pod on a secondary ENI come in on the primary ENI, while the
// pod's source rule routes back through its own ENI: with strict reverse-path filtering on the
// primary (rp_filter=1, the default of many distributions) they are dropped. SetupSNAT makes the
// primary ENI loose (2), as it does for secondary ENIs.
func TestSNATRepliesPassStrictReversePathFilter(t *testing.T) {
	tp := newTopo(t)
	do(t, tp.node, func() error { return dataplane.SetupENI(eni1) })
	do(t, tp.node, func() error {
		for _, k := range []string{"all", "eth0"} {
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+k+"/rp_filter", []byte("1"), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	do(t, tp.node, func() error {
		return dataplane.SetupSNAT(dataplane.SNAT{PrimaryIP: nodeIP, VPCCIDRs: []netip.Prefix{vpcCIDR}})
	})
	p, podNS := tp.addPod(t, "rpf", netip.MustParseAddr("10.0.2.70"), dataplane.TableForDevice(1))
	tp.routeToPod(t, p.Addr, eni1IP)
	if n, err := probe.Ping(podNS.Path(), inetHost, 3, 10*time.Second); err != nil || n == 0 {
		t.Fatalf("pod on a secondary ENI -> %s (SNATed): %d replies, %v", inetHost, n, err)
	}
	do(t, tp.node, func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/conf/eth0/rp_filter")
		if err == nil && strings.TrimSpace(string(b)) != "2" {
			t.Errorf("primary ENI rp_filter %s, want 2", b)
		}
		return err
	})
	do(t, tp.node, dataplane.Remove)
}
