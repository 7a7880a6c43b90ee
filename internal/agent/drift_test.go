package agent_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/ipam"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// nodeAgent is a vpcnetd process for one instance of a sim.
type nodeAgent struct {
	t        *testing.T
	x        *sim
	instance string
	client   agentapi.AgentClient
	metrics  string
	log      string
	cmd      *exec.Cmd // the vpcnetd process
}

// launch starts another instance in the sim's subnet and returns its ID and IMDS endpoint.
func (x *sim) launch(t *testing.T, typ string) (string, string) {
	t.Helper()
	run, err := x.ec2.RunInstances(bg, &ec2.RunInstancesInput{InstanceType: types.InstanceType(typ), SubnetId: aws.String(x.subnet),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: aws.String("ami-12345678")})
	if err != nil {
		t.Fatal(err)
	}
	id := *run.Instances[0].InstanceId
	imds, err := x.s.IMDSEndpoint(id)
	if err != nil {
		t.Fatal(err)
	}
	return id, imds
}

// startVpcnetd runs the built vpcnetd as the agent of instance (its IMDS endpoint given), with
// addresses only (no host networking), fast resync and back-off, and the extra settings.
func startVpcnetd(t *testing.T, x *sim, instance, imds, name string, extra ...string) *nodeAgent {
	t.Helper()
	bin := daemonBin(t)
	dir := keptDir(t, "vpcnetd-"+name)
	d := &nodeAgent{t: t, x: x, instance: instance, metrics: freePort(t), log: filepath.Join(dir, "log")}
	socket := filepath.Join(dir, "run", "vpcnetd.sock")
	// Credentials: with none in the environment, the instance role's from IMDS, as on EC2.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env, "AWS_EC2_ENDPOINT="+x.s.Endpoint(), "AWS_EC2_METADATA_SERVICE_ENDPOINT="+imds, "AWS_REGION="+x.s.Region(),
		"VPCNET_SOCKET="+socket, "VPCNET_STATE_DIR="+filepath.Join(dir, "state"), "VPCNET_CNI_CONF_DIR="+filepath.Join(dir, "net.d"),
		"VPCNET_METRICS_ADDR="+d.metrics, "VPCNET_HOST_NETWORKING=false", "VPCNET_CLUSTER_NAME=drift",
		"IP_COOLDOWN_PERIOD=100ms", "VPCNET_RESYNC_PERIOD=1s", "VPCNET_EC2_MAX_BACKOFF=100ms", "VPCNET_SUBNET_BACKOFF=200ms", "VPCNET_LOG_LEVEL=info")
	d.cmd = startDaemon(t, bin, append(env, extra...), d.log)
	conn, err := agentapi.Dial(socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	d.client = agentapi.NewAgentClient(conn)
	waitFor(t, 60*time.Second, name+" ready", func() bool {
		st, err := d.client.Status(bg, &agentapi.StatusRequest{Version: agentapi.Version})
		return err == nil && st.Ready
	}, func() string { return tail(d.log) })
	return d
}

func (d *nodeAgent) add(id string) (*agentapi.Allocation, error) {
	r, err := d.client.Add(bg, &agentapi.AddRequest{Version: agentapi.Version, Key: key(id), PodNamespace: "default", PodName: id})
	if err != nil {
		return nil, err
	}
	return r.Allocation, nil
}

// mustAdd adds a pod, waiting while the pool grows.
func (d *nodeAgent) mustAdd(id string) *agentapi.Allocation {
	d.t.Helper()
	var al *agentapi.Allocation
	waitFor(d.t, 60*time.Second, "ADD "+id, func() bool {
		var err error
		al, err = d.add(id)
		if status.Code(err) == codes.ResourceExhausted {
			return false
		}
		if err != nil {
			d.t.Fatalf("ADD %s: %v", id, err)
		}
		return true
	}, func() string { return tail(d.log) })
	return al
}

func (d *nodeAgent) del(id string) {
	d.t.Helper()
	if _, err := d.client.Del(bg, &agentapi.DelRequest{Version: agentapi.Version, Key: key(id)}); err != nil {
		d.t.Fatalf("DEL %s: %v", id, err)
	}
}

