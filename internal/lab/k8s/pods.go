package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/lab"
)

// IsCluster reports whether the named lab runs the Kubernetes runtime.
func IsCluster(labName string) bool {
	cfg, err := lab.ReadConfig(lab.PathsFor(labName))
	return err == nil && cfg.Runtime == Name
}

// PodManifest is a Pod running the lab's test image (vtool serve on :8080), pinned to
// nodeName when it is not "" (else the scheduler places it), as JSON.
func PodManifest(name, nodeName string) []byte {
	spec := map[string]any{
		"terminationGracePeriodSeconds": 1,
		"containers": []any{map[string]any{"name": "main", "image": TestImage, "imagePullPolicy": "Never",
			"args": []string{"serve", ":8080"}}},
	}
	if nodeName != "" {
		spec["nodeName"] = nodeName
	}
	b, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "labels": map[string]string{"app.kubernetes.io/name": "lab-pod"}},
		"spec":     spec})
	return b
}

// RunPod creates a Pod through the API (on the given node: a name, index or instance ID of
// `lab status`; "" lets the scheduler choose) and waits until it runs with an address.
func RunPod(ctx context.Context, labName, name, node string, progress func(string)) (lab.PodInfo, error) {
	nodeName := ""
	if node != "" {
		c, err := lab.NewClient(labName)
		if err != nil {
			return lab.PodInfo{}, err
		}
		st, err := c.Status(ctx)
		if err != nil {
			return lab.PodInfo{}, err
		}
		n, err := lab.FindNode(st, node)
		if err != nil {
			return lab.PodInfo{}, err
		}
		nodeName = n.Name
	}
	cmd := Kubectl(ctx, labName, "create", "-f", "-")
	cmd.Stdin = strings.NewReader(string(PodManifest(name, nodeName)))
	if out, err := cmd.CombinedOutput(); err != nil {
		return lab.PodInfo{}, fmt.Errorf("create pod %s: %s", name, strings.TrimSpace(string(out)))
	}
	progress(fmt.Sprintf("pod %s created; waiting for it to run", name))
	deadline := time.Now().Add(2 * time.Minute)
	phase := "unknown"
	for {
		pods, err := Pods(ctx, labName)
		if err == nil {
			for _, p := range pods {
				if p.Name != name {
					continue
				}
				if phase = p.phase; p.IP.IsValid() && phase == "Running" {
					return p.PodInfo, nil
				}
			}
		}
		if time.Now().After(deadline) {
			// One line: the reason, not the whole `kubectl describe` (that stays one
			// command away).
			why := "phase " + phase + ", no warning event"
			out, err := Kubectl(ctx, labName, "get", "events", "-o", "json",
				"--field-selector", "involvedObject.kind=Pod,involvedObject.name="+name).Output()
			if err == nil {
				if w, err := LastWarning(out); err == nil && w != "" {
					why = "phase " + phase + ", last warning " + w
				}
			}
			return lab.PodInfo{}, fmt.Errorf("pod %s not running after 2 min (%s); details: vpcnet lab kubectl --name %s -- describe pod %s", name, why, labName, name)
		}
		select {
		case <-ctx.Done():
			return lab.PodInfo{}, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// RemovePod deletes a Pod through the API and waits until it is gone (the runtime has run
// CNI DEL by then).
func RemovePod(ctx context.Context, labName, name string) error {
	if out, err := Kubectl(ctx, labName, "delete", "pod", name, "--wait=true").CombinedOutput(); err != nil {
		return fmt.Errorf("delete pod %s: %s", name, strings.TrimSpace(string(out)))
	}
	return nil
}

type clusterPod struct {
	lab.PodInfo
	phase string
}

// Pods lists the default namespace's pods as the lab shows pods.
func Pods(ctx context.Context, labName string) ([]clusterPod, error) {
	out, err := Kubectl(ctx, labName, "get", "pods", "-o", "json").Output()
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
			Spec     struct{ NodeName string }
			Status   struct{ Phase, PodIP string }
		}
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, err
	}
	var pods []clusterPod
	for _, it := range list.Items {
		p := clusterPod{PodInfo: lab.PodInfo{Name: it.Metadata.Name, Node: it.Spec.NodeName}, phase: it.Status.Phase}
		p.IP, _ = netip.ParseAddr(it.Status.PodIP)
		pods = append(pods, p)
	}
	return pods, nil
}

// PodInfos is Pods without the phases.
func PodInfos(ctx context.Context, labName string) ([]lab.PodInfo, error) {
	pods, err := Pods(ctx, labName)
	out := make([]lab.PodInfo, len(pods))
	for i, p := range pods {
		out[i] = p.PodInfo
	}
	return out, err
}

// podList is the part of a `kubectl get pods -o json` answer the lab reads.
type podList struct {
	Items []struct {
		Metadata struct{ Namespace, Name string }
		Spec     struct {
			NodeName    string
			HostNetwork bool
		}
		Status struct {
			Phase, PodIP string
			// ContainerStatuses[0].ContainerID is "containerd://<id>".
			ContainerStatuses []struct{ ContainerID string }
		}
	}
}

// NetworkPods reads a `kubectl get pods -A -o json` answer and returns the pods that hold a
// pod-network address (what the CNI plugin gave them): a podIP, not hostNetwork (those carry
// their node's primary address), not Succeeded or Failed (their sandbox is gone). Pods outside
// the namespace "default" are named NAMESPACE/NAME. NS (a bare pod's netns) stays "".
func NetworkPods(kubectlJSON []byte) ([]lab.PodInfo, error) {
	var list podList
	if err := json.Unmarshal(kubectlJSON, &list); err != nil {
		return nil, fmt.Errorf("pod list: %w", err)
	}
	var out []lab.PodInfo
	for _, it := range list.Items {
		ip, err := netip.ParseAddr(it.Status.PodIP)
		if err != nil || it.Spec.HostNetwork || it.Status.Phase == "Succeeded" || it.Status.Phase == "Failed" {
			continue
		}
		name := it.Metadata.Name
		if it.Metadata.Namespace != "" && it.Metadata.Namespace != "default" {
			name = it.Metadata.Namespace + "/" + name
		}
		p := lab.PodInfo{Name: name, Node: it.Spec.NodeName, IP: ip}
		if len(it.Status.ContainerStatuses) > 0 {
			_, p.ContainerID, _ = strings.Cut(it.Status.ContainerStatuses[0].ContainerID, "://")
		}
		out = append(out, p)
	}
	return out, nil
}

// WithPods returns st with pods as its pods, each node's Pods listing those on it by name:
// a cluster's status, whose controller knows no bare pods.
func WithPods(st lab.Status, pods []lab.PodInfo) lab.Status {
	st.Pods = pods
	nodes := make([]lab.NodeInfo, len(st.Nodes))
	for i, n := range st.Nodes {
		n.Pods = nil
		for _, p := range pods {
			if p.Node == n.Name {
				n.Pods = append(n.Pods, p.Name)
			}
		}
		nodes[i] = n
	}
	st.Nodes = nodes
	return st
}

// ClusterStatus is the lab's status with the cluster's pods (all namespaces) from the API.
func ClusterStatus(ctx context.Context, labName string, st lab.Status) (lab.Status, error) {
	out, err := Kubectl(ctx, labName, "get", "pods", "--all-namespaces", "-o", "json").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%v: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return st, fmt.Errorf("list the cluster's pods: %w", err)
	}
	pods, err := NetworkPods(out)
	if err != nil {
		return st, err
	}
	return WithPods(st, pods), nil
}

