// Package k8stest is an API server for the tests of the agent's Kubernetes side: it serves the
// core/v1 REST calls the agent makes (list and watch of nodes and pods, patch of nodes, create,
// update and patch of events) over HTTP from client-go's fake clientset, whose object tracker
// stores the objects, applies merge and strategic-merge patches and feeds watches, and whose
// Actions record every call by verb and resource. So a test runs the agent's real client (its
// REST requests, JSON encoding, watch streams and event sink) against a store it can inspect.
//
// Only tests import it; vpcnetd must not (cmd/vpcnetd's TestKubernetesSideIsSlim).
package k8stest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
)

// kinds are the resources served, by their kind.
var kinds = map[string]string{"nodes": "Node", "pods": "Pod", "events": "Event"}

// Serve starts an API server over cs for the test's lifetime and returns the client config
// that reaches it.
func Serve(t testing.TB, cs *fake.Clientset) *rest.Config {
	srv := httptest.NewServer(&server{cs: cs})
	t.Cleanup(srv.Close)
	return &rest.Config{Host: srv.URL}
}

type server struct{ cs *fake.Clientset }

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, "/api/v1/")
	if !ok {
		fail(w, apierrors.NewNotFound(corev1.Resource(r.URL.Path), ""))
		return
	}
	parts := strings.Split(path, "/")
	ns := ""
	if parts[0] == "namespaces" && len(parts) >= 3 {
		ns, parts = parts[1], parts[2:]
	}
	resource, name := parts[0], ""
	if len(parts) > 1 {
		name = parts[1]
	}
	kind, ok := kinds[resource]
	if !ok || len(parts) > 2 {
		fail(w, apierrors.NewNotFound(corev1.Resource(resource), name))
		return
	}
	gvr, gvk := corev1.SchemeGroupVersion.WithResource(resource), corev1.SchemeGroupVersion.WithKind(kind)
	q := r.URL.Query()
	opts := metav1.ListOptions{FieldSelector: q.Get("fieldSelector"), LabelSelector: q.Get("labelSelector"), ResourceVersion: q.Get("resourceVersion")}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		fail(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	var action k8stesting.Action
	switch {
	case r.Method == http.MethodGet && name == "" && q.Get("watch") == "true":
		if q.Get("sendInitialEvents") == "true" {
			// As an API server without streaming lists answers: client-go's reflector then
			// lists and watches, as it did against the fake clientset.
			fail(w, apierrors.NewBadRequest("sendInitialEvents is not supported"))
			return
		}
		opts.Watch = true
		s.watch(w, r, k8stesting.NewWatchActionWithOptions(gvr, ns, opts))
		return
	case r.Method == http.MethodGet && name == "":
		action = k8stesting.NewListActionWithOptions(gvr, gvk, ns, opts)
	case r.Method == http.MethodGet:
		action = k8stesting.NewGetAction(gvr, ns, name)
	case r.Method == http.MethodPatch && name != "":
		action = k8stesting.NewPatchAction(gvr, ns, name, types.PatchType(r.Header.Get("Content-Type")), body)
	case (r.Method == http.MethodPost && name == "") || (r.Method == http.MethodPut && name != ""):
		obj, err := decode(kind, body)
		if err != nil {
			fail(w, apierrors.NewBadRequest(err.Error()))
			return
		}
		if r.Method == http.MethodPost {
			action = k8stesting.NewCreateAction(gvr, ns, obj)
		} else {
			action = k8stesting.NewUpdateAction(gvr, ns, obj)
		}
	default:
		fail(w, apierrors.NewMethodNotSupported(corev1.Resource(resource), r.Method))
		return
	}
	out, err := s.cs.Invokes(action, nil)
	if err != nil {
		fail(w, err)
		return
	}
	if out == nil {
		fail(w, apierrors.NewNotFound(corev1.Resource(resource), name))
		return
	}
	code := http.StatusOK
	if r.Method == http.MethodPost {
		code = http.StatusCreated
	}
	write(w, code, out)
}

// watch streams the tracker's events as the API server does: one JSON WatchEvent after another
// until the client goes away or the watch ends.
func (s *server) watch(w http.ResponseWriter, r *http.Request, action k8stesting.WatchActionImpl) {
	wi, err := s.cs.InvokesWatch(action)
	if err != nil {
		fail(w, err)
		return
	}
	defer wi.Stop()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return
			}
			raw, err := json.Marshal(typed(ev.Object))
			if err != nil {
				return
			}
			b, _ := json.Marshal(metav1.WatchEvent{Type: string(ev.Type), Object: runtime.RawExtension{Raw: raw}})
			if _, err := w.Write(append(b, '\n')); err != nil {
				return
			}
			flush()
		}
	}
}

func decode(kind string, body []byte) (runtime.Object, error) {
	var obj runtime.Object
	switch kind {
	case "Event":
		obj = &corev1.Event{}
	case "Node":
		obj = &corev1.Node{}
	case "Pod":
		obj = &corev1.Pod{}
	}
	if err := json.Unmarshal(body, obj); err != nil {
		return nil, fmt.Errorf("decoding a %s: %w", kind, err)
	}
	return obj, nil
}

// typed sets obj's kind and apiVersion (the tracker's objects may have none), as the API server's
// answers always do: a client decodes a list or a watch event by them.
func typed(obj runtime.Object) runtime.Object {
	obj = obj.DeepCopyObject()
	obj.GetObjectKind().SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(reflect.TypeOf(obj).Elem().Name()))
	return obj
}

func write(w http.ResponseWriter, code int, obj runtime.Object) {
	b, err := json.Marshal(typed(obj))
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// fail answers err as the API server does: a Status with its code and reason.
func fail(w http.ResponseWriter, err error) {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		st = apierrors.NewInternalError(err)
	}
	s := st.Status()
	s.Kind, s.APIVersion = "Status", "v1"
	b, _ := json.Marshal(s)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(s.Code))
	_, _ = w.Write(b)
}
