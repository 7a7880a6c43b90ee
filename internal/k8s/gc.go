package k8s

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/ipam/store"
)

// DefaultPodGCGrace is VPCNET_POD_GC_GRACE's default.
const DefaultPodGCGrace = 5 * time.Minute

// Garbage collection from the API server's pods (issue 14 item 4), beside the runtime's CNI GC
// (which containerd 2.x never calls): an allocation whose pod (namespace/name, from the ADD's
// K8S_POD_* arguments) the API server has not placed on this node for a whole grace period is
// handed to agent.PodGC.ReleaseGone, which releases it only if the attachment's host veth is
// gone, i.e. the sandbox's network namespace no longer exists. So an address is released only
// when both the API server and the kernel say no pod uses it:
//
//   - the pods informer must have synced (an empty cache before that says nothing);
//   - the pod must be absent at every pass for at least the grace period, and the allocation
//     at least that old (an ADD can reach the agent before its pod reaches the informer);
//   - a pod the API server still has on this node keeps every allocation made under its name
//     and UID, whatever its phase. An allocation records the pod's UID (the ADD's K8S_POD_UID):
//     one whose UID is not that of the pod the API server has under its name belongs to a
//     predecessor (a StatefulSet's pod re-created under the same name) and counts as absent.
//     One without a UID (a runtime that passes none, a journal that predates the field) goes by
//     the name alone;
//   - allocations with no pod name (made outside Kubernetes) and quarantined ones are left to
//     the runtime's GC.

// gcCandidates is the pure core of a pass: the allocations to hand to ReleaseGone now, given
// the pods the API server has on this node (namespace/name → metadata.uid), when each
// allocation's pod was first seen absent (updated in place: entries of present pods and of
// allocations no longer held are dropped, new absences recorded at now), and the grace period.
func gcCandidates(allocs []store.Alloc, present map[string]string, missing map[store.Key]time.Time, now time.Time, grace time.Duration) []store.Alloc {
	held := map[store.Key]bool{}
	var out []store.Alloc
	for _, al := range allocs {
		if al.PodName == "" || strings.HasPrefix(al.Key.ContainerID, store.QuarantinePrefix) {
			continue
		}
		held[al.Key] = true
		if uid, ok := present[al.PodNamespace+"/"+al.PodName]; ok && (al.PodUID == "" || al.PodUID == uid) {
			delete(missing, al.Key)
			continue
		}
		since, ok := missing[al.Key]
		if !ok {
			missing[al.Key] = now
			continue
		}
		if now.Sub(since) >= grace && now.Sub(al.At) >= grace {
			out = append(out, al)
		}
	}
	for k := range missing {
		if !held[k] {
			delete(missing, k)
		}
	}
	return out
}

// gcInterval is how often a pass runs: a quarter of the grace period, between 1 s and 1 min.
func gcInterval(grace time.Duration) time.Duration {
	return min(max(grace/4, time.Second), time.Minute)
}

// runGC runs a pass every gcInterval until ctx ends.
func (c *Client) runGC(ctx context.Context) {
	missing := map[store.Key]time.Time{}
	t := time.NewTicker(gcInterval(c.gcGrace))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.gcPass(missing, time.Now())
	}
}

// gcPass is one pass: nothing until the Node is verified and the pods informer has synced.
func (c *Client) gcPass(missing map[store.Key]time.Time, now time.Time) {
	c.mu.Lock()
	gc, verified := c.gc, c.state == "verified"
	c.mu.Unlock()
	if gc == nil || !verified || !c.podsSynced() {
		return
	}
	present := map[string]string{}
	for _, o := range c.pods.GetStore().List() {
		if p, ok := o.(*Pod); ok && p.Spec.NodeName == c.node {
			present[p.Namespace+"/"+p.Name] = string(p.UID)
		}
	}
	for _, al := range gcCandidates(gc.Allocations(), present, missing, now, c.gcGrace) {
		released, err := gc.ReleaseGone(al)
		switch {
		case err != nil:
			c.log.Warn("kubernetes GC: releasing the address of a pod the API server no longer has", "pod", al.PodNamespace+"/"+al.PodName, "ip", al.Addr, "err", err)
		case released:
			delete(missing, al.Key)
			why := "the API server no longer has the pod on this node"
			if uid, ok := present[al.PodNamespace+"/"+al.PodName]; ok {
				why = fmt.Sprintf("the pod of that name on this node is another one (UID %s, this allocation's %s)", uid, al.PodUID)
			}
			c.log.Info("kubernetes GC: released the address of a pod the API server no longer has on this node", "pod", al.PodNamespace+"/"+al.PodName,
				"uid", al.PodUID, "ip", al.Addr, "container", al.Key.ContainerID, "why", why)
			c.rec.eventf(&ObjectReference{Kind: "Node", Name: c.node, UID: nodeUID(c.node)}, EventTypeNormal, ReasonReleasedGone,
				"released %s of pod %s/%s (sandbox %s): %s and its sandbox's network is gone", al.Addr, al.PodNamespace, al.PodName, short(al.Key.ContainerID), why)
		}
	}
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
