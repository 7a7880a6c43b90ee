package dataplane

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Our nftables objects, all in table inet vpcnet:
//
//	set pod_ifs   { type ifname }              host veths of pods
//	set pod_src   { type ifname . ipv4_addr }  each pod veth with the one source it may use
//	chain antispoof { type filter hook prerouting priority raw; }
//	  meta nfproto ipv4 iifname . ip saddr @pod_src accept
//	  iifname @pod_ifs counter drop
//	chain snat_mark { type filter hook prerouting priority mangle; }   (SetupSNAT)
//	chain snat      { type nat hook postrouting priority srcnat; }     (SetupSNAT)
const (
	setPodIfs      = "pod_ifs"
	setPodSrc      = "pod_src"
	chainAntispoof = "antispoof"
	chainSNATMark  = "snat_mark"
	chainSNAT      = "snat"
	// ruleTag marks the rules we wrote, so a rerun can tell whether they are current.
	ruleTag = "vpcnet/v1"
)

func nftTable() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
}

func podIfsSet(t *nftables.Table) *nftables.Set {
	return &nftables.Set{Table: t, Name: setPodIfs, KeyType: nftables.TypeIFName}
}

func podSrcSet(t *nftables.Table) *nftables.Set {
	return &nftables.Set{Table: t, Name: setPodSrc, Concatenation: true,
		KeyType: nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeIPAddr)}
}

// ifnameKey is an interface name as nftables keys hold it: 16 bytes, NUL padded.
func ifnameKey(name string) []byte {
	b := make([]byte, 16)
	copy(b, name)
	return b
}

func srcKey(ifname string, ip netip.Addr) []byte {
	a := ip.As4()
	return append(ifnameKey(ifname), a[:]...)
}

// matchIPv4 is `meta nfproto ipv4` (needed before reading IPv4 headers in an inet chain).
func matchIPv4() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

// matchPodIf is `iifname @pod_ifs`.
func matchPodIf(ifs *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: ifs.Name, SetID: ifs.ID},
	}
}

// ensureBase creates the table, the pod sets and the anti-spoofing chain in conn's batch, and
// (re)writes the chain's rules when they are not ours and current. It does not flush.
func ensureBase(conn *nftables.Conn) (t *nftables.Table, ifs, src *nftables.Set, err error) {
	t = conn.AddTable(nftTable())
	ifs, src = podIfsSet(t), podSrcSet(t)
	if err := conn.AddSet(ifs, nil); err != nil {
		return nil, nil, nil, err
	}
	if err := conn.AddSet(src, nil); err != nil {
		return nil, nil, nil, err
	}
	policy := nftables.ChainPolicyAccept
	ch := conn.AddChain(&nftables.Chain{Name: chainAntispoof, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw, Policy: &policy})
	if rulesCurrent(t, chainAntispoof, 2) {
		return t, ifs, src, nil
	}
	conn.FlushChain(ch)
	allow := append(matchIPv4(),
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		// ip saddr into the 32-bit register right after the 16-byte interface name.
		&expr.Payload{DestRegister: 12, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: src.Name, SetID: src.ID},
		&expr.Verdict{Kind: expr.VerdictAccept})
	conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: allow, UserData: []byte(ruleTag)})
	drop := append(matchPodIf(ifs), &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})
	conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: drop, UserData: []byte(ruleTag)})
	return t, ifs, src, nil
}

// rulesCurrent reports whether chain holds exactly n rules, all tagged as ours.
func rulesCurrent(t *nftables.Table, chain string, n int) bool {
	conn, err := nftables.New()
	if err != nil {
		return false
	}
	rules, err := conn.GetRules(t, &nftables.Chain{Name: chain, Table: t})
	if err != nil || len(rules) != n {
		return false
	}
	for _, r := range rules {
		if !bytes.Equal(r.UserData, []byte(ruleTag)) {
			return false
		}
	}
	return true
}

// allowPodSource lets traffic in from hostVeth only with source ip, and drops the rest.
func allowPodSource(hostVeth string, ip netip.Addr) error {
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	_, ifs, src, err := ensureBase(conn)
	if err != nil {
		return err
	}
	if err := conn.SetAddElements(ifs, []nftables.SetElement{{Key: ifnameKey(hostVeth)}}); err != nil {
		return err
	}
	if err := conn.SetAddElements(src, []nftables.SetElement{{Key: srcKey(hostVeth, ip)}}); err != nil {
		return err
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables: allow %s from %s: %w", ip, hostVeth, err)
	}
	return nil
}

// forgetPod removes hostVeth's elements from our sets. Elements or a table that are not there
// are not an error.
func forgetPod(hostVeth string, ip netip.Addr) error {
	t := nftTable()
	var errs []error
	del := func(s *nftables.Set, key []byte) {
		conn, err := nftables.New()
		if err != nil {
			errs = append(errs, err)
			return
		}
		if err := conn.SetDeleteElements(s, []nftables.SetElement{{Key: key}}); err != nil {
			errs = append(errs, err)
			return
		}
		if err := conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("nftables: remove %s from set %s: %w", hostVeth, s.Name, err))
		}
	}
	if ip.IsValid() {
		del(podSrcSet(t), srcKey(hostVeth, ip))
	} else if elems, err := podElements(t); err == nil {
		for _, k := range elems {
			if bytes.Equal(k[:16], ifnameKey(hostVeth)) {
				del(podSrcSet(t), k)
			}
		}
	}
	del(podIfsSet(t), ifnameKey(hostVeth))
	return errors.Join(errs...)
}

// podElements lists the keys of pod_src; none when the table is missing.
func podElements(t *nftables.Table) ([][]byte, error) {
	conn, err := nftables.New()
	if err != nil {
		return nil, err
	}
	elems, err := conn.GetSetElements(podSrcSet(t))
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, err
	}
	out := make([][]byte, 0, len(elems))
	for _, e := range elems {
		out = append(out, e.Key)
	}
	return out, nil
}

// PodSources returns the (host veth, address) pairs the anti-spoofing set allows, for checks
// and tests.
func PodSources() (map[string]netip.Addr, error) {
	keys, err := podElements(nftTable())
	if err != nil {
		return nil, err
	}
	out := make(map[string]netip.Addr, len(keys))
	for _, k := range keys {
		if len(k) < 20 {
			continue
		}
		name := string(bytes.TrimRight(k[:16], "\x00"))
		out[name] = netip.AddrFrom4([4]byte(k[16:20]))
	}
	return out, nil
}

// SpoofDrops returns how many packets the anti-spoofing chain dropped in this namespace.
func SpoofDrops() (uint64, error) {
	conn, err := nftables.New()
	if err != nil {
		return 0, err
	}
	t := nftTable()
	rules, err := conn.GetRules(t, &nftables.Chain{Name: chainAntispoof, Table: t})
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, r := range rules {
		for _, e := range r.Exprs {
			if c, ok := e.(*expr.Counter); ok {
				n += c.Packets
			}
		}
	}
	return n, nil
}
