package k8s

import (
	"context"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vpcnet/vpcnet/internal/ipam/store"
)

func alloc(cid, ns, name, ip string, at time.Time) store.Alloc {
	return store.Alloc{Key: store.Key{Network: "vpcnet", ContainerID: cid, IfName: "eth0"}, Addr: netip.MustParseAddr(ip), PodNamespace: ns, PodName: name, At: at}
}

func names(as []store.Alloc) string {
	var out []string
	for _, a := range as {
		out = append(out, a.Key.ContainerID)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// The pure core: only allocations whose pod has been absent at every pass for the grace period,
// and which are themselves that old, are candidates; a pod seen again starts over.
func TestGCCandidates(t *testing.T) {
	const grace = time.Minute
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	old := t0.Add(-time.Hour)
	allocs := []store.Alloc{
		alloc("live", "default", "web", "10.0.1.5", old),
		alloc("gone", "default", "ghost", "10.0.1.6", old),
		alloc("young", "default", "newborn", "10.0.1.7", t0.Add(30*time.Second)), // ADD before the informer saw the pod
		alloc("bare", "", "", "10.0.1.8", old),                                   // not made for a Kubernetes pod
		alloc(store.QuarantinePrefix+"q", "default", "ghost", "10.0.1.9", old),
		alloc("back", "default", "flapping", "10.0.1.10", old),
	}
	present := map[string]string{"default/web": "uid-web"}
	missing := map[store.Key]time.Time{}
	if got := gcCandidates(allocs, present, missing, t0, grace); len(got) != 0 {
		t.Fatalf("first pass released %s: an absence must last the grace period", names(got))
	}
	if got := names(gcCandidates(allocs, present, missing, t0.Add(grace-time.Second), grace)); got != "" {
		t.Fatalf("released %s before the grace period", got)
	}
	present["default/flapping"] = "uid-flapping" // the pod is back (a relist, a late watch event)
	got := gcCandidates(allocs, present, missing, t0.Add(grace), grace)
	if names(got) != "gone" {
		t.Fatalf("after the grace period: %s, want only gone", names(got))
	}
	delete(present, "default/flapping")
	if got := names(gcCandidates(allocs, present, missing, t0.Add(grace+time.Second), grace)); got != "gone" {
		t.Fatalf("a pod seen again must start its grace period over: %s", got)
	}
	if got := names(gcCandidates(allocs, present, missing, t0.Add(2*grace+time.Second), grace)); got != "back,gone,young" {
		t.Fatalf("later: %s, want back,gone,young", got)
	}
	// Allocations no longer held (released by a DEL meanwhile) leave the record of absences.
	gcCandidates(allocs[:1], present, missing, t0.Add(3*grace), grace)
	if len(missing) != 0 {
		t.Fatalf("absences of allocations no longer held are kept: %v", missing)
	}
}

// A pod re-created under its predecessor's name (a StatefulSet's db-0) has another UID: an
// allocation made for the predecessor counts as absent, the successor's keeps its address, and
// an allocation without a UID (a runtime that passes no K8S_POD_UID, a journal from before the
// field) goes by the name, as before.
func TestGCCandidatesTellsARecreatedPodByItsUID(t *testing.T) {
	const grace = time.Minute
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	old := t0.Add(-time.Hour)
	withUID := func(a store.Alloc, uid string) store.Alloc { a.PodUID = uid; return a }
	allocs := []store.Alloc{
		withUID(alloc("predecessor", "default", "db-0", "10.0.1.5", old), "uid-1"),
		withUID(alloc("successor", "default", "db-0", "10.0.1.6", old), "uid-2"),
		alloc("no-uid", "default", "db-0", "10.0.1.7", old),
		withUID(alloc("other-ns", "prod", "db-0", "10.0.1.8", old), "uid-2"), // same UID, another pod's name
	}
	present := map[string]string{"default/db-0": "uid-2"}
	missing := map[store.Key]time.Time{}
	if got := gcCandidates(allocs, present, missing, t0, grace); len(got) != 0 {
		t.Fatalf("first pass released %s: an absence must last the grace period", names(got))
	}
	if got := names(gcCandidates(allocs, present, missing, t0.Add(grace), grace)); got != "other-ns,predecessor" {
		t.Fatalf("after the grace period: %s, want other-ns,predecessor (the successor and the UID-less allocation keep theirs)", got)
	}
	if _, ok := missing[allocs[1].Key]; ok {
		t.Fatal("the successor's allocation is recorded absent")
	}
}

// fakeGC is the agent's side: its allocations, and which ReleaseGone calls it answers "live".
type fakeGC struct {
	mu     sync.Mutex
	allocs []store.Alloc
	live   map[string]bool
	asked  []string
}

func (f *fakeGC) Allocations() []store.Alloc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.Alloc(nil), f.allocs...)
}

