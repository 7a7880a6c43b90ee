package ec2api

import (
	"context"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
)

// memBackend is the model behind one lock, with no knobs: enough to drive the protocol layer.
type memBackend struct {
	mu sync.Mutex
	m  *model.Model
}

func (b *memBackend) Admit(context.Context, string, string) error { return nil }

func (b *memBackend) Mutate(_ context.Context, mu model.Mutation) (any, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out, _, err := b.m.Apply(time.Unix(1700000000, 0), mu)
	return out, err
}

func (b *memBackend) Read(fn func(*model.Model) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fn(b.m)
}

func newTestHandler() *Handler {
	return NewHandler(&memBackend{m: model.New("us-east-1", nil, 1)}, nil)
}

type result struct {
	status int
	body   string
	code   string
}

func post(h http.Handler, body string) result {
	req := httptest.NewRequest("POST", "/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	r := result{status: rec.Code, body: rec.Body.String()}
	var er errorReply
	if rec.Code != 200 && xml.Unmarshal(rec.Body.Bytes(), &er) == nil && len(er.Errors) > 0 {
		r.code = er.Errors[0].Code
	}
	return r
}

func form(kv ...string) string {
	v := url.Values{"Version": {Version}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

func TestProtocolErrors(t *testing.T) {
	h := newTestHandler()
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"no action", "Version=2016-11-15", 400, "MissingParameter"},
		{"unknown action", form("Action", "LaunchRocket"), 400, "InvalidAction"},
		{"no version", "Action=DescribeVpcs", 400, "MissingParameter"},
		{"old version", "Action=DescribeVpcs&Version=2014-01-01", 400, "NoSuchVersion"},
		{"bad escape", "Action=DescribeVpcs&Version=2016-11-15&x=%zz", 400, "MalformedQueryString"},
		{"bad int", form("Action", "AssignPrivateIpAddresses", "NetworkInterfaceId", "eni-1", "SecondaryPrivateIpAddressCount", "two"), 400, "InvalidParameterValue"},
		{"huge int", form("Action", "AssignPrivateIpAddresses", "NetworkInterfaceId", "eni-1", "SecondaryPrivateIpAddressCount", "99999999999999"), 400, "InvalidParameterValue"},
		{"bad bool", form("Action", "AssignPrivateIpAddresses", "NetworkInterfaceId", "eni-1", "AllowReassignment", "maybe"), 400, "InvalidParameterValue"},
		{"bad list index", form("Action", "DescribeVpcs", "VpcId.x", "vpc-1"), 400, "InvalidParameterValue"},
		{"zero list index", form("Action", "DescribeVpcs", "VpcId.0", "vpc-1"), 400, "InvalidParameterValue"},
		{"filter without name", form("Action", "DescribeVpcs", "Filter.1.Value.1", "x"), 400, "MissingParameter"},
		{"tag without key", form("Action", "CreateTags", "ResourceId.1", "vpc-1", "Tag.1.Value", "x"), 400, "MissingParameter"},
		{"missing device index", form("Action", "AttachNetworkInterface", "NetworkInterfaceId", "eni-1", "InstanceId", "i-1"), 400, "MissingParameter"},
		{"missing counts", form("Action", "RunInstances", "SubnetId", "subnet-1"), 400, "MissingParameter"},
		{"missing subnet", form("Action", "CreateNetworkInterface"), 400, "MissingParameter"},
		{"missing cidr", form("Action", "CreateSubnet", "VpcId", "vpc-1"), 400, "MissingParameter"},
		{"bad cidr", form("Action", "CreateVpc", "CidrBlock", "300.0.0.0/16"), 400, "InvalidParameterValue"},
		{"ipv6 address", form("Action", "AssignPrivateIpAddresses", "NetworkInterfaceId", "eni-1", "PrivateIpAddress.1", "::1"), 400, "InvalidParameterValue"},
		{"dry run", form("Action", "DescribeVpcs", "DryRun", "true"), 412, "DryRunOperation"},
		{"two interfaces", form("Action", "RunInstances", "MinCount", "1", "MaxCount", "1", "NetworkInterface.1.SubnetId", "subnet-1", "NetworkInterface.2.SubnetId", "subnet-1"), 400, "InvalidParameterValue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := post(h, tc.body)
			if r.status != tc.status || r.code != tc.code {
				t.Fatalf("HTTP %d %q, want %d %q\n%s", r.status, r.code, tc.status, tc.code, r.body)
			}
		})
	}
	// GET with a query string works too, and other methods do not.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/?Action=DescribeVpcs&Version=2016-11-15", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "<DescribeVpcsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">") {
		t.Fatalf("GET: %d %s", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("DELETE", "/", nil))
	if rec.Code != 400 {
		t.Fatalf("DELETE: %d", rec.Code)
	}
}

func TestReplyShape(t *testing.T) {
	h := newTestHandler()
	r := post(h, form("Action", "CreateVpc", "CidrBlock", "10.0.0.0/16"))
	if r.status != 200 || !strings.HasPrefix(r.body, xml.Header+`<CreateVpcResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>`) ||
		!strings.Contains(r.body, "<vpc><vpcId>vpc-") {
		t.Fatalf("reply %s", r.body)
	}
	r = post(h, form("Action", "DescribeVpcs", "VpcId.1", "vpc-0abc"))
	want := `<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code><Message>The vpc ID &#39;vpc-0abc&#39; does not exist</Message></Error></Errors><RequestID>`
	if r.status != 400 || !strings.Contains(r.body, want) {
		t.Fatalf("error body %s", r.body)
	}
}

func TestParamsLists(t *testing.T) {
	p := params(url.Values{"A.2": {"b"}, "A.1": {"a"}, "A.10": {"c"}, "F.1.Name": {"n"}, "F.1.Value.2": {"y"}, "F.1.Value.1": {"x"}, "F.3.Name": {"m"}})
	l, err := p.list("A")
	if err != nil || strings.Join(l, ",") != "a,b,c" {
		t.Fatalf("list %v %v", l, err)
	}
	fs, err := params(url.Values{"Filter.1.Name": {"n"}, "Filter.1.Value.2": {"y"}, "Filter.1.Value.1": {"x"}, "Filter.3.Name": {"m"}}).filters()
	if err != nil || len(fs) != 2 || fs[0].Name != "n" || strings.Join(fs[0].Values, ",") != "x,y" || fs[1].Name != "m" {
		t.Fatalf("filters %+v %v", fs, err)
	}
}