func (d *nodeAgent) get(path string) string {
	r, err := http.Get("http://" + d.metrics + path)
	if err != nil {
		return err.Error()
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func (d *nodeAgent) status() agent.Status {
	d.t.Helper()
	var st agent.Status
	if err := json.Unmarshal([]byte(d.get("/v1/status")), &st); err != nil {
		d.t.Fatalf("status: %v", err)
	}
	return st
}

func (d *nodeAgent) metric(prefix string) float64 {
	var sum float64
	for _, l := range strings.Split(d.get("/metrics"), "\n") {
		if strings.HasPrefix(l, prefix) && !strings.HasPrefix(l, "#") {
			var v float64
			fmt.Sscanf(l[strings.LastIndexByte(l, ' ')+1:], "%g", &v)
			sum += v
		}
	}
	return sum
}

// eni describes one ENI as EC2 has it now; ok is false once it is deleted.
func (x *sim) eni(t *testing.T, id string) (types.NetworkInterface, bool) {
	t.Helper()
	out, err := x.ec2.DescribeNetworkInterfaces(bg, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("network-interface-id"), Values: []string{id}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.NetworkInterfaces) == 0 {
		return types.NetworkInterface{}, false
	}
	return out.NetworkInterfaces[0], true
}

// addrsOf lists the pod addresses EC2 shows on an ENI (secondary addresses and prefixes').
func addrsOf(ni types.NetworkInterface) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, p := range ni.PrivateIpAddresses {
		if !aws.ToBool(p.Primary) {
			out[netip.MustParseAddr(*p.PrivateIpAddress)] = true
		}
	}
	for _, p := range ni.Ipv4Prefixes {
		for _, a := range (ipam.ENI{Prefixes: []netip.Prefix{netip.MustParsePrefix(*p.Ipv4Prefix)}}).Addrs() {
			out[a] = true
		}
	}
	return out
}

// instanceAddrs is every pod address EC2 shows on the instance's attached ENIs.
func (x *sim) instanceAddrs(t *testing.T, instance string) map[netip.Addr]string {
	t.Helper()
	out, err := x.ec2.DescribeNetworkInterfaces(bg, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{instance}}}})
	if err != nil {
		t.Fatal(err)
	}
	all := map[netip.Addr]string{}
	for _, ni := range out.NetworkInterfaces {
		for a := range addrsOf(ni) {
			all[a] = *ni.NetworkInterfaceId
		}
	}
	return all
}

