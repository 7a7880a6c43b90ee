// Command vpcnet-cni is the vpcnet CNI plugin, run by the container runtime for every pod.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/vpcnet/vpcnet/internal/cni"
)

func main() {
	skel.PluginMainFuncs(cni.Funcs(), cni.Supported, cni.About)
}
