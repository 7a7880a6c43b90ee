package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s"
)

// podStartSLO is Kubernetes' pod start-up SLO: p99 of create-to-running, images present,
// under 5 s (sig-scalability's "Pod startup latency" SLO).
const podStartSLO = 5 * time.Second

// refCNIConf is the reference CNI's conflist: ptp + host-local from the machine's CNI plugins
// (/usr/lib/cni), one /24 per node out of 10.244.0.0/16 (outside the lab's VPC, so a pod's
// address says which CNI gave it). Its file name sorts before vpcnet's 10-vpcnet.conflist, so
// containerd (max_conf_num 1) uses it while it is there.
const refCNIConfName = "00-bench-ptp.conflist"

// refCNIDir holds the reference plugins.
const refCNIDir = RefPluginDir

// runK8s runs a Deployment of N pods over 3 nodes of a Kubernetes lab, first with vpcnet as
// the network, then with the reference CNI installed the same way (plugin binary in the node's
// /opt/cni/bin, conflist in its /etc/cni/net.d), and compares the time from create to every
// pod Running and each pod's create-to-Running (p50, p99; the SLO is the floor for p99).
func runK8s(ctx context.Context, r *runner) error {
	n := 100
	if r.opts.Short {
		n = 9
	}
	// EC2-like latencies (the scale-out's) for every part: the pool grows on the pods' path as
	// it would in a cloud; cooldown and release delay scaled as the churn scenario's.
	l, err := r.up(ctx, labSpec{suffix: "k", instanceType: "m5.xlarge", nodes: 3, subnet: mustPrefix("10.10.0.0/20"), runtime: k8s.Name,
		latency: scaleLatency, agent: churnTimers()})
	if err != nil {
		return err
	}
	cs, err := kubeClient(l.name)
	if err != nil {
		return err
	}
	nodes, err := l.nodes(ctx)
	if err != nil {
		return err
	}
	// Rounds in the order vpcnet, reference (short) or vpcnet, reference, reference, vpcnet
	// (full), so neither CNI always runs second (after the other's pods were torn down).
	order := []bool{false, true}
	if !r.opts.Short {
		order = append(order, true, false)
	}
	defer removeRefCNI(l.name, nodes)
	runs := map[bool][]*startRun{}
	for i, ref := range order {
		cni, want := "vpcnet", l.cfg.Subnets[0]
		if ref {
			cni, want = "ptp + host-local", netip.MustParsePrefix("10.244.0.0/16")
			if err := installRefCNI(l.name, nodes); err != nil {
				return err
			}
		} else {
			removeRefCNI(l.name, nodes)
		}
		r.progress(fmt.Sprintf("k8s: round %d: Deployment of %d pods with %s", i+1, n, cni))
		run, err := deploymentStart(ctx, cs, fmt.Sprintf("start-%d", i+1), n, want)
		if err != nil {
			return fmt.Errorf("%s: %w", cni, err)
		}
		runs[ref] = append(runs[ref], run)
		if err := waitTornDown(ctx, l.name, nodes, ref); err != nil {
			return err
		}
	}
	vpc, ref := merge(runs[false]), merge(runs[true])
	refName := "ptp + host-local"
	slo := &Target{OnValue: true, Op: "<", Limit: float64(podStartSLO / time.Millisecond)}
	pv, pr := Millis(vpc.perPod), Millis(ref.perPod)
	r.add(
		NewRow("k8s", fmt.Sprintf("Deployment of %d pods on 3 nodes: create to all Running (median of rounds)", n), "ms", ms(vpc.all), refName, ms(ref.all), nil),
		NewRow("k8s", "pod create to Running, p50", "ms", Percentile(pv, 50), refName, Percentile(pr, 50), nil),
		NewRow("k8s", "pod create to Running, p99 (SLO < 5 s)", "ms", Percentile(pv, 99), refName, Percentile(pr, 99), slo),
	)
	r.note("k8s: a Deployment of %d pods (vtool, image present, imagePullPolicy Never) on 3 m5.xlarge nodes of one lab cluster, vpcsim latencies %s; "+
		"per pod, create is the first watch event and Running the first event with phase Running, both on this machine's clock; "+
		"the reference CNI (ptp + host-local from %s) on the same cluster, its conflist sorting before vpcnet's; rounds %s; percentiles over the pods of all rounds of a CNI", n, latencies(), refCNIDir, roundOrder(order))
	if err := k8sChurnRows(ctx, r, l.name, cs, nodes, l.cfg.Subnets[0]); err != nil {
		return err
	}
	return k8sScaleRows(ctx, r, l, cs, nodes)
}

