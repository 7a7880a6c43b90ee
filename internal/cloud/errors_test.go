package cloud_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vpcnet/vpcnet/internal/cloud"
)

// TestClassify: every known way EC2 says a subnet is short, a permission or credentials are
// refused, or the caller is throttled maps to its kind, whatever code it came with.
func TestClassify(t *testing.T) {
	const short = "There aren't sufficient free Ipv4 addresses or prefixes"
	for _, tc := range []struct {
		code, msg string
		prefixes  bool
		want      cloud.Kind
	}{
		{"InsufficientFreeAddressesInSubnet", "Insufficient Free IP Addresses in subnet.", false, cloud.KindSubnetFull},
		{"InsufficientFreeAddressesInSubnet", "", true, cloud.KindSubnetFull},
		{"InsufficientCidrBlocks", "The specified subnet does not have enough free cidr blocks to satisfy the request.", true, cloud.KindNoCIDRBlocks},
		// EC2's other answer for the same (cilium/cilium#31016): on single addresses the subnet
		// is full; on prefixes, single addresses may still be free.
		{"InvalidParameterValue", short, false, cloud.KindSubnetFull},
		{"InvalidParameterValue", short + ".", true, cloud.KindNoCIDRBlocks},
		{"InvalidParameterValue", "there aren't SUFFICIENT free ipv4 addresses or prefixes in subnet-0a1", false, cloud.KindSubnetFull},
		// Other InvalidParameterValue answers are not exhaustion.
		{"InvalidIPAddress.InUse", "Address 10.0.1.9 is in use.", false, cloud.KindInUse},
		{"InvalidParameterValue", "Address 10.0.1.9 is already assigned to eni-2.", false, cloud.KindInUse},
		{"InvalidParameterValue", "Invalid value 'x' for PrivateIpAddress.", false, cloud.KindOther},
		{"InvalidParameterValue", "", true, cloud.KindOther},
		{"InsufficientFreeAddressesInSubnetX", short, false, cloud.KindOther},
		{"UnauthorizedOperation", "You are not authorized to perform this operation.", false, cloud.KindUnauthorized},
		{"AuthFailure", "AWS was not able to validate the provided access credentials", false, cloud.KindAuthFailure},
		{"InvalidClientTokenId", "", false, cloud.KindAuthFailure},
		{"SignatureDoesNotMatch", "", false, cloud.KindAuthFailure},
		{"ExpiredToken", "", false, cloud.KindAuthFailure},
		{"RequestExpired", "", false, cloud.KindAuthFailure},
		{"RequestLimitExceeded", "Request limit exceeded.", false, cloud.KindThrottled},
		{"InvalidNetworkInterfaceID.NotFound", "", false, cloud.KindNotFound},
		{"InvalidAttachmentID.NotFound", "", false, cloud.KindNotFound},
		{"InternalError", short, false, cloud.KindOther},
		{"", "", false, cloud.KindOther},
	} {
		if got := cloud.Classify(tc.code, tc.msg, tc.prefixes); got != tc.want {
			t.Errorf("Classify(%q, %q, prefixes=%v) = %v, want %v", tc.code, tc.msg, tc.prefixes, got, tc.want)
		}
	}
}

func FuzzClassify(f *testing.F) {
	f.Add("InvalidParameterValue", "There aren't sufficient free Ipv4 addresses or prefixes", true)
	f.Add("UnauthorizedOperation", "", false)
	f.Fuzz(func(t *testing.T, code, msg string, prefixes bool) {
		k := cloud.Classify(code, msg, prefixes)
		if k.String() == "" {
			t.Fatalf("kind %d has no name", k)
		}
		// Exhaustion only ever comes from the three known answers.
		if (k == cloud.KindSubnetFull || k == cloud.KindNoCIDRBlocks) && code != cloud.ErrSubnetFull && code != cloud.ErrNoCIDRBlocks &&
			!(code == cloud.ErrInvalidParameter && strings.Contains(strings.ToLower(msg), strings.ToLower(cloud.ExhaustionMessage))) {
			t.Fatalf("Classify(%q, %q) = %v", code, msg, k)
		}
	})
}

// TestRefusedCallsClassified: a denied action comes back from the client as a *cloud.Error of
// kind unauthorized, naming the EC2 action and the IAM permission to grant.
func TestRefusedCallsClassified(t *testing.T) {
	s, _, imds := setupSim(t)
	c, id, _ := newClient(t, s, imds, cloud.Config{MaxAttempts: 1})
	s.SetDeny("AssignPrivateIpAddresses", true)
	enis, err := c.ENIs(bg, id.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AssignIPs(bg, enis[0].ID, 1)
	var ce *cloud.Error
	if !errors.As(err, &ce) || ce.Kind != cloud.KindUnauthorized || ce.Action != "AssignPrivateIpAddresses" || ce.Code != "UnauthorizedOperation" {
		t.Fatalf("assign while denied: %#v", err)
	}
	if msg := cloud.Explain(err); !strings.Contains(msg, "ec2:AssignPrivateIpAddresses") || strings.Contains(msg, "unreachable") {
		t.Fatalf("explanation %q does not name the permission", msg)
	}
	s.SetDeny("AssignPrivateIpAddresses", false)
	s.SetDeny("DescribeNetworkInterfaces", true)
	if _, err := c.ENIs(bg, "i-none"); cloud.KindOf(err) != cloud.KindUnauthorized || !strings.Contains(cloud.Explain(err), "ec2:DescribeNetworkInterfaces") {
		t.Fatalf("describe while denied: %v", err)
	}
}
