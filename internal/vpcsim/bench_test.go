package vpcsim_test

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpcnet/vpcnet/internal/vpcsim"
	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
)

// The benchmark state: 1,000 m5.24xlarge instances in one /16 subnet, each primary ENI holding
// its primary and 49 secondary addresses (50,000 addresses), plus 100 spare unattached ENIs
// that the assign benchmark assigns to and unassigns from (so the state stays the same size).
const (
	benchInstances = 1000
	benchPerENI    = 49
	benchSpare     = 100
)

// benchState is one copy of that state, in process (model) or behind a server (wire).
type benchState struct {
	instances []string
	spare     []string
}

func benchModel(b *testing.B) (*model.Model, *benchState) {
	m := model.New("us-east-1", nil, 1)
	now := time.Now()
	v, _ := m.CreateVpc(now, model.CreateVpcInput{CIDR: netip.MustParsePrefix("10.0.0.0/16")})
	s, _ := m.CreateSubnet(now, model.CreateSubnetInput{VPCID: v.ID, CIDR: netip.MustParsePrefix("10.0.0.0/16")})
	r, _, err := m.RunInstances(now, model.RunInstancesInput{InstanceType: "m5.24xlarge", SubnetID: s.ID, MinCount: benchInstances, MaxCount: benchInstances,
		PrimaryAddrs: model.AddrRequest{Count: benchPerENI}})
	if err != nil {
		b.Fatal(err)
	}
	st := &benchState{}
	for _, i := range r.Instances {
		st.instances = append(st.instances, i.ID)
	}
	for i := 0; i < benchSpare; i++ {
		e, _, err := m.CreateNetworkInterface(now, model.CreateNetworkInterfaceInput{SubnetID: s.ID})
		if err != nil {
			b.Fatal(err)
		}
		st.spare = append(st.spare, e.ID)
	}
	return m, st
}

func benchWire(b *testing.B, dir string) (*vpcsim.Server, *ec2.Client, *benchState) {
	s, err := vpcsim.Start("127.0.0.1:0", vpcsim.Options{StateDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	c := client(s, nil)
	vpc := must[*ec2.CreateVpcOutput](b)(c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")}))
	sn := must[*ec2.CreateSubnetOutput](b)(c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.0.0.0/16")}))
	out := must[*ec2.RunInstancesOutput](b)(c.RunInstances(ctx, &ec2.RunInstancesInput{InstanceType: "m5.24xlarge", MinCount: aws.Int32(benchInstances), MaxCount: aws.Int32(benchInstances),
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: sn.Subnet.SubnetId, SecondaryPrivateIpAddressCount: aws.Int32(benchPerENI)}}}))
	st := &benchState{}
	n := 0
	for _, i := range out.Instances {
		st.instances = append(st.instances, *i.InstanceId)
		n += len(i.NetworkInterfaces[0].PrivateIpAddresses)
	}
	if n != benchInstances*(benchPerENI+1) {
		b.Fatalf("setup made %d addresses", n)
	}
	for i := 0; i < benchSpare; i++ {
		e := must[*ec2.CreateNetworkInterfaceOutput](b)(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: sn.Subnet.SubnetId}))
		st.spare = append(st.spare, *e.NetworkInterface.NetworkInterfaceId)
	}
	return s, c, st
}

