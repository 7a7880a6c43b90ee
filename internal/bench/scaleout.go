package bench

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/controller"
)

// scaleLatency is EC2-like latency for the calls that grow a pool (issue 7). Other actions,
// RunInstances among them, answer at once.
var scaleLatency = map[string]time.Duration{
	"CreateNetworkInterface":   300 * time.Millisecond,
	"AttachNetworkInterface":   time.Second,
	"AssignPrivateIpAddresses": 200 * time.Millisecond,
}

// runScaleOut adds a fresh m5.xlarge to a lab whose vpcsim has EC2-like latencies while pods
// wait for it, and measures the time from `node add` to the first pod ready and to the last,
// against the cloud latency on the critical path of the EC2 calls the controller recorded for
// that node (its own and the controller's on its behalf).
func runScaleOut(ctx context.Context, r *runner) error {
	count, itype := 30, "m5.xlarge"
	if r.opts.Short {
		count = 5
	}
	l, err := r.up(ctx, labSpec{suffix: "s", instanceType: itype, subnet: mustPrefix("10.10.0.0/20"), latency: scaleLatency})
	if err != nil {
		return err
	}
	pods := make([]*benchPod, 0, count)
	defer func() {
		for _, p := range pods {
			_ = p.remove()
		}
	}()
	for i := range count {
		p, err := newPod(l.name, fmt.Sprintf("s%d", i))
		if err != nil {
			return err
		}
		pods = append(pods, p)
	}
	before, err := l.client.EC2Calls(ctx, 0, "")
	if err != nil {
		return err
	}
	m, err := scaleOut(ctx, l, itype, pods)
	if err != nil {
		return err
	}
	rec, err := l.client.EC2Calls(ctx, before.Next, "")
	if err != nil {
		return err
	}
	calls := m.calls(rec.Calls)
	first, last := slices.Min(m.ready), slices.Max(m.ready)
	// The first pod needs the agent's first free address, which it has when it writes its CNI
	// config: calls that ended later (the next ENI's) are not on that pod's path.
	cpFirst, chainFirst := CriticalPath(calls, min(first, m.conf))
	cpLast, chainLast := CriticalPath(calls, last)
	t := &Target{Op: "<", Limit: 1.1}
	ref := "cloud latency on the critical path"
	r.add(
		NewRow("scale-out", "node add → first pod ready", "ms", ms(first), ref, ms(cpFirst), t),
		NewRow("scale-out", fmt.Sprintf("node add → %d pods ready", count), "ms", ms(last), ref, ms(cpLast), t),
	)
	agentCount := "unknown"
	if met, err := agentMetrics(ctx, m.node.NS); err == nil {
		agentCount = fmt.Sprintf("%.0f", SumMetric(met, "vpcnet_ec2_calls_total", func(l map[string]string) bool { return l["action"] != "IMDS" }))
	}
	r.note("scale-out: `node add` of a fresh %s (%s) through the lab API, vpcsim latencies %s, with %d pods waiting that ADD through libcni and vpcnet-cni on the node as soon as its CNI config exists, and after \"no address yet\" (code 11) try again as soon as the agent reports a free address (its status polled every 5 ms; at most 1 s apart). "+
		"Timeline from node add: %s. EC2 calls recorded by the controller: %s (the agent counts %s of its own). "+
		"Critical path to the first pod (%s): %s; to %d pods (%s): %s. The reference is the configured latency of the calls on that path (for the first pod, up to the agent's first free address, i.e. its CNI config); RunInstances, IMDS, the node's set-up (namespace, fabric, exec) and the CNI ADDs themselves have none, so they count as overhead.",
		itype, m.node.InstanceID, latencies(), count, m.timeline(rec.Calls), callCounts(rec.Calls, m.node.InstanceID), agentCount,
		first.Round(time.Millisecond), chain(chainFirst), count, last.Round(time.Millisecond), chain(chainLast))
	return r.down(l)
}

// scaleRun is what one scale-out measured, every moment since `node add` was sent.
type scaleRun struct {
	start time.Time
	node  lab.NodeInfo
	steps []stamped       // the controller's progress lines
	conf  time.Duration   // the node's CNI config appeared
	added time.Duration   // node add returned
	ready []time.Duration // each pod's ADD succeeded
	tries int             // ADDs that answered code 11
}

type stamped struct {
	at   time.Duration
	text string
}

