package cni_test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

// bareNode is a node namespace with no agent behind the socket.
func bareNode(t testing.TB) (*libcni.CNIConfig, string) {
	t.Helper()
	needPlugin(t)
	dir := t.TempDir()
	node := testenv.NewNS(t)
	return libcni.NewCNIConfigWithCacheDir([]string{binDir}, filepath.Join(dir, "cache"), &nodeExec{node: node}), dir
}

func confList(t testing.TB, v string, plugin map[string]any) *libcni.NetworkConfigList {
	t.Helper()
	plugin["type"] = "vpcnet-cni"
	b, _ := json.Marshal(map[string]any{"cniVersion": v, "name": "vpcnet", "plugins": []any{plugin}})
	l, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestErrorCodesWithoutAgent(t *testing.T) {
	cni, dir := bareNode(t)
	sock := filepath.Join(dir, "nobody.sock")
	conf := func(v string) *libcni.NetworkConfigList {
		return confList(t, v, map[string]any{"agentSocket": sock, "stateDir": filepath.Join(dir, "state")})
	}
	p := newPod(t, "lonely")

	// STATUS: agent unreachable -> 51.
	if err := cni.GetStatusNetworkList(bg, conf("1.1.0")); cniCode(err) != types.ErrLimitedConnectivity {
		t.Errorf("STATUS without agent: %v, want code 51", err)
	}
	// ADD: agent unreachable -> 11 (try again later).
	if _, err := cni.AddNetworkList(bg, conf("1.1.0"), p.rt); cniCode(err) != types.ErrTryAgainLater {
		t.Errorf("ADD without agent: %v, want code 11", err)
	}
	// DEL without the agent still succeeds, twice, and queues the release.
	for i := 0; i < 2; i++ {
		if err := cni.DelNetworkList(bg, conf("1.1.0"), p.rt); err != nil {
			t.Errorf("DEL %d without agent: %v", i+1, err)
		}
	}
	if q, _ := filepath.Glob(filepath.Join(dir, "state", "vpcnet", "pending", "*.json")); len(q) != 1 {
		t.Errorf("queued releases after DEL without agent: %v, want 1", q)
	}
	// Invalid config names the field -> 7.
	bad := confList(t, "1.1.0", map[string]any{"agentSocket": sock, "mtu": 100000})
	if _, err := cni.AddNetworkList(bg, bad, p.rt); cniCode(err) != types.ErrInvalidNetworkConfig {
		t.Errorf("ADD with mtu 100000: %v, want code 7", err)
	}
	// A spec version we do not speak -> 1.
	if _, err := cni.AddNetworkList(bg, conf("0.3.1"), p.rt); cniCode(err) != types.ErrIncompatibleCNIVersion {
		t.Errorf("ADD at 0.3.1: %v, want code 1", err)
	}
	// Unknown CNI_ARGS without IgnoreUnknown -> 4.
	rt := *p.rt
	rt.Args = [][2]string{{"K8S_POD_NAME", "x"}, {"SURPRISE", "1"}}
	if _, err := cni.AddNetworkList(bg, conf("1.1.0"), &rt); cniCode(err) != types.ErrInvalidEnvironmentVariables {
		t.Errorf("ADD with an unknown CNI_ARGS key: %v, want code 4", err)
	}
	// A sandbox that is not there -> 8.
	gone := *p.rt
	gone.NetNS = "/run/netns/not-there"
	if _, err := cni.AddNetworkList(bg, conf("1.1.0"), &gone); cniCode(err) != types.ErrInvalidNetNS {
		t.Errorf("ADD with a missing netns: %v, want code 8", err)
	}
	// VERSION.
	info, err := cni.GetVersionInfo(bg, "vpcnet-cni")
	if err != nil || !slices.Equal(info.SupportedVersions(), []string{"0.4.0", "1.0.0", "1.1.0"}) {
		t.Errorf("VERSION = %v, %v", info, err)
	}
}
