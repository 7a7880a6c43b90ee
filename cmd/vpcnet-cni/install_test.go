package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vpcnet/vpcnet/internal/testenv"
)

// buildPlugin builds the real vpcnet-cni into a temporary directory.
func buildPlugin(t *testing.T) string {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "vpcnet-cni")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/vpcnet-cni")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func run(t *testing.T, name string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

func readSysctl(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/" + key)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestInstallCopiesItselfAtomicallyAndSetsSysctlsInItsNamespace(t *testing.T) {
	testenv.RequireNetns(t)
	bin := buildPlugin(t)
	self, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	// An old plugin is there already and runs (a hard link keeps its inode busy as a runtime's
	// exec would); it is replaced by rename, not overwritten in place.
	old := filepath.Join(dest, "vpcnet-cni")
	if err := os.WriteFile(old, []byte("old plugin"), 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(t.TempDir(), "old-inode")
	if err := os.Link(old, keep); err != nil {
		t.Fatal(err)
	}

	// A chained plugin shipped beside it in the image (deploy/ installs /portmap).
	portmap := filepath.Join(t.TempDir(), "portmap")
	if err := os.WriteFile(portmap, []byte("portmap plugin"), 0o600); err != nil {
		t.Fatal(err)
	}

	node := testenv.NewNS(t)
	rootForward := readSysctl(t, "net/ipv4/ip_forward")
	out, stderr, code := run(t, "nsenter", "--net="+node.Path(), bin, "install", "--plugin", portmap,
		"--sysctl", "net.ipv4.ip_forward=1", "--sysctl=net/ipv4/conf/lo/rp_filter=2", dest)
	if code != 0 {
		t.Fatalf("install: exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "installed "+old) || !strings.Contains(out, "set net/ipv4/ip_forward=1") {
		t.Errorf("install printed %q", out)
	}
	got, err := os.ReadFile(old)
	if err != nil || !bytes.Equal(got, self) {
		t.Fatalf("installed plugin differs from the running binary (%d vs %d bytes, %v)", len(got), len(self), err)
	}
	if fi, _ := os.Stat(old); fi.Mode().Perm() != 0o755 {
		t.Fatalf("installed mode %v, want 0755", fi.Mode())
	}
	if b, _ := os.ReadFile(keep); string(b) != "old plugin" {
		t.Fatalf("the old plugin's inode was written in place: %q", b)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "portmap")); err != nil || string(b) != "portmap plugin" {
		t.Fatalf("--plugin: DEST_DIR/portmap holds %q (%v), want the plugin's bytes", b, err)
	}
	if fi, _ := os.Stat(filepath.Join(dest, "portmap")); fi.Mode().Perm() != 0o755 {
		t.Fatalf("--plugin: installed mode %v, want 0755", fi.Mode())
	}
	if !strings.Contains(out, "installed "+filepath.Join(dest, "portmap")) {
		t.Errorf("install printed %q, want the plugin named", out)
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 2 {
		t.Fatalf("DEST_DIR holds %v, want only vpcnet-cni and portmap", entries)
	}
	// The installed copy is a working plugin.
	if out, _, code := run(t, old, "install", "--help"); code != 0 || !strings.Contains(out, "usage: vpcnet-cni install") {
		t.Fatalf("installed copy: exit %d %q", code, out)
	}
	err = node.Do(func(ns.NetNS) error {
		if v := readSysctl(t, "net/ipv4/ip_forward"); v != "1" {
			t.Errorf("node namespace ip_forward = %s, want 1", v)
		}
		if v := readSysctl(t, "net/ipv4/conf/lo/rp_filter"); v != "2" {
			t.Errorf("node namespace lo rp_filter = %s, want 2", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := readSysctl(t, "net/ipv4/ip_forward"); v != rootForward {
		t.Fatalf("the test's own namespace changed: ip_forward %s -> %s", rootForward, v)
	}
}

func TestInstallRefusesBadInputBeforeWriting(t *testing.T) {
	bin := buildPlugin(t)
	dest := t.TempDir()
	other := filepath.Join(t.TempDir(), "portmap")
	if err := os.WriteFile(other, []byte("portmap plugin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"install"}, "no DEST_DIR"},
		{[]string{"install", filepath.Join(dest, "missing")}, "is not a directory"},
		{[]string{"install", dest, dest}, "unexpected argument"},
		{[]string{"install", "--force", dest}, `unexpected argument "--force"`},
		{[]string{"install", "--sysctl", "net.ipv4.ip_forward", dest}, "want KEY=VALUE"},
		{[]string{"install", "--sysctl", "net/ipv4/../../../etc/passwd=x", dest}, "empty, . or .. part"},
		{[]string{"install", "--sysctl", "net.ipv4.ip_forward=1\n0", dest}, "value has"},
		{[]string{"install", "--sysctl", "net.ipv4.no_such_knob=1", dest}, "no such setting"},
		{[]string{"install", "--plugin", filepath.Join(dest, "missing"), dest}, "no such file"},
		{[]string{"install", "--plugin", dest, dest}, "not a regular file"},
		{[]string{"install", "--plugin", "", dest}, "want the path of a plugin binary"},
		{[]string{"install", "--plugin", bin, dest}, "installed from the running executable"},
		{[]string{"install", "--plugin", other, "--plugin=" + other, dest}, "given twice"},
		// A valid plugin with a refused sysctl: nothing is copied either.
		{[]string{"install", "--plugin", other, "--sysctl", "net.ipv4.no_such_knob=1", dest}, "no such setting"},
	} {
		_, stderr, code := run(t, bin, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: exit %d, %q; want 2 and one line with %q", tc.args, code, stderr, tc.want)
		}
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 0 {
		t.Fatalf("refused installs wrote %v", entries)
	}
}

func TestParseSysctl(t *testing.T) {
	for in, want := range map[string]sysctl{
		"net.ipv4.ip_forward=1":                 {"net/ipv4/ip_forward", "1"},
		"net/ipv4/conf/eth0.100/rp_filter=2":    {"net/ipv4/conf/eth0.100/rp_filter", "2"},
		"net.ipv4.ip_local_port_range=1024 999": {"net/ipv4/ip_local_port_range", "1024 999"},
	} {
		if got, err := parseSysctl(in); err != nil || got != want {
			t.Errorf("parseSysctl(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "=1", "net.ipv4.ip_forward=", "ip_forward=1", "net..x=1", "net.ipv4.x/=1",
		"net/ipv4/./x=1", "/net/ipv4=1", "net.ipv4.x*=1", "net.ipv4.x=" + strings.Repeat("1", 65)} {
		if got, err := parseSysctl(in); err == nil {
			t.Errorf("parseSysctl(%q) = %+v, want an error", in, got)
		}
	}
}

func FuzzParseSysctl(f *testing.F) {
	for _, s := range []string{"net.ipv4.ip_forward=1", "net/ipv4/conf/eth0.5/rp_filter=2", "a/../b=1", "x=\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSysctl(s)
		if err != nil {
			return
		}
		for _, p := range strings.Split(got.Path, "/") {
			if p == "" || p == "." || p == ".." {
				t.Fatalf("parseSysctl(%q) accepted path %q", s, got.Path)
			}
		}
		if got.Value == "" || strings.ContainsAny(got.Value, "\n\x00") || filepath.Clean(got.Path) != got.Path {
			t.Fatalf("parseSysctl(%q) accepted %+v", s, got)
		}
	})
}
