package agent_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/containernetworking/cni/libcni"
	cniversion "github.com/containernetworking/cni/pkg/version"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/cni"
)

// The conflist must be accepted by runtimes on both sides of libcni 1.2: containerd 1.6/1.7
// (libcni 1.1, reads cniVersion only, knows results up to 1.0.0) and containerd 2.x (reads
// cniVersions, gets 1.1.0 and with it STATUS).
func TestConfListNegotiatesOldAndNewRuntimes(t *testing.T) {
	cfg := agent.Config{Socket: "/run/vpcnet/vpcnetd.sock", MTU: 9001, VethPrefix: "eni", StateDir: "/var/lib/vpcnet"}
	raw := cfg.ConfList()

	// libcni >= 1.2 (this module's): the highest of cniVersions it implements.
	list, err := libcni.NetworkConfFromBytes(raw)
	if err != nil {
		t.Fatalf("libcni refuses the conflist: %v\n%s", err, raw)
	}
	if list.CNIVersion != "1.1.0" || list.Name != "vpcnet" || len(list.Plugins) != 1 || list.Plugins[0].Network.Type != "vpcnet-cni" {
		t.Fatalf("libcni %s negotiated %q name %q plugins %d; want 1.1.0, vpcnet, one vpcnet-cni", cniversion.Current(), list.CNIVersion, list.Name, len(list.Plugins))
	}

	// libcni 1.1 ignores cniVersions: it uses cniVersion, which must be one it knows a result
	// of (its version.Current() is 1.0.0).
	var fields struct {
		CNIVersion  string   `json:"cniVersion"`
		CNIVersions []string `json:"cniVersions"`
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	if fields.CNIVersion != "1.0.0" {
		t.Fatalf("cniVersion %q: libcni 1.1 (containerd 1.6/1.7) fails ADD on results newer than 1.0.0", fields.CNIVersion)
	}
	if !slices.Contains(fields.CNIVersions, "1.1.0") || !slices.Contains(fields.CNIVersions, "1.0.0") {
		t.Fatalf("cniVersions %q: want 1.0.0 and 1.1.0", fields.CNIVersions)
	}

	// Either way the plugin gets a config it accepts, at a version it supports.
	for _, v := range []string{fields.CNIVersion, list.CNIVersion} {
		if !slices.Contains(cni.Supported.SupportedVersions(), v) {
			t.Errorf("the plugin does not support %s (it supports %v)", v, cni.Supported.SupportedVersions())
		}
		conf, err := libcni.InjectConf(list.Plugins[0], map[string]any{"cniVersion": v, "name": list.Name})
		if err != nil {
			t.Fatal(err)
		}
		nc, err := cni.ParseConfig(conf.Bytes)
		if err != nil {
			t.Errorf("plugin refuses its config at %s: %v", v, err)
			continue
		}
		if nc.CNIVersion != v || nc.AgentSocket != cfg.Socket || nc.StateDir != "/var/lib/vpcnet/cni" {
			t.Errorf("plugin config at %s: %+v", v, nc)
		}
	}
}

// With PortMap (VPCNET_CNI_PORTMAP) the conflist chains portmap after vpcnet-cni with the
// portMappings capability, so a runtime hands it the pod's hostPort entries; without it the
// list holds vpcnet-cni alone (a runtime with no portmap binary would fail every ADD).
func TestConfListChainsPortmap(t *testing.T) {
	for _, on := range []bool{false, true} {
		cfg := agent.Config{Socket: "/run/vpcnet/vpcnetd.sock", MTU: 9001, VethPrefix: "eni", StateDir: "/var/lib/vpcnet", PortMap: on}
		list, err := libcni.NetworkConfFromBytes(cfg.ConfList())
		if err != nil {
			t.Fatalf("PortMap %v: libcni refuses the conflist: %v", on, err)
		}
		if !on {
			if len(list.Plugins) != 1 {
				t.Errorf("PortMap off: %d plugins, want vpcnet-cni alone", len(list.Plugins))
			}
			continue
		}
		if len(list.Plugins) != 2 || list.Plugins[0].Network.Type != "vpcnet-cni" || list.Plugins[1].Network.Type != "portmap" {
			t.Fatalf("PortMap on: plugins %d, want vpcnet-cni then portmap", len(list.Plugins))
		}
		if !list.Plugins[1].Network.Capabilities["portMappings"] {
			t.Errorf("portmap without the portMappings capability: the runtime would not pass hostPorts: %s", list.Plugins[1].Bytes)
		}
	}
}
