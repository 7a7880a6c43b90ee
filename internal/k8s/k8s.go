// Package k8s is the node agent's optional Kubernetes side (issue 14 item 4). Given the node's
// name (NODE_NAME, from the downward API) and a core/v1 REST client (NewRESTClient), it watches
// that Node and the pods on it through informers (no polling), and once the agent has read its
// identity from IMDS:
//
//   - checks the Node is this instance: its spec.providerID names the IMDS instance ID
//     (aws:///<zone>/<instance-id>), or, when kubelet runs without a cloud provider and sets no
//     providerID, its InternalIP addresses include the IMDS primary IP. Until that holds nothing is
//     written; a Node that is another instance disables the package for the agent's lifetime
//     (logged at error level), so a wrong NODE_NAME can never annotate or blame another node;
//   - publishes what the node can still take as annotations on the Node (AnnotationFree,
//     AnnotationAssigned, AnnotationMaxPods, AnnotationReason), patched only when they change and
//     at most once per MinPatchInterval;
//   - records a Warning Event on a pod whose ADD was answered try-again for want of an address
//     (ReasonNoFreeAddress; the message is the agent's, naming the subnet or limit and what to do),
//     and on the Node when the agent's status turns subnet-exhausted (ReasonSubnetExhausted);
//   - releases the allocations of pods the API server no longer has on this node once their
//     sandboxes are gone, beside the runtime's CNI GC (gc.go; ReasonReleasedGone on the Node).
//
// The agent calls it through agent.Kube; no method blocks, and an unreachable API server never
// slows pod networking down.
package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/cloud"
)

// Node annotations the agent publishes (values are decimal counts, or a status reason).
const (
	AnnotationFree     = "vpcnet.io/free-addresses"     // addresses an ADD can get now
	AnnotationAssigned = "vpcnet.io/assigned-addresses" // addresses held by pods
	AnnotationMaxPods  = "vpcnet.io/max-pods"           // pods with a VPC address the node can hold
	AnnotationReason   = "vpcnet.io/reason"             // agent.Status.Reason; "" when an ADD gets an address now
)

// Event reasons, as `kubectl describe` shows them.
const (
	ReasonNoFreeAddress   = "NoFreeVPCAddress"   // on a pod whose ADD was answered try-again
	ReasonSubnetExhausted = "VPCSubnetExhausted" // on the Node
	ReasonReleasedGone    = "VPCAddressReleased" // on the Node: an address of a pod gone from the API server (gc.go)
)

// MinPatchInterval is the shortest time between two patches of the Node's annotations.
var MinPatchInterval = time.Second

// Client is the Kubernetes side of one node's agent; it implements agent.Kube.
type Client struct {
	rc    rest.Interface
	node  string
	log   *slog.Logger
	nodes cache.SharedIndexInformer // this Node only
	pods  cache.SharedIndexInformer // the pods on this node
	rec   *recorder
	kick  chan struct{}

	gcGrace time.Duration // 0: no GC from the API server's pods

	mu         sync.Mutex
	gc         agent.PodGC
	id         *cloud.Identity
	state      string // "", "verified" or "disabled"
	want       map[string]string
	lastReason string

	// patched is what the last successful patch wrote, and to which Node (by UID): the
	// informer's copy can lag behind the patch, and must not make sync patch the same again.
	patched    map[string]string
	patchedUID types.UID
}

// Option changes a Client made by New.
type Option func(*Client)

// WithPodGC sets the grace period of the GC from the API server's pods (gc.go; 0 turns it
// off). The default is DefaultPodGCGrace.
func WithPodGC(grace time.Duration) Option { return func(c *Client) { c.gcGrace = grace } }

