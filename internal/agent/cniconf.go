package agent

import (
	"encoding/json"
	"path/filepath"
	"time"

	"github.com/vpcnet/vpcnet/internal/atomicfile"
	"github.com/vpcnet/vpcnet/internal/ipam"
)

// ConfCNIVersion and ConfCNIVersions are the CNI spec versions the conflist offers. A runtime
// whose libcni reads "cniVersions" (libcni >= 1.2: containerd 2.x, CRI-O) picks the highest it
// knows, 1.1.0, and so calls STATUS (and GC); an older one (libcni 1.1: containerd 1.6/1.7) reads
// only "cniVersion" and must get a version it can parse a result of: 1.0.0. A 1.1.0-only
// conflist made those fail ADD with `unsupported CNI result version "1.1.0"` after the pod was
// wired. The plugin supports both (internal/cni.Supported).
const ConfCNIVersion = "1.0.0"

// ConfCNIVersions lists every version the conflist offers, lowest first.
var ConfCNIVersions = []string{"1.0.0", "1.1.0"}

// ConfList is the CNI network configuration the agent writes (docs/CONTRACTS.md): vpcnet-cni,
// then, with PortMap, upstream's portmap plugin with the portMappings capability (the runtime
// passes a pod's hostPort entries to it, as the AWS VPC CNI's 10-aws.conflist does) and snat,
// so a hostPort answers on the node's addresses and on its loopback.
func (c Config) ConfList() []byte {
	plugins := []map[string]any{{
		"type":        "vpcnet-cni",
		"agentSocket": c.Socket,
		"mtu":         c.MTU,
		"vethPrefix":  c.VethPrefix,
		"stateDir":    filepath.Join(c.StateDir, "cni"),
	}}
	if c.PortMap {
		plugins = append(plugins, map[string]any{
			"type":         "portmap",
			"capabilities": map[string]bool{"portMappings": true},
			"snat":         true,
		})
	}
	b, _ := json.MarshalIndent(map[string]any{
		"cniVersion":  ConfCNIVersion,
		"cniVersions": ConfCNIVersions,
		"name":        "vpcnet",
		"plugins":     plugins,
	}, "", "  ")
	return append(b, '\n')
}

// maybeWriteConfLocked writes the CNI config once the agent has started and its first growth is
// over: an address is free, or the pool does not grow now (its target is 0, it is at a limit,
// the subnet or the cloud fails). The container runtime starts sending pods only then; an ADD
// that finds no free address makes the pool grow and gets try-again. Readiness never waits for a
// free address the policy will not fetch (issue 12 item 1).
func (a *Agent) maybeWriteConfLocked(sum ipam.Summary) {
	if a.st.confWritten || !a.st.started || a.cfg.CNIConfDir == "" {
		return
	}
	if sum.Free == 0 && a.growingLocked(time.Now()) {
		return
	}
	path := filepath.Join(a.cfg.CNIConfDir, a.cfg.CNIConfName)
	if err := atomicfile.Write(path, a.cfg.ConfList(), 0o644, 0o755); err != nil {
		a.log.Error("writing the CNI config", "path", path, "err", err)
		return
	}
	a.st.confWritten = true
	a.log.Info("ready: wrote the CNI config", "path", path, "free", sum.Free)
}
