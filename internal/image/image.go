// Package image packs local files into a single-layer OCI image and writes it as a
// docker-archive tarball, the format `ctr -n k8s.io images import` and `docker load` read, with
// no Docker daemon and no registry (go-containerregistry does the packing).
//
// The build is reproducible: the same files (content, image path, mode) and the same Config give
// the same image digest, byte for byte the same tarball. Every layer entry has mtime 0 (1970-01-01),
// uid/gid 0 and no user or group names; entries are sorted by path and each parent directory is
// its own entry (mode 0755); the image config's creation time is the same epoch.
//
// API:
//
//	img, err := image.Build([]image.File{
//		{Path: "/vpcnetd", Source: "bin/vpcnetd", Mode: 0o755},   // read from a local file
//		{Path: "/etc/motd", Data: []byte("hi\n"), Mode: 0o644},    // or given in memory
//	}, image.Config{Entrypoint: []string{"/vpcnetd"}, Env: []string{"A=b"}})
//	err = image.Write("out.tar", img, "vpcnet.local/vpcnetd:dev")   // atomic: temp file, fsync, rename
//	d, err := img.Digest()                                          // sha256 of the OCI manifest
//
// Build checks its input before it reads any content: a path that is empty, not clean, climbs out
// of the root with "..", or appears twice; a mode with bits beyond 07777; a Source that is missing
// or not a regular file; both or neither of Source and Data. Each error names the file.
// Source files are read again each time the layer is needed (digest, write): they must not change
// between Build and Write.
package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Epoch is the time stamped on every layer entry and on the image config.
var Epoch = time.Unix(0, 0).UTC()

// File is one regular file of the image.
type File struct {
	// Path in the image, absolute or relative to the root: "/vpcnetd", "bin/sh".
	Path string
	// Mode holds the permission bits (and setuid/setgid/sticky), e.g. 0o755.
	Mode fs.FileMode
	// Source is a local file whose content is copied; exactly one of Source and Data is set.
	Source string
	// Data is the content itself.
	Data []byte
}

// Config is the image's run configuration (the OCI image config's "config" object).
type Config struct {
	Entrypoint []string
	Cmd        []string
	Env        []string // "NAME=value"
	WorkingDir string
	User       string
	Labels     map[string]string
	// OS and Architecture default to linux and the architecture vpcnet was built for.
	OS, Architecture string
}

// entry is a checked File with its size.
type entry struct {
	File
	name string // tar name: clean, relative, no leading "/"
	size int64
}

// Build returns a single-layer image (OCI media types) holding files, with cfg.
func Build(files []File, cfg Config) (v1.Image, error) {
	entries, err := check(files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return layerTar(entries) },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
		History: v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: "vpcnet image.Build"}})
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: Epoch}
	cf.OS = or(cfg.OS, "linux")
	cf.Architecture = or(cfg.Architecture, runtime.GOARCH)
	cf.Config = v1.Config{Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, Env: cfg.Env,
		WorkingDir: cfg.WorkingDir, User: cfg.User, Labels: cfg.Labels}
	return mutate.ConfigFile(img, cf)
}

// Write writes img to path as a docker-archive tarball tagged tag, e.g.
// "vpcnet.local/vpcnetd:dev" (a name without a registry is docker.io's; StrictValidation: the
// tag must be explicit). The tarball is written beside path, synced and renamed over it, so a reader
// never sees half of it. One tag per tarball keeps its manifest.json deterministic.
func Write(path string, img v1.Image, tag string) error {
	ref, err := name.NewTag(tag, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("image tag %q: %w (want REGISTRY/REPOSITORY:TAG)", tag, err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("image tarball: %w", err)
	}
	defer os.Remove(f.Name()) // nothing left after the rename
	if err := tarball.Write(ref, img, f); err != nil {
		f.Close()
		return fmt.Errorf("image tarball %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("image tarball: %w", err)
	}
	return nil
}

func check(files []File) ([]entry, error) {
	if len(files) == 0 {
		return nil, errors.New("image: no files")
	}
	seen := map[string]bool{}
	var out []entry
	for _, f := range files {
		n := strings.TrimPrefix(f.Path, "/")
		if f.Path == "" || n == "" || path.Clean(n) != n || n == ".." || strings.HasPrefix(n, "../") {
			return nil, fmt.Errorf("image file %q: path must be a clean file path inside the image (like /bin/tool)", f.Path)
		}
		if seen[n] {
			return nil, fmt.Errorf("image file %q: given twice", f.Path)
		}
		seen[n] = true
		if f.Mode&^(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
			return nil, fmt.Errorf("image file %q: mode %v is not permission bits", f.Path, f.Mode)
		}
		e := entry{File: f, name: n}
		switch {
		case f.Source != "" && f.Data != nil:
			return nil, fmt.Errorf("image file %q: both Source and Data given", f.Path)
		case f.Source != "":
			fi, err := os.Stat(f.Source)
			if err != nil {
				return nil, fmt.Errorf("image file %q: %w", f.Path, err)
			}
			if !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("image file %q: source %s is not a regular file", f.Path, f.Source)
			}
			e.size = fi.Size()
		case f.Data != nil:
			e.size = int64(len(f.Data))
		default:
			return nil, fmt.Errorf("image file %q: neither Source nor Data given", f.Path)
		}
		out = append(out, e)
	}
	for _, e := range out { // a file cannot also be a parent directory
		for d := path.Dir(e.name); d != "."; d = path.Dir(d) {
			if seen[d] {
				return nil, fmt.Errorf("image file %q: /%s is also a file", e.Path, d)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// layerTar streams the layer: every parent directory once, then each file, in path order.
func layerTar(entries []entry) (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, entries)) }()
	return pr, nil
}

func writeTar(w io.Writer, entries []entry) error {
	type item struct {
		name string
		e    *entry // nil: a directory
	}
	var items []item
	dirs := map[string]bool{}
	for i := range entries {
		e := &entries[i]
		var parents []string
		for d := path.Dir(e.name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			parents = append(parents, d)
		}
		for j := len(parents) - 1; j >= 0; j-- {
			items = append(items, item{name: parents[j] + "/"})
		}
		items = append(items, item{name: e.name, e: e})
	}
	sort.SliceStable(items, func(i, j int) bool {
		return strings.TrimSuffix(items[i].name, "/") < strings.TrimSuffix(items[j].name, "/")
	})
	tw := tar.NewWriter(w)
	for _, it := range items {
		h := &tar.Header{Name: it.name, ModTime: Epoch, Format: tar.FormatPAX}
		if it.e == nil {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, int64(it.e.Mode.Perm()), it.e.size
		if it.e.Mode&fs.ModeSetuid != 0 {
			h.Mode |= 0o4000
		}
		if it.e.Mode&fs.ModeSetgid != 0 {
			h.Mode |= 0o2000
		}
		if it.e.Mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if err := copyContent(tw, it.e); err != nil {
			return err
		}
	}
	return tw.Close()
}

func copyContent(w io.Writer, e *entry) error {
	var r io.Reader = bytes.NewReader(e.Data)
	if e.Source != "" {
		f, err := os.Open(e.Source)
		if err != nil {
			return fmt.Errorf("image file %q: %w", e.Path, err)
		}
		defer f.Close()
		r = f
	}
	n, err := io.Copy(w, io.LimitReader(r, e.size))
	if err == nil && n != e.size {
		err = fmt.Errorf("image file %q: source %s changed size since Build (%d bytes, read %d)", e.Path, e.Source, e.size, n)
	}
	return err
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
