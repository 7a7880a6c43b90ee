package probe

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"github.com/vpcnet/vpcnet/internal/netnsx"
)

// tunnelTypes are the netlink link kinds that carry an overlay.
var tunnelTypes = map[string]bool{
	"vxlan": true, "geneve": true, "ipip": true, "gre": true, "gretap": true, "ip6gre": true,
	"ip6gretap": true, "sit": true, "ip6tnl": true, "vti": true, "vti6": true, "wireguard": true,
	"tun": true, "tuntap": true, "bareudp": true, "fou": true, "erspan": true, "ip6erspan": true,
}

// IsTunnel reports whether a link kind (as netlink names it) carries an overlay.
func IsTunnel(kind string) bool { return tunnelTypes[kind] }

// Link is one network device.
type Link struct {
	Name string
	Type string
}

// Links lists the devices of the named namespace.
func Links(nsName string) ([]Link, error) {
	nsh, err := netns.GetFromPath(netnsx.Path(nsName))
	if err != nil {
		return nil, err
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	ls, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("links of %s: %w", nsName, err)
	}
	out := make([]Link, 0, len(ls))
	for _, l := range ls {
		out = append(out, Link{Name: l.Attrs().Name, Type: l.Type()})
	}
	return out, nil
}
