package vpcsim_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

func noRetry(o *ec2.Options) { o.Retryer = aws.NopRetryer{} }

func TestThrottling(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.0.0/20")
	e := f.eni(t)
	f.s.SetThrottle("AssignPrivateIpAddresses", vpcsim.Rate{PerSecond: 20, Burst: 1})
	raw := client(f.s, noRetry)
	assign := func(c *ec2.Client) error {
		_, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: e.NetworkInterfaceId, SecondaryPrivateIpAddressCount: aws.Int32(1)})
		return err
	}
	// Without retries the second call in a row is throttled: RequestLimitExceeded, HTTP 503.
	if err := assign(raw); err != nil {
		t.Fatal(err)
	}
	err := assign(raw)
	wantCode(t, err, "RequestLimitExceeded")
	if httpStatus(err) != http.StatusServiceUnavailable {
		t.Fatalf("HTTP %d, want 503", httpStatus(err))
	}
	// Other actions are not throttled.
	must[*ec2.DescribeSubnetsOutput](t)(raw.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}))
	// The SDK's default retryer backs off and gets every call through.
	for i := 0; i < 4; i++ {
		if err := assign(f.c); err != nil {
			t.Fatalf("call %d through the default retryer: %v", i, err)
		}
	}
	// "*" throttles every action; removing the knob ends it.
	f.s.SetThrottle("AssignPrivateIpAddresses", vpcsim.Rate{})
	f.s.SetThrottle("*", vpcsim.Rate{PerSecond: 0.001, Burst: 1})
	raw.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	wantCode(t, second(raw.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})), "RequestLimitExceeded")
	f.s.SetThrottle("*", vpcsim.Rate{})
	must[*ec2.DescribeVpcsOutput](t)(raw.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}))
}

func TestThrottleOption(t *testing.T) {
	s, _ := start(t, vpcsim.Options{Throttle: map[string]vpcsim.Rate{"DescribeVpcs": {PerSecond: 0.001, Burst: 2}}})
	raw := client(s, noRetry)
	for i := 0; i < 2; i++ {
		must[*ec2.DescribeVpcsOutput](t)(raw.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}))
	}
	wantCode(t, second(raw.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})), "RequestLimitExceeded")
}

func TestInjectedFailures(t *testing.T) {
	f := newFixture(t, vpcsim.Options{Fail: map[string]float64{"CreateNetworkInterface": 1}}, "10.0.0.0/16", "10.0.1.0/24")
	raw := client(f.s, noRetry)
	_, err := raw.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet)})
	wantCode(t, err, "InternalError")
	if httpStatus(err) != 500 {
		t.Fatalf("HTTP %d", httpStatus(err))
	}
	// An injected failure changes nothing.
	out := must[*ec2.DescribeNetworkInterfacesOutput](t)(raw.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{}))
	if len(out.NetworkInterfaces) != 0 {
		t.Fatalf("a failed create left %d ENIs", len(out.NetworkInterfaces))
	}
	// A partial rate: the default retryer gets through.
	f.s.SetFailRate("CreateNetworkInterface", 0.3)
	for i := 0; i < 5; i++ {
		f.eni(t)
	}
	f.s.SetFailRate("CreateNetworkInterface", 0)
	f.eni(t)
}

func TestUnauthorizedOperation(t *testing.T) {
	f := newFixture(t, vpcsim.Options{Deny: map[string]bool{"AttachNetworkInterface": true}}, "10.0.0.0/16", "10.0.1.0/24")
	inst := f.run(t, "m5.large")
	e := f.eni(t)
	_, err := f.c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: e.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(1)})
	wantCode(t, err, "UnauthorizedOperation")
	if httpStatus(err) != http.StatusForbidden {
		t.Fatalf("HTTP %d", httpStatus(err))
	}
	f.s.SetDeny("AttachNetworkInterface", false)
	must[*ec2.AttachNetworkInterfaceOutput](t)(f.c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: e.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(1)}))
}

// recorder collects hook events.
type recorder struct {
	mu sync.Mutex
	ev []vpcsim.Event
}

func (r *recorder) hook(e vpcsim.Event) { r.mu.Lock(); r.ev = append(r.ev, e); r.mu.Unlock() }

func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.ev {
		out = append(out, e.Kind)
	}
	return out
}

func (r *recorder) reset() { r.mu.Lock(); r.ev = nil; r.mu.Unlock() }

