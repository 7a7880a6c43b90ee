package k8s

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// EnvMarker is set in the environment of every process the runtime starts, with the value
// <lab dir>/<role> (role: etcd, kube-apiserver, ..., node-<index>). Children inherit it
// (containerd's shims, kubelet's helpers), so `lab down` and the sweep after a crash find
// every one of them from /proc, whatever their parent did.
const EnvMarker = "VPCNET_LAB_K8S"

func marker(labDir, role string) string { return EnvMarker + "=" + filepath.Join(labDir, role) }

// markedPIDs returns the processes carrying the marker of role in the lab, or any marker of
// the lab when role is "".
func markedPIDs(labDir, role string) []int {
	want := marker(labDir, role)
	match := func(kv string) bool { return kv == want }
	if role == "" {
		match = func(kv string) bool { return strings.HasPrefix(kv, EnvMarker+"="+filepath.Clean(labDir)+"/") }
	}
	ents, _ := os.ReadDir("/proc")
	var out []int
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(b, []byte{0}) {
			if match(string(kv)) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

// stopMarked sends SIGTERM to the processes with the marker (see markedPIDs), waits up to
// grace, then SIGKILLs what is left and waits for it to go.
func stopMarked(labDir, role string, grace time.Duration) {
	pids := markedPIDs(labDir, role)
	if len(pids) == 0 {
		return
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		left := 0
		for _, p := range pids {
			if alive(p) {
				left++
			}
		}
		if left == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range 100 {
		pids = markedPIDs(labDir, role)
		n := 0
		for _, p := range pids {
			if alive(p) {
				_ = syscall.Kill(p, syscall.SIGKILL)
				n++
			}
		}
		if n == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
