// Package cache builds the Kubernetes lab's components from pinned Go module versions into a
// directory shared by every lab and by CI on the same machine, and finds them there.
//
// Layout of a cache directory (Dir), one per set of Versions:
//
//	<root>/k8s-<versions>/
//	  lock                 flock(2) held by the build in progress
//	  src/<component>/     the wrapper module each component is built from (go.mod, main.go)
//	  bin/                 the binaries: kube-apiserver ... kubectl, containerd, ctr,
//	                       containerd-shim-runc-v2, runc, etcd, pause, runc-noseccomp, vtool
//	  stamps/<component>   the recipe the component's binaries were built with; a component
//	                       whose stamp matches its recipe and whose binaries exist is skipped
//
// <root> is $VPCNET_CACHE, else /var/cache/vpcnet. Everything is built with the go command
// from the Go module proxy ($GOPROXY, default proxy.golang.org): no curl, no prebuilt binary.
// A proxy that cannot be reached is reported as one line naming GOPROXY (ErrProxy).
package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// EnvRoot overrides DefaultRoot, the directory that holds one cache directory per Versions.
const EnvRoot = "VPCNET_CACHE"

// DefaultRoot holds the caches unless $VPCNET_CACHE says otherwise.
const DefaultRoot = "/var/cache/vpcnet"

// Versions pins every upstream component the lab cluster runs.
type Versions struct {
	Kubernetes string // k8s.io/kubernetes, e.g. v1.37.2; staging modules at v0.<minor>.<patch>
	Containerd string // github.com/containerd/containerd/v2
	Runc       string // github.com/opencontainers/runc
	Etcd       string // go.etcd.io/etcd/server/v3
}

// Default is the set checked end to end on the lab (notes/kubernetes-lab.md).
var Default = Versions{Kubernetes: "v1.37.2", Containerd: "v2.4.2", Runc: "v1.5.3", Etcd: "v3.7.3"}

// Key names a cache directory: k8s-1.37.2-containerd-2.4.2-runc-1.5.3-etcd-3.7.3.
func (v Versions) Key() string {
	t := func(s string) string { return strings.TrimPrefix(s, "v") }
	return fmt.Sprintf("k8s-%s-containerd-%s-runc-%s-etcd-%s", t(v.Kubernetes), t(v.Containerd), t(v.Runc), t(v.Etcd))
}

// Root returns the directory holding the caches: $VPCNET_CACHE or DefaultRoot.
func Root() string {
	if r := os.Getenv(EnvRoot); r != "" {
		return r
	}
	return DefaultRoot
}

// Cache is one cache directory.
type Cache struct {
	Dir      string
	Versions Versions
}

// Open returns the cache for v under root ("" means Root()). It creates nothing.
func Open(root string, v Versions) *Cache {
	if root == "" {
		root = Root()
	}
	return &Cache{Dir: filepath.Join(root, v.Key()), Versions: v}
}

// Bin returns the path of a built binary (it may not exist yet: see Check).
func (c *Cache) Bin(name string) string { return filepath.Join(c.Dir, "bin", name) }

func (c *Cache) stamp(component string) string { return filepath.Join(c.Dir, "stamps", component) }
func (c *Cache) src(component string) string   { return filepath.Join(c.Dir, "src", component) }

// Check reports whether every binary of the named components (all when none is named) is built
// for the pinned versions; the error names the first missing one and the command that builds it.
func (c *Cache) Check(names ...string) error {
	comps, err := Select(c.Versions, names)
	if err != nil {
		return err
	}
	for _, comp := range comps {
		if !c.upToDate(comp) {
			return fmt.Errorf("%s %s is not built in %s: run `vpcnet lab k8s build` (about 15 min the first time, cached after)", comp.Name, comp.Version, c.Dir)
		}
	}
	return nil
}

// upToDate reports whether comp's stamp matches its recipe and all its binaries exist.
func (c *Cache) upToDate(comp Component) bool {
	b, err := os.ReadFile(c.stamp(comp.Name))
	if err != nil || string(b) != comp.recipe() {
		return false
	}
	for _, bin := range comp.Binaries {
		if fi, err := os.Stat(c.Bin(bin)); err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// BuildOptions says what to build and who hears about it.
type BuildOptions struct {
	// Only names the components to build (see Components); empty: all of them.
	Only []string
	// Progress hears one line per component: skipped, building, built (with the time taken).
	Progress func(string)
	// Log receives the go command's own output; nil: discarded (errors still quote it).
	Log io.Writer
}

// Build builds every component that is not up to date, one after the other, holding the
// cache's lock so that two labs or a lab and CI never build the same cache at once.
func (c *Cache) Build(ctx context.Context, o BuildOptions) error {
	comps, err := Select(c.Versions, o.Only)
	if err != nil {
		return err
	}
	progress := o.Progress
	if progress == nil {
		progress = func(string) {}
	}
	// Everything asked for is built: no lock, so a lab starts at once even while another
	// process builds other (optional) components into the same cache.
	built := true
	for _, comp := range comps {
		built = built && c.upToDate(comp)
	}
	if built {
		for _, comp := range comps {
			progress(fmt.Sprintf("%-10s %-8s up to date (%s)", comp.Name, comp.Version, strings.Join(comp.Binaries, ", ")))
		}
		return nil
	}
	for _, d := range []string{c.Dir, filepath.Join(c.Dir, "bin"), filepath.Join(c.Dir, "stamps"), filepath.Join(c.Dir, "src")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("build cache: %w", err)
		}
	}
	unlock, err := c.lock(ctx, progress)
	if err != nil {
		return err
	}
	defer unlock()
	for _, comp := range comps {
		if c.upToDate(comp) {
			progress(fmt.Sprintf("%-10s %-8s up to date (%s)", comp.Name, comp.Version, strings.Join(comp.Binaries, ", ")))
			continue
		}
		progress(fmt.Sprintf("%-10s %-8s building %s (cold: %s)", comp.Name, comp.Version, strings.Join(comp.Binaries, ", "), comp.ColdTime))
		start := time.Now()
		if err := c.build(ctx, comp, o.Log); err != nil {
			return err
		}
		if err := os.WriteFile(c.stamp(comp.Name), []byte(comp.recipe()), 0o644); err != nil {
			return err
		}
		progress(fmt.Sprintf("%-10s %-8s built in %s", comp.Name, comp.Version, time.Since(start).Round(time.Second)))
	}
	return nil
}

// lock takes the cache's build lock, telling progress when it has to wait for another build.
func (c *Cache) lock(ctx context.Context, progress func(string)) (func(), error) {
	f, err := os.OpenFile(filepath.Join(c.Dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if !told {
			progress("another build of " + c.Dir + " is running; waiting for it")
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
