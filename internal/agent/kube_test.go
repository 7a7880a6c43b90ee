package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/k8s"
	"github.com/vpcnet/vpcnet/internal/k8s/k8stest"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// The agent with its Kubernetes side (issue 14 item 4), against vpcsim and an API server over
// client-go's fake clientset (k8stest): the Node (named by its providerID as this vpcsim instance) gets the capacity
// annotations, and a pod whose ADD finds the node full gets a Warning event saying so.
func TestAgentPublishesCapacityAndTellsThePodWhyNoAddress(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	cs := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-1-10.ec2.internal"}, Spec: corev1.NodeSpec{ProviderID: "aws:///us-east-1a/" + x.instance}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pod-c", UID: "uid-c"}, Spec: corev1.PodSpec{NodeName: "ip-10-0-1-10.ec2.internal"}},
	)
	k8s.MinPatchInterval = 10 * time.Millisecond
	rc, err := k8s.NewRESTClient(k8stest.Serve(t, cs))
	if err != nil {
		t.Fatal(err)
	}
	kc, err := k8s.New(rc, "ip-10-0-1-10.ec2.internal", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() { kc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	cfg := testConfig(t, x)
	cfg.Pool.MaxPods = 2
	cfg.Kube = kc
	n := startNode(t, x, cfg)
	annotations := func() map[string]string {
		node, err := cs.CoreV1().Nodes().Get(bg, "ip-10-0-1-10.ec2.internal", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return node.Annotations
	}
	waitFor(t, 60*time.Second, "the capacity annotations", func() bool {
		a := annotations()
		return a[k8s.AnnotationMaxPods] == "2" && a[k8s.AnnotationFree] == "2" && a[k8s.AnnotationAssigned] == "0"
	}, func() string { return fmtMap(annotations()) })

	n.mustAdd("pod-a")
	n.mustAdd("pod-b")
	_, err = n.client.Add(bg, addRequest("pod-c"))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third ADD on a node of 2 pods: %v, want ResourceExhausted", err)
	}
	var ev []corev1.Event
	waitFor(t, 60*time.Second, "the pod's event", func() bool {
		l, err := cs.CoreV1().Events("default").List(bg, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ev = l.Items
		return len(ev) > 0
	})
	e := ev[0]
	if e.Reason != k8s.ReasonNoFreeAddress || e.InvolvedObject.UID != "uid-c" || e.Type != corev1.EventTypeWarning ||
		!strings.Contains(e.Message, agent.ReasonMaxPods) || !strings.Contains(e.Message, "MAX_PODS=2") {
		t.Fatalf("event %+v", e)
	}
	waitFor(t, 60*time.Second, "the annotations to say full", func() bool {
		a := annotations()
		return a[k8s.AnnotationAssigned] == "2" && a[k8s.AnnotationReason] == agent.ReasonMaxPods
	}, func() string { return fmtMap(annotations()) })
}

func addRequest(pod string) *agentapi.AddRequest {
	return &agentapi.AddRequest{Version: agentapi.Version, Key: key(pod), PodNamespace: "default", PodName: pod}
}

func fmtMap(m map[string]string) string { return fmt.Sprint(m) }
