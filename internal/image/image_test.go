package image_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/vpcnet/vpcnet/internal/image"
)

type member struct {
	mode    int64
	typ     byte
	content string
	mtime   int64
	uid     int
}

func TestBuildIsReproducibleAndHoldsTheFiles(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "tool")
	if err := os.WriteFile(tool, []byte("#!binary\x00\x01"), 0o600); err != nil {
		t.Fatal(err)
	}
	build := func(touch bool) (string, [32]byte) {
		if touch { // a fresh mtime and mode on the source must not change the image
			if err := os.Chtimes(tool, nowish(), nowish()); err != nil {
				t.Fatal(err)
			}
			os.Chmod(tool, 0o644)
		}
		// Given in a different order each time: the layer sorts them.
		files := []image.File{
			{Path: "/usr/bin/tool", Source: tool, Mode: 0o755},
			{Path: "etc/motd", Data: []byte("hello\n"), Mode: 0o644},
			{Path: "/agent", Data: []byte("agent"), Mode: fs.ModeSetuid | 0o750},
		}
		if touch {
			slices.Reverse(files)
		}
		img, err := image.Build(files, image.Config{Entrypoint: []string{"/agent"}, Cmd: []string{"--x"}, Env: []string{"A=b"}})
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "img.tar")
		if err := image.Write(out, img, "vpcnet.local/test:dev"); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return d.String(), sha256.Sum256(b)
	}
	d1, sum1 := build(false)
	d2, sum2 := build(true)
	if d1 != d2 {
		t.Fatalf("image digest differs between two builds of the same inputs: %s vs %s", d1, d2)
	}
	if sum1 != sum2 {
		t.Fatalf("tarball bytes differ between two builds of the same inputs")
	}

	// Read the written tarball back as a runtime would.
	out := filepath.Join(t.TempDir(), "img.tar")
	img, _ := image.Build([]image.File{
		{Path: "/usr/bin/tool", Source: tool, Mode: 0o755},
		{Path: "etc/motd", Data: []byte("hello\n"), Mode: 0o644},
		{Path: "/agent", Data: []byte("agent"), Mode: fs.ModeSetuid | 0o750},
	}, image.Config{Entrypoint: []string{"/agent"}, Cmd: []string{"--x"}, Env: []string{"A=b"}})
	if err := image.Write(out, img, "vpcnet.local/test:dev"); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("vpcnet.local/test:dev")
	back, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("reading the tarball back by its tag: %v", err)
	}
	// A docker archive stores the config and the layers, not the manifest: compare those.
	wantCfg, _ := img.ConfigName()
	if c, err := back.ConfigName(); err != nil || c != wantCfg {
		t.Fatalf("config digest (image ID) read back %s, %v; built %s", c, err, wantCfg)
	}
	cf, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture == "" || !slices.Equal(cf.Config.Entrypoint, []string{"/agent"}) ||
		!slices.Equal(cf.Config.Cmd, []string{"--x"}) || !slices.Equal(cf.Config.Env, []string{"A=b"}) || !cf.Created.Time.Equal(image.Epoch) {
		t.Fatalf("config: os=%q arch=%q entrypoint=%q cmd=%q env=%q created=%v", cf.OS, cf.Architecture, cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.Env, cf.Created)
	}
	layers, err := back.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := map[string]member{}
	var order []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[h.Name] = member{mode: h.Mode, typ: h.Typeflag, content: string(b), mtime: h.ModTime.Unix(), uid: h.Uid + h.Gid}
		order = append(order, h.Name)
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner names %q/%q, want none", h.Name, h.Uname, h.Gname)
		}
	}
	want := map[string]member{
		"agent":        {mode: 0o4750, typ: tar.TypeReg, content: "agent"},
		"etc/":         {mode: 0o755, typ: tar.TypeDir},
		"etc/motd":     {mode: 0o644, typ: tar.TypeReg, content: "hello\n"},
		"usr/":         {mode: 0o755, typ: tar.TypeDir},
		"usr/bin/":     {mode: 0o755, typ: tar.TypeDir},
		"usr/bin/tool": {mode: 0o755, typ: tar.TypeReg, content: "#!binary\x00\x01"},
	}
	if len(got) != len(want) {
		t.Fatalf("layer holds %v, want %d entries", order, len(want))
	}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("layer entry %s = %+v, want %+v", n, got[n], w)
		}
	}
	if !slices.Equal(order, []string{"agent", "etc/", "etc/motd", "usr/", "usr/bin/", "usr/bin/tool"}) {
		t.Errorf("layer order %v, want sorted with parents first", order)
	}
}

func TestBuildRejectsBadInputNamingTheFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		files []image.File
		want  string
	}{
		{nil, "no files"},
		{[]image.File{{Path: "", Data: []byte{}}}, `""`},
		{[]image.File{{Path: "/", Data: []byte{}}}, `"/"`},
		{[]image.File{{Path: "../etc/x", Data: []byte{}}}, `"../etc/x"`},
		{[]image.File{{Path: "/a/../b", Data: []byte{}}}, `"/a/../b"`},
		{[]image.File{{Path: "/a/", Data: []byte{}}}, `"/a/"`},
		{[]image.File{{Path: "/a", Data: []byte{}}, {Path: "a", Data: []byte{}}}, "given twice"},
		{[]image.File{{Path: "/a", Data: []byte{}}, {Path: "/a/b", Data: []byte{}}}, "also a file"},
		{[]image.File{{Path: "/a", Data: []byte{}, Mode: fs.ModeSymlink | 0o777}}, "not permission bits"},
		{[]image.File{{Path: "/a"}}, "neither Source nor Data"},
		{[]image.File{{Path: "/a", Source: "x", Data: []byte{}}}, "both Source and Data"},
		{[]image.File{{Path: "/a", Source: filepath.Join(dir, "missing")}}, "no such file"},
		{[]image.File{{Path: "/a", Source: dir}}, "not a regular file"},
	} {
		_, err := image.Build(tc.files, image.Config{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Build(%+v) = %v, want an error containing %q", tc.files, err, tc.want)
		}
	}
}

func TestWriteRefusesABadTagAndLeavesNothing(t *testing.T) {
	img, err := image.Build([]image.File{{Path: "/a", Data: []byte("a"), Mode: 0o644}}, image.Config{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tag := range []string{"", "vpcnet.local/x", "UPPER/case:tag", "x:bad tag"} {
		if err := image.Write(filepath.Join(dir, "out.tar"), img, tag); err == nil {
			t.Errorf("Write with tag %q succeeded", tag)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a refused Write left %v behind", entries)
	}
	// A good write replaces an old file whole.
	out := filepath.Join(dir, "out.tar")
	os.WriteFile(out, bytes.Repeat([]byte("old"), 1000), 0o600)
	if err := image.Write(out, img, "vpcnet.local/x:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := tarball.ImageFromPath(out, nil); err != nil {
		t.Fatalf("written tarball does not read back: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("directory holds %v, want only out.tar", entries)
	}
}

func nowish() time.Time { return time.Now() }
