package lab

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// DefaultName is the lab used when no --name is given.
const DefaultName = "default"

// nsPrefix starts every namespace name the lab makes: vpcnet-<lab>-<role>.
const nsPrefix = "vpcnet-"

var (
	labNameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,19}$`)
	podNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)
	// testNSRE matches the names internal/testenv owns (vpcnet-t<pid>-...): a lab may not
	// take them, or testenv's sweep of dead test processes would remove its namespaces.
	testNSRE = regexp.MustCompile(`^t[0-9]`)
)

// ValidateName checks a lab name: a lowercase letter, then up to 19 lowercase letters or
// digits. No dash, so that one lab's namespace prefix is never a prefix of another's.
func ValidateName(name string) error {
	if !labNameRE.MatchString(name) {
		return fmt.Errorf("lab name %q is not valid: use 1-20 lowercase letters and digits, starting with a letter", name)
	}
	if testNSRE.MatchString(name) {
		return fmt.Errorf("lab name %q is reserved: names of the form t<digit>... belong to test namespaces", name)
	}
	return nil
}

// ValidatePodName checks a pod name: a DNS label of at most 40 characters.
func ValidatePodName(name string) error {
	if !podNameRE.MatchString(name) {
		return fmt.Errorf("pod name %q is not valid: use up to 40 lowercase letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return nil
}

// NSPrefix is the start of every namespace name of the named lab.
func NSPrefix(lab string) string { return nsPrefix + lab + "-" }

// RouterNS names the namespace that stands for the VPC fabric.
func RouterNS(lab string) string { return NSPrefix(lab) + "router" }

// InternetNS names the namespace that stands for the internet.
func InternetNS(lab string) string { return NSPrefix(lab) + "inet" }

// NodeNS names the namespace of the lab's node number index.
func NodeNS(lab string, index int) string { return NSPrefix(lab) + "node-" + strconv.Itoa(index) }

// PodNS names the namespace of a pod.
func PodNS(lab, pod string) string { return NSPrefix(lab) + "pod-" + pod }

// NodeName is the EKS-style name of a node with the given primary address:
// 10.10.1.23 -> ip-10-10-1-23.ec2.internal.
func NodeName(primary netip.Addr) string {
	return "ip-" + strings.ReplaceAll(primary.String(), ".", "-") + ".ec2.internal"
}

// ParseNodeName returns the primary address an EKS-style node name stands for.
func ParseNodeName(name string) (netip.Addr, error) {
	s, ok := strings.CutPrefix(name, "ip-")
	if ok {
		s, ok = strings.CutSuffix(s, ".ec2.internal")
	}
	if !ok {
		return netip.Addr{}, fmt.Errorf("node name %q is not of the form ip-A-B-C-D.ec2.internal", name)
	}
	a, err := netip.ParseAddr(strings.ReplaceAll(s, "-", "."))
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("node name %q does not hold an IPv4 address", name)
	}
	return a, nil
}
