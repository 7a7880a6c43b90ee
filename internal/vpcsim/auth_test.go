package vpcsim_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// withCreds is an EC2 client of the server that signs with p.
func withCreds(s *vpcsim.Server, p aws.CredentialsProvider) *ec2.Client {
	return client(s, func(o *ec2.Options) { o.Credentials = p; o.RetryMaxAttempts = 1 })
}

// Issue 11 fault 9: vpcsim checks SigV4 signatures against the credentials it issued, as EC2.
func TestSignatureIsChecked(t *testing.T) {
	op := vpcsim.Credentials{AccessKeyID: "AKIAVPCSIMOPERATOR1", SecretAccessKey: "operator-secret"}
	f := newFixture(t, vpcsim.Options{Operator: op}, "10.0.0.0/16", "10.0.1.0/24")
	if got := f.s.OperatorCredentials(); got != op {
		t.Fatalf("operator credential %+v, want %+v", got, op)
	}
	static := func(id, secret, token string) aws.CredentialsProvider {
		return credentials.NewStaticCredentialsProvider(id, secret, token)
	}
	for _, tc := range []struct {
		name   string
		p      aws.CredentialsProvider
		code   string
		status int
	}{
		{"unsigned", aws.AnonymousCredentials{}, "MissingParameter", http.StatusBadRequest},
		{"unknown key", static("AKIANOTISSUED000000", "operator-secret", ""), "AuthFailure", http.StatusUnauthorized},
		{"wrong secret", static(op.AccessKeyID, "not-the-secret", ""), "SignatureDoesNotMatch", http.StatusForbidden},
		{"operator key with a token", static(op.AccessKeyID, op.SecretAccessKey, "token"), "AuthFailure", http.StatusUnauthorized},
		{"role key without token", static("ASIAVPCSIM000000000", "x", ""), "AuthFailure", http.StatusUnauthorized},
		{"garbled token", static("ASIAVPCSIM000000000", "x", "bm90IGEgdG9rZW4.AAAA"), "AuthFailure", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := withCreds(f.s, tc.p).DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
			wantCode(t, err, tc.code)
			if httpStatus(err) != tc.status {
				t.Fatalf("HTTP %d, want %d", httpStatus(err), tc.status)
			}
			// Nothing is changed by a refused call.
			_, err = withCreds(f.s, tc.p).CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet)})
			wantCode(t, err, tc.code)
		})
	}
	out := must[*ec2.DescribeNetworkInterfacesOutput](t)(f.c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{}))
	if len(out.NetworkInterfaces) != 0 {
		t.Fatalf("refused calls created %d ENIs", len(out.NetworkInterfaces))
	}
	// The request is signed over its body: a body changed after signing is refused.
	tamper := client(f.s, func(o *ec2.Options) {
		o.RetryMaxAttempts = 1
		o.HTTPClient = rewriteBody{"CidrBlock=10.0.1.0%2F24", "CidrBlock=10.0.2.0%2F24"}
	})
	_, err := tamper.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(f.vpc), CidrBlock: aws.String("10.0.1.0/24")})
	wantCode(t, err, "SignatureDoesNotMatch")
}

// rewriteBody replaces text in a signed request's body before sending it.
type rewriteBody struct{ from, to string }

func (rb rewriteBody) Do(r *http.Request) (*http.Response, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, err
	}
	nb := []byte(replaceOnce(string(b), rb.from, rb.to))
	r2 := r.Clone(r.Context())
	r2.Body = nopCloser(nb)
	r2.ContentLength = int64(len(nb))
	return http.DefaultClient.Do(r2)
}