// scaleOut sends `node add` and, while it runs, waits for the node's CNI config as kubelet
// waits for the node to be ready, then ADDs every pod at once, each retried while the agent
// has no address for it. The lab had no node, so the new node is the controller's node 1.
func scaleOut(ctx context.Context, l *benchLab, itype string, pods []*benchPod) (*scaleRun, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	paths := lab.PathsFor(l.name).Node(1)
	conf := filepath.Join(paths.CNIConfDir(), controller.CNIConfName)
	m := &scaleRun{start: time.Now()}
	done := m.addNode(ctx, l, itype)
	res, err := m.waitConf(ctx, conf, done)
	if err != nil {
		return nil, err
	}
	list, err := libcni.ConfListFromFile(conf)
	if err != nil {
		return nil, fmt.Errorf("the new node's CNI config: %w", err)
	}
	rt := newRuntime("vpcnet-cni", lab.NodeNS(l.name, 1), l.cacheDir(), []string{filepath.Dir(l.cfg.CNIBin)}, list)
	watchCtx, stopWatch := context.WithCancel(ctx)
	free := watchFree(watchCtx, paths.AgentSocket())
	m.ready = make([]time.Duration, len(pods))
	errs := make([]error, len(pods))
	tries := make([]int, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tries[i], errs[i] = addWhenFree(ctx, rt, p, free)
			m.ready[i] = time.Since(m.start)
		}()
	}
	wg.Wait()
	stopWatch()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pods waiting for the new node: %w", err)
	}
	if err := firstError(errs); err != nil {
		return nil, err
	}
	for _, n := range tries {
		m.tries += n - 1
	}
	if res == nil {
		a := <-done
		res = &a
	}
	m.added = res.at
	if res.err != nil {
		return nil, fmt.Errorf("node add: %w", res.err)
	}
	if res.node.Index != 1 {
		return nil, fmt.Errorf("node add made node %d (%s), not the node 1 the pods were sent to", res.node.Index, res.node.Name)
	}
	m.node = res.node // the progress callback is done: AddNode has returned
	return m, nil
}

// nodeAdded is node add's answer, at when it came (since the scale-out's start).
type nodeAdded struct {
	node lab.NodeInfo
	err  error
	at   time.Duration
}

// addNode sends `node add` for itype in the background, recording the controller's progress
// lines in m.steps as they come; its answer arrives on the channel. m.steps is the sender's
// until then.
func (m *scaleRun) addNode(ctx context.Context, l *benchLab, itype string) <-chan nodeAdded {
	done := make(chan nodeAdded, 1)
	go func() {
		n, err := l.client.AddNode(ctx, lab.NodeRequest{InstanceType: itype}, func(s string) {
			m.steps = append(m.steps, stamped{time.Since(m.start), s})
		})
		done <- nodeAdded{n, err, time.Since(m.start)}
	}()
	return done
}

