package vpcsim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// A call repeated with its ClientToken (what the AWS SDK sends when it retries a call whose
// answer was lost) gets the first answer and changes nothing; the token with other parameters
// is IdempotentParameterMismatch (EC2: "Ensuring idempotency in Amazon EC2 API requests").
// Without this, one lost answer under load made the SDK's retry launch a second batch.
func TestClientTokenMakesCallsIdempotent(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.9.0/28") // 11 usable
	run := func(token string, max int32) (*ec2.RunInstancesOutput, error) {
		return f.c.RunInstances(ctx, &ec2.RunInstancesInput{InstanceType: "t3.nano", SubnetId: aws.String(f.subnet),
			MinCount: aws.Int32(1), MaxCount: aws.Int32(max), ClientToken: aws.String(token)})
	}
	first := must[*ec2.RunInstancesOutput](t)(run("tok-1", 6))
	again := must[*ec2.RunInstancesOutput](t)(run("tok-1", 6))
	if len(first.Instances) != 6 || len(again.Instances) != 6 {
		t.Fatalf("launched %d then %d, want 6 and the same 6", len(first.Instances), len(again.Instances))
	}
	for i := range first.Instances {
		if *first.Instances[i].InstanceId != *again.Instances[i].InstanceId {
			t.Fatalf("repeat answered %s, first call launched %s", *again.Instances[i].InstanceId, *first.Instances[i].InstanceId)
		}
	}
	all := must[*ec2.DescribeInstancesOutput](t)(f.c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}))
	n := 0
	for _, r := range all.Reservations {
		n += len(r.Instances)
	}
	if n != 6 {
		t.Fatalf("%d instances after a repeated call, want 6", n)
	}
	_, err := run("tok-1", 2)
	wantCode(t, err, "IdempotentParameterMismatch")
	// Another token is another call: 5 addresses are left.
	if out := must[*ec2.RunInstancesOutput](t)(run("tok-2", 50)); len(out.Instances) != 5 {
		t.Fatalf("a new token launched %d, want the 5 that fit", len(out.Instances))
	}

	// CreateNetworkInterface takes a token too; a failed call is not remembered, so its
	// repeat runs again once the subnet has room.
	createENI := func() (*ec2.CreateNetworkInterfaceOutput, error) {
		return f.c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet), ClientToken: aws.String("eni-tok")})
	}
	_, err = createENI()
	wantCode(t, err, "InsufficientFreeAddressesInSubnet")
	g := newFixture(t, vpcsim.Options{}, "10.1.0.0/16", "10.1.1.0/24")
	createENI = func() (*ec2.CreateNetworkInterfaceOutput, error) {
		return g.c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(g.subnet), ClientToken: aws.String("eni-tok")})
	}
	a := must[*ec2.CreateNetworkInterfaceOutput](t)(createENI())
	b := must[*ec2.CreateNetworkInterfaceOutput](t)(createENI())
	if *a.NetworkInterface.NetworkInterfaceId != *b.NetworkInterface.NetworkInterfaceId {
		t.Fatalf("the repeat created %s beside %s", *b.NetworkInterface.NetworkInterfaceId, *a.NetworkInterface.NetworkInterfaceId)
	}
	enis := must[*ec2.DescribeNetworkInterfacesOutput](t)(g.c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{}))
	if len(enis.NetworkInterfaces) != 1 {
		t.Fatalf("%d ENIs after a repeated create, want 1", len(enis.NetworkInterfaces))
	}
}
