// Command vpcnet-cni is the vpcnet CNI plugin, run by the container runtime for every pod.
package main

import (
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/vpcnet/vpcnet/internal/cni"
)

func main() {
	if installMode(os.Args) { // the DaemonSet's init container (install.go)
		os.Exit(runInstall(os.Args[2:], "/proc/self/exe", os.Stdout, os.Stderr))
	}
	skel.PluginMainFuncs(cni.Funcs(), cni.Supported, cni.About)
}
