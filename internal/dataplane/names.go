package dataplane

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// maxIfName is the longest interface name Linux accepts (IFNAMSIZ-1).
const maxIfName = 15

// MaxVethPrefix is the longest veth prefix that still leaves room for a useful hash.
const MaxVethPrefix = 7

// VethName returns the host-side veth name of a pod: prefix + the first hex digits of
// sha1("namespace.name"), 15 characters at most, as the AWS VPC CNI names them. It is the same for
// the same pod on every call, so DEL finds the veth without any saved state.
func VethName(prefix, namespace, name string) string {
	sum := sha1.Sum([]byte(namespace + "." + name))
	h := hex.EncodeToString(sum[:])
	n := maxIfName - len(prefix)
	if n > 11 {
		n = 11
	}
	return prefix + h[:n]
}

// ValidVethPrefix says why prefix cannot start host veth names, or returns nil.
func ValidVethPrefix(prefix string) error {
	if prefix == "" || len(prefix) > MaxVethPrefix {
		return fmt.Errorf("veth prefix %q must be 1 to %d characters", prefix, MaxVethPrefix)
	}
	for _, c := range prefix {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("veth prefix %q: only letters, digits, '-' and '_' are allowed", prefix)
		}
	}
	switch prefix {
	case "eth", "lo", "vlan":
		return fmt.Errorf("veth prefix %q is reserved for node interfaces", prefix)
	}
	return nil
}

// ContainerVethName returns the host-side veth name of one attachment: prefix + the first hex
// digits of sha1(network, container ID, interface name), 15 characters at most. It is tied to
// the container (sandbox), not to the pod's name: when a runtime recreates a pod's sandbox, the
// old and the new sandbox have different host veths, so the old one's DEL cannot reach the new.
func ContainerVethName(prefix, network, containerID, ifname string) string {
	return VethName(prefix, network+"\x00"+containerID, ifname)
}

// maxAlias bounds Owner tags (the kernel's IFALIASZ is 256 with the NUL).
const maxAlias = 255

// OwnerTag is what the host veth of an attachment carries as its interface alias
// (`ip link show` prints it as "alias"), so that DEL and GC can prove a veth is theirs before
// removing it: "vpcnet <network> <container ID> <interface>", or for keys too long for an alias,
// "vpcnet sha256:<hex of the three>".
func OwnerTag(network, containerID, ifname string) string {
	s := "vpcnet " + network + " " + containerID + " " + ifname
	if len(s) <= maxAlias {
		return s
	}
	sum := sha256.Sum256([]byte(network + "\x00" + containerID + "\x00" + ifname))
	return "vpcnet sha256:" + hex.EncodeToString(sum[:])
}
