package k8s

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/vpcnet/vpcnet/deploy"
	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/ipam/store"
)

// clusterRoleGrants is what deploy/vpcnet.yaml's ClusterRole grants, as resource → verbs.
func clusterRoleGrants(t *testing.T) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	for _, doc := range bytes.Split(deploy.Manifest, []byte("\n---\n")) {
		var role rbacv1.ClusterRole
		if err := yaml.Unmarshal(doc, &role); err != nil || role.Kind != "ClusterRole" {
			continue
		}
		for _, r := range role.Rules {
			if !slices.Equal(r.APIGroups, []string{""}) {
				t.Errorf("rule %+v outside the core group", r)
			}
			for _, res := range r.Resources {
				got[res] = append(got[res], r.Verbs...)
			}
		}
	}
	for _, v := range got {
		sort.Strings(v)
	}
	if len(got) == 0 {
		t.Fatal("no ClusterRole in deploy/vpcnet.yaml")
	}
	return got
}

// The RBAC of deploy/ is derived from what the agent's Kubernetes side really calls: everything
// it does (informers on its Node and its pods, the annotation patch, events on a pod, repeated
// events folded into one, the node's subnet event, the GC's release event) is run against
// client-go's fake API server, and the verbs it recorded per resource must be exactly the
// ClusterRole's: a call the role lacks would fail with Forbidden on a real cluster, and a verb
// the agent never uses must not be granted.
func TestClusterRoleIsExactlyWhatTheAgentCalls(t *testing.T) {
	grants := clusterRoleGrants(t)
	c, cs := start(t, node("aws:///us-east-1a/i-0abc"), pod("default", "web"), WithPodGC(time.Hour))
	old := time.Now().Add(-2 * time.Hour)
	gc := &fakeGC{allocs: []store.Alloc{alloc("c-gone", "default", "gone", "10.0.1.7", old)}}
	c.Started(id, gc)
	c.Status(full)
	waitFor(t, "the node check", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.state == "verified"
	})
	c.AddRefused("default", "web", full)
	c.AddRefused("default", "web", full) // the same again: client-go's recorder patches the count
	c.Status(agent.Status{Ready: true, Reason: agent.ReasonSubnetExhausted, Message: "subnet subnet-1 (10.0.1.0/24) has no free addresses", MaxPods: 17})
	if acts := cs.Actions(); len(acts) < 2 || acts[0].GetVerb() != "create" || acts[1].GetVerb() != "create" {
		t.Fatalf("the test's own calls are not first: %v", acts)
	}
	missing := map[store.Key]time.Time{}
	now := time.Now()
	c.gcPass(missing, now)
	c.gcPass(missing, now.Add(time.Hour))
	used := func() map[string][]string {
		m := map[string]map[string]bool{}
		// The first two actions are the test's own: start creating the Node and the pod.
		for _, a := range cs.Actions()[2:] {
			r := a.GetResource().Resource
			if m[r] == nil {
				m[r] = map[string]bool{}
			}
			m[r][a.GetVerb()] = true
		}
		out := map[string][]string{}
		for r, vs := range m {
			for v := range vs {
				out[r] = append(out[r], v)
			}
			sort.Strings(out[r])
		}
		return out
	}
	// Every call above has been made once these have: the patch of the node, the events
	// created, and the repeated one patched.
	deadline := time.Now().Add(10 * time.Second)
	for {
		u := used()
		if slices.Contains(u["nodes"], "patch") && slices.Contains(u["events"], "create") && slices.Contains(u["events"], "patch") && countCreates(cs) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent's calls after 10s: %v, %d events created", u, countCreates(cs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, want := fmt.Sprint(used()), fmt.Sprint(grants); got != want {
		t.Errorf("the agent calls %s\nthe ClusterRole grants %s", got, want)
	}
}

// countCreates counts the events created.
func countCreates(cs *fake.Clientset) int {
	n := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "events" {
			n++
		}
	}
	return n
}