// eventList is the part of a `kubectl get events -o json` answer LastWarning reads.
type eventList struct {
	Items []struct {
		Type, Reason, Message string
		LastTimestamp         time.Time
		EventTime             time.Time
		Series                *struct{ LastObservedTime time.Time }
		Metadata              struct{ CreationTimestamp time.Time }
	}
}

// LastWarning reads a `kubectl get events -o json` answer (core/v1 Events) and returns its most
// recent Warning as one line, "Reason: message" with the message's whitespace folded, or "" when
// it holds none. An event's time is its series' last observation, else lastTimestamp, else
// eventTime, else its creation. Malformed JSON is an error.
func LastWarning(eventsJSON []byte) (string, error) {
	var list eventList
	if err := json.Unmarshal(eventsJSON, &list); err != nil {
		return "", fmt.Errorf("event list: %w", err)
	}
	var (
		best     string
		bestTime time.Time
		found    bool
	)
	for _, e := range list.Items {
		if e.Type != "Warning" {
			continue
		}
		at := e.Metadata.CreationTimestamp
		for _, t := range []time.Time{e.EventTime, e.LastTimestamp} {
			if !t.IsZero() {
				at = t
			}
		}
		if e.Series != nil && !e.Series.LastObservedTime.IsZero() {
			at = e.Series.LastObservedTime
		}
		if !found || !at.Before(bestTime) {
			best, bestTime, found = e.Reason+": "+strings.Join(strings.Fields(e.Message), " "), at, true
		}
	}
	return best, nil
}