// waitConf polls every 2 ms, as kubelet waits for a node's network, until the new node's CNI
// config conf exists (its agent is ready), and sets m.conf to then. It returns node add's
// answer if that came first (nil if not); a failed node add or ctx's end stops the wait.
func (m *scaleRun) waitConf(ctx context.Context, conf string, done <-chan nodeAdded) (*nodeAdded, error) {
	var res *nodeAdded
	for {
		if _, err := os.Stat(conf); err == nil {
			m.conf = time.Since(m.start)
			return res, nil
		}
		select {
		case a := <-done:
			if a.err != nil {
				return nil, fmt.Errorf("node add: %w", a.err)
			}
			res = &a // ready by the controller's check; the config is there by now
		case <-ctx.Done():
			return nil, fmt.Errorf("the new node's CNI config %s never appeared (node add returned: %v): %w", conf, res != nil, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// firstError returns the first of errs, saying how many more there were.
func firstError(errs []error) error {
	n, first := 0, error(nil)
	for _, err := range errs {
		if err != nil {
			n++
			first = cmp.Or(first, err)
		}
	}
	if n > 1 {
		return fmt.Errorf("%w (and %d more pods failed)", first, n-1)
	}
	return first
}

// freeSignal wakes pods waiting for an address: its channel is closed and replaced whenever
// the agent reports a free address.
type freeSignal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (f *freeSignal) wait() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ch
}

func (f *freeSignal) fire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.ch)
	f.ch = make(chan struct{})
}

// watchFree asks the agent at socket for its free addresses every 5 ms until ctx ends, and
// fires the signal whenever it has some.
func watchFree(ctx context.Context, socket string) *freeSignal {
	f := &freeSignal{ch: make(chan struct{})}
	go func() {
		conn, err := agentapi.Dial(socket)
		if err != nil {
			return // the pods fall back to trying every second
		}
		defer conn.Close()
		cl := agentapi.NewAgentClient(conn)
		for ctx.Err() == nil {
			st, err := cl.Status(ctx, &agentapi.StatusRequest{Version: agentapi.Version})
			if err == nil && st.Free > 0 {
				f.fire()
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return f
}

// addWhenFree runs ADD until it succeeds; after "try again later" (code 11) it undoes the
// attempt with DEL, as kubelet does, and tries again once the agent has a free address, or a
// second later. It returns how many ADDs it ran.
func addWhenFree(ctx context.Context, rt *cniNet, p *benchPod, free *freeSignal) (int, error) {
	for tries := 1; ; tries++ {
		err := rt.add(ctx, p)
		if err == nil || !tryAgain(err) {
			return tries, err
		}
		wake := free.wait()
		_ = rt.del(context.WithoutCancel(ctx), p)
		select {
		case <-ctx.Done():
			return tries, fmt.Errorf("%s: pod %s: %w (last: %v)", rt.name, p.name, ctx.Err(), err)
		case <-wake:
		case <-time.After(time.Second):
		}
	}
}

// calls turns the controller's record into CriticalPath's input: start since node add, and
// the configured latency of the action as the time the cloud kept the call.
func (m *scaleRun) calls(rec []lab.EC2Call) []Call {
	out := make([]Call, 0, len(rec))
	for _, c := range rec {
		out = append(out, Call{Action: c.Action, Start: c.Start.Sub(m.start), Latency: scaleLatency[c.Action]})
	}
	return out
}

// timeline tells the run in order: the controller's steps, the agent's first EC2 call, every
// call other than the repeated Describes, the CNI config, the pods.
func (m *scaleRun) timeline(rec []lab.EC2Call) string {
	var ev []stamped
	for _, s := range m.steps {
		ev = append(ev, stamped{s.at, fmt.Sprintf("%q", shorten(s.text))})
	}
	firstOwn := true
	for _, c := range rec {
		at := c.Start.Sub(m.start)
		who := "agent"
		if c.Caller != m.node.InstanceID {
			who = c.Caller
			if who == "" {
				who = "unknown caller"
			}
		}
		switch {
		case who == "agent" && firstOwn:
			firstOwn = false
			ev = append(ev, stamped{at, fmt.Sprintf("the agent's first EC2 call, %s (to +%s)", c.Action, ms0(c.End.Sub(m.start)))})
		case strings.HasPrefix(c.Action, "Describe"):
			continue
		default:
			ev = append(ev, stamped{at, fmt.Sprintf("%s by %s%s (to +%s)", c.Action, who, codeNote(c.Code), ms0(c.End.Sub(m.start)))})
		}
	}
	ev = append(ev, stamped{m.conf, "CNI config written (node ready)"})
	ev = append(ev, stamped{slices.Min(m.ready), "first pod ready"})
	ev = append(ev, stamped{slices.Max(m.ready), fmt.Sprintf("all %d pods ready (%d ADDs answered code 11 on the way)", len(m.ready), m.tries)})
	ev = append(ev, stamped{m.added, "node add returned"})
	slices.SortStableFunc(ev, func(a, b stamped) int { return int(a.at - b.at) })
	parts := make([]string, len(ev))
	for i, e := range ev {
		parts[i] = fmt.Sprintf("+%s %s", ms0(e.at), e.text)
	}
	return strings.Join(parts, "; ")
}

func codeNote(code string) string {
	if code == "" {
		return ""
	}
	return " failing with " + code
}

// shorten keeps a progress line's first clause.
func shorten(s string) string {
	if i := strings.Index(s, " ("); i > 0 {
		return s[:i]
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ms0(d time.Duration) string { return d.Round(time.Millisecond).String() }

func latencies() string {
	var parts []string
	for a, d := range scaleLatency {
		parts = append(parts, fmt.Sprintf("%s %s", a, d))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// callCounts lists the calls by action, the instance's apart from the others'.
func callCounts(rec []lab.EC2Call, instance string) string {
	mine, other := map[string]int{}, map[string]int{}
	for _, c := range rec {
		if c.Caller == instance {
			mine[c.Action]++
		} else {
			other[c.Action+" by "+or(c.Caller, "unknown caller")]++
		}
	}
	n := 0
	for _, c := range mine {
		n += c
	}
	return fmt.Sprintf("%d by the node: %s; %s", n, counts(mine), counts(other))
}

// counts lists counts by name: "A×2 B×1", sorted.
func counts(m map[string]int) string {
	var parts []string
	for a, c := range m {
		parts = append(parts, fmt.Sprintf("%s×%d", a, c))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func chain(cs []Call) string {
	if len(cs) == 0 {
		return "none"
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s %s at +%s", c.Action, c.Latency, c.Start.Round(time.Millisecond)))
	}
	return strings.Join(parts, " → ")
}
