package vpcsim_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// start runs an in-memory vpcsim for the test and returns it with an SDK client.
func start(t testing.TB, opts vpcsim.Options) (*vpcsim.Server, *ec2.Client) {
	t.Helper()
	s, err := vpcsim.Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, client(s, nil)
}

// client is an aws-sdk-go-v2 EC2 client pointed at the server, signing with the operator credential.
func client(s *vpcsim.Server, tweak func(*ec2.Options)) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       s.Region(),
		BaseEndpoint: aws.String(s.Endpoint()),
		Credentials:  s.CredentialsProvider(),
	}, func(o *ec2.Options) {
		if tweak != nil {
			tweak(o)
		}
	})
}

func imdsClient(t testing.TB, s *vpcsim.Server, instanceID string) *imds.Client {
	t.Helper()
	url, err := s.IMDSEndpoint(instanceID)
	if err != nil {
		t.Fatal(err)
	}
	return imds.New(imds.Options{Endpoint: url})
}

// apiCode returns the EC2 error code of err ("" for nil) and fails on a non-API error.
func apiCode(t testing.TB, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("not an API error: %v", err)
	}
	return ae.ErrorCode()
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := apiCode(t, err); got != code {
		t.Fatalf("error code %q (%v), want %q", got, err, code)
	}
}

func wantMessage(t testing.TB, err error, sub string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || !strings.Contains(ae.ErrorMessage(), sub) {
		t.Fatalf("error %v does not say %q", err, sub)
	}
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

var ctx = context.Background()

// fixture is a VPC with one subnet.
type fixture struct {
	s      *vpcsim.Server
	c      *ec2.Client
	vpc    string
	subnet string
}

func newFixture(t testing.TB, opts vpcsim.Options, vpcCIDR, subnetCIDR string) *fixture {
	t.Helper()
	s, c := start(t, opts)
	f := &fixture{s: s, c: c}
	f.network(t, vpcCIDR, subnetCIDR)
	return f
}

// network creates the fixture's VPC and its subnet.
func (f *fixture) network(t testing.TB, vpcCIDR, subnetCIDR string) {
	t.Helper()
	vpc := must[*ec2.CreateVpcOutput](t)(f.c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(vpcCIDR)}))
	f.vpc = *vpc.Vpc.VpcId
	sn := must[*ec2.CreateSubnetOutput](t)(f.c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(f.vpc), CidrBlock: aws.String(subnetCIDR)}))
	f.subnet = *sn.Subnet.SubnetId
}

func (f *fixture) run(t testing.TB, typ string) types.Instance {
	t.Helper()
	out := must[*ec2.RunInstancesOutput](t)(f.c.RunInstances(ctx, &ec2.RunInstancesInput{
		InstanceType: types.InstanceType(typ), SubnetId: aws.String(f.subnet), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		ImageId: aws.String("ami-12345678")}))
	return out.Instances[0]
}

func (f *fixture) eni(t testing.TB) types.NetworkInterface {
	t.Helper()
	out := must[*ec2.CreateNetworkInterfaceOutput](t)(f.c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet)}))
	return *out.NetworkInterface
}

func (f *fixture) describeENI(t testing.TB, id string) types.NetworkInterface {
	t.Helper()
	out := must[*ec2.DescribeNetworkInterfacesOutput](t)(f.c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}}))
	if len(out.NetworkInterfaces) != 1 {
		t.Fatalf("describe %s: %d interfaces", id, len(out.NetworkInterfaces))
	}
	return out.NetworkInterfaces[0]
}

type respRecorder struct {
	code int
	hdr  http.Header
	body strings.Builder
}

func newRecorder() *respRecorder                    { return &respRecorder{code: 200, hdr: http.Header{}} }
func (r *respRecorder) Header() http.Header         { return r.hdr }
func (r *respRecorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *respRecorder) WriteHeader(c int)           { r.code = c }

func readAll(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	defer r.Body.Close()
	return io.ReadAll(r.Body)
}

func nopCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

func replaceOnce(s, from, to string) string { return strings.Replace(s, from, to, 1) }

// sharedFileCreds reads profile "default" of an AWS shared credentials file with the SDK.
func sharedFileCreds(path string) (aws.Credentials, error) {
	cfg, err := config.LoadSharedConfigProfile(ctx, "default", func(o *config.LoadSharedConfigOptions) {
		o.CredentialsFiles = []string{path}
		o.ConfigFiles = []string{}
	})
	return cfg.Credentials, err
}