// k8sChurnRows plays the churn trace through the API with vpcnet and then with the reference
// CNI, and adds the churn rows: pod start-up p99 against the reference and the SLO,
// utilisation and EC2 calls per pod (vpcnet only: the reference holds no cloud addresses).
func k8sChurnRows(ctx context.Context, r *runner, labName string, cs *kubernetes.Clientset, nodes []lab.NodeInfo, vpc netip.Prefix) error {
	tr := ChurnTraces(r.opts.Short)[0]
	trace := Trace(tr.Spec)
	removeRefCNI(labName, nodes)
	r.progress(fmt.Sprintf("k8s: churn trace (%d events over %s) through the API with vpcnet", len(trace), tr.Spec.Duration))
	ours, err := playTraceK8s(ctx, cs, nodes, trace, "v", vpc, true)
	if err != nil {
		return fmt.Errorf("churn through the API, vpcnet: %w", err)
	}
	if err := waitTornDown(ctx, labName, nodes, false); err != nil {
		return err
	}
	if err := installRefCNI(labName, nodes); err != nil {
		return err
	}
	r.progress("k8s: the same churn trace with ptp + host-local")
	ref, err := playTraceK8s(ctx, cs, nodes, trace, "r", netip.MustParsePrefix("10.244.0.0/16"), false)
	if err == nil {
		err = waitTornDown(ctx, labName, nodes, true)
	}
	removeRefCNI(labName, nodes)
	if err != nil {
		return fmt.Errorf("churn through the API, ptp + host-local: %w", err)
	}
	refName := "ptp + host-local"
	slo := &Target{OnValue: true, Op: "<", Limit: float64(podStartSLO / time.Millisecond)}
	r.add(
		NewRow("k8s", "churn through the API: pod create to Running, p50", "ms", Percentile(Millis(ours.startUp), 50), refName, Percentile(Millis(ref.startUp), 50), nil),
		NewRow("k8s", "churn through the API: pod create to Running, p99 (SLO < 5 s)", "ms", Percentile(Millis(ours.startUp), 99), refName, Percentile(Millis(ref.startUp), 99), slo),
		NewRow("k8s", "churn through the API: utilisation", "%", ours.utilisation, NoReference, 0, nil),
		NewRow("k8s", "EC2 calls per pod, churn through the API", "calls", Ratio(ours.calls, float64(ours.starts)), NoReference, 0, nil),
	)
	r.note("k8s churn: the churn scenario's trace (seed %d, %d pod starts over %s, 3 nodes, exponential lives of mean %s) played as pod creates (spec.nodeName the trace's node) and deletes (grace 0, once the pod has been Running) through the API server, so kubelet's sandbox creation, retries and garbage collection are in the numbers; "+
		"IP_COOLDOWN_PERIOD=%s, VPCNET_POOL_RELEASE_DELAY=%s, VPCNET_WARM_ENI_RELEASE_DELAY=%s as in the churn scenario; utilisation is ∫pods dt / ∫pod addresses held dt from the agents' /v1/enis every 250 ms; EC2 calls from vpcnet_ec2_calls_total (%s); FailedCreatePodSandBox events: vpcnet %d, reference %d",
		tr.Spec.Seed, ours.starts, tr.Spec.Duration, tr.Spec.MeanLife, churnCooldown, churnReleaseDelay, churnWarmENIReleaseDelay, byAction(ours.byAction), ours.sandboxFail, ref.sandboxFail)
	return nil
}

// k8sScaleRows adds a node to the cluster while a Deployment's pods wait for it (every other
// node cordoned) and adds the scale-out rows against the cloud latency on the critical path
// of the EC2 calls made for that node.
func k8sScaleRows(ctx context.Context, r *runner, l *benchLab, cs *kubernetes.Clientset, nodes []lab.NodeInfo) error {
	n, itype := 30, "m5.xlarge"
	if r.opts.Short {
		n = 5
	}
	r.progress(fmt.Sprintf("k8s: scale-out: node add with a Deployment of %d pods waiting", n))
	m, err := scaleOutK8s(ctx, l, cs, nodes, itype, n)
	if err != nil {
		return fmt.Errorf("scale-out through Kubernetes: %w", err)
	}
	rec, err := l.client.EC2Calls(ctx, m.beforeNext, "")
	if err != nil {
		return err
	}
	var mine []lab.EC2Call // the new node's calls and the controller's on its behalf
	for _, c := range rec.Calls {
		if c.Caller == m.node.InstanceID || c.Caller == lab.CallerController {
			mine = append(mine, c)
		}
	}
	calls := m.calls(mine)
	cpConf, _ := CriticalPath(calls, m.conf)
	cpReady, _ := CriticalPath(calls, m.nodeReady)
	cpFirst, chainFirst := CriticalPath(calls, min(m.firstPod, m.conf))
	cpAll, chainAll := CriticalPath(calls, m.allPods)
	ref := "cloud latency on the critical path"
	r.add(
		NewRow("k8s", "scale-out: node add → agent ready (CNI config)", "ms", ms(m.conf), ref, ms(cpConf), nil),
		NewRow("k8s", "scale-out: node add → Node Ready", "ms", ms(m.nodeReady), ref, ms(cpReady), nil),
		NewRow("k8s", "scale-out: node add → first pod Running", "ms", ms(m.firstPod), ref, ms(cpFirst), nil),
		NewRow("k8s", fmt.Sprintf("scale-out: node add → %d pods Running", n), "ms", ms(m.allPods), ref, ms(cpAll), nil),
	)
	r.note("k8s scale-out: every node cordoned, a Deployment of %d pods waits Pending, then `node add` of a fresh %s (%s) through the lab API (vpcsim latencies %s): the controller launches the instance, starts vpcnetd, containerd and kubelet in the node's namespace; the scheduler places the pods once the Node is Ready. "+
		"Timeline from node add: %s. EC2 calls for the node: %s. Critical path to the first pod: %s; to %d pods: %s. The reference is the configured latency of those calls; the node's start (namespace, containerd, kubelet, registration), scheduling and the sandboxes have none, so they count as overhead.",
		n, itype, m.node.InstanceID, latencies(), m.timeline(mine), callCounts(mine, m.node.InstanceID), chain(chainFirst), n, chain(chainAll))
	return nil
}

