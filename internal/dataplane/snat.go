package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SNAT is how pod traffic leaves the VPC.
type SNAT struct {
	PrimaryIP netip.Addr     // the node's primary private IP
	VPCCIDRs  []netip.Prefix // destinations reached without SNAT
	Exclude   []netip.Prefix // more destinations reached without SNAT
	External  bool           // SNAT happens outside the node (NAT gateway): remove ours
}

// SetupSNAT makes pod-originated connections to destinations outside the VPC CIDRs and the
// exclusions leave through the primary ENI with the node's primary IP:
//
//	chain snat_mark (prerouting, dstnat + 10): IPv4, conntrack original direction (opened from
//	  here), daddr in a VPC CIDR or an exclusion -> return; saddr in a VPC CIDR -> meta mark |= 0x80
//	rule 1024: fwmark 0x80/0x80 lookup main    (out through the primary ENI)
//	chain snat (postrouting, srcnat): mark & 0x80 -> snat to <primary IP>
//
// snat_mark runs after destination NAT (kube-proxy's Service DNAT hooks prerouting at dstnat,
// -100, in iptables or nftables mode) and before the routing decision, so it judges the real
// destination: a pod reaching a ClusterIP whose backend is a VPC address keeps its own source
// address (Kubernetes' "preserve source pod IP for traffic thru service cluster IP"), as the AWS VPC
// CNI's check in nat POSTROUTING does. At mangle (-150), as before, it saw the ClusterIP, outside
// the VPC, and SNATed Service traffic to the node's IP. A snat_mark chain left at another priority
// by an older agent is replaced in the same transaction.
//
// The interface holding PrimaryIP gets rp_filter=2 (loose reverse-path filtering; see
// loosenPrimaryRPFilter). Each call rewrites both chains atomically, so it is idempotent and
// follows changed settings. External=true removes both chains and the rule.
func SetupSNAT(s SNAT) error {
	if s.External {
		return removeSNAT()
	}
	if !s.PrimaryIP.Is4() {
		return fmt.Errorf("SNAT: primary IP %v is not IPv4", s.PrimaryIP)
	}
	for _, p := range append(append([]netip.Prefix{}, s.VPCCIDRs...), s.Exclude...) {
		if !p.IsValid() || !p.Addr().Is4() {
			return fmt.Errorf("SNAT: CIDR %v is not an IPv4 prefix", p)
		}
	}
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	t := conn.AddTable(nftTable())
	if err := dropMisplacedMarkChain(conn); err != nil {
		return err
	}
	accept := nftables.ChainPolicyAccept
	mark := conn.AddChain(&nftables.Chain{Name: chainSNATMark, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: snatMarkPriority, Policy: &accept})
	conn.FlushChain(mark)
	// Forwarded (prerouting never sees the node's own output) and opened from this side.
	orig := append(matchIPv4(),
		&expr.Ct{Key: expr.CtKeyDIRECTION, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}}) // IP_CT_DIR_ORIGINAL
	tag := []byte(tagPrefix + " snat")
	for _, p := range append(append([]netip.Prefix{}, s.VPCCIDRs...), s.Exclude...) {
		exprs := append(append([]expr.Any{}, orig...), inPrefix(16, p)...)
		exprs = append(exprs, &expr.Verdict{Kind: expr.VerdictReturn})
		conn.AddRule(&nftables.Rule{Table: t, Chain: mark, Exprs: exprs, UserData: tag})
	}
	// From a VPC address (a pod) to anywhere else: mark for SNAT.
	for _, p := range s.VPCCIDRs {
		exprs := append(append([]expr.Any{}, orig...), inPrefix(12, p)...)
		exprs = append(exprs,
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binary.NativeEndian.AppendUint32(nil, ^uint32(SNATMark)), Xor: binary.NativeEndian.AppendUint32(nil, SNATMark)},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1})
		conn.AddRule(&nftables.Rule{Table: t, Chain: mark, Exprs: exprs, UserData: tag})
	}

	nat := conn.AddChain(&nftables.Chain{Name: chainSNAT, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept})
	conn.FlushChain(nat)
	ip := s.PrimaryIP.As4()
	snat := append(matchIPv4(),
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, SNATMark), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, SNATMark)},
		&expr.Immediate{Register: 1, Data: ip[:]},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegAddrMax: 1})
	conn.AddRule(&nftables.Rule{Table: t, Chain: nat, Exprs: snat, UserData: tag})
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables: SNAT to %s: %w", s.PrimaryIP, err)
	}
	if err := loosenPrimaryRPFilter(s.PrimaryIP); err != nil {
		return err
	}
	return addRule(markRule())
}

