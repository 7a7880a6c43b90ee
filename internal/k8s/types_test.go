package k8s

import (
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// view is n as the agent reads it: k8s.io/api's JSON decoded into the agent's own Node.
func view(t testing.TB, n *corev1.Node) *Node {
	t.Helper()
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	var out Node
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// The agent's own Node, Pod and Event (types.go) carry the API's JSON names: what k8s.io/api
// writes, the agent reads field for field, and the Event the agent writes is the Event
// k8s.io/api reads, every field set.
func TestTypesMatchTheAPI(t *testing.T) {
	n := node("aws:///us-east-1a/i-0abc", "10.0.1.10", "fd00::a")
	n.ResourceVersion, n.UID = "42", "uid-node"
	n.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
	v := view(t, n)
	if v.Name != nodeName || v.UID != "uid-node" || v.ResourceVersion != "42" || v.Annotations["other"] != "kept" ||
		v.Spec.ProviderID != n.Spec.ProviderID || len(v.Status.Addresses) != 2 ||
		v.Status.Addresses[0] != (NodeAddress{Type: NodeInternalIP, Address: "10.0.1.10"}) || v.Status.Addresses[1].Address != "fd00::a" {
		t.Fatalf("node read as %+v", v)
	}
	if c := v.DeepCopy(); &c.Status.Addresses[0] == &v.Status.Addresses[0] || &c.Annotations == &v.Annotations {
		t.Fatal("DeepCopy shares memory")
	}
	if o, _ := dropManagedFields(v); o.(*Node).ManagedFields != nil {
		t.Fatal("managed fields kept in the cache")
	}

	b, _ := json.Marshal(pod("default", "web"))
	var p Pod
	if err := json.Unmarshal(b, &p); err != nil || p.Namespace != "default" || p.Name != "web" || p.UID != "uid-web" || p.Spec.NodeName != nodeName {
		t.Fatalf("pod read as %+v (%v)", p, err)
	}

	at := metav1.NewTime(time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC))
	e := Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web.1", Namespace: "default", ResourceVersion: "7"},
		InvolvedObject: ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "uid-web", APIVersion: "v1", ResourceVersion: "3", FieldPath: "spec"},
		Reason:         ReasonNoFreeAddress, Message: "full", Source: EventSource{Component: "vpcnetd", Host: nodeName},
		FirstTimestamp: at, LastTimestamp: metav1.NewTime(at.Add(time.Minute)), Count: 3, Type: EventTypeWarning,
		ReportingController: "vpcnetd", ReportingInstance: nodeName,
	}
	b, _ = json.Marshal(&e)
	var api corev1.Event
	if err := json.Unmarshal(b, &api); err != nil {
		t.Fatal(err)
	}
	want := corev1.Event{
		ObjectMeta:     e.ObjectMeta,
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "uid-web", APIVersion: "v1", ResourceVersion: "3", FieldPath: "spec"},
		Reason:         e.Reason, Message: e.Message, Source: corev1.EventSource{Component: "vpcnetd", Host: nodeName},
		FirstTimestamp: e.FirstTimestamp, LastTimestamp: e.LastTimestamp, Count: 3, Type: corev1.EventTypeWarning,
		ReportingController: "vpcnetd", ReportingInstance: nodeName,
	}
	wb, _ := json.Marshal(&want)
	if ab, _ := json.Marshal(&api); string(ab) != string(wb) {
		t.Fatalf("the agent's event reads as\n%s\nwant\n%s", ab, wb)
	}
}
