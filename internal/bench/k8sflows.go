package bench

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	toolswatch "k8s.io/client-go/tools/watch"

	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s"
)

// podWatch records, from one pod watch, when each pod was first seen and first Running (on
// this machine's clock), the address and node it ran with, and how the watch ended.
type podWatch struct {
	mu      sync.Mutex
	seen    map[string]time.Time // by pod name
	running map[string]time.Time
	ip      map[string]netip.Addr
	node    map[string]string
	changed chan struct{} // closed and replaced on every Running
	err     error
	stop    func()
	done    chan struct{}
}

// podEvents watches the pods of namespace default with the label selector from now on, and
// resumes from the last event's resourceVersion when the server or the lab's API proxy closes
// the watch (client-go's RetryWatcher): a loaded machine saw a plain watch close mid-run.
func podEvents(ctx context.Context, cs *kubernetes.Clientset, selector string) (watch.Interface, error) {
	list, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	lw := &cache.ListWatch{WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		o.LabelSelector = selector
		return cs.CoreV1().Pods("default").Watch(ctx, o)
	}}
	return toolswatch.NewRetryWatcherWithContext(ctx, list.ResourceVersion, lw)
}

// watchPods starts a watch on the pods of namespace default with the label selector.
func watchPods(ctx context.Context, cs *kubernetes.Clientset, selector string) (*podWatch, error) {
	w, err := podEvents(ctx, cs, selector)
	if err != nil {
		return nil, err
	}
	pw := &podWatch{seen: map[string]time.Time{}, running: map[string]time.Time{}, ip: map[string]netip.Addr{},
		node: map[string]string{}, changed: make(chan struct{}), stop: w.Stop, done: make(chan struct{})}
	go func() {
		defer close(pw.done)
		for ev := range w.ResultChan() {
			now := time.Now()
			if ev.Type == watch.Error {
				pw.mu.Lock()
				pw.err = apierrors.FromObject(ev.Object)
				pw.mu.Unlock()
				return
			}
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			pw.mu.Lock()
			if _, ok := pw.seen[p.Name]; !ok {
				pw.seen[p.Name] = now
			}
			if _, done := pw.running[p.Name]; !done && p.Status.Phase == corev1.PodRunning && ev.Type != watch.Deleted {
				pw.running[p.Name] = now
				pw.ip[p.Name], _ = netip.ParseAddr(p.Status.PodIP)
				pw.node[p.Name] = p.Spec.NodeName
				close(pw.changed)
				pw.changed = make(chan struct{})
			}
			pw.mu.Unlock()
		}
	}()
	return pw, nil
}

// waitRunning waits until pod name is Running, the watch fails or ctx ends.
func (pw *podWatch) waitRunning(ctx context.Context, name string) error {
	return pw.waitFor(ctx, func() (bool, string) {
		_, ok := pw.running[name]
		return ok, fmt.Sprintf("pod %s not Running", name)
	})
}

// waitFor waits, woken by each pod the watch sees Running, until cond holds; cond runs with
// pw.mu held and says what it sees when it does not hold. Errors: the watch's own error, the
// watch closed (nothing will change any more) or ctx ended, each with cond's last word.
func (pw *podWatch) waitFor(ctx context.Context, cond func() (bool, string)) error {
	for {
		pw.mu.Lock()
		ok, state := cond()
		ch, err := pw.changed, pw.err
		pw.mu.Unlock()
		if ok {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pod watch: %w (%s)", err, state)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", state, ctx.Err())
		case <-ch:
		case <-pw.done:
			pw.mu.Lock()
			ok, state := cond()
			pw.mu.Unlock()
			if !ok {
				return fmt.Errorf("pod watch closed: %s", state)
			}
			return nil
		}
	}
}

// close stops the watch and waits for its goroutine.
func (pw *podWatch) close() {
	pw.stop()
	<-pw.done
}

// k8sChurn is what one play of the churn trace through the API measured.
type k8sChurn struct {
	starts      int
	startUp     []time.Duration // each pod's first watch event to its first Running event
	utilisation float64         // %, vpcnet only
	calls       float64         // EC2 calls (not IMDS) by the agents over the trace, vpcnet only
	byAction    map[string]float64
	sandboxFail int // FailedCreatePodSandBox events on the trace's pods (kubelet retried)
}

