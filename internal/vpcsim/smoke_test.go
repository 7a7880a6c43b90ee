package vpcsim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

func TestSmoke(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.1.0/24")
	inst := f.run(t, "m5.large")
	t.Logf("instance %s ip %s enis %d", *inst.InstanceId, *inst.PrivateIpAddress, len(inst.NetworkInterfaces))
	e := f.eni(t)
	att := must[*ec2.AttachNetworkInterfaceOutput](t)(f.c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: e.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(1)}))
	t.Logf("attachment %s", *att.AttachmentId)
	as := must[*ec2.AssignPrivateIpAddressesOutput](t)(f.c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: e.NetworkInterfaceId, SecondaryPrivateIpAddressCount: aws.Int32(3)}))
	t.Logf("assigned %d", len(as.AssignedPrivateIpAddresses))
	d := f.describeENI(t, *e.NetworkInterfaceId)
	t.Logf("eni %s status %s att %s ips %d", *d.NetworkInterfaceId, d.Status, d.Attachment.Status, len(d.PrivateIpAddresses))
	ic := imdsClient(t, f.s, *inst.InstanceId)
	for _, p := range []string{"instance-id", "network/interfaces/macs/", "mac"} {
		out, err := ic.GetMetadata(ctx, nil)
		_ = out
		_ = err
		_ = p
	}
}
