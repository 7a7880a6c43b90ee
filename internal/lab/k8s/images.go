package k8s

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vpcnet/vpcnet/internal/image"
	"github.com/vpcnet/vpcnet/internal/lab/k8s/cache"
)

// The lab's images, packed from the cache's static tools with no registry and no daemon, and
// imported into every node's containerd; pods use them with imagePullPolicy: Never.
const (
	// PauseImage is the sandbox image containerd pins (the tag kubelet 1.37 expects).
	PauseImage = "registry.k8s.io/pause:3.10.2"
	// TestImage runs vtool: `vtool serve` by default, plus get, ping and addrs for kubectl exec.
	TestImage = "vpcnet.local/vtool:dev"
)

// Images writes the image tarballs into the cache (again only when a tool is newer than its
// tarball) and returns their paths.
func Images(bc *cache.Cache, progress func(string)) ([]string, error) {
	if err := bc.Check("tools"); err != nil {
		return nil, err
	}
	dir := filepath.Join(bc.Dir, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	imgs := []struct {
		file, tag, bin string
		cfg            image.Config
	}{
		{"pause.tar", PauseImage, "pause", image.Config{Entrypoint: []string{"/pause"}}},
		{"vtool.tar", TestImage, "vtool", image.Config{Entrypoint: []string{"/vtool"}, Cmd: []string{"serve"}}},
	}
	var out []string
	for _, im := range imgs {
		path := filepath.Join(dir, im.file)
		out = append(out, path)
		src := bc.Bin(im.bin)
		si, err := os.Stat(src)
		if err != nil {
			return nil, err
		}
		if ti, err := os.Stat(path); err == nil && !ti.ModTime().Before(si.ModTime()) {
			continue
		}
		progress(fmt.Sprintf("packing image %s from %s", im.tag, src))
		img, err := image.Build([]image.File{{Path: "/" + im.bin, Source: src, Mode: 0o755}}, im.cfg)
		if err != nil {
			return nil, err
		}
		if err := image.Write(path, img, im.tag); err != nil {
			return nil, err
		}
	}
	return out, nil
}