// playTraceK8s plays the churn trace as pod creates and deletes through the API server, each
// pod bound to the trace's node (spec.nodeName, as the trace places pods), and measures each
// pod's create to Running. A stop deletes the pod once it has been Running (as the libcni
// churn DELs only after the ADD returned), so every pod is measured. With agent, it also
// samples the agents' pod addresses (utilisation) and counts their EC2 calls.
func playTraceK8s(ctx context.Context, cs *kubernetes.Clientset, nodes []lab.NodeInfo, trace []TraceEvent, round string, want netip.Prefix, agent bool) (*k8sChurn, error) {
	out := &k8sChurn{byAction: map[string]float64{}}
	selector := "churn=" + round
	pw, err := watchPods(ctx, cs, selector)
	if err != nil {
		return nil, err
	}
	defer pw.close()
	var callsBefore map[string]float64
	var smp *sampler
	if agent {
		if callsBefore, err = ec2Calls(ctx, nodes); err != nil {
			return nil, err
		}
		smp = startSampler(ctx, nodes, 250*time.Millisecond)
	}
	grace := int64(0)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		live = map[string]chan struct{}{} // closed once the pod's create returned
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	name := func(pod string) string { return "churn-" + round + "-" + pod }
	t0 := time.Now()
	for _, ev := range trace {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Until(t0.Add(ev.At))):
		}
		pn := name(ev.Pod)
		if ev.Start {
			created := make(chan struct{})
			live[pn] = created
			out.starts++
			node := nodes[ev.Node%len(nodes)].Name
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(created)
				p := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: pn, Labels: map[string]string{"churn": round}},
					Spec: corev1.PodSpec{NodeName: node, TerminationGracePeriodSeconds: &grace,
						Containers: []corev1.Container{{Name: "vtool", Image: k8s.TestImage, ImagePullPolicy: corev1.PullNever}}},
				}
				if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
					fail(fmt.Errorf("create pod %s: %w", pn, err))
				}
			}()
			continue
		}
		created := live[pn]
		delete(live, pn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-created
			if err := stopPod(ctx, cs, pw, pn, &grace); err != nil {
				fail(err)
			}
		}()
	}
	var samples []Sample
	if smp != nil {
		samples = smp.stop() // the measurement ends with the trace's last event
	}
	wg.Wait()
	// Pods alive at the end: wait for them to run, then delete them too.
	for pn, created := range live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-created
			if err := stopPod(ctx, cs, pw, pn, &grace); err != nil {
				fail(err)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, fmt.Errorf("%d pod operation(s) failed, first: %w", len(errs), errs[0])
	}
	pw.mu.Lock()
	for pn, at := range pw.running {
		if ip := pw.ip[pn]; !want.Contains(ip) {
			pw.mu.Unlock()
			return nil, fmt.Errorf("pod %s Running with address %s, not in %s: the wrong CNI gave it", pn, ip, want)
		}
		out.startUp = append(out.startUp, at.Sub(pw.seen[pn]))
	}
	pw.mu.Unlock()
	if len(out.startUp) != out.starts {
		return nil, fmt.Errorf("%d of %d pods measured Running", len(out.startUp), out.starts)
	}
	if agent {
		after, err := ec2Calls(ctx, nodes)
		if err != nil {
			return nil, err
		}
		for a, v := range after {
			if d := v - callsBefore[a]; d > 0 {
				out.byAction[a] = d
				out.calls += d
			}
		}
		out.utilisation = 100 * TimeWeighted(samples)
	}
	evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "reason=FailedCreatePodSandBox"})
	if err == nil {
		for _, e := range evs.Items {
			if len(e.InvolvedObject.Name) > len("churn-"+round+"-") && e.InvolvedObject.Name[:len("churn-"+round+"-")] == "churn-"+round+"-" {
				out.sandboxFail += int(max(e.Count, 1))
			}
		}
	}
	if err := waitNoPods(ctx, cs, selector, 3*time.Minute); err != nil {
		return nil, err
	}
	return out, nil
}

// stopPod waits (up to 2 min) until the pod has been Running, then deletes it at once.
func stopPod(ctx context.Context, cs *kubernetes.Clientset, pw *podWatch, name string, grace *int64) error {
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := pw.waitRunning(wctx, name); err != nil {
		return err
	}
	err := cs.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: grace})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pod %s: %w", name, err)
	}
	return nil
}