// New returns a client for node nodeName (a DNS subdomain, as Node names are) that calls the
// API server through rc (NewRESTClient's: the core group, v1); Run starts it.
func New(rc rest.Interface, nodeName string, log *slog.Logger, opts ...Option) (*Client, error) {
	if err := CheckNodeName(nodeName); err != nil {
		return nil, err
	}
	c := &Client{rc: rc, node: nodeName, log: log, kick: make(chan struct{}, 1), gcGrace: DefaultPodGCGrace}
	for _, o := range opts {
		o(c)
	}
	// One informer per kind, each watching only this node's objects (no resync), indexed by
	// namespace as client-go's generated informers are.
	inform := func(resource string, obj runtime.Object, field, value string) cache.SharedIndexInformer {
		lw := cache.NewListWatchFromClient(rc, resource, metav1.NamespaceAll, fields.OneTermEqualSelector(field, value))
		return cache.NewSharedIndexInformer(lw, obj, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	c.nodes = inform("nodes", &Node{}, "metadata.name", nodeName)
	c.pods = inform("pods", &Pod{}, "spec.nodeName", nodeName)
	for _, inf := range []cache.SharedIndexInformer{c.nodes, c.pods} {
		if err := inf.SetTransform(dropManagedFields); err != nil {
			return nil, err
		}
	}
	if _, err := c.nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.poke() },
		UpdateFunc: func(any, any) { c.poke() },
	}); err != nil {
		return nil, err
	}
	c.rec = newRecorder(rc, EventSource{Component: "vpcnetd", Host: nodeName}, log)
	return c, nil
}

// getNode returns the informer's copy of this Node, or a NotFound error.
func (c *Client) getNode() (*Node, error) {
	o, ok, err := c.nodes.GetStore().GetByKey(c.node)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.NewNotFound(schema.GroupResource{Resource: "nodes"}, c.node)
	}
	return o.(*Node), nil
}

// getPod returns the informer's copy of pod namespace/name, if it is on this node.
func (c *Client) getPod(namespace, name string) (*Pod, bool) {
	o, ok, err := c.pods.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil, false
	}
	return o.(*Pod), true
}

// podsSynced says whether the pods informer has listed the pods once.
func (c *Client) podsSynced() bool { return c.pods.HasSynced() }

// CheckNodeName says why name (NODE_NAME) cannot be a Node's name: Node names are DNS
// subdomains (RFC 1123: lower case, at most 253 characters).
func CheckNodeName(name string) error {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("NODE_NAME %q is not a node name: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

// Run watches until ctx ends: it starts the informers and the event sink, then keeps the Node's
// annotations up to date.
func (c *Client) Run(ctx context.Context) {
	var informers sync.WaitGroup
	defer informers.Wait()
	informers.Go(func() { c.rec.run(ctx) })
	for _, inf := range []cache.SharedIndexInformer{c.nodes, c.pods} {
		informers.Go(func() { inf.RunWithContext(ctx) })
	}
	cache.WaitForCacheSync(ctx.Done(), c.nodes.HasSynced, c.pods.HasSynced)
	if c.gcGrace > 0 {
		go c.runGC(ctx)
	}
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		if wait := MinPatchInterval - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		if c.sync(ctx) {
			last = time.Now()
		}
	}
}

func (c *Client) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Started implements agent.Kube: the identity the Node is checked against, and the agent's
// side of the GC.
func (c *Client) Started(id cloud.Identity, gc agent.PodGC) {
	c.mu.Lock()
	c.id = &id
	c.gc = gc
	c.mu.Unlock()
	c.poke()
}

// Status implements agent.Kube: the annotations to publish, and a Node event when the status
// turns subnet-exhausted.
func (c *Client) Status(st agent.Status) {
	if !st.Ready {
		return
	}
	want := map[string]string{
		AnnotationFree:     strconv.Itoa(st.Free),
		AnnotationAssigned: strconv.Itoa(st.Assigned),
		AnnotationMaxPods:  strconv.Itoa(st.MaxPods),
		AnnotationReason:   st.Reason,
	}
	c.mu.Lock()
	verified := c.state == "verified"
	turned := verified && st.Reason == agent.ReasonSubnetExhausted && c.lastReason != st.Reason
	if verified {
		c.lastReason = st.Reason
	}
	c.want = want
	c.mu.Unlock()
	if turned {
		c.rec.eventf(&ObjectReference{Kind: "Node", Name: c.node, UID: nodeUID(c.node)}, EventTypeWarning, ReasonSubnetExhausted, "%s", st.Message)
	}
	c.poke()
}

// AddRefused implements agent.Kube: a Warning event on the pod.
func (c *Client) AddRefused(namespace, name string, st agent.Status) {
	c.mu.Lock()
	verified := c.state == "verified"
	c.mu.Unlock()
	if !verified || name == "" {
		return
	}
	var ref *ObjectReference
	if p, ok := c.getPod(namespace, name); ok {
		ref = &ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: p.Namespace, Name: p.Name, UID: p.UID, ResourceVersion: p.ResourceVersion}
	} else {
		ref = &ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: namespace, Name: name}
	}
	c.rec.eventf(ref, EventTypeWarning, ReasonNoFreeAddress, "no free VPC address on node %s (%s): %s", c.node, st.Reason, st.Message)
}