// BenchmarkVpcsim measures AssignPrivateIpAddresses (+ the Unassign that keeps the state
// steady) and DescribeNetworkInterfaces on 1,000 instances and 50,000 addresses, over the wire
// through aws-sdk-go-v2 and, as the reference, as raw calls on the in-process model.
//
//	go test -run '^$' -bench BenchmarkVpcsim -benchtime 2s ./internal/vpcsim/
func BenchmarkVpcsim(b *testing.B) {
	m, ms := benchModel(b)
	var mu sync.Mutex // the server's one lock, for a fair reference
	srv, c, ws := benchWire(b, "")
	_, cd, ds := benchWire(b, b.TempDir())
	perOp := map[string]float64{}
	record := func(name string, b *testing.B, start time.Time) {
		perOp[name] = float64(time.Since(start).Nanoseconds()) / float64(b.N)
	}

	b.Run("AssignUnassign/model", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			eni := ms.spare[i%len(ms.spare)]
			mu.Lock()
			a, _, err := m.AssignPrivateIpAddresses(model.AssignPrivateIpAddressesInput{ENIID: eni, Addrs: model.AddrRequest{Count: 1}})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.UnassignPrivateIpAddresses(model.UnassignPrivateIpAddressesInput{ENIID: eni, Addrs: a.Addrs}); err != nil {
				b.Fatal(err)
			}
			mu.Unlock()
		}
		record("AssignUnassign/model", b, start)
	})
	assignWire := func(c *ec2.Client, st *benchState) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				eni := st.spare[i%len(st.spare)]
				a := must[*ec2.AssignPrivateIpAddressesOutput](b)(c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: &eni, SecondaryPrivateIpAddressCount: aws.Int32(1)}))
				must[*ec2.UnassignPrivateIpAddressesOutput](b)(c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: &eni, PrivateIpAddresses: []string{*a.AssignedPrivateIpAddresses[0].PrivateIpAddress}}))
			}
			record(b.Name()[strings.Index(b.Name(), "/")+1:], b, start)
		}
	}
	b.Run("AssignUnassign/http", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			eni := ws.spare[i%len(ws.spare)]
			body := rawPost(b, srv.Endpoint(), url.Values{"Action": {"AssignPrivateIpAddresses"}, "Version": {"2016-11-15"}, "NetworkInterfaceId": {eni}, "SecondaryPrivateIpAddressCount": {"1"}})
			j := strings.Index(body, "<privateIpAddress>")
			if j < 0 {
				b.Fatal(body)
			}
			ip := body[j+len("<privateIpAddress>") : j+strings.Index(body[j:], "</privateIpAddress>")]
			rawPost(b, srv.Endpoint(), url.Values{"Action": {"UnassignPrivateIpAddresses"}, "Version": {"2016-11-15"}, "NetworkInterfaceId": {eni}, "PrivateIpAddress.1": {ip}})
		}
		record("AssignUnassign/http", b, start)
	})
	b.Run("AssignUnassign/wire", assignWire(c, ws))
	b.Run("AssignUnassign/wire-durable", assignWire(cd, ds))
	b.Run("AssignUnassign/wire-parallel", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		var next sync.Mutex
		k := 0
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			next.Lock()
			eni := ws.spare[k%len(ws.spare)]
			k++
			next.Unlock()
			for pb.Next() {
				a := must[*ec2.AssignPrivateIpAddressesOutput](b)(c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: &eni, SecondaryPrivateIpAddressCount: aws.Int32(1)}))
				must[*ec2.UnassignPrivateIpAddressesOutput](b)(c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: &eni, PrivateIpAddresses: []string{*a.AssignedPrivateIpAddresses[0].PrivateIpAddress}}))
			}
		})
		record("AssignUnassign/wire-parallel", b, start)
	})

	b.Run("DescribeByInstance/model", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			mu.Lock()
			out, _, err := m.DescribeNetworkInterfaces(model.DescribeInput{Filters: []model.Filter{{Name: "attachment.instance-id", Values: []string{ms.instances[i%len(ms.instances)]}}}})
			mu.Unlock()
			if err != nil || len(out) != 1 {
				b.Fatal(err, len(out))
			}
		}
		record("DescribeByInstance/model", b, start)
	})
	b.Run("DescribeByInstance/wire", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			out := must[*ec2.DescribeNetworkInterfacesOutput](b)(c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
				Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{ws.instances[i%len(ws.instances)]}}}}))
			if len(out.NetworkInterfaces) != 1 || len(out.NetworkInterfaces[0].PrivateIpAddresses) != benchPerENI+1 {
				b.Fatal("wrong answer")
			}
		}
		record("DescribeByInstance/wire", b, start)
	})
	// The same call as raw HTTP (no SDK): what the server itself costs.
	b.Run("DescribeByInstance/http", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			body := rawPost(b, srv.Endpoint(), url.Values{"Action": {"DescribeNetworkInterfaces"}, "Version": {"2016-11-15"},
				"Filter.1.Name": {"attachment.instance-id"}, "Filter.1.Value.1": {ws.instances[i%len(ws.instances)]}})
			if strings.Count(body, "<privateIpAddress>") != benchPerENI+2 {
				b.Fatalf("wrong answer: %d addresses", strings.Count(body, "<privateIpAddress>"))
			}
		}
		record("DescribeByInstance/http", b, start)
	})
	b.Run("DescribeAll/model", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			n, tok := 0, ""
			for {
				mu.Lock()
				out, next, err := m.DescribeNetworkInterfaces(model.DescribeInput{Page: model.Page{MaxResults: 1000, NextToken: tok}})
				mu.Unlock()
				if err != nil {
					b.Fatal(err)
				}
				n += len(out)
				if tok = next; tok == "" {
					break
				}
			}
			if n != benchInstances+benchSpare {
				b.Fatalf("%d ENIs", n)
			}
		}
		record("DescribeAll/model", b, start)
	})
	b.Run("DescribeAll/http", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			tok, n := "", 0
			for {
				v := url.Values{"Action": {"DescribeNetworkInterfaces"}, "Version": {"2016-11-15"}, "MaxResults": {"1000"}}
				if tok != "" {
					v.Set("NextToken", tok)
				}
				body := rawPost(b, srv.Endpoint(), v)
				n += strings.Count(body, "<networkInterfaceId>")
				tok = ""
				if i := strings.Index(body, "<nextToken>"); i >= 0 {
					tok = body[i+len("<nextToken>") : i+strings.Index(body[i:], "</nextToken>")]
				}
				if tok == "" {
					break
				}
			}
			if n != benchInstances+benchSpare {
				b.Fatalf("%d ENIs", n)
			}
		}
		record("DescribeAll/http", b, start)
	})
	b.Run("DescribeAll/wire", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			p := ec2.NewDescribeNetworkInterfacesPaginator(c, &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(1000)})
			n := 0
			for p.HasMorePages() {
				n += len(must[*ec2.DescribeNetworkInterfacesOutput](b)(p.NextPage(ctx)).NetworkInterfaces)
			}
			if n != benchInstances+benchSpare {
				b.Fatalf("%d ENIs", n)
			}
		}
		record("DescribeAll/wire", b, start)
	})

	// Ratios to the in-process reference, measured in this run.
	var lines []string
	for name, ns := range perOp {
		kind, variant, _ := strings.Cut(name, "/")
		if variant == "model" {
			continue
		}
		if ref := perOp[kind+"/model"]; ref > 0 {
			lines = append(lines, fmt.Sprintf("%-30s %12.0f ns/op  %7.1fx the model (%0.f ns/op)", name, ns, ns/ref, ref))
		}
	}
	sort.Strings(lines)
	b.Logf("ratios to the in-process model:\n%s", strings.Join(lines, "\n"))
}

var benchHTTP = &http.Client{}

func rawPost(b *testing.B, endpoint string, v url.Values) string {
	resp, err := benchHTTP.Post(endpoint, "application/x-www-form-urlencoded", strings.NewReader(v.Encode()))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		b.Fatalf("HTTP %d: %s", resp.StatusCode, body)
	}
	return string(body)
}
