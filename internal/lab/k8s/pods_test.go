package k8s_test

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s"
)

// TestStatusCountsClusterPods: on a cluster, `lab status` and `lab describe node` count the
// Kubernetes pods that hold a pod-network address (issue 13 item 4): a pod with an address in
// any namespace counts on its node; a pod still waiting for one, a host-network pod (the
// agent's, with the node's own address) and a finished pod do not.
func TestStatusCountsClusterPods(t *testing.T) {
	answer := []byte(`{"items": [
	  {"metadata": {"namespace": "default", "name": "web-1"}, "spec": {"nodeName": "ip-10-10-1-4.ec2.internal"},
	   "status": {"phase": "Running", "podIP": "10.10.1.6", "containerStatuses": [{"containerID": "containerd://abc"}]}},
	  {"metadata": {"namespace": "kube-system", "name": "coredns-x"}, "spec": {"nodeName": "ip-10-10-1-5.ec2.internal"},
	   "status": {"phase": "Running", "podIP": "10.10.1.9"}},
	  {"metadata": {"namespace": "kube-system", "name": "vpcnet-node-a"}, "spec": {"nodeName": "ip-10-10-1-4.ec2.internal", "hostNetwork": true},
	   "status": {"phase": "Running", "podIP": "10.10.1.4"}},
	  {"metadata": {"namespace": "default", "name": "dry-1"}, "spec": {"nodeName": "ip-10-10-1-4.ec2.internal"},
	   "status": {"phase": "Pending"}},
	  {"metadata": {"namespace": "default", "name": "job-1"}, "spec": {"nodeName": "ip-10-10-1-5.ec2.internal"},
	   "status": {"phase": "Succeeded", "podIP": "10.10.1.10"}}
	]}`)
	pods, err := k8s.NetworkPods(answer)
	if err != nil {
		t.Fatal(err)
	}
	want := []lab.PodInfo{
		{Name: "web-1", Node: "ip-10-10-1-4.ec2.internal", IP: netip.MustParseAddr("10.10.1.6"), ContainerID: "abc"},
		{Name: "kube-system/coredns-x", Node: "ip-10-10-1-5.ec2.internal", IP: netip.MustParseAddr("10.10.1.9")},
	}
	if !reflect.DeepEqual(pods, want) {
		t.Fatalf("pods %+v, want %+v", pods, want)
	}
	st := lab.Status{Nodes: []lab.NodeInfo{
		{Name: "ip-10-10-1-4.ec2.internal", Pods: []string{"stale"}},
		{Name: "ip-10-10-1-5.ec2.internal"},
		{Name: "ip-10-10-1-28.ec2.internal"},
	}}
	got := k8s.WithPods(st, pods)
	if len(got.Pods) != 2 {
		t.Errorf("status pods %+v, want the 2 with an address", got.Pods)
	}
	for i, w := range [][]string{{"web-1"}, {"kube-system/coredns-x"}, nil} {
		if !reflect.DeepEqual(got.Nodes[i].Pods, w) {
			t.Errorf("node %s pods %v, want %v", got.Nodes[i].Name, got.Nodes[i].Pods, w)
		}
	}
	if st.Nodes[0].Pods[0] != "stale" {
		t.Errorf("WithPods changed its argument's nodes")
	}
	if _, err := k8s.NetworkPods([]byte("Error from server")); err == nil {
		t.Errorf("a non-JSON answer was accepted")
	}
}

// A failed `lab pod run` says why in one line: the pod's most recent Warning event (by its last
// observation), its message folded onto one line; Normal events and older warnings do not count.
func TestLastWarningIsOneLine(t *testing.T) {
	answer := []byte(`{"apiVersion": "v1", "kind": "List", "items": [
	  {"type": "Warning", "reason": "FailedCreatePodSandBox", "lastTimestamp": "2026-11-30T07:00:05Z",
	   "message": "Failed to create pod sandbox: plugin type=\"vpcnet-cni\" failed (add): old"},
	  {"type": "Warning", "reason": "FailedCreatePodSandBox", "lastTimestamp": "2026-11-30T07:00:40Z",
	   "message": "Failed to create pod sandbox: rpc error:\n  code = Unknown desc = failed to setup network:\n\tno free address: subnet-1 (10.10.1.0/28) is exhausted"},
	  {"type": "Warning", "reason": "Older", "eventTime": "2026-11-30T07:00:10.000000Z"},
	  {"type": "Normal", "reason": "Scheduled", "lastTimestamp": "2026-11-30T07:01:00Z", "message": "Successfully assigned"}
	]}`)
	got, err := k8s.LastWarning(answer)
	want := "FailedCreatePodSandBox: Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network: no free address: subnet-1 (10.10.1.0/28) is exhausted"
	if err != nil || got != want {
		t.Errorf("LastWarning = %q, %v\nwant %q", got, err, want)
	}
	if got, err := k8s.LastWarning([]byte(`{"items": [{"type": "Normal", "reason": "Pulled"}]}`)); err != nil || got != "" {
		t.Errorf("no warning: %q, %v; want \"\"", got, err)
	}
	if _, err := k8s.LastWarning([]byte(`{"items": [`)); err == nil {
		t.Error("malformed JSON: no error")
	}
}

func FuzzLastWarning(f *testing.F) {
	f.Add([]byte(`{"items": [{"type": "Warning", "reason": "R", "message": "a\nb", "lastTimestamp": "2026-11-30T07:00:05Z"}]}`))
	f.Add([]byte(`{"items": [{"type": "Warning", "series": {"lastObservedTime": "2026-11-30T07:00:05.000000Z"}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := k8s.LastWarning(b)
		if err == nil && strings.ContainsAny(s, "\n\r\t") {
			t.Errorf("LastWarning(%q) = %q: not one line", b, s)
		}
	})
}
