package k8s

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// The agent talks to the API server through one rest.RESTClient for the core group (v1), whose
// scheme holds only the kinds it reads or writes: Node, Pod and Event (with their lists), plus
// meta/v1's options, Status and WatchEvent. Not client-go's Clientset, informer factory or
// all-groups scheme (k8s.io/client-go/kubernetes...): linked, those are about 8 MiB of the
// agent's resident memory whatever it does (issue 16 item 7, BENCHMARKS.md "vpcnetd's resident
// memory"), for typed clients of some 60 API groups it never calls. What it calls is exactly
// deploy/vpcnet.yaml's ClusterRole (TestClusterRoleIsExactlyWhatTheAgentCalls):
//
//	nodes:  list, watch (its own Node, by field selector metadata.name), patch (annotations)
//	pods:   list, watch (the pods with spec.nodeName = the node)
//	events: create, patch (a repeated event is folded into a count, events.go)

// scheme is the agent's Kubernetes scheme.
var scheme = newScheme()

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	s.AddKnownTypes(corev1.SchemeGroupVersion,
		&corev1.Node{}, &corev1.NodeList{},
		&corev1.Pod{}, &corev1.PodList{},
		&corev1.Event{}, &corev1.EventList{})
	metav1.AddToGroupVersion(s, corev1.SchemeGroupVersion)
	return s
}

// jsonOnly is the client's serializer: JSON only, the API server's default and all the agent
// asks for (no protobuf, CBOR or YAML serializers linked). Objects sent carry their kind and
// apiVersion; objects read are decoded as they come, without conversion (the scheme has one
// version per kind).
type jsonOnly struct{ info runtime.SerializerInfo }

func negotiator() runtime.NegotiatedSerializer {
	plain := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{})
	pretty := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Pretty: true})
	return jsonOnly{runtime.SerializerInfo{
		MediaType:        runtime.ContentTypeJSON,
		MediaTypeType:    "application",
		MediaTypeSubType: "json",
		EncodesAsText:    true,
		Serializer:       plain,
		PrettySerializer: pretty,
		StreamSerializer: &runtime.StreamSerializerInfo{EncodesAsText: true, Serializer: plain, Framer: json.Framer},
	}}
}

func (j jsonOnly) SupportedMediaTypes() []runtime.SerializerInfo {
	return []runtime.SerializerInfo{j.info}
}

func (jsonOnly) EncoderForVersion(e runtime.Encoder, gv runtime.GroupVersioner) runtime.Encoder {
	return runtime.WithVersionEncoder{Version: gv, Encoder: e, ObjectTyper: scheme}
}

func (jsonOnly) DecoderToVersion(d runtime.Decoder, _ runtime.GroupVersioner) runtime.Decoder {
	return runtime.WithoutVersionDecoder{Decoder: d}
}

// NewRESTClient returns the core/v1 client for config (rest.InClusterConfig's, in a pod), which
// New takes. It changes a copy of config: the group version, API path and serializer are the
// core group's.
func NewRESTClient(config *rest.Config) (*rest.RESTClient, error) {
	c := rest.CopyConfig(config)
	c.GroupVersion = &corev1.SchemeGroupVersion
	c.APIPath = "/api"
	c.ContentType = runtime.ContentTypeJSON
	c.AcceptContentTypes = runtime.ContentTypeJSON
	c.NegotiatedSerializer = negotiator()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	return rest.RESTClientFor(c)
}

// patchNode merge-patches the Node named name with patch (JSON).
func patchNode(ctx context.Context, c rest.Interface, name string, patch []byte) error {
	return c.Patch(types.MergePatchType).Resource("nodes").Name(name).Body(patch).Do(ctx).Error()
}
