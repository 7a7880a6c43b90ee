package cloud_test

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

var bg = context.Background()

// setup starts a vpcsim with a VPC, a subnet and an m5.large, and a client counting its calls.
func setup(t *testing.T) (*cloud.Client, *ec2.Client, cloud.Identity, *sync.Map) {
	t.Helper()
	s, raw, imds := setupSim(t)
	c, id, calls := newClient(t, s, imds, cloud.Config{})
	return c, raw, id, calls
}

// setupSim starts a vpcsim with a VPC, a subnet and an m5.large; it returns the instance's IMDS
// endpoint.
func setupSim(t *testing.T) (*vpcsim.Server, *ec2.Client, string) {
	t.Helper()
	s, err := vpcsim.Start("127.0.0.1:0", vpcsim.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	raw := ec2.New(ec2.Options{Region: s.Region(), BaseEndpoint: aws.String(s.Endpoint()), Credentials: s.CredentialsProvider()})
	vpc, err := raw.CreateVpc(bg, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := raw.CreateSubnet(bg, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.0.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	run, err := raw.RunInstances(bg, &ec2.RunInstancesInput{InstanceType: "m5.large", SubnetId: sn.Subnet.SubnetId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: aws.String("ami-12345678")})
	if err != nil {
		t.Fatal(err)
	}
	imds, err := s.IMDSEndpoint(*run.Instances[0].InstanceId)
	if err != nil {
		t.Fatal(err)
	}
	return s, raw, imds
}

// newClient makes a client of the vpcsim counting its EC2 attempts by action, and its IMDS reads
// as "IMDS"; cfg may set AttachWait and IMDSEndpoint (default: imds).
func newClient(t *testing.T, s *vpcsim.Server, imds string, cfg cloud.Config) (*cloud.Client, cloud.Identity, *sync.Map) {
	t.Helper()
	calls := &sync.Map{}
	cfg.EC2Endpoint, cfg.Region, cfg.Cluster, cfg.CacheTTL = s.Endpoint(), s.Region(), "unit", time.Minute
	cfg.IMDSEndpoint = cmp.Or(cfg.IMDSEndpoint, imds)
	add := func(action string) {
		n, _ := calls.LoadOrStore(action, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}
	cfg.Observer = cloud.Observer{Attempt: add, Call: func(action string, _ time.Duration, _ error) {
		if action == "IMDS" { // IMDS reads are not EC2 attempts; they are counted as calls
			add(action)
		}
	}}
	c, err := cloud.New(bg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The identity comes from the instance's own IMDS, whichever the client is given.
	ic, err := cloud.New(bg, cloud.Config{EC2Endpoint: s.Endpoint(), IMDSEndpoint: imds, Region: s.Region()})
	if err != nil {
		t.Fatal(err)
	}
	id, err := ic.Identity(bg)
	if err != nil {
		t.Fatal(err)
	}
	return c, id, calls
}

func count(calls *sync.Map, action string) int64 {
	n, ok := calls.Load(action)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

func TestIdentityAndLimits(t *testing.T) {
	c, _, id, _ := setup(t)
	if id.InstanceType != "m5.large" || id.Region != "us-east-1" || id.SubnetCIDR.String() != "10.0.1.0/24" || len(id.VPCCIDRs) != 1 || !id.PrimaryIP.IsValid() || len(id.MACs) != 1 {
		t.Fatalf("identity %+v", id)
	}
	l, err := c.Limits(bg, id.InstanceType)
	if err != nil || l.MaxENIs != 3 || l.IPv4PerENI != 10 {
		t.Fatalf("limits %+v %v", l, err)
	}
}

func TestDescribeCoalescedAndCached(t *testing.T) {
	c, _, id, calls := setup(t)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if enis, err := c.ENIs(bg, id.InstanceID); err != nil || len(enis) != 1 {
				t.Errorf("%v %v", enis, err)
			}
		})
	}
	wg.Wait()
	if n := count(calls, "DescribeNetworkInterfaces"); n != 1 {
		t.Fatalf("50 concurrent callers made %d Describe calls", n)
	}
	if _, err := c.AssignIPs(bg, mustPrimary(t, c, id).ID, 2); err != nil {
		t.Fatal(err)
	}
	enis, _ := c.ENIs(bg, id.InstanceID)
	if len(enis[0].IPs) != 2 || count(calls, "DescribeNetworkInterfaces") != 2 {
		t.Fatalf("a change must invalidate the cache: %d IPs after %d Describes", len(enis[0].IPs), count(calls, "DescribeNetworkInterfaces"))
	}
}

// TestSubnetFree: the count is EC2's (a /24 less the 5 reserved addresses and the instance's
// primary, prefixes counted in full), shared by concurrent callers, cached, and dropped by our
// own changes but not by anyone else's.
func TestSubnetFree(t *testing.T) {
	c, raw, id, calls := setup(t)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if n, err := c.SubnetFree(bg, id.SubnetID); err != nil || n != 256-5-1 {
				t.Errorf("free %d %v, want 250", n, err)
			}
		})
	}
	wg.Wait()
	if n := count(calls, "DescribeSubnets"); n != 1 {
		t.Fatalf("20 concurrent callers made %d DescribeSubnets calls", n)
	}
	eni := mustPrimary(t, c, id)
	if _, err := c.AssignIPs(bg, eni.ID, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssignPrefixes(bg, eni.ID, 1); err != nil {
		t.Fatal(err)
	}
	if n, err := c.SubnetFree(bg, id.SubnetID); err != nil || n != 250-3-16 || count(calls, "DescribeSubnets") != 2 {
		t.Fatalf("after our assigns: free %d %v after %d Describes, want 231 after 2", n, err, count(calls, "DescribeSubnets"))
	}
	// Someone else's change is seen once the cached answer expires (CacheTTL is a minute here).
	if _, err := raw.CreateNetworkInterface(bg, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(id.SubnetID)}); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.SubnetFree(bg, id.SubnetID); n != 231 || count(calls, "DescribeSubnets") != 2 {
		t.Fatalf("free %d after %d Describes: the cached answer should serve", n, count(calls, "DescribeSubnets"))
	}
}

