package faulttest

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/invariant"
	"github.com/vpcnet/vpcnet/internal/netnsx"
)

var (
	flagSteps = flag.Int("faulttest.steps", 0, "steps of TestRandomFaults (default $VPCNET_FAULTTEST_STEPS, else 40)")
	flagSeed  = flag.Uint64("faulttest.seed", 0, "seed of TestRandomFaults (default $VPCNET_FAULTTEST_SEED, else the clock)")
	flagOnly  = flag.String("faulttest.faults", "", "comma-separated fault kinds to run, switched off or not (default: every kind not in faultsOff)")
)

// defaultSteps keeps the CI run short (well under a minute on a loaded 2-core machine).
const defaultSteps = 40

// step is one kind of thing the test does to the node.
type step string

// Pod operations, as kubelet issues them.
const (
	stepAdd   step = "add"   // ADD a new pod (retrying "try again later" as kubelet does)
	stepDel   step = "del"   // DEL a live pod, then remove its sandbox
	stepCheck step = "check" // CHECK a live pod
)

// Faults.
const (
	faultKillAgent  step = "kill-agent"       // kill -9 the agent (sometimes DEL a pod while it is down), start it again
	faultFullDisk   step = "full-disk"        // fill the allocation store's file system, run pod operations, free it
	faultJournal    step = "damaged-journal"  // kill -9 the agent, change one byte in the middle of its journal, start it
	faultDetachENI  step = "detach-eni"       // force-detach a secondary ENI through the EC2 API
	faultConcurrent step = "concurrent-verbs" // ADD, DEL and ADD of one new key at once
	faultRestartSim step = "restart-vpcsim"   // close vpcsim (sometimes ADD while it is away), start it again
)

var allFaults = []step{faultKillAgent, faultFullDisk, faultJournal, faultDetachENI, faultConcurrent, faultRestartSim}

// faultsOff are fault kinds switched off, with the reason. Only a fault whose fix has not
// landed yet belongs here; the invariant check itself is never relaxed.
var faultsOff = map[step]string{}

// maxLive bounds the live pods (an m5.large holds 29).
const maxLive = 14