// merge joins rounds of one CNI: the median of their create-to-all-Running times, and every
// pod's start-up time.
func merge(runs []*startRun) *startRun {
	var alls []float64
	out := &startRun{}
	for _, r := range runs {
		alls = append(alls, ms(r.all))
		out.perPod = append(out.perPod, r.perPod...)
	}
	out.all = time.Duration(Median(alls) * float64(time.Millisecond))
	return out
}

func roundOrder(order []bool) string {
	var s []string
	for _, ref := range order {
		if ref {
			s = append(s, "reference")
		} else {
			s = append(s, "vpcnet")
		}
	}
	return strings.Join(s, ", ")
}

// kubeClient is a client of the lab cluster as its admin (through the API proxy on loopback).
func kubeClient(labName string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", k8s.PathsOf(lab.PathsFor(labName)).Kubeconfig())
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 100, 200
	return kubernetes.NewForConfig(cfg)
}

// startRun is one Deployment's start-up.
type startRun struct {
	all    time.Duration   // create call to the last pod Running
	perPod []time.Duration // first watch event to first Running event, per pod
}

// deploymentStart creates a Deployment of n pods, waits for all of them Running (each with an
// address in want, so the run measured the CNI it meant to), then deletes it and waits until
// its pods are gone.
func deploymentStart(ctx context.Context, cs *kubernetes.Clientset, name string, n int, want netip.Prefix) (*startRun, error) {
	ns := "default"
	labels := map[string]string{"app": name}
	w, err := podEvents(ctx, cs, "app="+name)
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	replicas := int32(n)
	grace := int64(0)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: &grace,
					Containers:                    []corev1.Container{{Name: "vtool", Image: k8s.TestImage, ImagePullPolicy: corev1.PullNever}},
				},
			},
		},
	}
	start := time.Now()
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	defer deleteDeployment(cs, ns, name, labels)
	seen := map[string]time.Time{}
	running := map[string]time.Duration{}
	var last time.Time
	timeout := time.After(time.Duration(n)*3*time.Second + 2*time.Minute)
	for len(running) < n {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout:
			return nil, fmt.Errorf("%d of %d pods Running after the timeout; %s", len(running), n, whyNotRunning(cs, ns, "app="+name))
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, fmt.Errorf("pod watch closed with %d of %d Running", len(running), n)
			}
			now := time.Now()
			if ev.Type == watch.Error {
				return nil, fmt.Errorf("pod watch: %v", apierrors.FromObject(ev.Object))
			}
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			uid := string(p.UID)
			if _, ok := seen[uid]; !ok {
				seen[uid] = now
			}
			if _, done := running[uid]; done || p.Status.Phase != corev1.PodRunning {
				continue
			}
			ip, err := netip.ParseAddr(p.Status.PodIP)
			if err != nil || !want.Contains(ip) {
				return nil, fmt.Errorf("pod %s Running with address %q, not in %s: the wrong CNI gave it", p.Name, p.Status.PodIP, want)
			}
			running[uid] = now.Sub(seen[uid])
			last = now
		}
	}
	out := &startRun{all: last.Sub(start)}
	for _, d := range running {
		out.perPod = append(out.perPod, d)
	}
	return out, nil
}

