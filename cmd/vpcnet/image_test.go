package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// staticBinDir builds a tiny static Go program and installs it as vpcnetd, vpcnet-cni and
// portmap (the command only needs static ELF executables; the real binaries take minutes to
// link).
func staticBinDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() { println(\"stand-in\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(bin, "vpcnetd"), src)
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(bin, "vpcnetd"))
	if err != nil {
		t.Fatal(err)
	}
	// A different content for the plugin: bytes after an ELF's sections do not matter to it.
	if err := os.WriteFile(filepath.Join(bin, "vpcnet-cni"), append(b, "plugin"...), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "portmap"), append(b, "portmap"...), 0o700); err != nil {
		t.Fatal(err)
	}
	return bin
}

var digestLine = regexp.MustCompile(`^wrote (\S+): vpcnet.local/vpcnetd:dev linux/(amd64|arm64) digest (sha256:[0-9a-f]{64}) id (sha256:[0-9a-f]{64})\n$`)

func TestImageBuildIsReproducibleAndHoldsTheNodeBinaries(t *testing.T) {
	bin := staticBinDir(t)
	var digests, sums []string
	var last string
	for i := range 2 {
		out := filepath.Join(t.TempDir(), "img.tar")
		if i == 1 { // a newer mtime on the binaries must not change the image
			now := time.Now()
			os.Chtimes(filepath.Join(bin, "vpcnetd"), now, now)
		}
		stdout, stderr, code := vpcnet(t, nil, "image", "build", "--bin-dir", bin, "--out", out)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		m := digestLine.FindStringSubmatch(stdout)
		if m == nil || m[1] != out {
			t.Fatalf("output %q does not say what was written", stdout)
		}
		digests = append(digests, m[3])
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, string(b))
		last = out
	}
	if digests[0] != digests[1] || sums[0] != sums[1] {
		t.Fatalf("two builds of the same binaries differ: digests %v, tarballs equal %v", digests, sums[0] == sums[1])
	}

	tag, _ := name.NewTag(DefaultImageTag)
	img, err := tarball.ImageFromPath(last, &tag)
	if err != nil {
		t.Fatalf("tarball does not hold %s: %v", DefaultImageTag, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/vpcnetd"}) || cf.OS != "linux" {
		t.Fatalf("entrypoint %q os %q, want /vpcnetd on linux", cf.Config.Entrypoint, cf.OS)
	}
	layers, _ := img.Layers()
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(tr)
		want, err := os.ReadFile(filepath.Join(bin, h.Name))
		if err != nil {
			t.Fatalf("unexpected entry %s in the layer", h.Name)
		}
		if h.Mode != 0o755 || h.Typeflag != tar.TypeReg || !bytes.Equal(got, want) || h.ModTime.Unix() != 0 || h.Uid != 0 {
			t.Errorf("%s: mode %o type %c uid %d mtime %v, content equal %v; want 0755 regular, root, epoch, the binary",
				h.Name, h.Mode, h.Typeflag, h.Uid, h.ModTime, bytes.Equal(got, want))
		}
		seen[h.Name] = true
	}
	if len(seen) != 3 || !seen["vpcnetd"] || !seen["vpcnet-cni"] || !seen["portmap"] {
		t.Fatalf("layer holds %v, want vpcnetd, vpcnet-cni and portmap (deploy/'s init container installs /portmap for hostPort)", seen)
	}
}

func TestImageBuildRefusesDynamicOrMissingBinaries(t *testing.T) {
	bin := staticBinDir(t)
	dyn, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := staticELF(dyn); err == nil {
		t.Fatalf("%s is static here; the test needs a dynamically linked system binary", dyn)
	}
	b, _ := os.ReadFile(dyn)
	os.WriteFile(filepath.Join(bin, "vpcnet-cni"), b, 0o755)
	out := filepath.Join(t.TempDir(), "img.tar")
	_, stderr, code := vpcnet(t, nil, "image", "build", "--bin-dir", bin, "--out", out)
	if code != 2 || !strings.Contains(stderr, "vpcnet-cni is dynamically linked") || !strings.Contains(stderr, "CGO_ENABLED=0") {
		t.Fatalf("dynamic plugin: exit %d, %q; want 2 naming it", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a refused build wrote %s", out)
	}
	_, stderr, code = vpcnet(t, nil, "image", "build", "--bin-dir", t.TempDir(), "--out", out)
	if code != 2 || !strings.Contains(stderr, "vpcnetd") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("missing binaries: exit %d, %q; want 2 and one line", code, stderr)
	}
	// No portmap: the error says how to build it from its released module; --portmap names
	// one elsewhere.
	noPortmap := staticBinDir(t)
	elsewhere := filepath.Join(t.TempDir(), "portmap")
	if err := os.Rename(filepath.Join(noPortmap, "portmap"), elsewhere); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = vpcnet(t, nil, "image", "build", "--bin-dir", noPortmap, "--out", out)
	if code != 2 || !strings.Contains(stderr, "no portmap plugin") || !strings.Contains(stderr, "go install -trimpath "+PortmapModule) || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("missing portmap: exit %d, %q; want 2 and one line saying how to build it", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a refused build wrote %s", out)
	}
	if _, stderr, code := vpcnet(t, nil, "image", "build", "--bin-dir", noPortmap, "--portmap", elsewhere, "--out", out); code != 0 {
		t.Fatalf("--portmap %s: exit %d, %q", elsewhere, code, stderr)
	}
	_, stderr, code = vpcnet(t, nil, "image", "build", "--bin-dir", staticBinDir(t), "--out", out, "--tag", "no tag")
	if code != 2 || !strings.Contains(stderr, `"no tag"`) {
		t.Fatalf("bad tag: exit %d, %q; want 2 naming it", code, stderr)
	}
}

// The image build's instructions in docs/kubernetes.md build the portmap the command names.
func TestImageDocBuildsThePortmapTheCommandNames(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "kubernetes.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "go install -trimpath "+PortmapModule+"\n") {
		t.Fatalf("docs/kubernetes.md does not build portmap with `go install -trimpath %s`", PortmapModule)
	}
}