func TestAttachLatencyAndEvents(t *testing.T) {
	rec := &recorder{}
	// Long enough that the checks of the attaching state below fit in it on a loaded machine.
	const lat = 3 * time.Second
	f := newFixture(t, vpcsim.Options{Hook: rec.hook, Latency: map[string]time.Duration{"AttachNetworkInterface": lat}}, "10.0.0.0/16", "10.0.1.0/24")
	inst := f.run(t, "m5.large")
	if k := rec.kinds(); len(k) != 1 || k[0] != vpcsim.EventENIAttached {
		t.Fatalf("launch events %v", k)
	}
	rec.reset()
	e := f.eni(t)
	md := imdsClient(t, f.s, *inst.InstanceId)
	begin := time.Now()
	att := must[*ec2.AttachNetworkInterfaceOutput](t)(f.c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: e.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(1)}))
	if took := time.Since(begin); took >= lat {
		t.Errorf("attach reply took %v: the latency belongs to the attaching state", took)
	}
	if got := f.describeENI(t, *e.NetworkInterfaceId); got.Attachment.Status != types.AttachmentStatusAttaching {
		t.Fatalf("status %s right after attach, want attaching", got.Attachment.Status)
	}
	if macs := imdsGet(t, md, "network/interfaces/macs/"); strings.Contains(macs, *e.MacAddress) {
		t.Fatalf("IMDS shows an attaching ENI: %q", macs)
	}
	if len(rec.kinds()) != 0 {
		t.Fatalf("events before attached: %v", rec.kinds())
	}
	deadline := time.Now().Add(lat + 30*time.Second)
	for f.describeENI(t, *e.NetworkInterfaceId).Attachment.Status != types.AttachmentStatusAttached {
		if time.Now().After(deadline) {
			t.Fatal("never attached")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took := time.Since(begin); took < lat {
		t.Fatalf("attached after %v, before the %v latency", took, lat)
	}
	ev := rec.ev[0]
	if ev.Kind != vpcsim.EventENIAttached || ev.ENIID != *e.NetworkInterfaceId || ev.InstanceID != *inst.InstanceId || ev.DeviceIndex != 1 ||
		ev.MAC != *e.MacAddress || ev.Subnet.String() != "10.0.1.0/24" || len(ev.Addrs) != 1 || ev.Addrs[0].String() != *e.PrivateIpAddress {
		t.Fatalf("event %+v", ev)
	}
	if macs := imdsGet(t, md, "network/interfaces/macs/"); !strings.Contains(macs, *e.MacAddress+"/") {
		t.Fatalf("IMDS does not show the attached ENI: %q", macs)
	}
	rec.reset()
	// Address and prefix events carry the instance; detach and terminate follow.
	as := must[*ec2.AssignPrivateIpAddressesOutput](t)(f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: e.NetworkInterfaceId, SecondaryPrivateIpAddressCount: aws.Int32(2)}))
	must[*ec2.AssignPrivateIpAddressesOutput](t)(f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: e.NetworkInterfaceId, Ipv4PrefixCount: aws.Int32(1)}))
	must[*ec2.UnassignPrivateIpAddressesOutput](t)(f.c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: e.NetworkInterfaceId, PrivateIpAddresses: []string{*as.AssignedPrivateIpAddresses[0].PrivateIpAddress}}))
	f.s.SetLatency("DetachNetworkInterface", 0)
	must[*ec2.DetachNetworkInterfaceOutput](t)(f.c.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: att.AttachmentId}))
	must[*ec2.TerminateInstancesOutput](t)(f.c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{*inst.InstanceId}}))
	want := []string{"address-assigned", "address-assigned", "prefix-assigned", "address-unassigned", "eni-detached", "eni-detached"}
	if got := rec.kinds(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", got, want)
	}
	for _, ev := range rec.ev[:4] {
		if ev.InstanceID != *inst.InstanceId || ev.ENIID != *e.NetworkInterfaceId || ev.MAC != *e.MacAddress {
			t.Errorf("event %+v", ev)
		}
	}
	if rec.ev[2].Prefix.Bits() != 28 || !rec.ev[0].Addr.IsValid() {
		t.Errorf("address/prefix missing in %+v", rec.ev[:3])
	}
	if d := rec.ev[4]; len(d.Addrs) != 2 || len(d.Prefixes) != 1 {
		t.Errorf("detach event %+v", d)
	}
}

func TestDetachLatency(t *testing.T) {
	rec := &recorder{}
	// Long enough that the checks of the detaching state below fit in it on a loaded machine.
	f := newFixture(t, vpcsim.Options{Hook: rec.hook, Latency: map[string]time.Duration{"DetachNetworkInterface": 3 * time.Second}}, "10.0.0.0/16", "10.0.1.0/24")
	inst := f.run(t, "m5.large")
	e := f.eni(t)
	att := must[*ec2.AttachNetworkInterfaceOutput](t)(f.c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: e.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(1)}))
	rec.reset()
	must[*ec2.DetachNetworkInterfaceOutput](t)(f.c.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: att.AttachmentId}))
	if got := f.describeENI(t, *e.NetworkInterfaceId); got.Attachment == nil || got.Attachment.Status != types.AttachmentStatusDetaching {
		t.Fatalf("right after detach: %+v", got.Attachment)
	}
	_, err := f.c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: e.NetworkInterfaceId})
	wantCode(t, err, "InvalidParameterValue")
	deadline := time.Now().Add(33 * time.Second)
	for f.describeENI(t, *e.NetworkInterfaceId).Status != types.NetworkInterfaceStatusAvailable {
		if time.Now().After(deadline) {
			t.Fatal("never detached")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if k := rec.kinds(); len(k) != 1 || k[0] != vpcsim.EventENIDetached {
		t.Fatalf("events %v", k)
	}
}

func TestLatencyDelaysReply(t *testing.T) {
	s, c := start(t, vpcsim.Options{})
	s.SetLatency("DescribeVpcs", 150*time.Millisecond)
	begin := time.Now()
	must[*ec2.DescribeVpcsOutput](t)(c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}))
	if d := time.Since(begin); d < 150*time.Millisecond {
		t.Fatalf("reply after %v", d)
	}
	// An action without latency is not held by another's: DescribeSubnets answers while a
	// DescribeVpcs with a latency of an hour is still waiting (a condition, not a duration).
	s.SetLatency("DescribeVpcs", time.Hour)
	slow, cancel := context.WithCancel(ctx)
	waiting := make(chan error, 1)
	go func() { _, err := c.DescribeVpcs(slow, &ec2.DescribeVpcsInput{}); waiting <- err }()
	must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}))
	select {
	case err := <-waiting:
		t.Fatalf("DescribeVpcs with an hour's latency answered: %v", err)
	default:
	}
	cancel()
	<-waiting
}
