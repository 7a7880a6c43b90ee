package cni_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	return libcni.NewCNIConfigWithCacheDir([]string{binDir}, filepath.Join(dir, "cache"), &testenv.NodeExec{Node: node}), dir
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
	// Where the plugin would act: CNI_NETNS and CNI_IFNAME are checked first -> 4, naming them.
	file := filepath.Join(dir, "not-a-netns")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ netns, ifname, names string }{
		{"/run/netns/not-there", "eth0", "CNI_NETNS"},
		{file, "eth0", "CNI_NETNS"},
		{"/proc/self/status", "eth0", "CNI_NETNS"}, // passes a filesystem-type test, is no namespace
		{"/proc/self/ns/net", "eth0", "CNI_NETNS"}, // the node's own
		{p.ns.Path(), "lo", "CNI_IFNAME"},
		{p.ns.Path(), "../x", "interface name"}, // refused by skel already, code 4
		{p.ns.Path(), "a-very-long-ifname", "interface name"},
	} {
		rt := *p.rt
		rt.NetNS, rt.IfName = tc.netns, tc.ifname
		_, err := cni.AddNetworkList(bg, conf("1.1.0"), &rt)
		if cniCode(err) != types.ErrInvalidEnvironmentVariables || !strings.Contains(err.Error(), tc.names) {
			t.Errorf("ADD with CNI_NETNS=%s CNI_IFNAME=%s: %v, want code 4 naming %s", tc.netns, tc.ifname, err, tc.names)
		}
	}
	// Config that is wrong for this node -> 7, naming the field.
	for _, tc := range []struct {
		plugin map[string]any
		name   string
		field  string
	}{
		{map[string]any{"agentSocket": sock, "stateDir": file}, "vpcnet", "stateDir"},
		{map[string]any{"agentSocket": sock, "stateDir": filepath.Join(file, "below")}, "vpcnet", "stateDir"},
		{map[string]any{"agentSocket": sock, "stateDir": filepath.Join(dir, "state")}, strings.Repeat("n", 300), "name"},
	} {
		tc.plugin["type"] = "vpcnet-cni"
		b, _ := json.Marshal(map[string]any{"cniVersion": "1.1.0", "name": tc.name, "plugins": []any{tc.plugin}})
		l, err := libcni.ConfListFromBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		for verb, run := range map[string]func() error{
			"ADD":    func() error { _, err := cni.AddNetworkList(bg, l, p.rt); return err },
			"DEL":    func() error { return cni.DelNetworkList(bg, l, p.rt) },
			"STATUS": func() error { return cni.GetStatusNetworkList(bg, l) },
		} {
			if err := run(); cniCode(err) != types.ErrInvalidNetworkConfig || !strings.Contains(err.Error(), `"`+tc.field+`"`) {
				t.Errorf("%s with %s: %v, want code 7 naming %q", verb, tc.field, err, tc.field)
			}
		}
	}
	// VERSION.
	info, err := cni.GetVersionInfo(bg, "vpcnet-cni")
	if err != nil || !slices.Equal(info.SupportedVersions(), []string{"0.4.0", "1.0.0", "1.1.0"}) {
		t.Errorf("VERSION = %v, %v", info, err)
	}
}
