package fabric

import (
	"fmt"
	"net/netip"
)

// Node is where an instance's ENIs land: the node's namespace and its lab index, which names
// the router's ports.
type Node struct {
	Index int
	NS    string
}

// Port is one attached ENI as the router sees it: a veth whose router end is Link and whose
// node end, in the node's namespace, is Peer (ethN for device index N) with the ENI's MAC.
type Port struct {
	NS      string
	Link    string
	Peer    string
	MAC     string
	Primary netip.Addr // the ENI's primary address: next hop of every route to this port
}

// PortFor names the port of device index device on node n.
func PortFor(n Node, device int, mac string, primary netip.Addr) Port {
	return Port{NS: n.NS, Link: fmt.Sprintf("n%de%d", n.Index, device), Peer: fmt.Sprintf("eth%d", device), MAC: mac, Primary: primary}
}

// Op is what an Action does.
type Op int

const (
	// AddGateway puts a subnet's router address (Addr) on the router, so that it answers ARP
	// and pings for it on every port.
	AddGateway Op = iota + 1
	// AddPort creates Port's veth pair, moves Peer into the node's namespace with the ENI's MAC
	// and pins the ENI's MAC as the neighbour of its primary address on the router.
	AddPort
	// DelPort removes Port's veth pair and with it every route through it.
	DelPort
	// AddRoute routes Dst to Port.
	AddRoute
	// DelRoute removes the route of Dst to Port.
	DelRoute
	// ConfigureNode gives the node's eth0 its primary address Addr (with the subnet's length)
	// and a default route via Gateway, as DHCP does on an EC2 instance.
	ConfigureNode
	// AllowEgress lets Addr (a primary ENI address) reach the internet namespace.
	AllowEgress
	// DenyEgress takes that back.
	DenyEgress
)

var opNames = map[Op]string{AddGateway: "add-gateway", AddPort: "add-port", DelPort: "del-port",
	AddRoute: "add-route", DelRoute: "del-route", ConfigureNode: "configure-node",
	AllowEgress: "allow-egress", DenyEgress: "deny-egress"}

func (o Op) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return fmt.Sprintf("op(%d)", int(o))
}

// Action is one change to the network namespaces. Which fields matter depends on Op.
type Action struct {
	Op      Op
	Port    Port
	Dst     netip.Prefix // AddRoute, DelRoute
	Addr    netip.Prefix // ConfigureNode: address/subnet length; AddGateway, *Egress: address/32
	Gateway netip.Addr   // ConfigureNode
}

func (a Action) String() string {
	switch a.Op {
	case AddGateway, AllowEgress, DenyEgress:
		return fmt.Sprintf("%s %s", a.Op, a.Addr)
	case AddPort, DelPort:
		return fmt.Sprintf("%s %s<->%s/%s %s", a.Op, a.Port.Link, a.Port.NS, a.Port.Peer, a.Port.MAC)
	case AddRoute, DelRoute:
		return fmt.Sprintf("%s %s dev %s", a.Op, a.Dst, a.Port.Link)
	case ConfigureNode:
		return fmt.Sprintf("%s %s/%s %s via %s", a.Op, a.Port.NS, a.Port.Peer, a.Addr, a.Gateway)
	}
	return a.Op.String()
}