func mustPrimary(t *testing.T, c *cloud.Client, id cloud.Identity) cloud.ENI {
	enis, err := c.ENIs(bg, id.InstanceID)
	if err != nil || len(enis) == 0 || enis[0].DeviceIndex != 0 {
		t.Fatalf("%v %v", enis, err)
	}
	return enis[0]
}

func TestCreatedENIsTaggedAndFreed(t *testing.T) {
	c, _, id, _ := setup(t)
	eni, err := c.CreateENI(bg, id, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if eni.DeviceIndex != 1 || eni.AttachmentID == "" || !eni.Ours() || eni.Tags[cloud.TagInstanceID] != id.InstanceID || eni.Tags[cloud.TagCluster] != "unit" ||
		eni.Tags[cloud.TagDeviceIndex] != "1" || !eni.DeleteOnTermination {
		t.Fatalf("ENI %+v", eni)
	}
	// EC2 agrees: the attachment goes with the instance (issue 11 fault 7).
	if got, err := c.DescribeENIs(bg, []string{eni.ID}); err != nil || len(got) != 1 || !got[0].DeleteOnTermination || got[0].AttachedTo != id.InstanceID {
		t.Fatalf("described %+v %v", got, err)
	}
	if err := c.FreeENI(bg, mustPrimary(t, c, id)); err == nil {
		t.Fatal("freed the primary ENI")
	}
	if err := c.FreeENI(bg, eni); err != nil {
		t.Fatal(err)
	}
	if enis, _ := c.ENIs(bg, id.InstanceID); len(enis) != 1 {
		t.Fatalf("%d ENIs after free", len(enis))
	}
}

// TestCleanupDetached: detached ENIs of the cluster older than the grace period are deleted,
// except those an agent still answers for: tagged with another live instance, or with the
// caller's own while its pods use them (issue 11 fault 6: the cleanup deleted a force-detached
// ENI whose addresses pods still used, and another node got them).
func TestCleanupDetached(t *testing.T) {
	c, raw, id, _ := setup(t)
	subnet := aws.String(id.SubnetID)
	run, err := raw.RunInstances(bg, &ec2.RunInstancesInput{InstanceType: "m5.large", SubnetId: subnet, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: aws.String("ami-12345678")})
	if err != nil {
		t.Fatal(err)
	}
	dead := *run.Instances[0].InstanceId
	if _, err := raw.TerminateInstances(bg, &ec2.TerminateInstancesInput{InstanceIds: []string{dead}}); err != nil {
		t.Fatal(err)
	}
	mk := func(age time.Duration, extra ...types.Tag) string {
		tags := append([]types.Tag{{Key: aws.String(cloud.TagCluster), Value: aws.String("unit")},
			{Key: aws.String(cloud.TagCreatedAt), Value: aws.String(time.Now().Add(-age).UTC().Format(time.RFC3339))}}, extra...)
		out, err := raw.CreateNetworkInterface(bg, &ec2.CreateNetworkInterfaceInput{SubnetId: subnet,
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: tags}}})
		if err != nil {
			t.Fatal(err)
		}
		return *out.NetworkInterface.NetworkInterfaceId
	}
	owner := func(id string) types.Tag {
		return types.Tag{Key: aws.String(cloud.TagInstanceID), Value: aws.String(id)}
	}
	old := mk(time.Hour)
	mk(time.Second)                                                                                               // within the grace period
	mk(time.Hour, types.Tag{Key: aws.String(cloud.TagNoManage), Value: aws.String("true")})                       // someone else's
	if _, err := raw.CreateNetworkInterface(bg, &ec2.CreateNetworkInterfaceInput{SubnetId: subnet}); err != nil { // untagged
		t.Fatal(err)
	}
	ofLive := mk(time.Hour, owner(id.InstanceID)) // the live instance's agent answers for it
	ofDead := mk(time.Hour, owner(dead))          // nobody does
	mineUsed := mk(time.Hour, owner("i-self"))    // the caller's, its pods use it
	mineFree := mk(time.Hour, owner("i-self"))    // the caller's, unused
	inUse := func(e cloud.ENI) bool { return e.ID == mineUsed }
	deleted, err := c.CleanupDetached(bg, time.Minute, "i-self", inUse)
	slices.Sort(deleted)
	want := []string{old, ofDead, mineFree}
	slices.Sort(want)
	if err != nil || !slices.Equal(deleted, want) {
		t.Fatalf("deleted %v (%v), want %v (not the live instance's %s nor the used %s)", deleted, err, want, ofLive, mineUsed)
	}
}