// deleteDeployment deletes the Deployment and waits (up to 3 min) until its pods are gone, so
// the next run starts on empty nodes.
func deleteDeployment(cs *kubernetes.Clientset, ns, name string, labels map[string]string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fg := metav1.DeletePropagationForeground
	_ = cs.AppsV1().Deployments(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg})
	for ctx.Err() == nil {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err == nil && len(pods.Items) == 0 {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// installRefCNI puts ptp and host-local into every node's /opt/cni/bin and the reference
// conflist into its /etc/cni/net.d (the same places vpcnet's plugin and conflist are).
func installRefCNI(labName string, nodes []lab.NodeInfo) error {
	p := k8s.PathsOf(lab.PathsFor(labName))
	for _, n := range nodes {
		for _, plugin := range []string{"ptp", "host-local"} {
			b, err := os.ReadFile(filepath.Join(refCNIDir, plugin))
			if err != nil {
				return fmt.Errorf("reference CNI: %w (install the CNI plugins, e.g. apt-get install containernetworking-plugins)", err)
			}
			dst := filepath.Join(p.Node(n.Index), "cni-bin", plugin)
			if err := os.WriteFile(dst+".tmp", b, 0o755); err != nil {
				return err
			}
			if err := os.Rename(dst+".tmp", dst); err != nil {
				return err
			}
		}
		conf := map[string]any{"cniVersion": "1.0.0", "name": "bench-ptp", "plugins": []any{map[string]any{
			"type": "ptp", "ipMasq": false, "mtu": 9001,
			"ipam": map[string]any{"type": "host-local", "dataDir": "/var/lib/cni/bench-ptp",
				"ranges": []any{[]any{map[string]any{"subnet": fmt.Sprintf("10.244.%d.0/24", n.Index)}}}},
		}}}
		b, _ := json.MarshalIndent(conf, "", "  ")
		dst := filepath.Join(lab.PathsFor(labName).Node(n.Index).CNIConfDir(), refCNIConfName)
		if err := os.WriteFile(dst+".tmp", b, 0o644); err != nil {
			return err
		}
		if err := os.Rename(dst+".tmp", dst); err != nil {
			return err
		}
	}
	return nil
}

func removeRefCNI(labName string, nodes []lab.NodeInfo) {
	for _, n := range nodes {
		_ = os.Remove(filepath.Join(lab.PathsFor(labName).Node(n.Index).CNIConfDir(), refCNIConfName))
	}
}

// whyNotRunning tells, for a run that timed out, where its pods are: counts by phase and
// waiting reason, and the last sandbox failure kubelet reported on one of them.
func whyNotRunning(cs *kubernetes.Clientset, ns, selector string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "pods: " + err.Error()
	}
	states := map[string]int{}
	names := map[string]bool{}
	for _, p := range pods.Items {
		st := string(p.Status.Phase)
		for _, c := range p.Status.ContainerStatuses {
			if c.State.Waiting != nil {
				st += "/" + c.State.Waiting.Reason
			}
		}
		if p.Spec.NodeName == "" {
			st += " (unscheduled)"
		}
		states[st]++
		names[p.Name] = true
	}
	out := "pods by state: " + counts(states)
	evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=FailedCreatePodSandBox"})
	if err == nil {
		var last *corev1.Event
		for i, e := range evs.Items {
			if names[e.InvolvedObject.Name] && (last == nil || e.LastTimestamp.After(last.LastTimestamp.Time)) {
				last = &evs.Items[i]
			}
		}
		if last != nil {
			out += fmt.Sprintf("; last sandbox failure (%s, ×%d): %s", last.InvolvedObject.Name, last.Count, last.Message)
		}
	}
	return out
}

// waitTornDown waits (up to 3 min) until kubelet and containerd have run the CNI DEL of every
// pod of the last round on every node: no pod address assigned in the agents (vpcnet), no
// address in host-local's store (the reference). The pods leave the API before their sandboxes
// are torn down, and containerd tears a sandbox down with the conflist in place at that time:
// switching the CNI earlier sent vpcnet's pods' DELs to ptp, and their addresses stayed held
// (a later vpcnet round found its nodes full: "pods hold all 56 pod addresses").
func waitTornDown(ctx context.Context, labName string, nodes []lab.NodeInfo, ref bool) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	p := k8s.PathsOf(lab.PathsFor(labName))
	left := func() (int, error) {
		total := 0
		for _, n := range nodes {
			if !ref {
				pods, _, err := addressUse(ctx, n.NS)
				if err != nil {
					return 0, err
				}
				total += int(pods)
				continue
			}
			ents, err := os.ReadDir(filepath.Join(p.Node(n.Index), "var-lib-cni", "bench-ptp", "bench-ptp"))
			if err != nil && !os.IsNotExist(err) {
				return 0, err
			}
			for _, e := range ents {
				if _, err := netip.ParseAddr(e.Name()); err == nil {
					total++
				}
			}
		}
		return total, nil
	}
	for {
		n, err := left()
		if err == nil && n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d pod addresses still held 3 min after the round's pods left the API (err %v)", n, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
