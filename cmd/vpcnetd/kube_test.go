package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// An invalid NODE_NAME is refused like any bad setting: exit 2, one line, nothing created; with
// --check-settings too. Unset, or set outside a cluster, it changes nothing.
func TestBadNodeNameTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	base := []string{"VPCNET_STATE_DIR=" + dir + "/state", "VPCNET_SOCKET=" + dir + "/run/x.sock", "VPCNET_CNI_CONF_DIR=" + dir + "/net.d",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1", "AWS_REGION=us-east-1", "KUBERNETES_SERVICE_HOST=127.0.0.1"}
	for _, args := range [][]string{nil, {"--check-settings"}} {
		var out, errb bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		code := run(ctx, args, append(base, "NODE_NAME=Bad_Node"), &out, &errb)
		cancel()
		if code != 2 || !strings.HasPrefix(errb.String(), `vpcnetd: NODE_NAME: "Bad_Node" is not a node name`) || strings.Count(errb.String(), "\n") != 1 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
	// One short line in the settings' form, what a node name may hold said in words (it used to
	// be ~300 characters ending in Kubernetes' regular expression); a long value is cut.
	for _, name := range []string{"Bad_Node", "node-", "a..b", strings.Repeat("n", 300)} {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"--check-settings"}, append(base, "NODE_NAME="+name), &out, &errb)
		line := strings.TrimSuffix(errb.String(), "\n")
		if code != 2 || !strings.HasPrefix(line, "vpcnetd: NODE_NAME: \"") || strings.Contains(line, "\n") || len(line) > 220 ||
			strings.ContainsAny(line, "[]*?") || !strings.Contains(line, "lowercase letters, digits, - and .") {
			t.Errorf("NODE_NAME=%.20s...: exit %d, %d characters: %q", name, code, len(line), line)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("a refused start created %v", left)
	}
	for _, env := range [][]string{base, append(base, "NODE_NAME=ip-10-0-1-10.ec2.internal")} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"--check-settings"}, env, &out, &errb); code != 0 {
			t.Fatalf("--check-settings with %v: exit %d, %q", env, code, errb.String())
		}
	}
}

// TestKubernetesSideIsSlim guards vpcnetd's resident memory (issue 16 item 7: at most 25 MiB
// with 250 pods, paid on every node). The Kubernetes side stays in this one binary (a second
// process would add its own runtime and heap to the node), but talks to the API server through
// one core/v1 rest.RESTClient with a scheme of the three kinds it uses, declared with only the
// fields it reads (internal/k8s/rest.go, types.go), client-go's cache informers and its own event
// writer (internal/k8s/events.go). Client-go's Clientset
// (k8s.io/client-go/kubernetes...), informer factory and listers, and the all-groups scheme
// (kubernetes/scheme) link typed clients, informers and types of some 60 API groups: about 9 MiB
// of resident memory (BENCHMARKS.md, "vpcnetd's resident memory"), whatever the agent does. Nor may the test-only API server (k8stest, client-go's fake and testing) reach it.
func TestKubernetesSideIsSlim(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", buildTag, ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/vpcnet/vpcnet/internal/k8s") {
		t.Fatal("vpcnetd no longer links its Kubernetes side (internal/k8s)")
	}
	for _, p := range deps {
		for _, banned := range []string{"k8s.io/client-go/kubernetes", "k8s.io/client-go/informers", "k8s.io/client-go/listers", "k8s.io/client-go/testing",
			"k8s.io/client-go/applyconfigurations", "github.com/vpcnet/vpcnet/internal/k8s/k8stest",
			// client-go's event recorder: its patch builder links the OpenAPI models
			// (kube-openapi, gnostic) and their parsers, 1.2 MiB resident (internal/k8s/events.go).
			"k8s.io/client-go/tools/record", "k8s.io/apimachinery/pkg/util/strategicpatch", "k8s.io/kube-openapi/pkg/util/proto", "github.com/google/gnostic-models",
			// the typed structs of every API kind, with their protobuf code and documentation
			// maps built at start: the agent has its own Node, Pod and Event (internal/k8s/types.go).
			"k8s.io/api"} {
			if p == banned || strings.HasPrefix(p, banned+"/") {
				t.Errorf("vpcnetd links %s", p)
			}
		}
	}
}

// TestCloudSideIsSlim (issue 16 item 7): vpcnetd builds its EC2 client from the SDK's parts, not
// config.LoadDefaultConfig, whose credential chain links the shared files' SSO, SSO-OIDC and
// sign-in clients and the credential_process runner: 1.5 MiB of resident code and 0.5 MiB of
// endpoint and schema tables built at start (BENCHMARKS.md). Fails if one of them comes back;
// the sources the agent keeps (IMDS, the container endpoint, web identity) must stay linked.
func TestCloudSideIsSlim(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", buildTag, ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	deps := strings.Fields(string(out))
	for _, kept := range []string{"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds", "github.com/aws/aws-sdk-go-v2/credentials/endpointcreds",
		"github.com/aws/aws-sdk-go-v2/credentials/stscreds"} {
		if !slices.Contains(deps, kept) {
			t.Errorf("vpcnetd no longer links %s: a credential source is gone (internal/cloud/awsenv.go)", kept)
		}
	}
	for _, p := range deps {
		for _, banned := range []string{"github.com/aws/aws-sdk-go-v2/config", "github.com/aws/aws-sdk-go-v2/service/sso",
			"github.com/aws/aws-sdk-go-v2/service/ssooidc", "github.com/aws/aws-sdk-go-v2/service/signin",
			"github.com/aws/aws-sdk-go-v2/credentials/ssocreds", "github.com/aws/aws-sdk-go-v2/credentials/logincreds",
			"github.com/aws/aws-sdk-go-v2/credentials/processcreds"} {
			if p == banned || strings.HasPrefix(p, banned+"/") {
				t.Errorf("vpcnetd links %s", p)
			}
		}
	}
}
