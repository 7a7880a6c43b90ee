package lab

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// modulePath is this repository's Go module, used to find its source for building.
const modulePath = "github.com/vpcnet/vpcnet"

// Binaries finds vpcnetd and vpcnet-cni next to the running executable, or else builds them
// from the module source above the working directory into dir, statically linked
// (CGO_ENABLED=0). progress hears about a build.
func Binaries(dir string, progress func(string)) (agent, cni string, err error) {
	if exe, err := os.Executable(); err == nil {
		d := filepath.Dir(exe)
		a, c := filepath.Join(d, "vpcnetd"), filepath.Join(d, "vpcnet-cni")
		if isExec(a) && isExec(c) {
			return a, c, nil
		}
	}
	root, err := moduleRoot()
	if err != nil {
		return "", "", fmt.Errorf("vpcnetd and vpcnet-cni are not next to this executable, and %w: build them with `go build ./cmd/...` and put them beside vpcnet", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	progress(fmt.Sprintf("building vpcnetd and vpcnet-cni from %s into %s", root, dir))
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "grpcnotrace", "-o", dir+"/", "./cmd/vpcnetd", "./cmd/vpcnet-cni")
	cmd.Dir = root
	// Static, as the node image needs them (the DaemonSet mode packs these same files): one
	// build instead of a second CGO_ENABLED=0 one at `lab up --agent daemonset`; the flags are
	// those of that build (k8s.PackAgentImage), so either finds the other's in the build cache.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build ./cmd/vpcnetd ./cmd/vpcnet-cni: %v\n%s", err, out)
	}
	return filepath.Join(dir, "vpcnetd"), filepath.Join(dir, "vpcnet-cni"), nil
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// moduleRoot finds this module's go.mod from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			sc := bufio.NewScanner(f)
			ok := sc.Scan() && strings.TrimSpace(strings.TrimPrefix(sc.Text(), "module")) == modulePath
			f.Close()
			if ok {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("the working directory is not inside the %s source", modulePath)
		}
		dir = parent
	}
}
