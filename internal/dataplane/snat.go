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
//	chain snat_mark (prerouting, mangle): from a pod veth, original direction, IPv4,
//	  daddr not in VPC CIDRs or exclusions -> meta mark |= 0x80
//	rule 1024: fwmark 0x80/0x80 lookup main    (out through the primary ENI)
//	chain snat (postrouting, srcnat): mark & 0x80 -> snat to <primary IP>
//
// Each call rewrites both chains atomically, so it is idempotent and follows changed settings.
// External=true removes both chains and the rule.
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
	t, ifs, _, err := ensureBase(conn)
	if err != nil {
		return err
	}
	accept := nftables.ChainPolicyAccept
	mark := conn.AddChain(&nftables.Chain{Name: chainSNATMark, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityMangle, Policy: &accept})
	conn.FlushChain(mark)
	pod := append(matchIPv4(), matchPodIf(ifs)...)
	pod = append(pod,
		&expr.Ct{Key: expr.CtKeyDIRECTION, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}}) // IP_CT_DIR_ORIGINAL
	for _, p := range append(append([]netip.Prefix{}, s.VPCCIDRs...), s.Exclude...) {
		p = p.Masked()
		m := make([]byte, 4)
		binary.BigEndian.PutUint32(m, ^uint32(0)<<(32-p.Bits()))
		if p.Bits() == 0 {
			m = []byte{0, 0, 0, 0}
		}
		a := p.Addr().As4()
		exprs := append(append([]expr.Any{}, pod...),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m, Xor: []byte{0, 0, 0, 0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
			&expr.Verdict{Kind: expr.VerdictReturn})
		conn.AddRule(&nftables.Rule{Table: t, Chain: mark, Exprs: exprs, UserData: []byte(ruleTag)})
	}
	setMark := append(append([]expr.Any{}, pod...),
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, ^uint32(SNATMark)), Xor: binary.NativeEndian.AppendUint32(nil, SNATMark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1})
	conn.AddRule(&nftables.Rule{Table: t, Chain: mark, Exprs: setMark, UserData: []byte(ruleTag)})

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
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegAddrMax: 1, Specified: true})
	conn.AddRule(&nftables.Rule{Table: t, Chain: nat, Exprs: snat, UserData: []byte(ruleTag)})
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables: SNAT to %s: %w", s.PrimaryIP, err)
	}
	return addRule(markRule())
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
