// Package deploy holds vpcnet's Kubernetes manifests (the YAML files beside this test, applied
// with `kubectl apply -f deploy/`) and the test that decodes them strictly into the Kubernetes
// API types and checks them against vpcnetd's own settings table, so the two cannot drift.
package deploy

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/vpcnet/vpcnet/internal/ipam"
)

// envNotSettings are variables the manifest sets that are not in vpcnetd's settings table, each
// with the reason.
var envNotSettings = map[string]string{
	"NODE_NAME": "the Node this pod runs on (downward API), read by cmd/vpcnetd/kube.go for the agent's Kubernetes side",
}

// settingDefaults parses cmd/vpcnetd/config.go's settings table: variable name -> default.
func settingDefaults(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join("..", "cmd", "vpcnetd", "config.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "settings" || len(vs.Values) != 1 {
			return true
		}
		for _, e := range vs.Values[0].(*ast.CompositeLit).Elts {
			fields := e.(*ast.CompositeLit).Elts
			out[stringValue(t, fields[0])] = stringValue(t, fields[1])
		}
		return false
	})
	if len(out) < 20 {
		t.Fatalf("found %d settings in cmd/vpcnetd/config.go; did its table change shape?", len(out))
	}
	return out
}

// durationDefaults are the duration constants config.go's settings table names as defaults
// (pkg.Name.String()), by that name.
var durationDefaults = map[string]time.Duration{
	"ipam.DefaultReleaseDelay":        ipam.DefaultReleaseDelay,
	"ipam.DefaultWarmENIReleaseDelay": ipam.DefaultWarmENIReleaseDelay,
}

// stringValue is a string literal's value, or a constant pkg.Name's from internal/pkg.
func stringValue(t *testing.T, e ast.Expr) string {
	t.Helper()
	switch v := e.(type) {
	case *ast.BasicLit:
		s, err := strconv.Unquote(v.Value)
		if err != nil {
			t.Fatal(err)
		}
		return s
	case *ast.SelectorExpr:
		pkg := v.X.(*ast.Ident).Name
		for _, f := range parseGoFiles(t, filepath.Join("..", "internal", pkg)) {
			if obj := f.Scope.Lookup(v.Sel.Name); obj != nil {
				if vs, ok := obj.Decl.(*ast.ValueSpec); ok {
					return stringValue(t, vs.Values[slices.IndexFunc(vs.Names, func(n *ast.Ident) bool { return n.Name == v.Sel.Name })])
				}
			}
		}
		t.Fatalf("constant %s.%s not found", pkg, v.Sel.Name)
	case *ast.CallExpr:
		// pkg.Name.String() of a duration default, as config.go writes the release delays.
		if sel, ok := v.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "String" && len(v.Args) == 0 {
			if c, ok := sel.X.(*ast.SelectorExpr); ok {
				name := c.X.(*ast.Ident).Name + "." + c.Sel.Name
				if d, ok := durationDefaults[name]; ok {
					return d.String()
				}
				t.Fatalf("setting default %s.String(): add %s to durationDefaults", name, name)
			}
		}
	}
	t.Fatalf("setting field %T is not a string", e)
	return ""
}

// defaultImageTag is cmd/vpcnet's DefaultImageTag, the tag `vpcnet image build` gives the image.
func defaultImageTag(t *testing.T) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "cmd", "vpcnet", "image.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	obj := f.Scope.Lookup("DefaultImageTag")
	if obj == nil {
		t.Fatal("cmd/vpcnet/image.go has no DefaultImageTag")
	}
	return stringValue(t, obj.Decl.(*ast.ValueSpec).Values[0])
}

type objects struct {
	sa      *corev1.ServiceAccount
	role    *rbacv1.ClusterRole
	binding *rbacv1.ClusterRoleBinding
	cm      *corev1.ConfigMap
	ds      *appsv1.DaemonSet
}

// load decodes every document of every YAML file in this directory strictly (an unknown or
// misspelt field is an error) into its API type.
func load(t *testing.T) objects {
	t.Helper()
	files, _ := filepath.Glob("*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests in deploy/")
	}
	var o objects
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(b, []byte("\n---\n")) {
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s document %d: %v", file, i, err)
			}
			var target any
			want := ""
			switch meta.Kind {
			case "ServiceAccount":
				o.sa, target, want = &corev1.ServiceAccount{}, &o.sa, "v1"
			case "ClusterRole":
				o.role, target, want = &rbacv1.ClusterRole{}, &o.role, "rbac.authorization.k8s.io/v1"
			case "ClusterRoleBinding":
				o.binding, target, want = &rbacv1.ClusterRoleBinding{}, &o.binding, "rbac.authorization.k8s.io/v1"
			case "ConfigMap":
				o.cm, target, want = &corev1.ConfigMap{}, &o.cm, "v1"
			case "DaemonSet":
				o.ds, target, want = &appsv1.DaemonSet{}, &o.ds, "apps/v1"
			default:
				t.Fatalf("%s document %d: unexpected kind %q", file, i, meta.Kind)
			}
			if meta.APIVersion != want {
				t.Fatalf("%s %s: apiVersion %q, want %q", file, meta.Kind, meta.APIVersion, want)
			}
			if err := yaml.UnmarshalStrict(doc, target); err != nil {
				t.Fatalf("%s %s: %v", file, meta.Kind, err)
			}
		}
	}
	if o.sa == nil || o.role == nil || o.binding == nil || o.cm == nil || o.ds == nil {
		t.Fatalf("missing objects: %+v", o)
	}
	return o
}

