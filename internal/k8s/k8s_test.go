package k8s

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/k8s/k8stest"
)

const nodeName = "ip-10-0-1-10.ec2.internal"

var (
	id   = cloud.Identity{InstanceID: "i-0abc", PrimaryIP: netip.MustParseAddr("10.0.1.10"), SubnetID: "subnet-1"}
	full = agent.Status{Ready: true, Reason: agent.ReasonMaxPods, Message: "full: pods hold all 17 pod addresses", Free: 0, Assigned: 17, MaxPods: 17}
)

func node(providerID string, internalIPs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName, Annotations: map[string]string{"other": "kept"}}, Spec: corev1.NodeSpec{ProviderID: providerID}}
	for _, ip := range internalIPs {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	return n
}

func pod(ns, name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)}, Spec: corev1.PodSpec{NodeName: nodeName}}
}

// start runs a Client for nodeName against an API server (k8stest) holding objs; Options in
// objs are passed to New.
func start(t *testing.T, objs ...any) (*Client, *fake.Clientset) {
	t.Helper()
	var ros []any
	ros = append(ros, objs...)
	cs := fake.NewClientset()
	var opts []Option
	for _, o := range ros {
		var err error
		switch o := o.(type) {
		case Option:
			opts = append(opts, o)
		case *corev1.Node:
			_, err = cs.CoreV1().Nodes().Create(context.Background(), o, metav1.CreateOptions{})
		case *corev1.Pod:
			_, err = cs.CoreV1().Pods(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	MinPatchInterval = 10 * time.Millisecond
	rc, err := NewRESTClient(k8stest.Serve(t, cs))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(rc, nodeName, slog.New(slog.NewTextHandler(io.Discard, nil)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the informers to sync", func() bool {
		_, err := c.getNode()
		return err == nil
	})
	return c, cs
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func patches(cs *fake.Clientset) int {
	n := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "patch" && a.GetResource().Resource == "nodes" {
			n++
		}
	}
	return n
}

func annotations(t *testing.T, cs *fake.Clientset) map[string]string {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n.Annotations
}

func events(t *testing.T, cs *fake.Clientset, ns, reason string) []corev1.Event {
	t.Helper()
	l, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Event
	for _, e := range l.Items {
		if e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		n      *corev1.Node
		ok     bool
		decide bool
	}{
		{node("aws:///us-east-1a/i-0abc"), true, true},
		{node("aws:///us-east-1a/i-0abc", "10.9.9.9"), true, true}, // providerID wins
		{node("aws:///us-east-1a/i-0abcd", "10.0.1.10"), false, true},
		{node("gce://p/z/i-0abc"), false, true},
		{node("", "10.0.1.10"), true, true},
		{node("", "10.0.1.11", "fd00::1"), false, true},
		{node(""), false, false},
	} {
		ok, why := matches(view(t, tc.n), id)
		if ok != tc.ok || (why != "") != tc.decide {
			t.Errorf("providerID %q addresses %v: ok=%v why=%q; want ok=%v decided=%v", tc.n.Spec.ProviderID, tc.n.Status.Addresses, ok, why, tc.ok, tc.decide)
		}
	}
}

func TestNewRefusesABadNodeName(t *testing.T) {
	for _, n := range []string{"", "Upper", "a_b", strings.Repeat("a", 254)} {
		if _, err := New(nil, n, slog.Default()); err == nil || !strings.Contains(err.Error(), "NODE_NAME") {
			t.Errorf("New(%q) = %v, want an error naming NODE_NAME", n, err)
		}
	}
}

// Nothing is written before the Node is known to be this instance; then the annotations follow
// the status, patched once per change, and a refused ADD becomes an event on its pod.
func TestNodeCheckedThenAnnotatedAndPodsToldWhy(t *testing.T) {
	c, cs := start(t, node("aws:///us-east-1a/i-0abc"), pod("default", "web"))
	c.Status(full)
	c.AddRefused("default", "web", full)
	if c.sync(context.Background()) || patches(cs) != 0 {
		t.Fatalf("patched the node before its identity was checked (%d patches)", patches(cs))
	}
	c.Started(id, nil)
	waitFor(t, "the annotations", func() bool {
		a := annotations(t, cs)
		return a[AnnotationMaxPods] == "17" && a[AnnotationFree] == "0" && a[AnnotationAssigned] == "17" && a[AnnotationReason] == agent.ReasonMaxPods
	})
	if a := annotations(t, cs); a["other"] != "kept" {
		t.Fatalf("the patch dropped another annotation: %v", a)
	}
	if len(events(t, cs, "default", ReasonNoFreeAddress)) != 0 {
		t.Fatalf("an event was recorded for an ADD refused before the node was checked")
	}
	// The test's own sync calls below run beside Run's: once the informer has the patched Node,
	// neither patches it again, whether or not Run's patch call has returned yet.
	waitFor(t, "the informer to see the annotations", func() bool {
		n, err := c.getNode()
		return err == nil && n.Annotations[AnnotationMaxPods] == "17"
	})
	n := patches(cs)
	c.Status(full) // unchanged: nothing to patch
	waitFor(t, "the informer to see the patch", func() bool { return !c.sync(context.Background()) })
	if patches(cs) != n {
		t.Fatalf("an unchanged status patched the node again (%d -> %d patches)", n, patches(cs))
	}

	c.AddRefused("default", "web", full)
	var ev []corev1.Event
	waitFor(t, "the pod's event", func() bool { ev = events(t, cs, "default", ReasonNoFreeAddress); return len(ev) > 0 })
	e := ev[0]
	if e.Type != corev1.EventTypeWarning || e.InvolvedObject.Kind != "Pod" || e.InvolvedObject.Name != "web" || e.InvolvedObject.UID != "uid-web" ||
		!strings.Contains(e.Message, full.Message) || !strings.Contains(e.Message, nodeName) || e.Source.Component != "vpcnetd" {
		t.Fatalf("event %+v", e)
	}

	exhausted := agent.Status{Ready: true, Reason: agent.ReasonSubnetExhausted, Message: "subnet subnet-1 (10.0.1.0/24) has no free addresses: grow it or add one", Assigned: 3, MaxPods: 17}
	c.Status(exhausted)
	c.Status(exhausted) // still exhausted: one event, not two
	waitFor(t, "the node's event and annotation", func() bool {
		ev := events(t, cs, "default", ReasonSubnetExhausted)
		return len(ev) == 1 && ev[0].InvolvedObject.Kind == "Node" && ev[0].InvolvedObject.Name == nodeName &&
			strings.Contains(ev[0].Message, "subnet-1") && annotations(t, cs)[AnnotationReason] == agent.ReasonSubnetExhausted
	})
	if ev := events(t, cs, "default", ReasonSubnetExhausted); ev[0].Count > 1 {
		t.Fatalf("a status that stayed exhausted was recorded %d times", ev[0].Count)
	}
}

// A NODE_NAME naming another instance's Node turns the package off: no patch, no event.
func TestAnotherInstancesNodeIsNeverWritten(t *testing.T) {
	c, cs := start(t, node("", "10.0.1.99"), pod("default", "web"))
	c.Started(id, nil)
	c.Status(full)
	waitFor(t, "the check to fail", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.state == "disabled"
	})
	c.AddRefused("default", "web", full)
	if c.sync(context.Background()) || patches(cs) != 0 {
		t.Fatalf("patched another instance's node")
	}
	for _, a := range cs.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "events" {
			t.Fatalf("recorded an event: %v", a)
		}
	}
}

// FuzzMatches: any providerID and address the API server may hold; a match must really name
// this instance (the providerID's last segment) or its primary IP.
func FuzzMatches(f *testing.F) {
	for _, s := range [][2]string{{"aws:///us-east-1a/i-0abc", ""}, {"", "10.0.1.10"}, {"aws://i-0abc", "x"}, {"aws:///", "::ffff:10.0.1.10"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, providerID, ip string) {
		n := node(providerID, ip)
		ok, why := matches(view(t, n), id)
		if !ok {
			return
		}
		if providerID != "" {
			if !strings.HasPrefix(providerID, "aws://") || !strings.HasSuffix(providerID, "/"+id.InstanceID) {
				t.Fatalf("providerID %q matched %s (%s)", providerID, id.InstanceID, why)
			}
			return
		}
		if a, err := netip.ParseAddr(ip); err != nil || a != id.PrimaryIP {
			t.Fatalf("address %q matched %s (%s)", ip, id.PrimaryIP, why)
		}
	})
}

// An event repeated after the API server lost the first (deleted, or expired after its TTL) is
// created again, count kept, rather than lost on the failed patch.
func TestRepeatedEventRecreatedWhenGone(t *testing.T) {
	c, cs := start(t, node("aws:///us-east-1a/i-0abc"), pod("default", "web"))
	c.Started(id, nil)
	waitFor(t, "the node check", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.state == "verified"
	})
	c.AddRefused("default", "web", full)
	var ev []corev1.Event
	waitFor(t, "the pod's event", func() bool { ev = events(t, cs, "default", ReasonNoFreeAddress); return len(ev) == 1 })
	if err := cs.CoreV1().Events("default").Delete(context.Background(), ev[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c.AddRefused("default", "web", full)
	waitFor(t, "the event again", func() bool {
		ev = events(t, cs, "default", ReasonNoFreeAddress)
		return len(ev) == 1 && ev[0].Count == 2
	})
}
