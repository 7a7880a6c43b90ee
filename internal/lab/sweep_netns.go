package lab

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/vpcnet/vpcnet/internal/netnsx"
)

// NamespacePIDs lists the processes whose network namespace is the named one (a lab node's):
// a DaemonSet's vpcnetd runs there under containerd's shims with none of the lab's
// environment or pid files, and is known by its namespace alone. Only namespaces the lab made
// are ever asked about, so nothing outside the lab is found.
func NamespacePIDs(ns string) []int {
	var want syscall.Stat_t
	if err := syscall.Stat(netnsx.Path(ns), &want); err != nil {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", e.Name(), "ns", "net"), &st) == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			out = append(out, pid)
		}
	}
	return out
}