// sync checks the Node once the identity is known, then patches the annotations if they differ;
// it reports whether it patched.
func (c *Client) sync(ctx context.Context) bool {
	c.mu.Lock()
	id, state, want := c.id, c.state, c.want
	c.mu.Unlock()
	if id == nil || state == "disabled" {
		return false
	}
	node, err := c.getNode()
	if errors.IsNotFound(err) {
		return false // not registered yet: the informer pokes when it is
	}
	if err != nil {
		c.log.Warn("kubernetes: reading the node", "node", c.node, "err", err)
		return false
	}
	if state == "" {
		ok, why := matches(node, *id)
		switch {
		case ok:
			c.log.Info("kubernetes: node matches this instance", "node", c.node, "by", why)
			state = "verified"
		case why != "":
			c.log.Error("kubernetes: NODE_NAME names another instance; not publishing to it", "node", c.node, "instance", id.InstanceID, "ip", id.PrimaryIP, "node says", why)
			state = "disabled"
		default:
			return false // neither providerID nor addresses yet: kubelet's next update pokes
		}
		c.mu.Lock()
		c.state = state
		c.mu.Unlock()
		if state != "verified" {
			return false
		}
	}
	if want == nil || annotated(node, want) {
		return false
	}
	c.mu.Lock()
	same := node.UID == c.patchedUID && maps.Equal(want, c.patched)
	c.mu.Unlock()
	if same {
		return false // written already; the informer has not seen it yet
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": want}})
	if err := patchNode(ctx, c.rc, c.node, patch); err != nil {
		c.log.Warn("kubernetes: annotating the node", "node", c.node, "err", err)
		c.poke() // try again after MinPatchInterval
		return true
	}
	c.mu.Lock()
	c.patched, c.patchedUID = want, node.UID
	c.mu.Unlock()
	return true
}

// matches says whether node is the instance id: by providerID when it has one, else by its
// InternalIP addresses. ok=false with why="" means the Node does not say yet.
func matches(node *Node, id cloud.Identity) (ok bool, why string) {
	if p := node.Spec.ProviderID; p != "" {
		if strings.HasPrefix(p, "aws://") && p[strings.LastIndex(p, "/")+1:] == id.InstanceID {
			return true, "providerID " + p
		}
		return false, "providerID " + p
	}
	var ips []string
	for _, a := range node.Status.Addresses {
		if a.Type != NodeInternalIP {
			continue
		}
		ips = append(ips, a.Address)
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip == id.PrimaryIP {
			return true, "InternalIP " + a.Address
		}
	}
	if len(ips) == 0 {
		return false, ""
	}
	return false, "InternalIP " + strings.Join(ips, ",")
}

func annotated(node *Node, want map[string]string) bool {
	for k, v := range want {
		if got, ok := node.Annotations[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// nodeUID is the UID events about a Node carry: its name, as kubelet's own node events do and
// as `kubectl describe node` looks them up.
func nodeUID(name string) types.UID { return types.UID(name) }
