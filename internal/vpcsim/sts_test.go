package vpcsim_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
)

// stsClient is an STS client of the server's STS, one attempt per call.
func stsClient(s *vpcsim.Server) *sts.Client {
	return sts.New(sts.Options{Region: s.Region(), BaseEndpoint: aws.String(s.STSEndpoint()), RetryMaxAttempts: 1})
}

type tokenString string

func (t tokenString) GetIdentityToken() ([]byte, error) { return []byte(t), nil }

// TestAssumeRoleWithWebIdentity: vpcsim's STS exchanges a token its issuer signed for a role of
// its account (IRSA), through aws-sdk-go-v2's own web identity provider; the credentials sign
// EC2 calls with the rights of AmazonEKS_CNI_Policy and no more; a token it did not sign, a
// role of another account and a malformed session name are refused with STS's codes.
func TestAssumeRoleWithWebIdentity(t *testing.T) {
	f := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.1.0/24")
	role := "arn:aws:iam::" + model.OwnerID + ":role/vpcnet-cni"
	token := f.s.WebIdentityToken("system:serviceaccount:kube-system:vpcnet")
	p := aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(stsClient(f.s), role, tokenString(token)))
	creds, err := p.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SessionToken == "" || !creds.CanExpire ||
		creds.Expires.Before(time.Now().Add(45*time.Minute)) || creds.Expires.After(time.Now().Add(time.Hour+time.Minute)) {
		t.Fatalf("credentials %+v, want temporary ones valid for about the default hour", creds)
	}
	c := withCreds(f.s, p)
	if _, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatalf("DescribeSubnets with the web identity role: %v", err)
	}
	if _, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.subnet)}); err != nil {
		t.Fatalf("CreateNetworkInterface with the web identity role: %v", err)
	}
	_, err = c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.9.0.0/16")})
	wantCode(t, err, "UnauthorizedOperation")
	if !strings.Contains(err.Error(), "assumed-role/vpcnet-cni/") {
		t.Fatalf("the refusal does not name the assumed role: %v", err)
	}

	out, err := stsClient(f.s).AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(role),
		RoleSessionName: aws.String("node-1"), WebIdentityToken: aws.String(token), DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.SubjectFromWebIdentityToken) != "system:serviceaccount:kube-system:vpcnet" ||
		aws.ToString(out.AssumedRoleUser.Arn) != "arn:aws:sts::"+model.OwnerID+":assumed-role/vpcnet-cni/node-1" ||
		out.Credentials.Expiration.After(time.Now().Add(16*time.Minute)) {
		t.Fatalf("answer %+v %+v", out.AssumedRoleUser, out.Credentials)
	}

	for _, tc := range []struct {
		name, role, session, token, code string
		status                           int
	}{
		{"token of another issuer", role, "s1", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "InvalidIdentityToken", http.StatusBadRequest},
		{"tampered subject", role, "s1", strings.Replace(token, ".", ".eA", 1), "InvalidIdentityToken", http.StatusBadRequest},
		{"another account's role", "arn:aws:iam::999999999999:role/vpcnet-cni", "s1", token, "AccessDenied", http.StatusForbidden},
		{"session name with a space", role, "node 1", token, "ValidationError", http.StatusBadRequest},
	} {
		_, err := stsClient(f.s).AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(tc.role),
			RoleSessionName: aws.String(tc.session), WebIdentityToken: aws.String(tc.token)})
		wantCode(t, err, tc.code)
		if httpStatus(err) != tc.status {
			t.Fatalf("%s: HTTP %d, want %d", tc.name, httpStatus(err), tc.status)
		}
	}
}

// FuzzSTS: any request body gets an STS answer, never a panic or a server error; only a token
// vpcsim's issuer signed gets credentials.
func FuzzSTS(f *testing.F) {
	s, err := vpcsim.Start("127.0.0.1:0", vpcsim.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	good := s.WebIdentityToken("system:serviceaccount:kube-system:vpcnet")
	role := "arn:aws:iam::" + model.OwnerID + ":role/vpcnet-cni"
	f.Add("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" + role + "&RoleSessionName=s1&WebIdentityToken=" + good)
	f.Add("Action=AssumeRoleWithWebIdentity&RoleArn=" + role + "&RoleSessionName=s1&WebIdentityToken=a.b.c&DurationSeconds=900")
	f.Add("Action=AssumeRole&RoleArn=x")
	f.Add("%zz")
	f.Fuzz(func(t *testing.T, body string) {
		resp, err := http.Post(s.STSEndpoint()+"/", "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 500:
			t.Fatalf("HTTP %d for %q: %s", resp.StatusCode, body, b)
		case resp.StatusCode == http.StatusOK && formValue(body, "WebIdentityToken") != good:
			t.Fatalf("credentials for a body without the issued token: %q", body)
		case resp.StatusCode != http.StatusOK && !bytes.Contains(b, []byte("<ErrorResponse")):
			t.Fatalf("HTTP %d without an STS error: %s", resp.StatusCode, b)
		}
	})
}

func formValue(body, key string) string {
	q, _ := url.ParseQuery(body)
	return q.Get(key)
}
