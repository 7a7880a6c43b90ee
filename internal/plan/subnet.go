package plan

import (
	"net/netip"

	"github.com/vpcnet/vpcnet/internal/catalog"
)

// ReservedPerSubnet is what AWS keeps of every subnet: network, router (+1), DNS (+2), reserved
// (+3) and the last address.
const ReservedPerSubnet = 5

// Subnet is one subnet's accounting in one mode.
type Subnet struct {
	CIDR          netip.Prefix `json:"cidr"`
	Size          int          `json:"size"`
	Reserved      int          `json:"reserved"`
	Nodes         int          `json:"nodes"`
	NodePrimaries int          `json:"nodePrimaries"` // one per node: its first ENI's primary
	ENIPrimaries  int          `json:"eniPrimaries"`  // primaries of the nodes' other ENIs
	PodAddresses  int          `json:"podAddresses"`  // addresses given to pods
	WarmAddresses int          `json:"warmAddresses"` // held by nodes, not yet given to a pod
	Prefixes      int          `json:"prefixes"`      // /28 prefixes held (prefix mode)
	Free          int          `json:"free"`          // addresses left; 0 when the subnet is short
	// Utilisation is the share of the usable addresses (Size - Reserved) in use, in percent;
	// above 100 when the nodes do not fit.
	Utilisation float64 `json:"utilisation"`
	// FreeBlocks counts fully free aligned /28s left for prefixes (prefix mode), assuming ENI
	// primaries pack into as few /28s as they can; FreeBlocksIfScattered assumes each primary
	// sits in a /28 of its own, as EC2's own choice of addresses can leave them. Below zero,
	// that many prefixes cannot be placed.
	FreeBlocks            int  `json:"freeBlocks"`
	FreeBlocksIfScattered int  `json:"freeBlocksIfScattered"`
	Fits                  bool `json:"fits"`
	Shortfall             int  `json:"shortfall,omitempty"` // addresses missing (/28s: see FreeBlocks)
	// MoreNodes is how many more nodes of this shape the subnet takes; Limit what stops the next.
	MoreNodes int    `json:"moreNodes"`
	Limit     string `json:"limit"`
}

// Limits a subnet runs out of.
const (
	LimitAddresses = "free addresses"
	LimitBlocks    = "free aligned /28 blocks"
)

// usage is what n nodes of one shape need from a subnet of a given size.
type usage struct {
	size   int
	mode   Mode
	shape  Node
	blocks int // aligned /28s in the subnet
}

func newUsage(p netip.Prefix, mode Mode, shape Node) usage {
	size := 1 << (32 - p.Bits())
	return usage{size: size, mode: mode, shape: shape, blocks: size / catalog.PrefixSize}
}

// edgeSingles is how many single addresses the first and last /28 hold: they lose the four
// reserved addresses at the start and the one at the end, so they never hold a prefix.
func (u usage) edgeSingles() int {
	if u.blocks == 1 {
		return catalog.PrefixSize - ReservedPerSubnet
	}
	return 2*catalog.PrefixSize - ReservedPerSubnet
}

// prefixBlocks is the /28s usable for prefixes.
func (u usage) prefixBlocks() int { return max(u.blocks-2, 0) }

// freeBlocks returns the aligned /28s left free with n nodes: packed primaries fill the edge
// /28s first and then as few others as they can; scattered ones take one /28 each.
func (u usage) freeBlocks(n int) (packed, scattered int) {
	singles := n * u.shape.ENIs
	prefixes := n * u.shape.Prefixes
	overflow := ceilDiv(max(singles-u.edgeSingles(), 0), catalog.PrefixSize)
	if u.blocks == 1 && singles > u.edgeSingles() {
		overflow = 1 // a lone /28 has no other block to spill into
	}
	packed = u.prefixBlocks() - overflow - prefixes
	scattered = u.prefixBlocks() - min(singles, u.prefixBlocks()) - prefixes
	return packed, scattered
}

// free returns the addresses left with n nodes (negative when short).
func (u usage) free(n int) int {
	return u.size - ReservedPerSubnet - n*u.shape.SubnetAddresses
}

// fits reports whether n nodes fit, and if not, what runs out. scattered selects the worst
// case for prefix mode.
func (u usage) fits(n int, scattered bool) (bool, string) {
	blocksShort := false
	if u.mode == Prefix {
		packed, worst := u.freeBlocks(n)
		blocksShort = packed < 0 || (scattered && worst < 0)
	}
	// When both run out together, a node that holds prefixes is short of /28s: free single
	// addresses are no use to it.
	switch {
	case blocksShort && u.shape.Prefixes > 0:
		return false, LimitBlocks
	case u.free(n) < 0 || blocksShort:
		return false, LimitAddresses
	}
	return true, ""
}

// more returns how many more nodes fit beside n, and what stops the one after.
func (u usage) more(n int, scattered bool) (int, string) {
	if ok, limit := u.fits(n, scattered); !ok {
		return 0, limit
	}
	// fits is monotonic in n; search the largest k with fits(n + k).
	lo, hi := 0, u.size // a node takes at least one address
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if ok, _ := u.fits(n+mid, scattered); ok {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	_, limit := u.fits(n+lo+1, scattered)
	return lo, limit
}

// subnet accounts for the n nodes placed in subnet p.
func subnet(p netip.Prefix, n int, mode Mode, shape Node) Subnet {
	u := newUsage(p, mode, shape)
	s := Subnet{
		CIDR: p, Size: u.size, Reserved: ReservedPerSubnet, Nodes: n,
		NodePrimaries: n,
		ENIPrimaries:  n * (shape.ENIs - 1),
		Prefixes:      n * shape.Prefixes,
	}
	if mode != Overlay {
		s.PodAddresses = n * shape.PodsWithAddress
		s.WarmAddresses = n * shape.Warm
	}
	free := u.free(n)
	s.Free = max(free, 0)
	s.Utilisation = percent(n*shape.SubnetAddresses, u.size-ReservedPerSubnet)
	if mode == Prefix {
		s.FreeBlocks, s.FreeBlocksIfScattered = u.freeBlocks(n)
	}
	s.Fits, _ = u.fits(n, false)
	s.Shortfall = max(-free, 0)
	s.MoreNodes, s.Limit = u.more(n, false)
	return s
}

func percent(part, whole int) float64 {
	if whole <= 0 {
		return 0
	}
	return float64(int(float64(part)*1000/float64(whole)+0.5)) / 10
}