// An instance's role credentials, served by IMDS as EC2's, sign calls that the node role
// (AmazonEKS_CNI_Policy) allows; other actions are UnauthorizedOperation.
func TestRoleCredentialsFromIMDS(t *testing.T) {
	f := newFixture(t, vpcsim.Options{InstanceRole: "lab-node"}, "10.0.0.0/16", "10.0.1.0/24")
	inst := f.run(t, "m5.large")
	md := imdsClient(t, f.s, *inst.InstanceId)
	if got := imdsGet(t, md, ""); !strings.Contains(got, "hostname\niam/\ninstance-id") {
		t.Fatalf("meta-data/ does not list iam/ in its place: %q", got)
	}
	if got := imdsGet(t, md, "iam/security-credentials/"); got != "lab-node" {
		t.Fatalf("iam/security-credentials/ lists %q", got)
	}
	var doc struct {
		Code, LastUpdated, Type, AccessKeyId, SecretAccessKey, Token, Expiration string
	}
	if err := json.Unmarshal([]byte(imdsGet(t, md, "iam/security-credentials/lab-node")), &doc); err != nil {
		t.Fatal(err)
	}
	exp, err := time.Parse(time.RFC3339, doc.Expiration)
	if doc.Code != "Success" || doc.Type != "AWS-HMAC" || doc.AccessKeyId[:4] != "ASIA" || doc.Token == "" ||
		err != nil || time.Until(exp) < 4*time.Hour || time.Until(exp) > 6*time.Hour {
		t.Fatalf("credentials document %+v", doc)
	}
	// The SDK's own instance-role provider reads them.
	role := aws.NewCredentialsCache(ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = md }))
	rc := withCreds(f.s, role)
	e := must[*ec2.CreateNetworkInterfaceOutput](t)(rc.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet)}))
	must[*ec2.AttachNetworkInterfaceOutput](t)(rc.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: e.NetworkInterface.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(1)}))
	_, err = rc.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{*inst.InstanceId}})
	wantCode(t, err, "UnauthorizedOperation")
	wantMessage(t, err, "assumed-role/lab-node/"+*inst.InstanceId)
	// A token of one instance with another's key is refused.
	other := f.run(t, "m5.large")
	var od struct{ AccessKeyId, SecretAccessKey, Token string }
	json.Unmarshal([]byte(imdsGet(t, imdsClient(t, f.s, *other.InstanceId), "iam/security-credentials/lab-node")), &od)
	_, err = withCreds(f.s, credentials.NewStaticCredentialsProvider(od.AccessKeyId, od.SecretAccessKey, doc.Token)).DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	wantCode(t, err, "AuthFailure")
}

// Role credentials stop working when they expire (RequestExpired), and IMDS then serves new
// ones that work.
func TestExpiredRoleCredentialsRefused(t *testing.T) {
	f := newFixture(t, vpcsim.Options{RoleCredentialTTL: 2 * time.Second}, "10.0.0.0/16", "10.0.1.0/24")
	inst := f.run(t, "m5.large")
	md := imdsClient(t, f.s, *inst.InstanceId)
	var doc struct{ AccessKeyId, SecretAccessKey, Token, Expiration string }
	if err := json.Unmarshal([]byte(imdsGet(t, md, "iam/security-credentials/"+vpcsim.DefaultInstanceRole)), &doc); err != nil {
		t.Fatal(err)
	}
	old := withCreds(f.s, credentials.NewStaticCredentialsProvider(doc.AccessKeyId, doc.SecretAccessKey, doc.Token))
	exp, _ := time.Parse(time.RFC3339, doc.Expiration)
	// Before expiry they work; wait (polling) for the expiry to pass, then they must not.
	if time.Now().Before(exp.Add(-500 * time.Millisecond)) {
		must[*ec2.DescribeSubnetsOutput](t)(old.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}))
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(exp) {
		if time.Now().After(deadline) {
			t.Fatal("credentials never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err := old.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	wantCode(t, err, "RequestExpired")
	role := aws.NewCredentialsCache(ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = md }))
	must[*ec2.DescribeSubnetsOutput](t)(withCreds(f.s, role).DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}))
}

// The operator credential and the role key survive a restart from the state directory: what
// vpcsim issued before stays valid, and the credentials file holds the operator credential.
func TestCredentialsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/operator-credentials"
	s1, err := vpcsim.Start("127.0.0.1:0", vpcsim.Options{StateDir: dir, CredentialsFile: file})
	if err != nil {
		t.Fatal(err)
	}
	op := s1.OperatorCredentials()
	if len(op.AccessKeyID) != 20 || op.AccessKeyID[:4] != "AKIA" || len(op.SecretAccessKey) != 40 {
		t.Fatalf("generated operator credential %+v", op)
	}
	f := &fixture{s: s1, c: client(s1, nil)}
	f.network(t, "10.0.0.0/16", "10.0.1.0/24")
	inst := f.run(t, "m5.large")
	var doc struct{ AccessKeyId, SecretAccessKey, Token string }
	json.Unmarshal([]byte(imdsGet(t, imdsClient(t, s1, *inst.InstanceId), "iam/security-credentials/"+vpcsim.DefaultInstanceRole)), &doc)
	s1.Close()

	s2, err := vpcsim.Start("127.0.0.1:0", vpcsim.Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.OperatorCredentials() != op {
		t.Fatalf("operator credential changed over a restart")
	}
	// The SDK finds the operator credential in the shared credentials file.
	fileCreds := must[aws.Credentials](t)(sharedFileCreds(file))
	if fileCreds.AccessKeyID != op.AccessKeyID || fileCreds.SecretAccessKey != op.SecretAccessKey {
		t.Fatalf("credentials file holds %s", fileCreds.AccessKeyID)
	}
	must[*ec2.DescribeSubnetsOutput](t)(withCreds(s2, credentials.NewStaticCredentialsProvider(doc.AccessKeyId, doc.SecretAccessKey, doc.Token)).DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}))
}