func TestManifestDecodesStrictlyAndMatchesTheAgent(t *testing.T) {
	o := load(t)
	defaults := settingDefaults(t)

	if o.sa.Namespace != "kube-system" || o.cm.Namespace != "kube-system" || o.ds.Namespace != "kube-system" {
		t.Errorf("namespaces: sa %q cm %q ds %q, want kube-system", o.sa.Namespace, o.cm.Namespace, o.ds.Namespace)
	}

	// RBAC: exactly these rules, no wildcards.
	want := map[string][]string{
		"nodes":  {"list", "watch", "patch"},
		"pods":   {"list", "watch"},
		"events": {"create", "patch"},
	}
	got := map[string][]string{}
	for _, r := range o.role.Rules {
		if !slices.Equal(r.APIGroups, []string{""}) || len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			t.Errorf("rule %+v: want the core group only", r)
		}
		for _, res := range r.Resources {
			got[res] = append(got[res], r.Verbs...)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ClusterRole grants %v, want exactly %v", got, want)
	}
	if o.binding.RoleRef != (rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: o.role.Name}) ||
		len(o.binding.Subjects) != 1 || o.binding.Subjects[0] != (rbacv1.Subject{Kind: "ServiceAccount", Name: o.sa.Name, Namespace: o.sa.Namespace}) {
		t.Errorf("binding %+v does not bind %s to %s/%s", o.binding, o.role.Name, o.sa.Namespace, o.sa.Name)
	}

	// ConfigMap: vpcnetd's settings, at its defaults.
	for k, v := range o.cm.Data {
		def, ok := defaults[k]
		if !ok {
			t.Errorf("ConfigMap key %s is not a vpcnetd setting", k)
		} else if v != def {
			t.Errorf("ConfigMap %s=%q, vpcnetd's default is %q: the shipped values must be the defaults", k, v, def)
		}
	}
	for _, k := range []string{"WARM_ENI_TARGET", "WARM_IP_TARGET", "MINIMUM_IP_TARGET", "ENABLE_PREFIX_DELEGATION", "WARM_PREFIX_TARGET", "VPCNET_CLUSTER_NAME"} {
		if _, ok := o.cm.Data[k]; !ok {
			t.Errorf("ConfigMap lacks %s", k)
		}
	}

	ds := o.ds.Spec
	pod := ds.Template.Spec
	if ds.Selector == nil || !subset(ds.Selector.MatchLabels, ds.Template.Labels) {
		t.Errorf("selector %v does not match the template's labels %v", ds.Selector, ds.Template.Labels)
	}
	u := ds.UpdateStrategy
	if u.Type != appsv1.RollingUpdateDaemonSetStrategyType || u.RollingUpdate == nil ||
		u.RollingUpdate.MaxUnavailable == nil || *u.RollingUpdate.MaxUnavailable != intstr.FromInt32(1) ||
		(u.RollingUpdate.MaxSurge != nil && *u.RollingUpdate.MaxSurge != intstr.FromInt32(0)) {
		t.Errorf("update strategy %+v: want RollingUpdate, maxUnavailable 1, no surge (one agent per node)", u)
	}
	if !pod.HostNetwork || pod.PriorityClassName != "system-node-critical" || pod.ServiceAccountName != o.sa.Name {
		t.Errorf("hostNetwork %v priorityClassName %q serviceAccountName %q", pod.HostNetwork, pod.PriorityClassName, pod.ServiceAccountName)
	}
	if len(pod.Tolerations) != 1 || pod.Tolerations[0] != (corev1.Toleration{Operator: corev1.TolerationOpExists}) {
		t.Errorf("tolerations %+v, want one {operator: Exists} (every taint)", pod.Tolerations)
	}
	hostPaths := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath == nil {
			t.Errorf("volume %s is not a hostPath", v.Name)
			continue
		}
		hostPaths[v.Name] = v.HostPath.Path
	}
	// mounted returns the host path mounted at path in c, "" if none.
	mounted := func(c corev1.Container, path string) string {
		for _, m := range c.VolumeMounts {
			if m.MountPath == path {
				return hostPaths[m.Name]
			}
		}
		return ""
	}
	image := defaultImageTag(t)

	if len(pod.InitContainers) != 1 {
		t.Fatalf("%d init containers, want 1 (install-cni)", len(pod.InitContainers))
	}
	ic := pod.InitContainers[0]
	if len(ic.Command) < 3 || ic.Command[0] != "/vpcnet-cni" || ic.Command[1] != "install" {
		t.Fatalf("init container command %q, want /vpcnet-cni install ...", ic.Command)
	}
	dest := ic.Command[len(ic.Command)-1]
	if mounted(ic, dest) != "/opt/cni/bin" {
		t.Errorf("init container installs into %s, which is not the host's /opt/cni/bin", dest)
	}
	if !slices.Contains(ic.Command, "net.ipv4.ip_forward=1") || ic.SecurityContext == nil || ic.SecurityContext.Privileged == nil || !*ic.SecurityContext.Privileged {
		t.Errorf("init container %q must set net.ipv4.ip_forward=1, privileged (/proc/sys)", ic.Command)
	}

	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1 (vpcnetd)", len(pod.Containers))
	}
	c := pod.Containers[0]
	// hostPort: the agent chains portmap, and install-cni puts the image's /portmap (packed by
	// vpcnet image build) in the node's CNI bin directory, where the runtime looks for it.
	portmap := false
	for _, e := range c.Env {
		portmap = portmap || e.Name == "VPCNET_CNI_PORTMAP" && e.Value == "true"
	}
	if !portmap || !slices.Contains(ic.Command, "--plugin") || !slices.Contains(ic.Command, "/portmap") {
		t.Errorf("hostPort: agent env VPCNET_CNI_PORTMAP=true %v, init container %q installs /portmap: want both", portmap, ic.Command)
	}
	for _, ctr := range []corev1.Container{ic, c} {
		if ctr.Image != image {
			t.Errorf("container %s runs %q, want %q (what vpcnet image build tags)", ctr.Name, ctr.Image, image)
		}
	}
	if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Errorf("agent container must be privileged (netlink, nftables, /proc/sys)")
	}
	for setting, dir := range map[string]string{
		"VPCNET_SOCKET":       filepath.Dir(defaults["VPCNET_SOCKET"]),
		"VPCNET_STATE_DIR":    defaults["VPCNET_STATE_DIR"],
		"VPCNET_CNI_CONF_DIR": defaults["VPCNET_CNI_CONF_DIR"],
	} {
		if got := mounted(c, dir); got != dir {
			t.Errorf("%s: agent has host path %q at %s, want the host's %s at the same path (the plugin and runtime use it there)", setting, got, dir, dir)
		}
	}
	host, port, err := net.SplitHostPort(defaults["VPCNET_METRICS_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Host != host || p.HTTPGet.Port.String() != port {
			t.Errorf("%s probe %+v: want httpGet on %s", what, p, defaults["VPCNET_METRICS_ADDR"])
		}
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("readiness probe path %q, want /healthz", c.ReadinessProbe.HTTPGet.Path)
	}
	// Both probes ask paths the agent serves (internal/agent/http.go's routes); liveness is
	// /v1/status, which takes the agent's lock, so a wedged agent fails it.
	routes, err := os.ReadFile(filepath.Join("..", "internal", "agent", "http.go"))
	if err != nil {
		t.Fatal(err)
	}
	for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p != nil && p.HTTPGet != nil && !bytes.Contains(routes, []byte(strconv.Quote("GET "+p.HTTPGet.Path))) {
			t.Errorf("%s probe path %q is not a route of the agent (internal/agent/http.go)", what, p.HTTPGet.Path)
		}
	}
	if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path != "/v1/status" {
		t.Errorf("liveness probe path %q, want /v1/status", c.LivenessProbe.HTTPGet.Path)
	}
	// The old agent must have time to remove its socket on SIGTERM before kubelet kills it.
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g < 5 {
		t.Errorf("terminationGracePeriodSeconds %v: the agent needs a few seconds to hand over", g)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().Value() < 32<<20 {
		t.Errorf("requests %v: want CPU and at least 32 MiB (the footprint bench's 23-24 MiB with 250 pods, and room for the Kubernetes side's caches)", c.Resources.Requests)
	}
	if len(c.Resources.Limits) > 0 {
		t.Errorf("limits %v: an OOM-killed or throttled agent stalls every new pod on its node", c.Resources.Limits)
	}

	// Every variable set is one vpcnetd reads (or listed above with its reason).
	nodeName := false
	for _, e := range c.Env {
		if _, ok := defaults[e.Name]; !ok && envNotSettings[e.Name] == "" {
			t.Errorf("env %s is not a vpcnetd setting", e.Name)
		}
		nodeName = nodeName || e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
	}
	if !nodeName {
		t.Errorf("NODE_NAME does not come from the downward API's spec.nodeName")
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != o.cm.Name || c.EnvFrom[0].Prefix != "" {
		t.Errorf("envFrom %+v, want the ConfigMap %s with no prefix", c.EnvFrom, o.cm.Name)
	}

	// Nothing lab-specific: the endpoints and credentials come the standard AWS ways.
	for _, file := range mustGlob(t, "*.yaml") {
		b, _ := os.ReadFile(file)
		for _, s := range []string{"169.254.169.100", "AWS_EC2_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "METADATA_SERVICE_ENDPOINT", "vpcsim"} {
			if strings.Contains(string(b), s) {
				t.Errorf("%s mentions %s: endpoints and credentials belong to the environment (the lab's overlay), not deploy/", file, s)
			}
		}
	}
}

func subset(a, b map[string]string) bool {
	if len(a) == 0 {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