// TestCreateENIWithAddresses: a new ENI's addresses or prefixes come in its
// CreateNetworkInterface call, with no assign after it; a subnet short of them refuses all.
func TestCreateENIWithAddresses(t *testing.T) {
	c, raw, id, calls := setup(t)
	eni, err := c.CreateENI(bg, id, 1, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(eni.IPs) != 5 || len(eni.Prefixes) != 0 || eni.AttachmentID == "" || !eni.PrimaryIP.IsValid() || slices.Contains(eni.IPs, eni.PrimaryIP) {
		t.Fatalf("ENI %+v, want attached with 5 secondary addresses", eni)
	}
	pfx, err := c.CreateENI(bg, id, 2, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(pfx.Prefixes) != 2 || len(pfx.IPs) != 0 || pfx.DeviceIndex != 2 {
		t.Fatalf("ENI %+v, want two prefixes", pfx)
	}
	if n := count(calls, "CreateNetworkInterface"); n != 2 || count(calls, "AssignPrivateIpAddresses") != 0 {
		t.Fatalf("%d creates and %d assigns, want 2 and none", n, count(calls, "AssignPrivateIpAddresses"))
	}
	if n := count(calls, "DescribeNetworkInterfaces"); n != 0 {
		t.Fatalf("%d DescribeNetworkInterfaces while waiting for attachments, want none (IMDS shows them)", n)
	}
	if count(calls, "IMDS") == 0 {
		t.Fatal("the attach waits read IMDS without reporting it to the observer")
	}
	if enis, _ := c.ENIs(bg, id.InstanceID); len(enis) != 3 || !slices.Equal(enis[1].IPs, eni.IPs) || !slices.Equal(enis[2].Prefixes, pfx.Prefixes) {
		t.Fatalf("EC2 describes %+v", enis)
	}

	if err := c.FreeENI(bg, pfx); err != nil {
		t.Fatal(err)
	}

	// Leave three addresses: an ENI with three secondaries needs four.
	free, err := c.SubnetFree(bg, id.SubnetID)
	if err != nil {
		t.Fatal(err)
	}
	for hog := free - 3; hog > 0; hog -= min(hog, 10) {
		in := &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(id.SubnetID)}
		if k := min(hog, 10) - 1; k > 0 {
			in.SecondaryPrivateIpAddressCount = aws.Int32(int32(k))
		}
		if _, err := raw.CreateNetworkInterface(bg, in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateENI(bg, id, 2, 3, 0); cloud.Code(err) != cloud.ErrSubnetFull {
		t.Fatalf("create with 3 addresses in a subnet with 3 free: %v, want %s", err, cloud.ErrSubnetFull)
	}
	if _, err := c.CreateENI(bg, id, 2, 0, 1); cloud.Code(err) != cloud.ErrNoCIDRBlocks {
		t.Fatalf("create with a prefix in a full subnet: %v, want %s", err, cloud.ErrNoCIDRBlocks)
	}
	last, err := c.CreateENI(bg, id, 2, 2, 0)
	if err != nil || len(last.IPs) != 2 {
		t.Fatalf("create with the last 2 addresses: %+v %v", last, err)
	}
	for _, bad := range [][2]int{{-1, 0}, {0, -1}, {1, 1}} {
		if _, err := c.CreateENI(bg, id, 2, bad[0], bad[1]); err == nil || cloud.Code(err) != "" {
			t.Errorf("create with %d addresses and %d prefixes: %v, want refused before EC2", bad[0], bad[1], err)
		}
	}
}

// TestAttachWaitFallsBackToDescribe: with IMDS unreachable, an attachment is learnt from
// DescribeNetworkInterfaces.
func TestAttachWaitFallsBackToDescribe(t *testing.T) {
	s, _, imds := setupSim(t)
	// Nothing listens on port 1 of the loopback address: every IMDS read fails at once. The
	// instance role's credentials come from IMDS too, so the client signs with the operator's.
	op := s.OperatorCredentials()
	t.Setenv("AWS_ACCESS_KEY_ID", op.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", op.SecretAccessKey)
	c, id, calls := newClient(t, s, imds, cloud.Config{IMDSEndpoint: "http://127.0.0.1:1", AttachWait: 10 * time.Second})
	eni, err := c.CreateENI(bg, id, 1, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if eni.AttachmentID == "" || eni.DeviceIndex != 1 || len(eni.IPs) != 3 {
		t.Fatalf("ENI %+v, want attached at device 1 with 3 addresses", eni)
	}
	if n := count(calls, "DescribeNetworkInterfaces"); n < 1 {
		t.Fatalf("attached %s without IMDS and without a Describe", eni.ID)
	}
}