// TestENIDetachedBehindTheAgent (issue 11 fault 6): an ENI of a node holding pods' addresses
// is force-detached through the EC2 API while re-attaching is refused for a while. The node's
// vpcnetd notices within seconds, names each pod in its log, status and metric, never hands
// out the ENI's addresses, keeps the ENI (and so does a second node's detached-ENI cleanup,
// run with a one-second grace), and re-attaches it at its device index once EC2 allows; the
// second node never gets one of its addresses.
func TestENIDetachedBehindTheAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two vpcnetd")
	}
	// A /26: 59 usable addresses, so the second node soon takes whatever is freed.
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/26", "m5.large")
	a := startVpcnetd(t, x, x.instance, x.imds, "a", "VPCNET_DETACHED_ENI_GRACE=1s")
	// 12 pods: 9 on the primary ENI, 3 on the ENI at device 1, which keeps free addresses too.
	onENI1 := map[string]netip.Addr{}
	var eni1 string
	for i := range 12 {
		al := a.mustAdd(fmt.Sprint("pod", i))
		if al.DeviceIndex == 1 {
			onENI1[fmt.Sprint("pod", i)], eni1 = netip.MustParseAddr(al.Ip), al.EniId
		}
	}
	if len(onENI1) != 3 {
		t.Fatalf("%d pods on device 1, want 3", len(onENI1))
	}
	ni, _ := x.eni(t, eni1)
	eni1Addrs := addrsOf(ni)
	if len(eni1Addrs) <= len(onENI1) {
		t.Fatalf("ENI %s holds %d addresses: none free", eni1, len(eni1Addrs))
	}
	// Make room on the primary ENI: six of its pods go.
	for i := range 6 {
		a.del(fmt.Sprint("pod", i))
	}

	x.s.SetDeny("AttachNetworkInterface", true)
	if _, err := x.ec2.DetachNetworkInterface(bg, &ec2.DetachNetworkInterfaceInput{AttachmentId: ni.Attachment.AttachmentId, Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	detached := time.Now()
	waitFor(t, 60*time.Second, "the three pods reported", func() bool {
		return a.metric("vpcnet_pods_without_cloud_address") == 3
	}, func() string { return a.get("/v1/status") + tail(a.log) })
	t.Logf("noticed %v after the detach", time.Since(detached).Round(time.Millisecond))
	st := a.status()
	if len(st.PodsWithoutCloudAddress) != 3 || !strings.Contains(st.Message, "EC2 no longer assigns") {
		t.Errorf("status %+v", st)
	}
	logged, _ := os.ReadFile(a.log)
	for pod, ip := range onENI1 {
		if !strings.Contains(strings.Join(st.PodsWithoutCloudAddress, " "), "default/"+pod) {
			t.Errorf("status does not name %s", pod)
		}
		if !strings.Contains(string(logged), fmt.Sprintf("pod has no cloud address\" pod=default/%s", pod)) {
			t.Errorf("no log line names %s (%s)", pod, ip)
		}
	}

	// The second node: its sweep runs about every second with a one-second grace, and it fills
	// the subnet's free addresses.
	bID, bIMDS := x.launch(t, "m5.large")
	b := startVpcnetd(t, x, bID, bIMDS, "b", "VPCNET_DETACHED_ENI_GRACE=1s", "VPCNET_DETACHED_ENI_SWEEP=1s", "MINIMUM_IP_TARGET=60", "WARM_IP_TARGET=60")

	// New pods on the first node never get the detached ENI's addresses.
	for i := 12; i < 20; i++ {
		al, err := a.add(fmt.Sprint("pod", i))
		if err != nil {
			if status.Code(err) == codes.ResourceExhausted {
				continue
			}
			t.Fatal(err)
		}
		if ip := netip.MustParseAddr(al.Ip); eni1Addrs[ip] {
			t.Fatalf("pod%d got %s, an address of the detached %s", i, ip, eni1)
		}
	}
	// The second node's cleanup has looked at the detached ENI (DescribeInstances is asked for
	// its owner) and kept it.
	waitFor(t, 60*time.Second, "the second node's cleanup to consider the ENI", func() bool {
		return b.metric(`vpcnet_ec2_calls_total{action="DescribeInstances"}`) >= 2
	}, func() string { return tail(b.log) })
	if _, ok := x.eni(t, eni1); !ok {
		t.Fatalf("the detached ENI %s was deleted while pods use its addresses", eni1)
	}
	for ip := range x.instanceAddrs(t, bID) {
		if eni1Addrs[ip] {
			t.Fatalf("the second node holds %s of the detached ENI", ip)
		}
	}

	x.s.SetDeny("AttachNetworkInterface", false)
	waitFor(t, 60*time.Second, "the ENI re-attached and no pod reported", func() bool {
		ni, ok := x.eni(t, eni1)
		return ok && ni.Attachment != nil && aws.ToString(ni.Attachment.InstanceId) == x.instance &&
			aws.ToInt32(ni.Attachment.DeviceIndex) == 1 && a.metric("vpcnet_pods_without_cloud_address") == 0
	}, func() string { return a.get("/v1/status") + tail(a.log) })
	on := x.instanceAddrs(t, x.instance)
	for pod, ip := range onENI1 {
		if on[ip] != eni1 {
			t.Errorf("%s's %s is on %q, not back on %s", pod, ip, on[ip], eni1)
		}
	}
	for ip := range x.instanceAddrs(t, bID) {
		if eni1Addrs[ip] {
			t.Fatalf("the second node holds %s of the detached ENI", ip)
		}
	}
	if st := a.status(); len(st.PodsWithoutCloudAddress) != 0 {
		t.Errorf("status still names %v", st.PodsWithoutCloudAddress)
	}
}

// TestAddressUnassignedBehindTheAgent (issue 11 fault 6): a pod's address unassigned from its
// ENI through the EC2 API is assigned back; one that another ENI took meanwhile (EC2's
// AllowReassignment) is reported, named in status and metric, and neither handed out nor taken
// back, until the pod's DEL.
func TestAddressUnassignedBehindTheAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs vpcnetd")
	}
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	a := startVpcnetd(t, x, x.instance, x.imds, "a", "WARM_IP_TARGET=3")
	ip0 := netip.MustParseAddr(a.mustAdd("pod0").Ip)
	al1 := a.mustAdd("pod1")
	ip1, eni := netip.MustParseAddr(al1.Ip), al1.EniId
	// The pool back at its target first: an assign it made after the unassign could get the
	// same address back from EC2 by count, which would hide the repair.
	stable := 0
	waitFor(t, 60*time.Second, "the pool settled at its target", func() bool {
		st := a.status()
		if st.Free >= 3 && st.Free+st.Assigned == len(x.instanceAddrs(t, x.instance)) {
			stable++
		} else {
			stable = 0
		}
		return stable >= 3
	}, func() string { return a.get("/v1/status") })

	if _, err := x.ec2.UnassignPrivateIpAddresses(bg, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eni), PrivateIpAddresses: []string{ip0.String()}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "pod0's address assigned back", func() bool {
		logged, _ := os.ReadFile(a.log)
		return x.instanceAddrs(t, x.instance)[ip0] == eni && strings.Contains(string(logged), "assigned pods' addresses back to their ENI")
	}, func() string { return tail(a.log) })
	logged, _ := os.ReadFile(a.log)
	if !strings.Contains(string(logged), "pod has no cloud address\" pod=default/pod0") {
		t.Errorf("pod0 was not named while its address was away:\n%s", tail(a.log))
	}

	// Another ENI takes pod1's address.
	hog := x.hog(t, "")
	if _, err := x.ec2.AssignPrivateIpAddresses(bg, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(hog), PrivateIpAddresses: []string{ip1.String()}, AllowReassignment: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "pod1 reported", func() bool { return a.metric("vpcnet_pods_without_cloud_address") == 1 }, func() string { return a.get("/v1/status") + tail(a.log) })
	waitFor(t, 60*time.Second, "pod1's address given up as taken", func() bool {
		st := a.status()
		return len(st.PodsWithoutCloudAddress) == 1 && strings.Contains(st.PodsWithoutCloudAddress[0], "default/pod1") &&
			strings.Contains(st.PodsWithoutCloudAddress[0], "another interface")
	}, func() string { return a.get("/v1/status") })
	// No ADD gets it, and three resync periods (IMDS comparisons) later it is still the other
	// ENI's.
	for i := 2; i < 8; i++ {
		if got := netip.MustParseAddr(a.mustAdd(fmt.Sprint("pod", i)).Ip); got == ip1 {
			t.Fatalf("pod%d got %s, which another ENI holds", i, got)
		}
	}
	a.waitIMDSReads(3)
	if owner := x.instanceAddrs(t, x.instance)[ip1]; owner != "" {
		t.Fatalf("%s is back on %s: taken from the ENI that had it", ip1, owner)
	}
	a.del("pod1")
	waitFor(t, 60*time.Second, "nothing reported after pod1's DEL", func() bool { return a.metric("vpcnet_pods_without_cloud_address") == 0 })
}

