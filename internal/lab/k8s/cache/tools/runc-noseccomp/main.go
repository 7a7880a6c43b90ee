// Command runc-noseccomp stands in for runc in the lab's containerd (its runtime BinaryName):
// on `create` and `run` it removes linux.seccomp from the bundle's config.json, then execs the
// real runc found beside it (or at $RUNC_REAL) with the same arguments.
//
// Why: the lab builds runc without the seccomp build tag, so it needs no libseccomp, and such a
// runc refuses any seccomp profile ("seccomp: config provided but seccomp not supported"), while
// kubelet always asks for RuntimeDefault on the pod sandbox. This is for the lab only: a pod in
// the lab runs without a seccomp filter.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	real := os.Getenv("RUNC_REAL")
	if real == "" {
		exe, err := os.Executable()
		if err != nil {
			fail(err)
		}
		real = filepath.Join(filepath.Dir(exe), "runc")
	}
	args := os.Args[1:]
	if bundle, ok := bundleOf(args); ok {
		if err := dropSeccomp(filepath.Join(bundle, "config.json")); err != nil {
			fail(err)
		}
	}
	fail(syscall.Exec(real, append([]string{real}, args...), os.Environ()))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "runc-noseccomp:", err)
	os.Exit(1)
}

// globalWithValue are runc's global flags that take a separate value.
var globalWithValue = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true}

// bundleOf finds the bundle directory of a create or run command: --bundle/-b, else the
// working directory. ok is false for every other command.
func bundleOf(args []string) (string, bool) {
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		if globalWithValue[args[i]] {
			i++
		}
		i++
	}
	if i >= len(args) || (args[i] != "create" && args[i] != "run") {
		return "", false
	}
	for j := i + 1; j < len(args); j++ {
		a := args[j]
		switch {
		case a == "--bundle" || a == "-b":
			if j+1 < len(args) {
				return args[j+1], true
			}
		case strings.HasPrefix(a, "--bundle="):
			return strings.TrimPrefix(a, "--bundle="), true
		case strings.HasPrefix(a, "-b="):
			return strings.TrimPrefix(a, "-b="), true
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return ".", true
	}
	return wd, true
}

// dropSeccomp rewrites the OCI config without linux.seccomp, keeping every other field.
func dropSeccomp(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var linux map[string]json.RawMessage
	if raw, ok := cfg["linux"]; !ok || json.Unmarshal(raw, &linux) != nil {
		return nil
	}
	if _, ok := linux["seccomp"]; !ok {
		return nil
	}
	delete(linux, "seccomp")
	if cfg["linux"], err = json.Marshal(linux); err != nil {
		return err
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp := path + ".noseccomp"
	if err := os.WriteFile(tmp, out, fi.Mode().Perm()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
