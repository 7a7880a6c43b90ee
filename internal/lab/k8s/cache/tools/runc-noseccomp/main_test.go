package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestBundleOf(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		bundle string
		ok     bool
	}{
		{[]string{"--root", "/run/r", "--log", "/l.json", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/p", "id"}, "/b", true},
		{[]string{"run", "-b=/c", "id"}, "/c", true},
		{[]string{"--systemd-cgroup", "create", "--bundle=/d", "id"}, "/d", true},
		{[]string{"--root", "create", "start", "id"}, "", false}, // "create" is --root's value
		{[]string{"delete", "--force", "id"}, "", false},
		{[]string{"state", "create"}, "", false},
	} {
		b, ok := bundleOf(tc.args)
		if ok != tc.ok || (ok && b != tc.bundle) {
			t.Errorf("bundleOf(%q) = %q, %v; want %q, %v", tc.args, b, ok, tc.bundle, tc.ok)
		}
	}
}

func TestDropSeccompKeepsTheRest(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	in := `{"ociVersion":"1.2.0","process":{"args":["/pause"]},"linux":{"namespaces":[{"type":"network","path":"/n"}],"seccomp":{"defaultAction":"SCMP_ACT_ERRNO"}}}`
	if err := os.WriteFile(p, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := dropSeccomp(p); err != nil {
		t.Fatal(err)
	}
	var got struct {
		OCIVersion string `json:"ociVersion"`
		Process    struct{ Args []string }
		Linux      map[string]json.RawMessage
	}
	b, _ := os.ReadFile(p)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Linux["seccomp"]; ok {
		t.Fatalf("seccomp still there: %s", b)
	}
	if got.OCIVersion != "1.2.0" || len(got.Process.Args) != 1 || got.Linux["namespaces"] == nil {
		t.Fatalf("other fields lost: %s", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 kept", fi.Mode().Perm())
	}
}

// FuzzDropSeccomp: any config.json either fails with an error or comes out without
// linux.seccomp; it never panics.
func FuzzDropSeccomp(f *testing.F) {
	f.Add([]byte(`{"linux":{"seccomp":{}}}`))
	f.Add([]byte(`{"linux":null}`))
	f.Add([]byte(`[]`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "config.json")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := dropSeccomp(p); err != nil {
			return
		}
		out, _ := os.ReadFile(p)
		var cfg struct{ Linux map[string]json.RawMessage }
		if json.Unmarshal(out, &cfg) == nil && cfg.Linux != nil {
			if _, ok := cfg.Linux["seccomp"]; ok {
				t.Fatalf("seccomp kept: %s", out)
			}
		}
	})
}

// FuzzBundleOf: any argument list is handled without a panic.
func FuzzBundleOf(f *testing.F) {
	f.Add("--root", "create", "--bundle")
	f.Fuzz(func(t *testing.T, a, b, c string) { bundleOf([]string{a, b, c}) })
}
