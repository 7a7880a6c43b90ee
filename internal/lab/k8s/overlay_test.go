package k8s_test

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpcnet/vpcnet/deploy"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s"
	"github.com/vpcnet/vpcnet/internal/lab/k8s/cache"
	"sigs.k8s.io/yaml"
)

// TestOverlay: the lab's kustomization carries deploy/vpcnet.yaml byte for byte and patches
// only the agent container's env of the DaemonSet the manifest really has; deploy/ itself
// names nothing of the lab. With the cache's kubectl, the rendered DaemonSet has the
// manifest's env plus the lab's, and every other object is unchanged.
func TestOverlay(t *testing.T) {
	cfg := lab.DefaultConfig("ovl")
	cfg.Runtime, cfg.AgentMode = "kubernetes", lab.AgentDaemonSet
	cfg.Agent = map[string]string{"WARM_IP_TARGET": "3"}
	dir := t.TempDir()
	if err := k8s.WriteOverlay(dir, cfg); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "vpcnet.yaml"))
	if err != nil || !bytes.Equal(b, deploy.Manifest) {
		t.Fatalf("vpcnet.yaml in the overlay differs from deploy's (%v)", err)
	}
	env := k8s.OverlayEnv(cfg)
	for k, want := range map[string]string{
		"AWS_ENDPOINT_URL_EC2": "http://169.254.169.100", "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://169.254.169.254",
		"KUBERNETES_SERVICE_HOST": "10.10.1.1", "KUBERNETES_SERVICE_PORT": "6443", "VPCNET_CLUSTER_NAME": "ovl", "WARM_IP_TARGET": "3",
	} {
		if env[k] != want {
			t.Errorf("overlay %s=%q, want %q", k, env[k], want)
		}
	}
	for _, v := range env {
		if _, err := netip.ParseAddr(v); err == nil && bytes.Contains(deploy.Manifest, []byte(v)) {
			t.Errorf("deploy/vpcnet.yaml names the lab's %s", v)
		}
	}
	for _, v := range []string{"169.254.169.100", "AWS_ENDPOINT_URL_EC2", "KUBERNETES_SERVICE_HOST"} {
		if bytes.Contains(deploy.Manifest, []byte(v)) {
			t.Errorf("deploy/vpcnet.yaml names %s: lab-only", v)
		}
	}
	// The patch's target exists in the manifest as named.
	found := false
	for _, doc := range strings.Split(string(deploy.Manifest), "\n---") {
		var obj struct {
			Kind     string
			Metadata struct{ Name, Namespace string }
			Spec     struct {
				Template struct {
					Spec struct {
						Containers []struct{ Name, Image string }
					}
				}
			}
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		if obj.Kind == "DaemonSet" && obj.Metadata.Name == deploy.DaemonSet && obj.Metadata.Namespace == deploy.Namespace {
			for _, c := range obj.Spec.Template.Spec.Containers {
				if c.Name == deploy.AgentContainer && c.Image == deploy.Image {
					found = true
				}
			}
		}
	}
	if !found {
		t.Fatalf("deploy/vpcnet.yaml has no DaemonSet %s/%s with container %s running %s", deploy.Namespace, deploy.DaemonSet, deploy.AgentContainer, deploy.Image)
	}
	bc := cache.Open("", cache.Default)
	if bc.Check("kubernetes") != nil {
		t.Log("kubectl not built: the rendering check needs the cache's kubectl")
		return
	}
	out, err := exec.Command(bc.Bin("kubectl"), "kustomize", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
	docs := strings.Split(string(out), "\n---\n")
	if len(docs) != len(strings.Split(strings.TrimSpace(string(deploy.Manifest)), "\n---")) {
		t.Errorf("rendered %d objects", len(docs))
	}
	for _, d := range docs {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(d), &obj); err != nil {
			t.Fatal(err)
		}
		if obj["kind"] != "DaemonSet" {
			continue
		}
		var ds struct {
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Name string
							Env  []struct{ Name, Value string }
						}
					}
				}
			}
		}
		j, _ := json.Marshal(obj)
		_ = json.Unmarshal(j, &ds)
		got := map[string]string{}
		for _, c := range ds.Spec.Template.Spec.Containers {
			if c.Name == deploy.AgentContainer {
				for _, e := range c.Env {
					got[e.Name] = e.Value
				}
			}
		}
		if _, ok := got["NODE_NAME"]; !ok {
			t.Errorf("rendered agent env lost the manifest's NODE_NAME: %v", got)
		}
		for k, v := range env {
			if got[k] != v {
				t.Errorf("rendered %s=%q, want %q", k, got[k], v)
			}
		}
	}
}
