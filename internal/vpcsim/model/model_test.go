package model

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return "non-EC2 error: " + err.Error()
	}
	return ""
}

type world struct {
	m      *Model
	vpc    string
	subnet string
}

func newWorld(t *testing.T, subnet string) *world {
	t.Helper()
	m := New("us-east-1", nil, 1)
	v, err := m.CreateVpc(t0, CreateVpcInput{CIDR: netip.MustParsePrefix("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.CreateSubnet(t0, CreateSubnetInput{VPCID: v.ID, CIDR: netip.MustParsePrefix(subnet)})
	if err != nil {
		t.Fatal(err)
	}
	return &world{m: m, vpc: v.ID, subnet: s.ID}
}

func (w *world) run(t *testing.T, typ string) *InstanceView {
	t.Helper()
	r, _, err := w.m.RunInstances(t0, RunInstancesInput{InstanceType: typ, SubnetID: w.subnet, MinCount: 1, MaxCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	return r.Instances[0]
}

func (w *world) eni(t *testing.T, r AddrRequest) *ENI {
	t.Helper()
	e, _, err := w.m.CreateNetworkInterface(t0, CreateNetworkInterfaceInput{SubnetID: w.subnet, Addrs: r})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (w *world) attach(t *testing.T, eni, inst string, dev int) string {
	t.Helper()
	id, _, err := w.m.AttachNetworkInterface(t0, AttachNetworkInterfaceInput{ENIID: eni, InstanceID: inst, DeviceIndex: &dev})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (w *world) available(t *testing.T) int {
	t.Helper()
	ss, _, err := w.m.DescribeSubnets(DescribeInput{IDs: []string{w.subnet}})
	if err != nil {
		t.Fatal(err)
	}
	return ss[0].Available
}

func TestSubnetReservedAddresses(t *testing.T) {
	for _, tc := range []struct {
		cidr  string
		avail int
		first string
	}{
		{"10.0.1.0/24", 251, "10.0.1.4"},
		{"10.0.0.0/28", 11, "10.0.0.4"},
		{"10.0.0.0/16", 65531, "10.0.0.4"},
		{"10.0.4.0/22", 1019, "10.0.4.4"},
	} {
		t.Run(tc.cidr, func(t *testing.T) {
			m := New("us-east-1", nil, 1)
			v, _ := m.CreateVpc(t0, CreateVpcInput{CIDR: netip.MustParsePrefix("10.0.0.0/16")})
			s, err := m.CreateSubnet(t0, CreateSubnetInput{VPCID: v.ID, CIDR: netip.MustParsePrefix(tc.cidr)})
			if err != nil {
				t.Fatal(err)
			}
			if s.Available != tc.avail {
				t.Errorf("available %d, want %d", s.Available, tc.avail)
			}
			e, _, err := m.CreateNetworkInterface(t0, CreateNetworkInterfaceInput{SubnetID: s.ID})
			if err != nil {
				t.Fatal(err)
			}
			if e.PrimaryIP.String() != tc.first {
				t.Errorf("first address %s, want %s", e.PrimaryIP, tc.first)
			}
			last := netip.PrefixFrom(s.CIDR.Addr(), s.CIDR.Bits())
			bcast := lastAddr(last)
			for _, a := range []netip.Addr{s.CIDR.Addr(), s.CIDR.Addr().Next(), s.CIDR.Addr().Next().Next(), s.CIDR.Addr().Next().Next().Next(), bcast} {
				_, _, err := m.CreateNetworkInterface(t0, CreateNetworkInterfaceInput{SubnetID: s.ID, PrimaryIP: a})
				if code(err) != CodeInvalidParameterValue {
					t.Errorf("reserved %s: %v", a, err)
				}
			}
		})
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	n |= 1<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

func TestCreateVpcAndSubnetErrors(t *testing.T) {
	m := New("us-east-1", nil, 1)
	v, _ := m.CreateVpc(t0, CreateVpcInput{CIDR: netip.MustParsePrefix("10.0.0.0/16")})
	if _, err := m.CreateSubnet(t0, CreateSubnetInput{VPCID: v.ID, CIDR: netip.MustParsePrefix("10.0.1.0/24")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"vpc too big", second(m.CreateVpc(t0, CreateVpcInput{CIDR: netip.MustParsePrefix("10.0.0.0/8")})), CodeVPCRange},
		{"vpc too small", second(m.CreateVpc(t0, CreateVpcInput{CIDR: netip.MustParsePrefix("10.0.0.0/29")})), CodeVPCRange},
		{"vpc not masked", second(m.CreateVpc(t0, CreateVpcInput{CIDR: netip.MustParsePrefix("10.0.0.1/16")})), CodeInvalidParameterValue},
		{"vpc missing cidr", second(m.CreateVpc(t0, CreateVpcInput{})), CodeMissingParameter},
		{"subnet overlaps", second(m.CreateSubnet(t0, CreateSubnetInput{VPCID: v.ID, CIDR: netip.MustParsePrefix("10.0.1.128/25")})), CodeSubnetConflict},
		{"subnet contains other", second(m.CreateSubnet(t0, CreateSubnetInput{VPCID: v.ID, CIDR: netip.MustParsePrefix("10.0.0.0/20")})), CodeSubnetConflict},
		{"subnet outside vpc", second(m.CreateSubnet(t0, CreateSubnetInput{VPCID: v.ID, CIDR: netip.MustParsePrefix("10.1.0.0/24")})), CodeSubnetRange},
		{"subnet /29", second(m.CreateSubnet(t0, CreateSubnetInput{VPCID: v.ID, CIDR: netip.MustParsePrefix("10.0.9.0/29")})), CodeSubnetRange},
		{"subnet bigger than vpc", second(m.CreateSubnet(t0, CreateSubnetInput{VPCID: v.ID, CIDR: netip.MustParsePrefix("10.0.0.0/15")})), CodeSubnetRange},
		{"subnet unknown vpc", second(m.CreateSubnet(t0, CreateSubnetInput{VPCID: "vpc-0123", CIDR: netip.MustParsePrefix("10.0.2.0/24")})), CodeVPCNotFound},
		{"subnet malformed vpc", second(m.CreateSubnet(t0, CreateSubnetInput{VPCID: "nope", CIDR: netip.MustParsePrefix("10.0.2.0/24")})), CodeVPCMalformed},
		{"subnet bad az", second(m.CreateSubnet(t0, CreateSubnetInput{VPCID: v.ID, CIDR: netip.MustParsePrefix("10.0.2.0/24"), AZ: "eu-west-1a"})), CodeInvalidParameterValue},
	} {
		if got := code(tc.err); got != tc.want {
			t.Errorf("%s: %q (%v), want %q", tc.name, got, tc.err, tc.want)
		}
	}
}

func second[A any](_ A, err error) error { return err }

func third[A, B any](_ A, _ B, err error) error { return err }

func TestLimitsPerInstanceType(t *testing.T) {
	for _, tc := range []struct {
		typ        string
		enis, ipv4 int
	}{
		{"t3.nano", 2, 2}, {"t3.medium", 3, 6}, {"m5.large", 3, 10}, {"c5.4xlarge", 8, 30}, {"m5.24xlarge", 15, 50},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			w := newWorld(t, "10.0.0.0/20")
			inst := w.run(t, tc.typ)
			primary := inst.Interfaces[0]
			// secondary IPs fill the primary ENI's slots, the primary address included
			if _, _, err := w.m.AssignPrivateIpAddresses(AssignPrivateIpAddressesInput{ENIID: primary.ID, Addrs: AddrRequest{Count: tc.ipv4 - 1}}); err != nil {
				t.Fatal(err)
			}
			_, _, err := w.m.AssignPrivateIpAddresses(AssignPrivateIpAddressesInput{ENIID: primary.ID, Addrs: AddrRequest{Count: 1}})
			if code(err) != CodePrivateIPLimitExceeded {
				t.Fatalf("over the IP limit: %v", err)
			}
			for dev := 1; dev < tc.enis; dev++ {
				w.attach(t, w.eni(t, AddrRequest{}).ID, inst.ID, dev)
			}
			extra := w.eni(t, AddrRequest{})
			dev := tc.enis
			_, _, err = w.m.AttachNetworkInterface(t0, AttachNetworkInterfaceInput{ENIID: extra.ID, InstanceID: inst.ID, DeviceIndex: &dev})
			if code(err) != CodeAttachmentLimitExceeded {
				t.Fatalf("over the ENI limit: %v", err)
			}
		})
	}
}

func TestSlotsSharedBetweenIPsAndPrefixes(t *testing.T) {
	w := newWorld(t, "10.0.0.0/20")
	inst := w.run(t, "t3.medium") // 6 slots per ENI
	e := inst.Interfaces[0].ID
	steps := []struct {
		r    AddrRequest
		want string
	}{
		{AddrRequest{Count: 2}, ""},       // 3 slots
		{AddrRequest{PrefixCount: 2}, ""}, // 5 slots
		{AddrRequest{PrefixCount: 2}, CodePrivateIPLimitExceeded},
		{AddrRequest{Count: 2}, CodePrivateIPLimitExceeded},
		{AddrRequest{PrefixCount: 1}, ""}, // 6 slots
		{AddrRequest{Count: 1}, CodePrivateIPLimitExceeded},
	}
	for i, s := range steps {
		_, _, err := w.m.AssignPrivateIpAddresses(AssignPrivateIpAddressesInput{ENIID: e, Addrs: s.r})
		if code(err) != s.want {
			t.Fatalf("step %d: %v, want %q", i, err, s.want)
		}
	}
}

func TestPrefixAlignmentAndFragmentation(t *testing.T) {
	w := newWorld(t, "10.0.1.0/24")
	e := w.eni(t, AddrRequest{}) // primary 10.0.1.4, in the first /28
	pf := func(s string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(s)} }
	cases := []struct {
		name string
		r    AddrRequest
		want string
	}{
		{"misaligned", AddrRequest{Prefixes: pf("10.0.1.8/28")}, CodeInvalidParameterValue},
		{"not a /28", AddrRequest{Prefixes: pf("10.0.1.0/27")}, CodeInvalidParameterValue},
		{"outside subnet", AddrRequest{Prefixes: pf("10.0.2.0/28")}, CodeInvalidParameterValue},
		{"holds reserved", AddrRequest{Prefixes: pf("10.0.1.0/28")}, CodeIPInUse},
		{"holds broadcast", AddrRequest{Prefixes: pf("10.0.1.240/28")}, CodeIPInUse},
		{"aligned", AddrRequest{Prefixes: pf("10.0.1.32/28")}, ""},
		{"taken", AddrRequest{Prefixes: pf("10.0.1.32/28")}, CodeIPInUse},
		{"count", AddrRequest{PrefixCount: 1}, ""}, // 10.0.1.16/28
		{"both kinds", AddrRequest{Count: 1, PrefixCount: 1}, CodeInvalidParameterCombo},
		{"count and list", AddrRequest{PrefixCount: 1, Prefixes: pf("10.0.1.48/28")}, CodeInvalidParameterCombo},
	}
	for _, c := range cases {
		_, _, err := w.m.AssignPrivateIpAddresses(AssignPrivateIpAddressesInput{ENIID: e.ID, Addrs: c.r})
		if code(err) != c.want {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	got, _, _ := w.m.DescribeNetworkInterfaces(DescribeInput{IDs: []string{e.ID}})
	if want := pf("10.0.1.32/28")[0]; got[0].Prefixes[0] != want || got[0].Prefixes[1] != netip.MustParsePrefix("10.0.1.16/28") {
		t.Errorf("prefixes %v", got[0].Prefixes)
	}
	// Fragment the rest: one address in each remaining /28 (48, 64, ..., 224).
	other := w.eni(t, AddrRequest{})
	var addrs []netip.Addr
	for b := 48; b <= 224; b += 16 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{10, 0, 1, byte(b + 5)}))
	}
	if _, _, err := w.m.AssignPrivateIpAddresses(AssignPrivateIpAddressesInput{ENIID: other.ID, Addrs: AddrRequest{Addrs: addrs}}); err != nil {
		t.Fatal(err)
	}
	before := w.available(t)
	_, _, err := w.m.AssignPrivateIpAddresses(AssignPrivateIpAddressesInput{ENIID: e.ID, Addrs: AddrRequest{PrefixCount: 1}})
	if code(err) != CodeInsufficientCidrBlocks {
		t.Fatalf("fragmented subnet: %v", err)
	}
	if before < 100 || w.available(t) != before {
		t.Fatalf("free addresses %d -> %d: a failed call must change nothing", before, w.available(t))
	}
	// Single addresses still come.
	if _, _, err := w.m.AssignPrivateIpAddresses(AssignPrivateIpAddressesInput{ENIID: e.ID, Addrs: AddrRequest{Count: 1}}); err != nil {
		t.Fatal(err)
	}
}

func TestSubnetExhaustion(t *testing.T) {
	w := newWorld(t, "10.0.0.0/28") // 11 usable
	inst := w.run(t, "m5.large")    // 1
	e := inst.Interfaces[0].ID
	if _, _, err := w.m.AssignPrivateIpAddresses(AssignPrivateIpAddressesInput{ENIID: e, Addrs: AddrRequest{Count: 9}}); err != nil {
		t.Fatal(err)
	} // 10 used, 1 left, ENI full
	other := w.eni(t, AddrRequest{}) // 11 used
	if w.available(t) != 0 {
		t.Fatalf("available %d", w.available(t))
	}
	_, _, err := w.m.AssignPrivateIpAddresses(AssignPrivateIpAddressesInput{ENIID: other.ID, Addrs: AddrRequest{Count: 1}})
	if code(err) != CodeInsufficientFreeAddresses {
		t.Fatalf("%v", err)
	}
	_, _, err = w.m.CreateNetworkInterface(t0, CreateNetworkInterfaceInput{SubnetID: w.subnet})
	if code(err) != CodeInsufficientFreeAddresses {
		t.Fatalf("%v", err)
	}
	_, _, err = w.m.RunInstances(t0, RunInstancesInput{InstanceType: "m5.large", SubnetID: w.subnet, MinCount: 1, MaxCount: 1})
	if code(err) != CodeInsufficientFreeAddresses {
		t.Fatalf("%v", err)
	}
	// Freeing one address lets one more come.
	if _, err := w.m.DeleteNetworkInterface(other.ID); err != nil {
		t.Fatal(err)
	}
	if w.available(t) != 1 {
		t.Fatalf("available %d after delete", w.available(t))
	}
}

func TestAttachDetachRules(t *testing.T) {
	w := newWorld(t, "10.0.0.0/24")
	inst := w.run(t, "m5.large")
	e := w.eni(t, AddrRequest{})
	att := w.attach(t, e.ID, inst.ID, 1)
	dev := 1
	other := w.eni(t, AddrRequest{})
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"device index taken", third(w.m.AttachNetworkInterface(t0, AttachNetworkInterfaceInput{ENIID: other.ID, InstanceID: inst.ID, DeviceIndex: &dev})), CodeInvalidParameterValue},
		{"already attached", third(w.m.AttachNetworkInterface(t0, AttachNetworkInterfaceInput{ENIID: e.ID, InstanceID: inst.ID, DeviceIndex: intp(2)})), CodeENIInUse},
		{"unknown instance", third(w.m.AttachNetworkInterface(t0, AttachNetworkInterfaceInput{ENIID: other.ID, InstanceID: "i-0123456789abcdef0", DeviceIndex: intp(2)})), CodeInstanceNotFound},
		{"no device index", third(w.m.AttachNetworkInterface(t0, AttachNetworkInterfaceInput{ENIID: other.ID, InstanceID: inst.ID})), CodeMissingParameter},
		{"delete attached", second(w.m.DeleteNetworkInterface(e.ID)), CodeInvalidParameterValue},
		{"detach primary", second(w.m.DetachNetworkInterface(DetachNetworkInterfaceInput{AttachmentID: inst.Interfaces[0].Attachment.ID})), CodeOperationNotPermitted},
		{"detach unknown", second(w.m.DetachNetworkInterface(DetachNetworkInterfaceInput{AttachmentID: "eni-attach-0123"})), CodeAttachmentNotFound},
	} {
		if got := code(tc.err); got != tc.want {
			t.Errorf("%s: %q (%v), want %q", tc.name, got, tc.err, tc.want)
		}
	}
	if _, err := w.m.DetachNetworkInterface(DetachNetworkInterfaceInput{AttachmentID: att}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.m.DeleteNetworkInterface(e.ID); err != nil {
		t.Fatal(err)
	}
}

func intp(i int) *int { return &i }

func TestTerminateDeletesOnlyDeleteOnTermination(t *testing.T) {
	w := newWorld(t, "10.0.0.0/24")
	inst := w.run(t, "m5.large")
	keep := w.eni(t, AddrRequest{Count: 2})
	w.attach(t, keep.ID, inst.ID, 1)
	before := w.available(t)
	_, ev, err := w.m.TerminateInstances(TerminateInstancesInput{InstanceIDs: []string{inst.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if w.available(t) != before+1 {
		t.Errorf("available %d -> %d: the primary ENI's address should come back", before, w.available(t))
	}
	enis, _, _ := w.m.DescribeNetworkInterfaces(DescribeInput{})
	if len(enis) != 1 || enis[0].ID != keep.ID || enis[0].Status() != ENIAvailable {
		t.Errorf("after terminate: %+v", enis)
	}
	var kinds []string
	for _, e := range ev {
		kinds = append(kinds, e.Kind)
	}
	if !reflect.DeepEqual(kinds, []string{EventENIDetached, EventENIDetached}) {
		t.Errorf("events %v", kinds)
	}
}

func TestReassignment(t *testing.T) {
	w := newWorld(t, "10.0.0.0/24")
	a := w.eni(t, AddrRequest{Count: 1})
	b := w.eni(t, AddrRequest{})
	ip := a.SecondaryIPs[0]
	_, _, err := w.m.AssignPrivateIpAddresses(AssignPrivateIpAddressesInput{ENIID: b.ID, Addrs: AddrRequest{Addrs: []netip.Addr{ip}}})
	if code(err) != CodeIPInUse {
		t.Fatalf("%v", err)
	}
	_, ev, err := w.m.AssignPrivateIpAddresses(AssignPrivateIpAddressesInput{ENIID: b.ID, Addrs: AddrRequest{Addrs: []netip.Addr{ip}, AllowReassignment: true}})
	if err != nil || len(ev) != 2 || ev[0].Kind != EventAddressUnassigned || ev[1].Kind != EventAddressAssigned {
		t.Fatalf("%v %v", err, ev)
	}
	enis, _, _ := w.m.DescribeNetworkInterfaces(DescribeInput{IDs: []string{a.ID}})
	if len(enis[0].SecondaryIPs) != 0 {
		t.Fatalf("still on the old ENI: %v", enis[0].SecondaryIPs)
	}
}

func TestUnassignAllOrNothing(t *testing.T) {
	w := newWorld(t, "10.0.0.0/24")
	e := w.eni(t, AddrRequest{Count: 2})
	_, err := w.m.UnassignPrivateIpAddresses(UnassignPrivateIpAddressesInput{ENIID: e.ID, Addrs: []netip.Addr{e.SecondaryIPs[0], netip.MustParseAddr("10.0.0.200")}})
	if code(err) != CodeInvalidParameterValue {
		t.Fatal(err)
	}
	_, err = w.m.UnassignPrivateIpAddresses(UnassignPrivateIpAddressesInput{ENIID: e.ID, Addrs: []netip.Addr{e.PrimaryIP}})
	if code(err) != CodeInvalidParameterValue {
		t.Fatal(err)
	}
	got, _, _ := w.m.DescribeNetworkInterfaces(DescribeInput{IDs: []string{e.ID}})
	if len(got[0].SecondaryIPs) != 2 {
		t.Fatalf("a failed unassign changed the ENI: %v", got[0].SecondaryIPs)
	}
}

func TestReplayIsDeterministic(t *testing.T) {
	var log []Mutation
	muts := func(m *Model, apply func(Mutation) any) {
		v := apply(&CreateVpcInput{CIDR: netip.MustParsePrefix("10.0.0.0/16")}).(*VPC)
		s := apply(&CreateSubnetInput{VPCID: v.ID, CIDR: netip.MustParsePrefix("10.0.0.0/22")}).(*SubnetView)
		r := apply(&RunInstancesInput{InstanceType: "m5.large", SubnetID: s.ID, MinCount: 2, MaxCount: 2}).(*Reservation)
		e := apply(&CreateNetworkInterfaceInput{SubnetID: s.ID, Addrs: AddrRequest{Count: 3}}).(*ENI)
		apply(&AttachNetworkInterfaceInput{ENIID: e.ID, InstanceID: r.Instances[0].ID, DeviceIndex: intp(1)})
		apply(&AssignPrivateIpAddressesInput{ENIID: e.ID, Addrs: AddrRequest{PrefixCount: 2}})
		apply(&CreateTagsInput{ResourceIDs: []string{e.ID}, Tags: []Tag{{"k", "v"}}})
		apply(&TerminateInstancesInput{InstanceIDs: []string{r.Instances[1].ID}})
	}
	a := New("us-east-1", nil, 7)
	muts(a, func(mu Mutation) any {
		out, _, err := a.Apply(t0, mu)
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, mu)
		return out
	})
	b := New("us-east-1", nil, 7)
	for _, mu := range log {
		if _, _, err := b.Apply(t0, mu); err != nil {
			t.Fatal(err)
		}
	}
	sa, _ := a.MarshalState()
	sb, _ := b.MarshalState()
	if string(sa) != string(sb) {
		t.Fatal("replay diverged")
	}
	c, err := Restore(sa, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := c.MarshalState()
	if string(sc) != string(sa) || !reflect.DeepEqual(c.used[firstKey(c.used)].bits, a.used[firstKey(a.used)].bits) {
		t.Fatal("restore differs")
	}
}

func firstKey[V any](m map[string]V) string { return sortedKeys(m)[0] }

func TestFiltersAndPaging(t *testing.T) {
	w := newWorld(t, "10.0.0.0/24")
	inst := w.run(t, "m5.large")
	var ids []string
	for i := 0; i < 12; i++ {
		e, _, err := w.m.CreateNetworkInterface(t0, CreateNetworkInterfaceInput{SubnetID: w.subnet, Description: "d" + itoa(i%3),
			TagSpecs: []TagSpec{{ResourceType: "network-interface", Tags: []Tag{{"node", itoa(i % 2)}}}}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	count := func(fs ...Filter) int {
		got, _, err := w.m.DescribeNetworkInterfaces(DescribeInput{Filters: fs})
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	for _, tc := range []struct {
		f    []Filter
		want int
	}{
		{[]Filter{{"status", []string{"available"}}}, 12},
		{[]Filter{{"status", []string{"in-use"}}}, 1},
		{[]Filter{{"attachment.instance-id", []string{inst.ID}}}, 1},
		{[]Filter{{"description", []string{"d1"}}}, 4},
		{[]Filter{{"description", []string{"d*"}}}, 12},
		{[]Filter{{"tag:node", []string{"1"}}}, 6},
		{[]Filter{{"tag-key", []string{"node"}}}, 12},
		{[]Filter{{"tag:node", []string{"1"}}, {"description", []string{"d0", "d2"}}}, 4},
		{[]Filter{{"private-ip-address", []string{"10.0.0.4"}}}, 1},
		{[]Filter{{"vpc-id", []string{w.vpc}}}, 13},
		{[]Filter{{"subnet-id", []string{"subnet-0"}}}, 0},
	} {
		if got := count(tc.f...); got != tc.want {
			t.Errorf("%v: %d, want %d", tc.f, got, tc.want)
		}
	}
	if _, _, err := w.m.DescribeNetworkInterfaces(DescribeInput{Filters: []Filter{{"bogus", []string{"x"}}}}); code(err) != CodeInvalidParameterValue {
		t.Errorf("unknown filter: %v", err)
	}
	var all []string
	tok := ""
	for pages := 0; ; pages++ {
		got, next, err := w.m.DescribeNetworkInterfaces(DescribeInput{Page: Page{MaxResults: 5, NextToken: tok}})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			all = append(all, e.ID)
		}
		if next == "" {
			if pages != 2 {
				t.Errorf("%d pages", pages+1)
			}
			break
		}
		tok = next
	}
	if len(all) != 13 {
		t.Errorf("paged %d", len(all))
	}
	for _, bad := range []Page{{MaxResults: 4}, {MaxResults: 1001}, {NextToken: "!!"}} {
		if _, _, err := w.m.DescribeNetworkInterfaces(DescribeInput{Page: bad}); err == nil {
			t.Errorf("page %+v accepted", bad)
		}
	}
	if _, _, err := w.m.DescribeNetworkInterfaces(DescribeInput{IDs: ids[:1], Page: Page{MaxResults: 5}}); code(err) != CodeInvalidParameterCombo {
		t.Errorf("ids with MaxResults: %v", err)
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"a*", "abc", true}, {"*c", "abc", true}, {"a?c", "abc", true}, {"a?c", "ac", false}, {"*", "", true},
		{"abc", "abc", true}, {"ab", "abc", false}, {"*b*", "abc", true}, {"a*d", "abc", false},
	} {
		if got := glob(tc.p, tc.s); got != tc.want {
			t.Errorf("glob(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
}

func TestIDsAndMACsUnique(t *testing.T) {
	m := New("us-east-1", nil, 3)
	ids, macs := map[string]bool{}, map[string]bool{}
	for i := 0; i < 20000; i++ {
		id, mac := m.newID("eni"), m.newMAC()
		if ids[id] || macs[mac] || len(id) != len("eni-")+17 {
			t.Fatalf("duplicate or malformed %s %s", id, mac)
		}
		ids[id], macs[mac] = true, true
	}
}
