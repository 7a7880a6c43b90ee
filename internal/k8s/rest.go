package k8s

import (
	"context"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// The agent talks to the API server through one rest.RESTClient for the core group (v1), whose
// scheme holds only the kinds it reads or writes: Node, Pod and Event (types.go, with the lists
// it reads), plus meta/v1's options, Status and WatchEvent. Not client-go's Clientset, informer factory or
// all-groups scheme (k8s.io/client-go/kubernetes...): linked, those are about 8 MiB of the
// agent's resident memory whatever it does (issue 16 item 7, BENCHMARKS.md "vpcnetd's resident
// memory"), for typed clients of some 60 API groups it never calls. What it calls is exactly
// deploy/vpcnet.yaml's ClusterRole (TestClusterRoleIsExactlyWhatTheAgentCalls):
//
//	nodes:  list, watch (its own Node, by field selector metadata.name), patch (annotations)
//	pods:   list, watch (the pods with spec.nodeName = the node)
//	events: create, patch (a repeated event is folded into a count, events.go)

// scheme is the agent's Kubernetes scheme, made when the Kubernetes side starts (an agent
// outside a cluster never builds it).
var scheme = sync.OnceValue(newScheme)

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	s.AddKnownTypes(coreV1, &Node{}, &NodeList{}, &Pod{}, &PodList{}, &Event{})
	metav1.AddToGroupVersion(s, coreV1)
	return s
}

// jsonOnly is the client's serializer: JSON only, the API server's default and all the agent
// asks for (no protobuf, CBOR or YAML serializers linked). Objects sent carry their kind and
// apiVersion; objects read are decoded as they come, without conversion (the scheme has one
// version per kind).
type jsonOnly struct {
	info runtime.SerializerInfo
	s    *runtime.Scheme
}

func negotiator(s *runtime.Scheme) runtime.NegotiatedSerializer {
	plain := json.NewSerializerWithOptions(json.DefaultMetaFactory, s, s, json.SerializerOptions{})
	pretty := json.NewSerializerWithOptions(json.DefaultMetaFactory, s, s, json.SerializerOptions{Pretty: true})
	return jsonOnly{s: s, info: runtime.SerializerInfo{
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

func (j jsonOnly) EncoderForVersion(e runtime.Encoder, gv runtime.GroupVersioner) runtime.Encoder {
	return runtime.WithVersionEncoder{Version: gv, Encoder: e, ObjectTyper: j.s}
}

func (jsonOnly) DecoderToVersion(d runtime.Decoder, _ runtime.GroupVersioner) runtime.Decoder {
	return runtime.WithoutVersionDecoder{Decoder: d}
}

// NewRESTClient returns the core/v1 client for config (rest.InClusterConfig's, in a pod), which
// New takes. It changes a copy of config: the group version, API path and serializer are the
// core group's.
func NewRESTClient(config *rest.Config) (*rest.RESTClient, error) {
	c := rest.CopyConfig(config)
	gv := coreV1
	c.GroupVersion = &gv
	c.APIPath = "/api"
	c.ContentType = runtime.ContentTypeJSON
	c.AcceptContentTypes = runtime.ContentTypeJSON
	c.NegotiatedSerializer = negotiator(scheme())
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	return rest.RESTClientFor(c)
}

// patchNode merge-patches the Node named name with patch (JSON).
func patchNode(ctx context.Context, c rest.Interface, name string, patch []byte) error {
	return c.Patch(types.MergePatchType).Resource("nodes").Name(name).Body(patch).Do(ctx).Error()
}