func settingInt(flagV int, env string, def int) int {
	if flagV > 0 {
		return flagV
	}
	if v, err := strconv.Atoi(os.Getenv(env)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestRandomFaults: pod operations and faults in a seeded random order; the invariant is
// checked after every step (see the package comment).
func TestRandomFaults(t *testing.T) {
	steps := settingInt(*flagSteps, "VPCNET_FAULTTEST_STEPS", defaultSteps)
	seed := *flagSeed
	if seed == 0 {
		seed, _ = strconv.ParseUint(os.Getenv("VPCNET_FAULTTEST_SEED"), 10, 64)
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d, %d steps (replay: go test ./internal/faulttest/ -run TestRandomFaults -faulttest.seed=%d -faulttest.steps=%d)", seed, steps, seed, steps)
	if *flagOnly != "" {
		for _, f := range strings.Split(*flagOnly, ",") {
			if !slices.Contains(allFaults, step(f)) {
				t.Fatalf("-faulttest.faults: unknown fault %q (known: %v)", f, allFaults)
			}
		}
		t.Logf("faults: only %s", *flagOnly)
	} else {
		for f, why := range faultsOff {
			t.Logf("fault %s is switched off: %s", f, why)
		}
	}
	n := newNode(t)
	r := &runner{t: t, n: n, rng: rand.New(rand.NewPCG(seed, 0xfa017)), seed: seed, live: map[string]*pod{}, deleting: map[string]*pod{}, done: map[step]int{}}
	start := time.Now()
	for i, s := range r.plan(steps) {
		r.stepNo = i + 1
		r.retryDeletes()
		r.do(s)
		r.done[s]++
		r.verify(string(s))
	}
	// Drain: every pod deleted, nothing may be left held.
	for _, p := range r.livePods() {
		r.delPod(p, 30*time.Second)
	}
	r.retryDeletes()
	r.verify("final deletes")
	// A DEL made while the agent was down (the kill-agent fault) is queued in the plugin's state
	// and reaches the agent with the next verb; a runtime keeps calling them (kubelet asks STATUS
	// every few seconds), so the drain does too before it looks for leftovers: without it a run
	// whose last step is such a DEL fails though nothing leaked.
	if err := r.n.statusRetry(30 * time.Second); err != nil {
		t.Errorf("STATUS after the final deletes: %v", err)
	}
	if len(r.deleting) > 0 {
		t.Errorf("pods whose DEL never succeeded: %v", names(r.deleting))
	}
	as, err := n.allocs()
	if err != nil || len(as) != 0 {
		t.Errorf("after every pod was deleted the agent still holds %v (%v)", as, err)
	}
	t.Logf("%d steps in %v: %v; ADD acknowledged %d, failed %d; agent started %d times",
		steps, time.Since(start).Round(time.Millisecond), r.done, r.addOK, r.addFail, n.starts)
	if r.addOK == 0 {
		t.Errorf("no ADD succeeded: the run exercised nothing")
	}
}

type runner struct {
	t        *testing.T
	n        *node
	rng      *rand.Rand
	seed     uint64
	stepNo   int
	seq      int
	live     map[string]*pod // ADD acknowledged, not deleted: must keep record, address and network
	deleting map[string]*pod // DEL not yet acknowledged (kubelet retries it)
	done     map[step]int
	addOK    int
	addFail  int
	diskFull bool
}

// plan draws the steps: mostly pod operations, faults among them, and every enabled fault at
// least once (in the last three quarters, once pods exist) so that a short run covers each kind.
func (r *runner) plan(steps int) []step {
	var faults []step
	for _, f := range allFaults {
		if _, off := faultsOff[f]; !off && *flagOnly == "" || slices.Contains(strings.Split(*flagOnly, ","), string(f)) {
			faults = append(faults, f)
		}
	}
	out := make([]step, steps)
	for i := range out {
		switch x := r.rng.IntN(100); {
		case x < 40:
			out[i] = stepAdd
		case x < 62:
			out[i] = stepDel
		case x < 72:
			out[i] = stepCheck
		default:
			if len(faults) == 0 {
				out[i] = stepAdd
			} else {
				out[i] = faults[r.rng.IntN(len(faults))]
			}
		}
	}
	for _, f := range faults {
		if !slices.Contains(out, f) && steps >= 4 {
			out[steps/4+r.rng.IntN(steps-steps/4)] = f
		}
	}
	return out
}

func (r *runner) logf(format string, a ...any) {
	r.t.Helper()
	r.t.Logf("step %d: %s", r.stepNo, fmt.Sprintf(format, a...))
}

func (r *runner) fatalf(format string, a ...any) {
	r.t.Helper()
	r.t.Fatalf("step %d (seed %d): %s", r.stepNo, r.seed, fmt.Sprintf(format, a...))
}

func (r *runner) livePods() []*pod {
	out := make([]*pod, 0, len(r.live))
	for _, p := range r.live {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *pod) int { return r.podSeq(a) - r.podSeq(b) })
	return out
}

func (r *runner) podSeq(p *pod) int { v, _ := strconv.Atoi(p.name[1:]); return v }

func (r *runner) randomLive() *pod {
	ps := r.livePods()
	if len(ps) == 0 {
		return nil
	}
	return ps[r.rng.IntN(len(ps))]
}

func names(m map[string]*pod) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (r *runner) newPod() *pod {
	r.seq++
	return r.n.newPod("p" + strconv.Itoa(r.seq))
}

// do runs one step.
func (r *runner) do(s step) {
	switch s {
	case stepAdd:
		r.opAdd(30 * time.Second)
	case stepDel:
		if p := r.randomLive(); p != nil {
			r.delPod(p, 30*time.Second)
		} else {
			r.opAdd(30 * time.Second)
		}
	case stepCheck:
		if p := r.randomLive(); p != nil {
			if err := r.n.check(p); err != nil {
				// A pod whose address the test took away with its ENI (detach-eni) is broken
				// until the ENI is back, and CHECK must say so; any other failure is a bug.
				attached, aerr := r.n.attachedAddrs()
				if aerr != nil {
					r.fatalf("CHECK of live pod %s (%s): %v; and listing the instance's ENIs: %v", p.name, p.ip, err, aerr)
				}
				if attached[p.ip] {
					r.fatalf("CHECK of live pod %s (%s), whose address is on an attached ENI: %v", p.name, p.ip, err)
				}
				r.logf("CHECK %s: its address %s is on no attached ENI (detached by the test), and CHECK says: %v", p.name, p.ip, err)
				return
			}
			r.logf("CHECK %s ok", p.name)
		}
	case faultKillAgent:
		r.n.killAgent()
		r.logf("killed vpcnetd (SIGKILL)")
		if p := r.randomLive(); p != nil && r.rng.IntN(2) == 0 {
			r.delPod(p, 0) // the plugin queues the release for the agent
		}
		r.n.startAgent()
		r.logf("vpcnetd started again")
	case faultFullDisk:
		if err := r.n.fillDisk(); err != nil {
			r.fatalf("fill the store's disk: %v", err)
		}
		r.diskFull = true
		r.logf("the allocation store's file system is full")
		// The journal's last page may still have room for a few records: go on until an
		// operation fails on the disk, and two more after that, with at most 30 in all.
		failedAt := 0
		for i := 1; i <= 30 && (failedAt == 0 || i <= failedAt+2); i++ {
			okBefore := r.addFail + len(r.deleting)
			if p := r.randomLive(); p != nil && (len(r.live) >= maxLive || r.rng.IntN(2) == 0) {
				r.delPod(p, 0)
			} else {
				r.opAdd(2 * time.Second)
			}
			if failedAt == 0 && r.addFail+len(r.deleting) > okBefore {
				failedAt = i
			}
			r.verify("with the disk full")
		}
		r.logf("with the disk full, the first operation failed at %d", failedAt)
		if err := r.n.freeDisk(); err != nil {
			r.fatalf("free the store's disk: %v", err)
		}
		r.diskFull = false
		r.logf("disk space freed")
	case faultJournal:
		r.n.killAgent()
		what, err := r.n.damageJournal()
		if err != nil {
			r.fatalf("damage the journal: %v", err)
		}
		if what == "" {
			what = "journal too short to damage, left alone"
		}
		r.logf("killed vpcnetd, damaged its journal (%s)", what)
		r.n.startAgent()
		r.logf("vpcnetd started again")
	case faultDetachENI:
		enis, err := r.n.secondaryENIs()
		if err != nil {
			r.fatalf("list the instance's ENIs: %v", err)
		}
		if len(enis) == 0 {
			r.logf("no secondary ENI attached to detach")
			return
		}
		eni := enis[r.rng.IntN(len(enis))]
		if err := r.n.detach(eni); err != nil {
			r.fatalf("detach %s: %v", eni, err)
		}
		r.logf("force-detached %s through the EC2 API", eni)
	case faultConcurrent:
		r.concurrent()
	case faultRestartSim:
		r.n.stopSim()
		r.logf("vpcsim closed")
		if r.rng.IntN(2) == 0 && len(r.live) < maxLive {
			r.opAdd(time.Second)
		}
		if err := r.n.startSim(); err != nil {
			r.fatalf("start vpcsim again: %v", err)
		}
		r.logf("vpcsim started again")
	default:
		r.fatalf("unknown step %q", s)
	}
}

// opAdd adds a new pod; on failure it cleans the sandbox up as kubelet does (DEL, then remove).
func (r *runner) opAdd(within time.Duration) {
	if len(r.live) >= maxLive {
		if p := r.randomLive(); p != nil {
			r.delPod(p, 30*time.Second)
		}
		return
	}
	p := r.newPod()
	if err := r.n.addRetry(p, within); err != nil {
		r.addFail++
		r.logf("ADD %s failed: %v", p.name, err)
		r.delPod(p, 0)
		return
	}
	r.addOK++
	r.live[p.name] = p
	r.logf("ADD %s: %s", p.name, p.ip)
}

// delPod deletes a pod: DEL (retried until within has passed), then its sandbox. A DEL that
// keeps failing leaves the pod in r.deleting, to be retried as kubelet does.
func (r *runner) delPod(p *pod, within time.Duration) {
	delete(r.live, p.name)
	deadline := time.Now().Add(within)
	for {
		err := r.n.del(p)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			r.deleting[p.name] = p
			r.logf("DEL %s failed (kubelet will retry): %v", p.name, err)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	delete(r.deleting, p.name)
	if err := netnsx.Delete(p.ns); err != nil {
		r.fatalf("remove the sandbox of %s: %v", p.name, err)
	}
	r.logf("DEL %s", p.name)
}

// retryDeletes retries the DELs that failed, as kubelet does, unless the disk is still full.
func (r *runner) retryDeletes() {
	if r.diskFull {
		return
	}
	for _, name := range names(r.deleting) {
		r.delPod(r.deleting[name], 10*time.Second)
	}
}

// concurrent runs ADD, DEL and ADD of one new key at once (the runtime breaking the spec's
// rule). Whatever order they took, the node must end consistent; the pod counts as live when
// the plugin holds a record for it afterwards.
func (r *runner) concurrent() {
	p := r.newPod()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, 3)
	for i, verb := range []func(*pod) error{r.n.add, r.n.del, r.n.add} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = verb(&pod{name: p.name, ns: p.ns, rt: p.rt})
		}()
	}
	close(start)
	wg.Wait()
	recs, err := r.n.records()
	if err != nil {
		r.fatalf("read the plugin's records: %v", err)
	}
	rec, ok := recs[p.rt.ContainerID]
	r.logf("ADD|DEL|ADD of %s at once: errors %v; the plugin holds %v", p.name, errs, ok)
	if ok {
		p.ip = rec.Addr
		r.live[p.name] = p
		return
	}
	r.deleting[p.name] = p // DEL it once more before its sandbox goes, as kubelet would
}

// verify checks the invariant on the whole node, and that every acknowledged live pod is
// still recorded with the address its ADD returned.
func (r *runner) verify(after string) {
	r.t.Helper()
	pods := r.livePods()
	for _, name := range names(r.deleting) {
		pods = append(pods, r.deleting[name])
	}
	s, err := r.n.snapshot(pods)
	if err != nil {
		r.fatalf("after %s: collect the node: %v", after, err)
	}
	if err := invariant.Err(invariant.Check(s)); err != nil {
		r.fatalf("after %s: %v", after, err)
	}
	recs, err := r.n.records()
	if err != nil {
		r.fatalf("after %s: read the plugin's records: %v", after, err)
	}
	for _, p := range r.livePods() {
		if rec, ok := recs[p.rt.ContainerID]; !ok || rec.Addr != p.ip {
			r.fatalf("after %s: pod %s was acknowledged with %s and is not deleted, but the plugin's record is %+v (present %v)", after, p.name, p.ip, rec, ok)
		}
	}
}
