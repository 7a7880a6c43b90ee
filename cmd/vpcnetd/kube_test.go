package main

import (
	"bytes"
	"context"
	"os"
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
		if code != 2 || !strings.HasPrefix(errb.String(), `vpcnetd: NODE_NAME "Bad_Node" is not a node name`) || strings.Count(errb.String(), "\n") != 1 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errb.String())
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
