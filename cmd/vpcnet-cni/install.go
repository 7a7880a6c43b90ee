package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The install mode: `vpcnet-cni install [--plugin PATH]... [--sysctl KEY=VALUE]... DEST_DIR`, run
// by the DaemonSet's init container (deploy/), so the image needs no shell and no cp.
//
//   - It copies the running executable to DEST_DIR/vpcnet-cni atomically: written beside it as a
//     temporary file, mode 0755, fsynced, renamed over the old one, directory fsynced. A runtime
//     exec'ing the plugin meanwhile runs either the old binary or the new one, never a part (and
//     the rename works while the old one runs, where writing in place fails with ETXTBSY).
//   - Each --plugin copies another CNI plugin shipped in the image the same way, to
//     DEST_DIR/<its file name>: deploy/ installs /portmap, which the agent chains after
//     vpcnet-cni for hostPort (VPCNET_CNI_PORTMAP).
//   - Each --sysctl writes VALUE to /proc/sys/KEY in the caller's namespaces (the node's, from a
//     hostNetwork pod). KEY is dotted (net.ipv4.ip_forward) or slashed (net/ipv4/conf/eth0.5/rp_filter,
//     for names with dots).
//
// Every argument is checked before anything is written. Exit codes: 0 done, 1 failed, 2 bad usage.
const installUsage = "usage: vpcnet-cni install [--plugin PATH]... [--sysctl KEY=VALUE]... DEST_DIR"

// installMode reports whether args (os.Args) ask for the install mode rather than a CNI verb; the
// runtime runs the plugin with no arguments.
func installMode(args []string) bool { return len(args) > 1 && args[1] == "install" }

// sysctl is one checked --sysctl: Path relative to /proc/sys.
type sysctl struct{ Path, Value string }

// parseSysctl checks KEY=VALUE: KEY's parts are letters, digits, '_', '-' (and '.' in the
// slashed form), none empty or "." or ".."; VALUE is 1-64 printable characters.
func parseSysctl(s string) (sysctl, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" || v == "" {
		return sysctl{}, fmt.Errorf("--sysctl %q: want KEY=VALUE", s)
	}
	sep := "."
	if strings.Contains(k, "/") {
		sep = "/"
	}
	parts := strings.Split(k, sep)
	if len(parts) < 2 {
		return sysctl{}, fmt.Errorf("--sysctl %q: key %q has one part; want like net.ipv4.ip_forward", s, k)
	}
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return sysctl{}, fmt.Errorf("--sysctl %q: key %q has an empty, . or .. part", s, k)
		}
		for _, c := range p {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' && sep == "/") {
				return sysctl{}, fmt.Errorf("--sysctl %q: key %q has %q", s, k, c)
			}
		}
	}
	if len(v) > 64 {
		return sysctl{}, fmt.Errorf("--sysctl %q: value longer than 64 characters", s)
	}
	for _, c := range v {
		if c < ' ' || c > '~' {
			return sysctl{}, fmt.Errorf("--sysctl %q: value has %q", s, c)
		}
	}
	return sysctl{Path: strings.Join(parts, "/"), Value: v}, nil
}

// checkPlugin checks a --plugin PATH: a regular file whose name is not vpcnet-cni's (installed
// from the running executable) nor one of seen's (the names given before). It returns the name.
func checkPlugin(path string, seen map[string]bool) (string, error) {
	name := filepath.Base(path)
	if path == "" || name == "." || name == "/" || name == ".." {
		return "", fmt.Errorf("--plugin %q: want the path of a plugin binary", path)
	}
	if name == "vpcnet-cni" {
		return "", fmt.Errorf("--plugin %q: vpcnet-cni is installed from the running executable", path)
	}
	if seen[name] {
		return "", fmt.Errorf("--plugin %q: a plugin named %s is given twice", path, name)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("--plugin %q: %v", path, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("--plugin %q: not a regular file", path)
	}
	return name, nil
}

// runInstall does the install mode for args (after "install"), copying self.
func runInstall(args []string, self string, stdout, stderr io.Writer) int {
	var sysctls []sysctl
	var plugins []string // paths, checked
	names := map[string]bool{}
	var dest string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-h" || a == "--help":
			fmt.Fprintln(stdout, installUsage)
			return 0
		case a == "--plugin" && i+1 < len(args):
			i++
			a = "--plugin=" + args[i]
			fallthrough
		case strings.HasPrefix(a, "--plugin="):
			p := strings.TrimPrefix(a, "--plugin=")
			name, err := checkPlugin(p, names)
			if err != nil {
				fmt.Fprintf(stderr, "vpcnet-cni install: %v\n", err)
				return 2
			}
			names[name] = true
			plugins = append(plugins, p)
		case a == "--sysctl" && i+1 < len(args):
			i++
			a = "--sysctl=" + args[i]
			fallthrough
		case strings.HasPrefix(a, "--sysctl="):
			s, err := parseSysctl(strings.TrimPrefix(a, "--sysctl="))
			if err != nil {
				fmt.Fprintf(stderr, "vpcnet-cni install: %v\n", err)
				return 2
			}
			sysctls = append(sysctls, s)
		case strings.HasPrefix(a, "-") || dest != "":
			fmt.Fprintf(stderr, "vpcnet-cni install: unexpected argument %q; %s\n", a, installUsage)
			return 2
		default:
			dest = a
		}
	}
	if dest == "" {
		fmt.Fprintf(stderr, "vpcnet-cni install: no DEST_DIR; %s\n", installUsage)
		return 2
	}
	if fi, err := os.Stat(dest); err != nil || !fi.IsDir() {
		fmt.Fprintf(stderr, "vpcnet-cni install: DEST_DIR %s is not a directory (%v)\n", dest, err)
		return 2
	}
	for _, s := range sysctls {
		if fi, err := os.Stat(filepath.Join("/proc/sys", s.Path)); err != nil || !fi.Mode().IsRegular() {
			fmt.Fprintf(stderr, "vpcnet-cni install: sysctl %s: no such setting in /proc/sys (%v)\n", s.Path, err)
			return 2
		}
	}
	target := filepath.Join(dest, "vpcnet-cni")
	n, err := copyAtomic(self, target)
	if err != nil {
		fmt.Fprintf(stderr, "vpcnet-cni install: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "installed %s (%d bytes)\n", target, n)
	for _, p := range plugins {
		target := filepath.Join(dest, filepath.Base(p))
		n, err := copyAtomic(p, target)
		if err != nil {
			fmt.Fprintf(stderr, "vpcnet-cni install: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "installed %s (%d bytes)\n", target, n)
	}
	for _, s := range sysctls {
		if err := os.WriteFile(filepath.Join("/proc/sys", s.Path), []byte(s.Value), 0o644); err != nil {
			fmt.Fprintf(stderr, "vpcnet-cni install: sysctl %s=%s: %v\n", s.Path, s.Value, err)
			return 1
		}
		fmt.Fprintf(stdout, "set %s=%s\n", s.Path, s.Value)
	}
	return 0
}

// copyAtomic copies src to dst through a temporary file beside dst and returns the size.
func copyAtomic(src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", src, err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // nothing left after the rename
	n, err := io.Copy(tmp, in)
	if err == nil {
		err = tmp.Chmod(0o755)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		return 0, fmt.Errorf("writing %s: %w", dst, err)
	}
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		err = errors.Join(d.Sync(), d.Close())
		if err != nil {
			return 0, fmt.Errorf("syncing %s: %w", filepath.Dir(dst), err)
		}
	}
	return n, nil
}
