package agent

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/vpcnet/vpcnet/internal/ipam"
)

// ConfList is the CNI network configuration the agent writes (docs/CONTRACTS.md).
func (c Config) ConfList() []byte {
	b, _ := json.MarshalIndent(map[string]any{
		"cniVersion": "1.1.0",
		"name":       "vpcnet",
		"plugins": []map[string]any{{
			"type":        "vpcnet-cni",
			"agentSocket": c.Socket,
			"mtu":         c.MTU,
			"vethPrefix":  c.VethPrefix,
			"stateDir":    filepath.Join(c.StateDir, "cni"),
		}},
	}, "", "  ")
	return append(b, '\n')
}

// maybeWriteConfLocked writes the CNI config once the agent can first hand out an address: the
// container runtime starts sending pods only then.
func (a *Agent) maybeWriteConfLocked(sum ipam.Summary) {
	if a.st.confWritten || !a.st.started || sum.Free == 0 || a.cfg.CNIConfDir == "" {
		return
	}
	path := filepath.Join(a.cfg.CNIConfDir, a.cfg.CNIConfName)
	if err := writeAtomic(path, a.cfg.ConfList()); err != nil {
		a.log.Error("writing the CNI config", "path", path, "err", err)
		return
	}
	a.st.confWritten = true
	a.log.Info("ready: wrote the CNI config", "path", path, "free", sum.Free)
}

// writeAtomic writes data to a temporary file beside path, fsyncs it and renames it into place.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