func (f *fakeGC) ReleaseGone(al store.Alloc) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, al.Key.ContainerID)
	if f.live[al.Key.ContainerID] {
		return false, nil
	}
	for i, a := range f.allocs {
		if a.Key == al.Key {
			f.allocs = append(f.allocs[:i], f.allocs[i+1:]...)
			return true, nil
		}
	}
	return false, nil
}

func (f *fakeGC) askedFor() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := append([]string(nil), f.asked...)
	sort.Strings(s)
	f.asked = nil
	return strings.Join(s, ",")
}

// A pass does nothing until the Node is verified; then it asks the agent to release exactly the
// allocations of pods the API server no longer has on this node, after the grace period,
// including a pod deleted while it watches; a release the agent refuses (live sandbox) is asked
// again on later passes, and a release it makes is told on the Node.
func TestGCPassReleasesWhatTheAPIServerNoLongerHas(t *testing.T) {
	// An hour: the client's own passes (every minute) find nothing due while the test runs its
	// passes at chosen instants.
	const grace = time.Hour
	c, cs := start(t, node("aws:///us-east-1a/i-0abc"), pod("default", "web"), pod("default", "leaving"), WithPodGC(grace))
	old := time.Now().Add(-2 * grace)
	web, webBefore := alloc("c-web", "default", "web", "10.0.1.5", old), alloc("c-web-before", "default", "web", "10.0.1.9", old)
	web.PodUID, webBefore.PodUID = "uid-web", "uid-web-predecessor" // web re-created under its name
	gc := &fakeGC{allocs: []store.Alloc{
		web,
		alloc("c-leaving", "default", "leaving", "10.0.1.6", old),
		alloc("c-gone", "default", "gone", "10.0.1.7", old),
		alloc("c-alive", "default", "force-deleted", "10.0.1.8", old),
		webBefore,
	}, live: map[string]bool{"c-alive": true}}
	missing := map[store.Key]time.Time{}
	t0 := time.Now()
	c.gcPass(missing, t0)
	c.gcPass(missing, t0.Add(2*grace))
	if got := gc.askedFor(); got != "" || len(missing) != 0 {
		t.Fatalf("before the node was verified: asked %q, recorded %v", got, missing)
	}
	c.Started(id, gc)
	waitFor(t, "the node check", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.state == "verified"
	})
	c.gcPass(missing, t0)
	if got := gc.askedFor(); got != "" {
		t.Fatalf("first pass asked for %s", got)
	}
	if err := cs.CoreV1().Pods("default").Delete(context.Background(), "leaving", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the informer to see the deletion", func() bool { _, ok := c.getPod("default", "leaving"); return !ok })
	c.gcPass(missing, t0.Add(grace/2))
	c.gcPass(missing, t0.Add(grace))
	if got := gc.askedFor(); got != "c-alive,c-gone,c-web-before" {
		t.Fatalf("after the grace period asked for %q, want c-alive,c-gone,c-web-before", got)
	}
	c.gcPass(missing, t0.Add(3*grace/2))
	if got := gc.askedFor(); got != "c-alive,c-leaving" {
		t.Fatalf("asked for %q, want the live one again and the pod deleted a grace period ago", got)
	}
	var left []string
	for _, a := range gc.Allocations() {
		left = append(left, a.Key.ContainerID)
	}
	if strings.Join(left, ",") != "c-web,c-alive" {
		t.Fatalf("allocations left %v, want c-web and c-alive", left)
	}
	waitFor(t, "the node's events", func() bool {
		ev := events(t, cs, "default", ReasonReleasedGone)
		n := 0
		for _, e := range ev {
			if e.InvolvedObject.Kind == "Node" && e.InvolvedObject.Name == nodeName && (strings.Contains(e.Message, "10.0.1.7") || strings.Contains(e.Message, "10.0.1.6")) {
				n++
			}
			if strings.Contains(e.Message, "released 10.0.1.9 of pod default/web") && strings.Contains(e.Message, "another one (UID uid-web, this allocation's uid-web-predecessor)") {
				n++
			}
		}
		return n == 3
	})
}

func TestGCInterval(t *testing.T) {
	for grace, want := range map[time.Duration]time.Duration{time.Second: time.Second, time.Minute: 15 * time.Second, 5 * time.Minute: time.Minute, time.Hour: time.Minute} {
		if got := gcInterval(grace); got != want {
			t.Errorf("gcInterval(%s) = %s, want %s", grace, got, want)
		}
	}
}