// loosenPrimaryRPFilter sets rp_filter=2 (loose) on the interface holding primary, if one does.
// Replies to a SNATed flow of a pod on a secondary ENI arrive there, while the pod's source rule
// routes back through the pod's own ENI, so strict filtering (1, many distributions' default;
// the kernel uses the larger of "all" and the interface's value) would drop them.
func loosenPrimaryRPFilter(primary netip.Addr) error {
	addrs, err := dump(func() ([]netlink.Addr, error) { return netlink.AddrList(nil, unix.AF_INET) })
	if err != nil {
		return fmt.Errorf("SNAT: listing addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); !ok || ip != primary {
			continue
		}
		link, err := netlink.LinkByIndex(a.LinkIndex)
		if err != nil {
			return fmt.Errorf("SNAT: interface of %s: %w", primary, err)
		}
		return setSysctl("net/ipv4/conf/"+link.Attrs().Name+"/rp_filter", "2")
	}
	return nil
}

// snatMarkPriority is dstnat + 10: after Service DNAT, before routing (see SetupSNAT).
var snatMarkPriority = nftables.ChainPriorityRef(*nftables.ChainPriorityNATDest + 10)

// dropMisplacedMarkChain queues, on conn, the deletion of a snat_mark chain hooked anywhere but
// prerouting at snatMarkPriority (an older agent's, at mangle): a base chain's hook cannot be
// changed in place. The caller's flush deletes and recreates it in one transaction.
func dropMisplacedMarkChain(conn *nftables.Conn) error {
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("nftables: listing chains: %w", err)
	}
	for _, c := range chains {
		if c.Table.Name != TableName || c.Name != chainSNATMark {
			continue
		}
		if c.Hooknum == nil || *c.Hooknum != *nftables.ChainHookPrerouting || c.Priority == nil || *c.Priority != *snatMarkPriority {
			conn.DelChain(c)
		}
	}
	return nil
}

// inPrefix matches the IPv4 address at network-header offset off (12 source, 16 destination)
// against p.
func inPrefix(off uint32, p netip.Prefix) []expr.Any {
	p = p.Masked()
	m := binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-p.Bits()))
	if p.Bits() == 0 {
		m = []byte{0, 0, 0, 0}
	}
	a := p.Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}

func markRule() *netlink.Rule {
	r := netlink.NewRule()
	r.Family = unix.AF_INET
	r.Priority = RulePrioSNATMark
	r.Mark = SNATMark
	m := uint32(SNATMark)
	r.Mask = &m
	r.Table = mainTable
	return r
}

func removeSNAT() error {
	var errs []error
	if err := delRule(markRule()); err != nil {
		errs = append(errs, err)
	}
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, c := range chains {
		if c.Table.Name == TableName && (c.Name == chainSNAT || c.Name == chainSNATMark) {
			conn.DelChain(c)
		}
	}
	if err := conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("nftables: remove SNAT: %w", err))
	}
	return errors.Join(errs...)
}

// Remove deletes everything of ours in the current namespace that is not tied to one pod or ENI:
// the nftables table and the SNAT mark rule. For tests and node decommissioning.
func Remove() error {
	var errs []error
	if err := delRule(markRule()); err != nil {
		errs = append(errs, err)
	}
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	conn.DelTable(nftTable())
	if err := conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
