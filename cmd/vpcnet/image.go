package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vpcnet/vpcnet/internal/image"
	"github.com/vpcnet/vpcnet/internal/lab/k8s/cache"
)

func init() { subcommands = append(subcommands, newImageCmd) }

// DefaultImageTag is the tag `vpcnet image build` gives the node image; deploy/ names it.
const DefaultImageTag = "vpcnet.local/vpcnetd:dev"

// nodeImageBinaries are the files of the node image, each at /<name>, mode 0755: the agent, the
// plugin, and upstream's portmap plugin, which deploy/'s init container installs beside the
// plugin and the agent chains after it for hostPort (VPCNET_CNI_PORTMAP).
var nodeImageBinaries = []string{"vpcnetd", "vpcnet-cni", "portmap"}

// PortmapModule is the released Go package portmap is built from, at the version the lab's
// build cache uses (containerd 2.x sends STATUS to every plugin of a CNI 1.1.0 conflist, which a
// portmap older than plugins v1.5 fails).
const PortmapModule = "github.com/containernetworking/plugins/plugins/meta/portmap@" + cache.CNIPluginsVersion

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build the node image (vpcnetd, vpcnet-cni, portmap) with no Docker daemon and no registry",
	}
	cmd.AddCommand(newImageBuildCmd())
	return cmd
}

func newImageBuildCmd() *cobra.Command {
	var out, tag, binDir, portmap string
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Pack static vpcnetd, vpcnet-cni and portmap into an OCI image tarball (docker-archive)",
		Long: `Packs vpcnetd, vpcnet-cni and portmap, found in --bin-dir (portmap: --portmap), into a
one-layer image at /vpcnetd, /vpcnet-cni and /portmap (entrypoint /vpcnetd) and writes it as a
docker-archive tarball:

  CGO_ENABLED=0 go build -trimpath -tags grpcnotrace -o bin/ ./cmd/vpcnet ./cmd/vpcnetd ./cmd/vpcnet-cni
  CGO_ENABLED=0 GOBIN=$PWD/bin go install -trimpath ` + PortmapModule + `
  bin/vpcnet image build --out vpcnet-image.tar
  ctr -n k8s.io images import vpcnet-image.tar      # on each node; or push it with crane/skopeo

portmap is upstream's CNI plugin (containernetworking/plugins), built from its released module:
deploy/'s init container installs it beside vpcnet-cni, and the agent chains it for hostPort.
The build is reproducible: the same binaries and tag give the same image digest. The binaries
must be statically linked (the image has no libc): a dynamically linked one is refused. Their
ELF machine gives the image's architecture.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if binDir == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("finding vpcnet's own directory: %w (give --bin-dir)", err)
				}
				binDir = filepath.Dir(exe)
			}
			var files []image.File
			arch := ""
			for _, n := range nodeImageBinaries {
				p := filepath.Join(binDir, n)
				if n == "portmap" && portmap != "" {
					p = portmap
				}
				a, err := staticELF(p)
				if err != nil {
					if n == "portmap" && errors.Is(err, fs.ErrNotExist) {
						err = fmt.Errorf("%s: no portmap plugin (hostPort); build it with `CGO_ENABLED=0 GOBIN=%s go install -trimpath %s` or give --portmap", p, filepath.Dir(p), PortmapModule)
					}
					return usageError{err}
				}
				if arch != "" && a != arch {
					return usagef("%s is built for %s, vpcnetd for %s: build both for one architecture", p, a, arch)
				}
				arch = a
				files = append(files, image.File{Path: "/" + n, Source: p, Mode: 0o755})
			}
			img, err := image.Build(files, image.Config{Entrypoint: []string{"/vpcnetd"}, Architecture: arch, OS: "linux"})
			if err != nil {
				return err
			}
			if err := image.Write(out, img, tag); err != nil {
				return usageError{err}
			}
			d, err := img.Digest()
			if err != nil {
				return err
			}
			id, err := img.ConfigName()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s linux/%s digest %s id %s\n", out, tag, arch, d, id)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "vpcnet-image.tar", "tarball to write (replaced atomically)")
	cmd.Flags().StringVar(&tag, "tag", DefaultImageTag, "image reference the tarball carries (REGISTRY/REPOSITORY:TAG)")
	cmd.Flags().StringVar(&binDir, "bin-dir", "", "directory holding vpcnetd, vpcnet-cni and portmap (default: vpcnet's own)")
	cmd.Flags().StringVar(&portmap, "portmap", "", "the static portmap plugin to pack (default: portmap in --bin-dir)")
	return cmd
}

// staticELF checks that path is a statically linked Linux ELF executable and returns its Go
// architecture name (amd64, arm64).
func staticELF(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: not a usable ELF executable: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is dynamically linked (it needs an ELF interpreter); the image has no libc: build it with CGO_ENABLED=0", path)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return "", fmt.Errorf("%s is dynamically linked (needs %v); the image has no libc: build it with CGO_ENABLED=0", path, libs)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return "", fmt.Errorf("%s is an ELF %v, not an executable", path, f.Type)
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	}
	return "", fmt.Errorf("%s is built for ELF machine %v; the image supports amd64 and arm64", path, f.Machine)
}
