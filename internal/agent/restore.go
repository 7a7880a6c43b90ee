package agent

import (
	"errors"
	"path/filepath"

	"github.com/vpcnet/vpcnet/internal/cni"
	"github.com/vpcnet/vpcnet/internal/ipam/store"
)

// PluginStateDir is where the plugin keeps its per-attachment records: the stateDir of the CNI
// config the agent writes (ConfList).
func (c Config) PluginStateDir() string { return filepath.Join(c.StateDir, "cni") }

// restoreFromPlugin reconciles the store with the plugin's attachment records before anything
// is served: the plugin writes a record for every attachment before it wires it and removes it
// only once the pod is unwired, so each record is an address a pod may use. A record whose key
// the store lacks (lost with a damaged, emptied or missing journal) is put back for that key,
// taking the address over from a quarantine key if the damaged record left one. A record the
// store contradicts (the key holds another address, or another key holds the address) is logged
// as an error and, if its address is free, that address is held under a quarantine key so it
// is not handed to a new pod. Store allocations with no record are left to GC.
func (a *Agent) restoreFromPlugin() {
	dir := a.cfg.PluginStateDir()
	recs, err := cni.Attachments(dir)
	if err != nil {
		a.log.Error("reading the plugin's attachment records: allocations lost from the store cannot be restored from them", "dir", dir, "err", err)
	}
	restored := 0
	for _, r := range recs {
		if r.Network == "" || r.ContainerID == "" || r.IfName == "" || !r.Addr.IsValid() {
			a.log.Error("plugin attachment record without a key or an address; ignored", "dir", dir, "record", r)
			continue
		}
		al := store.Alloc{Key: store.Key{Network: r.Network, ContainerID: r.ContainerID, IfName: r.IfName}, Addr: r.Addr, ENI: r.ENI,
			PodNamespace: r.PodNamespace, PodName: r.PodName, PodUID: r.PodUID, Netns: r.Netns}
		ok, err := a.store.Restore(al)
		switch {
		case err == nil && ok:
			restored++
			a.log.Warn("restored an allocation from the plugin's record (the store had lost it)", "key", al.Key.String(), "ip", al.Addr, "pod", r.PodNamespace+"/"+r.PodName)
		case err == nil:
		case errors.Is(err, store.ErrKeyHolds) || errors.Is(err, store.ErrAddrHeld):
			a.log.Error("the plugin's record and the store disagree; the store is kept", "key", al.Key.String(), "ip", al.Addr, "err", err)
			if errors.Is(err, store.ErrKeyHolds) {
				q := al
				q.Key.ContainerID = store.QuarantinePrefix + q.Key.ContainerID
				if _, err := a.store.Restore(q); err == nil {
					a.log.Error("holding the record's address under a quarantine key until GC", "ip", al.Addr, "key", q.Key.String())
				}
			}
		default:
			a.log.Error("restoring an allocation from the plugin's record failed", "key", al.Key.String(), "ip", al.Addr, "err", err)
		}
	}
	if restored > 0 {
		a.log.Error("the allocation store had lost allocations the plugin's records hold; restored them", "restored", restored, "records", len(recs))
	}
}
