package cni_test

import (
	"encoding/json"
	"net"
	"net/netip"
	"os"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
)

type typesGCAttachment = types.GCAttachment

// addAddr adds ip/32 to the named link in the calling thread's namespace.
func addAddr(link string, ip netip.Addr) error {
	l, err := netlink.LinkByName(link)
	if err != nil {
		return err
	}
	return netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}})
}

func writeFile(path, v string) error { return os.WriteFile(path, []byte(v), 0o644) }

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
