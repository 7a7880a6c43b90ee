package cache

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Component is one unit of the build: a set of binaries made by one go command.
type Component struct {
	Name     string   // kubernetes, containerd, runc, etcd, tools
	Version  string   // the pinned module version, or "local" for our own tools
	Binaries []string // what it puts in bin/
	ColdTime string   // roughly how long a cold build takes on 2 idle cores
	// Module is the wrapper module's files (go.mod, main.go ...), nil for `go install pkg@version`.
	Module map[string]string
	// Verb is "build" (in the wrapper module, with -o DIR/), "test" (go test -c -o DIR/ in the
	// wrapper module) or "install" (pkg@version, with GOBIN=DIR); DIR is a scratch directory whose binaries are then moved into bin/.
	Verb string
	// Flags come before the packages: -trimpath, -tags, -ldflags ...
	Flags []string
	// Packages are the import paths to build.
	Packages []string
	// Env is added to the go command's environment (CGO_ENABLED, ...).
	Env []string
	// Optional components (the conformance suite's) are built only when named: `lab up` does
	// not wait for them, and Check without names does not ask for them.
	Optional bool
}

// recipe is what the stamp records: everything that decides the binaries.
func (c Component) recipe() string {
	h := sha256.New()
	names := make([]string, 0, len(c.Module))
	for n := range c.Module {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%s\x00", n, c.Module[n])
	}
	return fmt.Sprintf("%s %s\ngo %s %s %s\nenv: %s\nmodule: %s\n", c.Name, c.Version,
		c.Verb, strings.Join(c.Flags, " "), strings.Join(c.Packages, " "), strings.Join(c.Env, " "), hex.EncodeToString(h.Sum(nil)))
}

// stagingModules are the k8s.io modules k8s.io/kubernetes replaces with ./staging/src/k8s.io/X in
// its own go.mod (replace lines only apply in the main module, so the wrapper pins each to v0.X).
var stagingModules = []string{"api", "apiextensions-apiserver", "apimachinery", "apiserver", "cli-runtime",
	"client-go", "cloud-provider", "cluster-bootstrap", "code-generator", "component-base", "component-helpers",
	"controller-manager", "cri-api", "cri-client", "cri-streaming", "csi-translation-lib",
	"dynamic-resource-allocation", "endpointslice", "externaljwt", "kms", "kube-aggregator",
	"kube-controller-manager", "kube-proxy", "kube-scheduler", "kubectl", "kubelet", "metrics", "mount-utils",
	"pod-security-admission", "sample-apiserver", "sample-cli-plugin", "sample-controller", "streaming"}

// CNIPluginsVersion pins containernetworking/plugins, whose portmap the lab chains after
// vpcnet-cni for hostPort (the same version as this module's go.mod requires).
const CNIPluginsVersion = "v1.9.1"

// KubernetesBinaries are the Kubernetes programs the lab runs, built in one go build.
var KubernetesBinaries = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl"}

// tools holds the source of our own small programs, built with CGO_ENABLED=0 (static, so
// they run inside images with nothing else in them).
//
//go:embed tools
var tools embed.FS

// ToolBinaries are our own programs: pause (the pod sandbox), runc-noseccomp (runc without
// libseccomp cannot load the RuntimeDefault profile kubelet asks for; the wrapper drops it) and
// vtool (the test image: HTTP echo, ping, addresses).
var ToolBinaries = []string{"pause", "runc-noseccomp", "vtool"}

