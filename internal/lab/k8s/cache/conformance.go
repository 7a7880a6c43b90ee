package cache

import (
	"embed"
	"io/fs"
	"strings"
)

// CoreDNSVersion is the CoreDNS the lab runs as cluster DNS: the version kubeadm v1.37 deploys
// (cmd/kubeadm/app/constants CoreDNSVersion), built from its Go module.
const CoreDNSVersion = "v1.14.6"

// ShVersion pins mvdan.cc/sh, the shell interpreter k8tools embeds.
const ShVersion = "v3.14.1"

// k8toolsSrc is k8tools' source: one static multi-call program standing in for the busybox
// commands the e2e framework execs inside agnhost pods (sh, curl, nc, grep, cat, ...).
//
//go:embed k8tools/*.go
var k8toolsSrc embed.FS

// ConformanceComponents names the optional components `vpcnet lab conformance` needs.
var ConformanceComponents = []string{"k8tools", "coredns", "agnhost", "e2e"}

// conformanceComponents are the optional components: the upstream e2e test binary and agnhost
// (same wrapper module and version stamps as the cluster's own Kubernetes build, so the warm
// Kubernetes build cache serves most of them), CoreDNS, and k8tools.
func conformanceComponents(v Versions, k8sMod, ldflags string) []Component {
	k8tMod := map[string]string{"go.mod": "module vpcnet.local/labbuild/k8tools\n\ngo 1.26.0\n\nrequire mvdan.cc/sh/v3 " + ShVersion + "\n"}
	_ = fs.WalkDir(k8toolsSrc, "k8tools", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, "_test.go") {
			b, _ := k8toolsSrc.ReadFile(p)
			k8tMod[strings.TrimPrefix(p, "k8tools/")] = string(b)
		}
		return nil
	})
	return []Component{
		{Name: "k8tools", Version: "local", Binaries: []string{"k8tools"}, ColdTime: "about 30 s", Optional: true,
			Module: k8tMod, Verb: "build", Flags: []string{"-mod=mod", "-trimpath", "-ldflags", "-s -w"},
			Packages: []string{"."}, Env: []string{"CGO_ENABLED=0"}},
		{Name: "coredns", Version: CoreDNSVersion, Binaries: []string{"coredns"}, ColdTime: "about 4 min", Optional: true,
			Verb: "install", Flags: []string{"-trimpath", "-ldflags", "-s -w"},
			Packages: []string{"github.com/coredns/coredns@" + CoreDNSVersion}, Env: []string{"CGO_ENABLED=0"}},
		{Name: "agnhost", Version: v.Kubernetes, Binaries: []string{"agnhost"}, ColdTime: "about 5 min", Optional: true,
			Module: map[string]string{"go.mod": k8sMod}, Verb: "build", Env: []string{"CGO_ENABLED=0"},
			Flags:    []string{"-mod=mod", "-trimpath", "-ldflags", ldflags},
			Packages: []string{"k8s.io/kubernetes/test/images/agnhost"}},
		{Name: "e2e", Version: v.Kubernetes, Binaries: []string{"e2e.test"}, ColdTime: "about 7 min with Kubernetes built", Optional: true,
			Module: map[string]string{"go.mod": k8sMod}, Verb: "test",
			Flags:    []string{"-mod=mod", "-trimpath", "-ldflags", ldflags},
			Packages: []string{"k8s.io/kubernetes/test/e2e"}},
	}
}
