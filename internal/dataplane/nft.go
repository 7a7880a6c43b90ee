package dataplane

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Our nftables objects, all in table inet vpcnet. Anti-spoofing holds no per-pod state: a pod's
// host veth only accepts sources whose route points back out of that same veth, and the only such
// address is the pod's own (its /32 host route; rule 512 puts main first for it):
//
//	chain antispoof { type filter hook prerouting priority raw; policy accept; }
//	  iifname "eni*" meta nfproto ipv4 fib saddr . iif oif 0 counter drop   (one per veth prefix)
//	  iifname "eni*" meta nfproto ipv6 counter drop                         (pods are IPv4 only)
//	chain snat_mark { type filter hook prerouting priority dstnat + 10; }   (SetupSNAT)
//	chain snat      { type nat hook postrouting priority srcnat; }     (SetupSNAT)
//
// So DEL has nothing to remove from nftables, and a crash can leave nothing of a pod behind there.
const (
	chainAntispoof = "antispoof"
	chainSNATMark  = "snat_mark"
	chainSNAT      = "snat"
	// tagPrefix starts the UserData of our rules; anti-spoofing rules add the veth prefix.
	tagPrefix = "vpcnet/v1"
)

func nftTable() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
}

func antispoofTag(prefix string) []byte { return []byte(tagPrefix + " antispoof " + prefix) }

// matchIPv4 is `meta nfproto ipv4` (needed before reading IPv4 headers in an inet chain).
func matchIPv4() []expr.Any { return matchProto(unix.NFPROTO_IPV4) }

func matchProto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

// matchIfPrefix is `iifname "<prefix>*"`: only the prefix's bytes are compared.
func matchIfPrefix(prefix string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(prefix)},
	}
}

func antispoofChain(t *nftables.Table) *nftables.Chain {
	policy := nftables.ChainPolicyAccept
	return &nftables.Chain{Name: chainAntispoof, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw, Policy: &policy}
}

// ensureAntispoof makes sure host veths named prefix* drop packets with a source that does not
// route back through them. It only reads when the rules are there (every ADD but the first).
func ensureAntispoof(prefix string) error {
	if prefix == "" {
		return errors.New("anti-spoofing: empty veth prefix")
	}
	t := nftTable()
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	rules, err := conn.GetRules(t, &nftables.Chain{Name: chainAntispoof, Table: t})
	if err == nil {
		n := 0
		for _, r := range rules {
			if bytes.Equal(r.UserData, antispoofTag(prefix)) {
				n++
			}
		}
		if n >= 2 {
			return nil
		}
	}
	// Append (never flush): two first ADDs racing may add the rules twice, which is harmless,
	// while a rewrite could drop another prefix's rules.
	conn.AddTable(t)
	ch := conn.AddChain(antispoofChain(t))
	v4 := append(matchIfPrefix(prefix), matchIPv4()...)
	v4 = append(v4,
		&expr.Fib{Register: 1, FlagSADDR: true, FlagIIF: true, ResultOIF: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 0, 0, 0}},
		&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})
	conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: v4, UserData: antispoofTag(prefix)})
	v6 := append(matchIfPrefix(prefix), matchProto(unix.NFPROTO_IPV6)...)
	v6 = append(v6, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})
	conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: v6, UserData: antispoofTag(prefix)})
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables: anti-spoofing for %s*: %w", prefix, err)
	}
	return nil
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
		if !strings.HasPrefix(string(r.UserData), tagPrefix) {
			continue
		}
		for _, e := range r.Exprs {
			if c, ok := e.(*expr.Counter); ok {
				n += c.Packets
			}
		}
	}
	return n, nil
}

// antispoofPresent reports whether the anti-spoofing rules for prefix are in place.
func antispoofPresent(prefix string) (bool, error) {
	conn, err := nftables.New()
	if err != nil {
		return false, err
	}
	t := nftTable()
	rules, err := conn.GetRules(t, &nftables.Chain{Name: chainAntispoof, Table: t})
	if err != nil {
		return false, err
	}
	n := 0
	for _, r := range rules {
		if bytes.Equal(r.UserData, antispoofTag(prefix)) {
			n++
		}
	}
	return n >= 2, nil
}