// Components lists what the lab cluster needs, in build order.
func Components(v Versions) []Component {
	kv := strings.TrimPrefix(v.Kubernetes, "v")
	major, minor, _ := strings.Cut(kv, ".")
	minor, _, _ = strings.Cut(minor, ".")
	stagingVersion := "v0." + strings.TrimPrefix(kv, major+".")
	var gomod strings.Builder
	fmt.Fprintf(&gomod, "module vpcnet.local/labbuild/kubernetes\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n", v.Kubernetes)
	for _, m := range stagingModules {
		fmt.Fprintf(&gomod, "\tk8s.io/%s => k8s.io/%s %s\n", m, m, stagingVersion)
	}
	gomod.WriteString(")\n")
	var ld []string
	for _, p := range []string{"k8s.io/client-go/pkg/version", "k8s.io/component-base/version"} {
		ld = append(ld, "-X "+p+".gitVersion="+v.Kubernetes, "-X "+p+".gitMajor="+major, "-X "+p+".gitMinor="+minor,
			"-X "+p+".gitTreeState=clean", "-X "+p+".buildDate=1970-01-01T00:00:00Z")
	}
	var k8sPkgs []string
	for _, b := range KubernetesBinaries {
		k8sPkgs = append(k8sPkgs, "k8s.io/kubernetes/cmd/"+b)
	}
	var ctrdPkgs []string
	for _, b := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
		ctrdPkgs = append(ctrdPkgs, "github.com/containerd/containerd/v2/cmd/"+b+"@"+v.Containerd)
	}

	etcdMod := fmt.Sprintf("module vpcnet.local/labbuild/etcd\n\ngo 1.26.0\n\nrequire (\n"+
		"\tgo.etcd.io/etcd/api/v3 %[1]s\n\tgo.etcd.io/etcd/client/pkg/v3 %[1]s\n\tgo.etcd.io/etcd/client/v3 %[1]s\n"+
		"\tgo.etcd.io/etcd/pkg/v3 %[1]s\n\tgo.etcd.io/etcd/server/v3 %[1]s\n)\n", v.Etcd)
	etcdMain := "// Command etcd runs etcd's own main: go.etcd.io/etcd/server/v3 has replace lines, so\n" +
		"// `go install go.etcd.io/etcd/server/v3@version` cannot build it.\npackage main\n\n" +
		"import (\n\t\"os\"\n\n\t\"go.etcd.io/etcd/server/v3/etcdmain\"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n"

	toolMod := map[string]string{"go.mod": "module vpcnet.local/labbuild/tools\n\ngo 1.26.0\n"}
	_ = fs.WalkDir(tools, "tools", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			b, _ := tools.ReadFile(p)
			toolMod[strings.TrimPrefix(p, "tools/")] = string(b)
		}
		return nil
	})
	var toolPkgs []string
	for _, b := range ToolBinaries {
		toolPkgs = append(toolPkgs, "./"+path.Clean(b))
	}

	return append([]Component{
		{Name: "tools", Version: "local", Binaries: ToolBinaries, ColdTime: "about 20 s",
			Module: toolMod, Verb: "build", Flags: []string{"-trimpath", "-ldflags", "-s -w"}, Packages: toolPkgs,
			Env: []string{"CGO_ENABLED=0"}},
		{Name: "runc", Version: v.Runc, Binaries: []string{"runc"}, ColdTime: "about 30 s",
			// cgo is needed for nsexec; without the seccomp tag, so no libseccomp is needed.
			Verb: "install", Flags: []string{"-trimpath", "-tags", "urfave_cli_no_docs", "-ldflags", "-s -w"},
			Packages: []string{"github.com/opencontainers/runc@" + v.Runc}, Env: []string{"CGO_ENABLED=1"}},
		{Name: "etcd", Version: v.Etcd, Binaries: []string{"etcd"}, ColdTime: "about 1.5 min",
			Module: map[string]string{"go.mod": etcdMod, "main.go": etcdMain},
			Verb:   "build", Flags: []string{"-mod=mod", "-trimpath", "-ldflags", "-s -w"}, Packages: []string{"."}},
		{Name: "containerd", Version: v.Containerd, Binaries: []string{"containerd", "ctr", "containerd-shim-runc-v2"},
			ColdTime: "about 5 min", Verb: "install", Packages: ctrdPkgs, Flags: []string{"-trimpath", "-tags", "no_btrfs",
				"-ldflags", "-s -w -X github.com/containerd/containerd/v2/version.Version=" + v.Containerd}},
		{Name: "cni-plugins", Version: CNIPluginsVersion, Binaries: []string{"portmap"}, ColdTime: "about 30 s",
			// The conflist offers CNI 1.1.0, so containerd 2.x sends STATUS to every plugin of
			// it; a portmap older than plugins v1.5 (Debian's 1.1.1) fails STATUS with
			// "missing containerID" and the node never gets NetworkReady.
			Verb: "install", Flags: []string{"-trimpath", "-ldflags", "-s -w"},
			Packages: []string{"github.com/containernetworking/plugins/plugins/meta/portmap@" + CNIPluginsVersion},
			Env:      []string{"CGO_ENABLED=0"}},
		{Name: "kubernetes", Version: v.Kubernetes, Binaries: KubernetesBinaries, ColdTime: "about 15 min",
			Module: map[string]string{"go.mod": gomod.String()}, Verb: "build", Packages: k8sPkgs,
			Flags: []string{"-mod=mod", "-trimpath", "-ldflags", "-s -w " + strings.Join(ld, " ")}},
	}, conformanceComponents(v, gomod.String(), "-s -w "+strings.Join(ld, " "))...)
}

// Select returns the named components (all when names is empty), in build order; an unknown
// name is an error listing the known ones.
func Select(v Versions, names []string) ([]Component, error) {
	all := Components(v)
	if len(names) == 0 {
		var out []Component
		for _, c := range all {
			if !c.Optional {
				out = append(out, c)
			}
		}
		return out, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		found := false
		for _, c := range all {
			found = found || c.Name == n
		}
		if !found {
			known := make([]string, len(all))
			for i, c := range all {
				known[i] = c.Name
			}
			return nil, fmt.Errorf("unknown component %q: want one of %s", n, strings.Join(known, ", "))
		}
		want[n] = true
	}
	var out []Component
	for _, c := range all {
		if want[c.Name] {
			out = append(out, c)
		}
	}
	return out, nil
}
