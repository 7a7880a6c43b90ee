package dataplane

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// IMDSAddr is the instance metadata service's IPv4 address.
var IMDSAddr = netip.MustParseAddr("169.254.169.254")

const chainBlockIMDS = "block_pod_imds"

// BlockPodIMDS makes pods unable to reach IMDS, so that they cannot act as their node toward
// the cloud with its instance role (issue 11 fault 9; on AWS the IMDSv2 hop limit of 1 does the
// same for IMDSv2 only). In table inet vpcnet of the current (node) namespace:
//
//	chain block_pod_imds { type filter hook prerouting priority raw; policy accept; }
//	  iifname "<vethPrefix>*" meta nfproto ipv4 ip daddr 169.254.169.254 counter drop
//
// Only packets arriving from pods' host veths pass prerouting with that interface; the node's
// own requests to IMDS leave through output and are untouched. block=false removes the chain.
// Each call rewrites the chain, so it is idempotent. Errors: an empty prefix, or nftables'.
func BlockPodIMDS(vethPrefix string, block bool) error {
	if !block {
		return removeChain(chainBlockIMDS)
	}
	if vethPrefix == "" {
		return errors.New("block pod IMDS: empty veth prefix")
	}
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	t := conn.AddTable(nftTable())
	accept := nftables.ChainPolicyAccept
	ch := conn.AddChain(&nftables.Chain{Name: chainBlockIMDS, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw, Policy: &accept})
	conn.FlushChain(ch)
	exprs := append(matchIfPrefix(vethPrefix), matchIPv4()...)
	exprs = append(exprs, inPrefix(16, netip.PrefixFrom(IMDSAddr, 32))...)
	exprs = append(exprs, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})
	conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs, UserData: []byte(tagPrefix + " block-pod-imds " + vethPrefix)})
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables: block pods' IMDS access (%s*): %w", vethPrefix, err)
	}
	return nil
}

// removeChain deletes a chain of table inet vpcnet; absent is fine.
func removeChain(name string) error {
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return err
	}
	for _, c := range chains {
		if c.Table.Name == TableName && c.Name == name {
			conn.DelChain(c)
		}
	}
	if err := conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("nftables: remove chain %s: %w", name, err)
	}
	return nil
}
