package k8s

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// The agent's view of the core/v1 objects it reads and writes: the kinds Node, Pod and Event with
// only the fields it uses, under the API's JSON names (fields the API server sends beyond these
// are ignored when decoding). So the agent links neither k8s.io/api (the typed structs, protobuf
// code and documentation of every core kind, built at start whatever the agent does: about 0.5
// MiB of its resident memory, issue 16 item 7), nor keeps whole Pods in its informer's cache: a
// Pod here is its metadata and spec.nodeName. TestTypesMatchTheAPI checks the JSON names
// against k8s.io/api's.

// coreV1 is the core group's version v1.
var coreV1 = schema.GroupVersion{Version: "v1"}

// Node is a core/v1 Node: its metadata (annotations), spec.providerID and status.addresses.
type Node struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NodeSpec   `json:"spec,omitempty"`
	Status            NodeStatus `json:"status,omitempty"`
}

// NodeSpec is the part of a Node's spec the agent reads.
type NodeSpec struct {
	// ProviderID is the cloud's name for the node: aws:///<zone>/<instance-id> on EC2.
	ProviderID string `json:"providerID,omitempty"`
}

// NodeStatus is the part of a Node's status the agent reads.
type NodeStatus struct {
	Addresses []NodeAddress `json:"addresses,omitempty"`
}

// NodeAddress is one of a Node's addresses, e.g. {InternalIP, 10.0.1.10}.
type NodeAddress struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

// NodeInternalIP is the NodeAddress type of an address inside the VPC.
const NodeInternalIP = "InternalIP"

// NodeList is a list of Nodes, as a list call answers.
type NodeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Node `json:"items"`
}

// Pod is a core/v1 Pod: its metadata and spec.nodeName.
type Pod struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              PodSpec `json:"spec,omitempty"`
}

// PodSpec is the part of a Pod's spec the agent reads.
type PodSpec struct {
	NodeName string `json:"nodeName,omitempty"`
}

// PodList is a list of Pods, as a list call answers.
type PodList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Pod `json:"items"`
}

// Event is a core/v1 Event as the agent writes it (events.go).
type Event struct {
	metav1.TypeMeta     `json:",inline"`
	metav1.ObjectMeta   `json:"metadata"`
	InvolvedObject      ObjectReference `json:"involvedObject"`
	Reason              string          `json:"reason,omitempty"`
	Message             string          `json:"message,omitempty"`
	Source              EventSource     `json:"source,omitempty"`
	FirstTimestamp      metav1.Time     `json:"firstTimestamp,omitempty"`
	LastTimestamp       metav1.Time     `json:"lastTimestamp,omitempty"`
	Count               int32           `json:"count,omitempty"`
	Type                string          `json:"type,omitempty"`
	ReportingController string          `json:"reportingComponent"`
	ReportingInstance   string          `json:"reportingInstance"`
}

// Event types.
const (
	EventTypeNormal  = "Normal"
	EventTypeWarning = "Warning"
)

// ObjectReference names the object an Event is about.
type ObjectReference struct {
	Kind            string    `json:"kind,omitempty"`
	Namespace       string    `json:"namespace,omitempty"`
	Name            string    `json:"name,omitempty"`
	UID             types.UID `json:"uid,omitempty"`
	APIVersion      string    `json:"apiVersion,omitempty"`
	ResourceVersion string    `json:"resourceVersion,omitempty"`
	FieldPath       string    `json:"fieldPath,omitempty"`
}

// EventSource is the component (and host) that reports an Event.
type EventSource struct {
	Component string `json:"component,omitempty"`
	Host      string `json:"host,omitempty"`
}

// DeepCopyObject implements runtime.Object.
func (n *Node) DeepCopyObject() runtime.Object { return n.DeepCopy() }

// DeepCopy returns a copy of n sharing no memory with it.
func (n *Node) DeepCopy() *Node {
	c := *n
	n.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	c.Status.Addresses = slices.Clone(n.Status.Addresses)
	return &c
}

// DeepCopyObject implements runtime.Object.
func (l *NodeList) DeepCopyObject() runtime.Object {
	c := *l
	l.ListMeta.DeepCopyInto(&c.ListMeta)
	c.Items = deepCopyItems(l.Items)
	return &c
}

// DeepCopyObject implements runtime.Object.
func (p *Pod) DeepCopyObject() runtime.Object { return p.DeepCopy() }

// DeepCopy returns a copy of p sharing no memory with it.
func (p *Pod) DeepCopy() *Pod {
	c := *p
	p.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	return &c
}

// DeepCopyObject implements runtime.Object.
func (l *PodList) DeepCopyObject() runtime.Object {
	c := *l
	l.ListMeta.DeepCopyInto(&c.ListMeta)
	c.Items = deepCopyItems(l.Items)
	return &c
}

// deepCopyItems copies a list's items, each with its own DeepCopy, sharing no memory with items.
func deepCopyItems[T any, P interface {
	*T
	DeepCopy() *T
}](items []T) []T {
	c := make([]T, len(items))
	for i := range items {
		c[i] = *P(&items[i]).DeepCopy()
	}
	return c
}

// DeepCopyObject implements runtime.Object.
func (e *Event) DeepCopyObject() runtime.Object { return e.DeepCopy() }

// DeepCopy returns a copy of e sharing no memory with it.
func (e *Event) DeepCopy() *Event {
	c := *e
	e.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	return &c
}

// dropManagedFields is the informers' transform: the server-side-apply bookkeeping in every
// object's metadata is not kept in the cache (the agent never reads it).
func dropManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