// waitNoPods waits until no pod matches the selector.
func waitNoPods(ctx context.Context, cs *kubernetes.Clientset, selector string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err == nil && len(pods.Items) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			n := -1
			if pods != nil {
				n = len(pods.Items)
			}
			return fmt.Errorf("pods %s still there (%d) after %s", selector, n, limit)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// k8sScale is what one scale-out through Kubernetes measured, every moment since `node add`.
type k8sScale struct {
	scaleRun                 // start, node, controller steps, conf (agent ready), added
	nodeReady  time.Duration // the Node object Ready (node add returns then)
	firstPod   time.Duration
	allPods    time.Duration
	pods       int
	beforeNext uint64 // the controller's EC2 call record before node add
}

// setUnschedulable cordons (or uncordons) the nodes.
func setUnschedulable(ctx context.Context, cs *kubernetes.Clientset, nodes []lab.NodeInfo, on bool) error {
	patch := fmt.Appendf(nil, `{"spec":{"unschedulable":%t}}`, on)
	for _, n := range nodes {
		if _, err := cs.CoreV1().Nodes().Patch(ctx, n.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("cordon %s: %w", n.Name, err)
		}
	}
	return nil
}

// scaleOutK8s cordons the cluster's nodes, creates a Deployment of n pods that therefore wait
// Pending, then sends `node add` and times, from that moment: the agent ready (its CNI config
// written), the Node Ready (node add returned), the first of the pods Running on the new node
// and all of them. The pods must run on the new node with addresses of the VPC.
func scaleOutK8s(ctx context.Context, l *benchLab, cs *kubernetes.Clientset, nodes []lab.NodeInfo, itype string, n int) (*k8sScale, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := setUnschedulable(ctx, cs, nodes, true); err != nil {
		return nil, err
	}
	defer func() { _ = setUnschedulable(context.WithoutCancel(ctx), cs, nodes, false) }()
	name := "scale"
	labels := map[string]string{"app": name}
	pw, err := watchPods(ctx, cs, "app="+name)
	if err != nil {
		return nil, err
	}
	defer pw.close()
	replicas, grace := int32(n), int64(0)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{Name: "vtool", Image: k8s.TestImage, ImagePullPolicy: corev1.PullNever}}}}},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	defer deleteDeployment(cs, "default", name, labels)
	// The pods wait: all n exist, none scheduled (every node is cordoned).
	for {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			return nil, err
		}
		pending := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName != "" {
				return nil, fmt.Errorf("pod %s went to cordoned node %s", p.Name, p.Spec.NodeName)
			}
			pending++
		}
		if pending == n {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d pods created: %w", pending, n, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	before, err := l.client.EC2Calls(ctx, 0, "")
	if err != nil {
		return nil, err
	}
	index := 0
	for _, nd := range nodes {
		index = max(index, nd.Index)
	}
	index++ // the controller numbers nodes in order
	conf := filepath.Join(lab.PathsFor(l.name).Node(index).CNIConfDir(), lab.AgentCNIConfName)
	m := &k8sScale{pods: n, beforeNext: before.Next}
	m.start = time.Now()
	done := m.addNode(ctx, l, itype)
	res, err := m.waitConf(ctx, conf, done)
	if err != nil {
		return nil, err
	}
	if res == nil { // the agent is ready; kubelet turns the Node Ready after it
		select {
		case a := <-done:
			res = &a
		case <-ctx.Done():
			return nil, fmt.Errorf("scale-out: node add had not returned after the agent was ready: %w", ctx.Err())
		}
	}
	if res.err != nil {
		return nil, fmt.Errorf("node add: %w", res.err)
	}
	m.nodeReady, m.added = res.at, res.at
	if res.node.Index != index {
		return nil, fmt.Errorf("node add made node %d (%s), not node %d", res.node.Index, res.node.Name, index)
	}
	m.node = res.node // the progress callback is done: AddNode has returned
	err = pw.waitFor(ctx, func() (bool, string) {
		return len(pw.running) == n, fmt.Sprintf("%d of %d pods Running on the new node", len(pw.running), n)
	})
	if err != nil {
		return nil, err
	}
	pw.mu.Lock()
	defer pw.mu.Unlock()
	var at []time.Duration
	for pn, t := range pw.running {
		if pw.node[pn] != m.node.Name {
			return nil, fmt.Errorf("pod %s ran on %s, not the new node %s", pn, pw.node[pn], m.node.Name)
		}
		if !l.cfg.Subnets[0].Contains(pw.ip[pn]) {
			return nil, fmt.Errorf("pod %s Running with address %s, not in the VPC subnet %s", pn, pw.ip[pn], l.cfg.Subnets[0])
		}
		at = append(at, t.Sub(m.start))
	}
	m.firstPod, m.allPods = slices.Min(at), slices.Max(at)
	return m, nil
}

// timeline tells the scale-out through Kubernetes in order: the controller's steps, the EC2
// calls other than Describes, the agent ready, the Node Ready, the pods.
func (m *k8sScale) timeline(rec []lab.EC2Call) string {
	var ev []stamped
	for _, s := range m.steps {
		ev = append(ev, stamped{s.at, fmt.Sprintf("%q", shorten(s.text))})
	}
	for _, c := range rec {
		if strings.HasPrefix(c.Action, "Describe") {
			continue
		}
		who := "agent"
		if c.Caller != m.node.InstanceID {
			who = or(c.Caller, "unknown caller")
		}
		ev = append(ev, stamped{c.Start.Sub(m.start), fmt.Sprintf("%s by %s%s (to +%s)", c.Action, who, codeNote(c.Code), ms0(c.End.Sub(m.start)))})
	}
	ev = append(ev,
		stamped{m.conf, "agent ready (CNI config written)"},
		stamped{m.nodeReady, "Node Ready (node add returned)"},
		stamped{m.firstPod, "first pod Running"},
		stamped{m.allPods, fmt.Sprintf("all %d pods Running", m.pods)})
	slices.SortStableFunc(ev, func(a, b stamped) int { return int(a.at - b.at) })
	parts := make([]string, len(ev))
	for i, e := range ev {
		parts[i] = fmt.Sprintf("+%s %s", ms0(e.at), e.text)
	}
	return strings.Join(parts, "; ")
}
