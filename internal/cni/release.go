package cni

import "github.com/containernetworking/cni/pkg/skel"

// Release runs DEL for one attachment in the calling process, exactly as a runtime's DEL does
// (cmdDel: under the key's lock, unwire what the record names, release the address through the
// agent or queue the release, remove the record). conf is the plugin's network configuration
// as a runtime passes it on stdin. The agent uses it for the attachment of a pod the API server
// no longer has and whose sandbox is gone, which no runtime will DEL (internal/k8s's GC).
func Release(conf []byte, containerID, ifname string) error {
	return cmdDel(&skel.CmdArgs{ContainerID: containerID, IfName: ifname, StdinData: conf})
}
