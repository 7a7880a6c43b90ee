package fabric

import "net/netip"

// Addresses the lab's router serves on, and the internet namespace's.
var (
	// IMDSAddr answers the instance metadata service, as on EC2.
	IMDSAddr = netip.MustParseAddr("169.254.169.254")
	// EC2Addr answers the EC2 API. AWS reaches it through a regional endpoint; the lab puts
	// it on a link-local address so nodes need no DNS and no route beyond their default.
	EC2Addr = netip.MustParseAddr("169.254.169.100")
	// InternetNet is the internet namespace's link to the router (TEST-NET-3, RFC 5737).
	InternetNet = netip.MustParsePrefix("203.0.113.0/24")
	// InternetRouter is the router's address on that link.
	InternetRouter = netip.MustParseAddr("203.0.113.1")
	// InternetHost is the internet namespace's address: a host "out there".
	InternetHost = netip.MustParseAddr("203.0.113.10")
)

const (
	// MTU of every fabric link, as on Nitro instances.
	MTU = 9001
	// egressTable holds the router's route to the internet; only primary ENI addresses have a
	// rule pointing at it.
	egressTable = 200
	// egressRulePriority orders the egress rules before the main table.
	egressRulePriority = 100
	// InternetLink is the router's end of the link to the internet namespace.
	InternetLink = "inet"
)

func prefix32(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, 32) }

func netipPrefix(a netip.Addr, bits int) netip.Prefix { return netip.PrefixFrom(a, bits) }
