package k8s

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/netnsx"
)

// routerSNATTable is the lab's nftables table in the router namespace (table ip).
const routerSNATTable = "vpcnet_lab_control_plane"

// RouterSNAT makes the connections the control plane opens from the lab's router namespace into
// the VPC leave from the API server's advertised address (the first subnet's router address)
// instead of 169.254.169.254. The router holds IMDS's address, the EC2 endpoint's and the
// subnets' router addresses on its loopback and has no address on its ports, so the kernel picks
// the first, IMDS's, as the source of the API server's connections to pods (pods/proxy: the DNS
// and Proxy conformance specs) and of e2e.test's; the agents' IMDS block (VPCNET_BLOCK_POD_IMDS)
// then drops the pods' replies. On EC2 the control plane reaches pods from its own VPC address.
//
//	table ip vpcnet_lab_control_plane {
//	  chain postrouting { type nat hook postrouting priority srcnat; }
//	    ip saddr 169.254.0.0/16 ip daddr <VPC CIDR> snat to <advertised address>
//	}
//
// (IMDS's and the EC2 endpoint's addresses, fabric.IMDSAddr and fabric.EC2Addr, are both
// link-local.) Only connections the router itself opens have such a source (the nodes' IMDS and EC2 traffic
// is answered, never opened, by the router; NAT rules see only a connection's first packet), so
// forwarded traffic between nodes is untouched. Idempotent; removed with the namespace.
func RouterSNAT(labName string, vpc netip.Prefix, advertise netip.Addr) error {
	f, err := os.Open(netnsx.Path(lab.RouterNS(labName)))
	if err != nil {
		return fmt.Errorf("router namespace: %w", err)
	}
	defer f.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		return err
	}
	t := &nftables.Table{Name: routerSNATTable, Family: nftables.TableFamilyIPv4}
	conn.AddTable(t)
	conn.DelTable(t) // drop an earlier version of the table, then write it anew
	conn.AddTable(t)
	ch := conn.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	mask := net4Mask(vpc.Bits())
	conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		// ip saddr 169.254.0.0/16
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: net4Mask(16), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: linkLocal.Addr().AsSlice()},
		// ip daddr <vpc>
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: vpc.Masked().Addr().AsSlice()},
		// snat to <advertise>
		&expr.Immediate{Register: 1, Data: advertise.AsSlice()},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
	}})
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables in %s: control plane source address: %w", lab.RouterNS(labName), err)
	}
	return nil
}

var linkLocal = netip.MustParsePrefix("169.254.0.0/16")

func net4Mask(bits int) []byte {
	m := uint32(0xffffffff) << (32 - bits)
	if bits == 0 {
		m = 0
	}
	return []byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}
}