// TestENIDeletedBehindTheAgent (issue 11 fault 6): an ENI holding a pod's address is
// force-detached and deleted through the EC2 API before the agent can re-attach it. The pod is
// reported as such (status, metric) until its DEL, and the agent drops the ENI from its view
// (its slot free for a new ENI) rather than holding it for one that cannot come back.
func TestENIDeletedBehindTheAgent(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	n := startNode(t, x, testConfig(t, x))
	var pod, eni string
	for i := 0; eni == ""; i++ {
		n.mustAdd(fmt.Sprint("pod", i))
		al, err := n.add(fmt.Sprint("pod", i)) // ADD is idempotent: the allocation again
		if err != nil {
			t.Fatal(err)
		}
		if al.DeviceIndex == 1 {
			pod, eni = fmt.Sprint("pod", i), al.EniId
		}
	}
	ni, _ := x.eni(t, eni)
	// No growth meanwhile: EC2 would hand the deleted ENI's addresses, the pod's among them, to
	// the node again by count (the lowest free), which is a case of its own (docs/agent.md,
	// known limits).
	for _, action := range []string{"AttachNetworkInterface", "CreateNetworkInterface", "AssignPrivateIpAddresses"} {
		x.s.SetDeny(action, true)
	}
	if _, err := x.ec2.DetachNetworkInterface(bg, &ec2.DetachNetworkInterfaceInput{AttachmentId: ni.Attachment.AttachmentId, Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := x.ec2.DeleteNetworkInterface(bg, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(eni)}); err != nil {
		t.Fatal(err)
	}
	var st agent.Status
	waitFor(t, 60*time.Second, "the pod reported with its ENI deleted", func() bool {
		if err := json.Unmarshal([]byte(n.get("/v1/status")), &st); err != nil {
			t.Fatal(err)
		}
		return len(st.PodsWithoutCloudAddress) == 1 && strings.Contains(st.PodsWithoutCloudAddress[0], "default/"+pod) &&
			strings.Contains(st.PodsWithoutCloudAddress[0], "deleted outside vpcnet") && n.metric("vpcnet_pods_without_cloud_address") == 1
	}, func() string { return n.get("/v1/status") })
	// It no longer holds a slot: the agent's view has dropped it.
	if strings.Contains(n.get("/v1/enis"), eni) {
		t.Errorf("the deleted %s is still in the agent's view: %s", eni, n.get("/v1/enis"))
	}
	n.del(pod)
	waitFor(t, 60*time.Second, "nothing reported after the pod's DEL", func() bool { return n.metric("vpcnet_pods_without_cloud_address") == 0 })
}
