package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

func TestCallLogKeepsTheNewest(t *testing.T) {
	l := newCallLog(3)
	for i, caller := range []string{"i-1", "i-2", "i-1", "controller", "i-1"} {
		l.add(lab.EC2Call{Action: "A" + string(rune('0'+i)), Caller: caller})
	}
	got := l.list(0, "")
	if got.Next != 5 || got.Dropped != 2 || len(got.Calls) != 3 || got.Calls[0].Seq != 3 || got.Calls[0].Action != "A2" || got.Calls[2].Seq != 5 {
		t.Errorf("list(0, \"\") = %+v, want calls 3..5, next 5, 2 dropped", got)
	}
	if got := l.list(3, "i-1"); len(got.Calls) != 1 || got.Calls[0].Seq != 5 {
		t.Errorf("list(3, i-1) = %+v, want call 5 only", got)
	}
	if got := l.list(5, ""); got.Calls == nil || len(got.Calls) != 0 || got.Next != 5 {
		t.Errorf("list(5, \"\") = %+v, want an empty list (not null) and next 5", got)
	}
}

// Calls through the recording handler (the nodes' way in) and the recording transport (the
// controller's own client) are recorded with their action, caller, timing including vpcsim's
// latency, and EC2's error code; the requests still reach vpcsim intact.
func TestRecordCalls(t *testing.T) {
	sim, err := vpcsim.Start("127.0.0.1:0", vpcsim.Options{
		Latency: map[string]time.Duration{"CreateVpc": 50 * time.Millisecond},
		Deny:    map[string]bool{"DescribeVpcs": true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	simURL, _ := url.Parse(sim.Endpoint())
	log := newCallLog(100)
	srv := httptest.NewServer(recordCalls(httputil.NewSingleHostReverseProxy(simURL), func(*http.Request) string { return "i-node" }, log))
	t.Cleanup(srv.Close)
	ctx := context.Background()

	node := newEC2(srv.URL, http.DefaultClient, sim.CredentialsProvider())
	vpc, err := node.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.1.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = node.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	var coded interface{ ErrorCode() string }
	if !errors.As(err, &coded) || coded.ErrorCode() != "UnauthorizedOperation" {
		t.Fatalf("DescribeVpcs through the recorder: %v, want UnauthorizedOperation", err)
	}
	own := newEC2(sim.Endpoint(), &http.Client{Transport: recordingTransport{base: http.DefaultTransport, caller: lab.CallerController, log: log}}, sim.CredentialsProvider())
	if _, err := own.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.1.1.0/24")}); err != nil {
		t.Fatal(err)
	}
	_, err = own.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if !errors.As(err, &coded) || coded.ErrorCode() != "UnauthorizedOperation" {
		t.Fatalf("DescribeVpcs through the recording transport: %v, want UnauthorizedOperation", err)
	}

	got := log.list(0, "").Calls
	want := []struct{ action, caller, code string }{
		{"CreateVpc", "i-node", ""},
		{"DescribeVpcs", "i-node", "UnauthorizedOperation"},
		{"CreateSubnet", lab.CallerController, ""},
		{"DescribeVpcs", lab.CallerController, "UnauthorizedOperation"},
	}
	if len(got) != len(want) {
		t.Fatalf("recorded %+v, want %d calls", got, len(want))
	}
	for i, w := range want {
		c := got[i]
		if c.Seq != uint64(i+1) || c.Action != w.action || c.Caller != w.caller || c.Code != w.code || c.End.Before(c.Start) {
			t.Errorf("call %d = %+v, want %s by %q, code %q", i+1, c, w.action, w.caller, w.code)
		}
	}
	if d := got[0].End.Sub(got[0].Start); d < 50*time.Millisecond {
		t.Errorf("CreateVpc took %s by the record, less than vpcsim's 50ms latency", d)
	}
}

func TestRequestAction(t *testing.T) {
	for _, tc := range []struct {
		method, target, body, want string
	}{
		{"POST", "/", "Action=DescribeSubnets&Version=2016-11-15", "DescribeSubnets"},
		{"GET", "/?Action=DescribeVpcs&Version=2016-11-15", "", "DescribeVpcs"},
		{"POST", "/", "Version=2016-11-15", "?"},
		{"POST", "/", "%zz", "?"},
	} {
		r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
		if got := requestAction(r); got != tc.want {
			t.Errorf("%s %s %q: action %q, want %q", tc.method, tc.target, tc.body, got, tc.want)
		}
		rest := new(bytes.Buffer)
		if _, err := rest.ReadFrom(r.Body); err != nil || rest.String() != tc.body {
			t.Errorf("%q: the handler would read %q (%v)", tc.body, rest.String(), err)
		}
	}
}

func TestErrorCode(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{400, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InvalidSubnetID.NotFound</Code><Message>x</Message></Error></Errors><RequestID>r</RequestID></Response>`, "InvalidSubnetID.NotFound"},
		{503, `<Response><Errors><Error><Code>RequestLimitExceeded</Code></Error></Errors></Response>`, "RequestLimitExceeded"},
		{502, "dial tcp: connection refused", "HTTP 502"},
		{500, "", "HTTP 500"},
	} {
		if got := errorCode(tc.status, []byte(tc.body)); got != tc.want {
			t.Errorf("errorCode(%d, %q) = %q, want %q", tc.status, tc.body, got, tc.want)
		}
	}
}

func FuzzErrorCode(f *testing.F) {
	f.Add(400, []byte(`<Response><Errors><Error><Code>X</Code></Error></Errors></Response>`))
	f.Add(500, []byte("<Response><Errors>"))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if got := errorCode(status, body); got == "" {
			t.Errorf("errorCode(%d, %q) is empty", status, body)
		}
	})
}

// The control API answers the record, filtered, and refuses a bad after= in one line.
func TestEC2CallsAPI(t *testing.T) {
	c := &Controller{calls: newCallLog(10)}
	c.calls.add(lab.EC2Call{Action: "RunInstances", Caller: lab.CallerController})
	c.calls.add(lab.EC2Call{Action: "DescribeInstanceTypes", Caller: "i-1"})
	c.calls.add(lab.EC2Call{Action: "AssignPrivateIpAddresses", Caller: "i-1"})
	srv := httptest.NewServer(c.controlAPI())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/v1/ec2/calls?after=2&instance=i-1")
	if err != nil {
		t.Fatal(err)
	}
	var got lab.EC2Calls
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || len(got.Calls) != 1 || got.Calls[0].Action != "AssignPrivateIpAddresses" || got.Next != 3 {
		t.Errorf("after=2&instance=i-1: %+v (%v), want the AssignPrivateIpAddresses call", got, err)
	}
	resp, err = http.Get(srv.URL + "/v1/ec2/calls?after=-1")
	if err != nil {
		t.Fatal(err)
	}
	b := new(bytes.Buffer)
	_, _ = b.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || strings.Count(strings.TrimSpace(b.String()), "\n") != 0 || !strings.Contains(b.String(), "after=") {
		t.Errorf("after=-1: %s %q, want 400 with a one-line error", resp.Status, b.String())
	}
}
