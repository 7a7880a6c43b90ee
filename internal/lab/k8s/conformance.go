package k8s

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/image"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s/cache"
)

// Image names the e2e suite of Kubernetes v1.37 expects (test/utils/image/manifest.go) and
// kubeadm's CoreDNS; the lab packs them from the build cache and imports them into every
// node's containerd, so nothing is pulled.
const (
	AgnhostImage = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
	BusyBoxImage = "registry.k8s.io/e2e-test-images/busybox:1.37.0-2"
	CoreDNSImage = "registry.k8s.io/coredns/coredns:" + cache.CoreDNSVersion
	// GlibcDNSImage is the DNS specs' glibc querier (dig in a loop under sh): k8tools here.
	GlibcDNSImage = "registry.k8s.io/e2e-test-images/glibc-dns-testing:2.1.1"
	// NginxImage backs the Endpoints and EndpointSlice specs' pods, which need a process that
	// runs and serves port 80: agnhost netexec on port 80 here.
	NginxImage = "registry.k8s.io/e2e-test-images/nginx:1.27.0-2"
)

// k8toolsNames are the commands k8tools answers to; the images hold one copy per name in /bin
// (image.File has no links).
var k8toolsNames = []string{"sh", "curl", "wget", "nc", "grep", "cat", "sleep", "seq", "hostname", "dig", "getent", "nslookup", "timeout", "true", "false"}

// ConformanceImages packs agnhost (agnhost plus k8tools in /bin), busybox and glibc-dns-testing
// (k8tools alone), nginx (agnhost serving port 80) and CoreDNS into the cache's images directory, again only when a binary is newer than its
// tarball, and returns the tarballs' paths.
//
// Without dns, CoreDNS is neither needed nor packed.
func ConformanceImages(bc *cache.Cache, dns bool, progress func(string)) ([]string, error) {
	if err := bc.Check(ConformanceComponents(dns)...); err != nil {
		return nil, err
	}
	dir := filepath.Join(bc.Dir, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var tools []image.File
	for _, n := range k8toolsNames {
		tools = append(tools, image.File{Path: "/bin/" + n, Source: bc.Bin("k8tools"), Mode: 0o755})
	}
	tools = append(tools, image.File{Path: "/tmp/.keep", Data: []byte{}, Mode: 0o644})
	path := []string{"PATH=/bin:/usr/bin:/sbin:/usr/sbin"}
	// agnhost's porter serves TLS with localhost.crt and localhost.key from its working
	// directory (the real image has them in /): the Proxy specs' https ports.
	crt, key, err := localhostCert()
	if err != nil {
		return nil, err
	}
	tlsFiles := []image.File{{Path: "/localhost.crt", Data: crt, Mode: 0o644}, {Path: "/localhost.key", Data: key, Mode: 0o600}}
	imgs := []struct {
		file, tag string
		bins      []string
		files     []image.File
		cfg       image.Config
	}{
		{"agnhost.tar", AgnhostImage, []string{"agnhost", "k8tools"},
			append(append([]image.File{{Path: "/agnhost", Source: bc.Bin("agnhost"), Mode: 0o755}}, tlsFiles...), tools...),
			image.Config{Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}, Env: path, WorkingDir: "/"}},
		{"busybox.tar", BusyBoxImage, []string{"k8tools"}, tools, image.Config{Cmd: []string{"sh"}, Env: path}},
		{"glibc-dns-testing.tar", GlibcDNSImage, []string{"k8tools"}, tools, image.Config{Cmd: []string{"sh"}, Env: path}},
		{"nginx.tar", NginxImage, []string{"agnhost", "k8tools"},
			append([]image.File{{Path: "/agnhost", Source: bc.Bin("agnhost"), Mode: 0o755}}, tools...),
			image.Config{Entrypoint: []string{"/agnhost", "netexec", "--http-port=80", "--udp-port=-1"}, Env: path}},
		{"coredns.tar", CoreDNSImage, []string{"coredns"},
			[]image.File{{Path: "/coredns", Source: bc.Bin("coredns"), Mode: 0o755}},
			image.Config{Entrypoint: []string{"/coredns"}}},
	}
	var out []string
	for _, im := range imgs {
		if im.tag == CoreDNSImage && !dns {
			continue
		}
		p := filepath.Join(dir, im.file)
		out = append(out, p)
		fresh := true
		ti, err := os.Stat(p)
		for _, b := range im.bins {
			si, serr := os.Stat(bc.Bin(b))
			if serr != nil {
				return nil, serr
			}
			if err != nil || ti.ModTime().Before(si.ModTime()) {
				fresh = false
			}
		}
		if fresh {
			continue
		}
		progress(fmt.Sprintf("packing image %s", im.tag))
		img, err := image.Build(im.files, im.cfg)
		if err != nil {
			return nil, err
		}
		if err := image.Write(p, img, im.tag); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// localhostCert is a self-signed ECDSA certificate for localhost and 127.0.0.1 and its key, PEM
// encoded, valid ten years: agnhost porter's TLS ports (the API server's proxy does not verify
// a pod's certificate).
func localhostCert() (crt, key []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// ConformanceComponents are the build-cache components a run needs: all of
// cache.ConformanceComponents, CoreDNS only with dns.
func ConformanceComponents(dns bool) []string {
	var out []string
	for _, c := range cache.ConformanceComponents {
		if c != "coredns" || dns {
			out = append(out, c)
		}
	}
	return out
}

// ImportImages imports image tarballs into a running node's containerd (namespace k8s.io),
// through the node's containerd socket as seen from the machine.
func ImportImages(ctx context.Context, labName string, index int, tarballs []string) error {
	bc := cache.Open("", cache.Default)
	sock := filepath.Join(PathsOf(lab.PathsFor(labName)).Node(index), "run-containerd", "containerd.sock")
	for _, t := range tarballs {
		out, err := exec.CommandContext(ctx, bc.Bin("ctr"), "--address", sock, "-n", "k8s.io", "images", "import", "--local", t).CombinedOutput()
		if err != nil {
			return fmt.Errorf("import %s into node %d: %v: %s", filepath.Base(t), index, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// coreDNSManifest runs CoreDNS as the cluster DNS (kube-system/kube-dns at DNSServiceIP) with
// kubeadm's object names and RBAC. No forward plugin: the lab has no upstream resolver.
func coreDNSManifest() string {
	return `apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects: [{kind: ServiceAccount, name: coredns, namespace: kube-system}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:53 {
        errors
        health {
            lameduck 5s
        }
        ready
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
            ttl 30
        }
        cache 30
        loop
        loadbalance
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  replicas: 2
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      tolerations: [{operator: Exists}]
      containers:
      - name: coredns
        image: ` + CoreDNSImage + `
        imagePullPolicy: Never
        args: ["-conf", "/etc/coredns/Corefile"]
        volumeMounts: [{name: config, mountPath: /etc/coredns, readOnly: true}]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        readinessProbe: {httpGet: {path: /ready, port: 8181}, periodSeconds: 2}
      volumes: [{name: config, configMap: {name: coredns}}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: ` + DNSServiceIP.String() + `
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
`
}

// DeployCoreDNS applies the CoreDNS manifest and waits for the Deployment to be available.
func DeployCoreDNS(ctx context.Context, labName string) error {
	cmd := Kubectl(ctx, labName, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(coreDNSManifest())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apply CoreDNS: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if out, err := Kubectl(ctx, labName, "-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=180s").CombinedOutput(); err != nil {
		return fmt.Errorf("CoreDNS not available: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// E2EOptions selects and places a run of the upstream e2e suite.
type E2EOptions struct {
	Focus, Skip string // ginkgo regular expressions over the spec text
	ReportDir   string // where e2e.log and junit_01.xml go
	Timeout     time.Duration
}

// E2EResult is what a run of e2e.test reported.
type E2EResult struct {
	Ran, Total                    int // "Ran 4 of 3206 Specs"
	Passed, Failed, Pending, Skip int // the summary's counts; Skip includes the specs not selected
	SkippedAtRun                  int // selected specs that skipped themselves
	FailedSpecs                   []string
	JUnit, Log                    string
	Elapsed                       time.Duration
}

// RunE2E runs e2e.test from the lab's router namespace against the cluster, with one progress
// line per finished spec, and returns the counts from the suite's summary.
func RunE2E(ctx context.Context, labName string, o E2EOptions, progress func(string)) (E2EResult, error) {
	bc := cache.Open("", cache.Default)
	p := PathsOf(lab.PathsFor(labName))
	res := E2EResult{JUnit: filepath.Join(o.ReportDir, "junit_01.xml"), Log: filepath.Join(o.ReportDir, "e2e.log")}
	if err := os.MkdirAll(o.ReportDir, 0o755); err != nil {
		return res, err
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Hour
	}
	args := []string{"--kubeconfig=" + p.RouterKubeconfig(), "--provider=skeleton", "--report-dir=" + o.ReportDir,
		"--kubectl-path=" + bc.Bin("kubectl"), "--ginkgo.focus=" + o.Focus, "--ginkgo.v", "--ginkgo.no-color",
		"--ginkgo.timeout=" + o.Timeout.String(), "--disable-log-dump", "--dump-logs-on-failure=false",
		"--minStartupPods=0", "--e2e-output-dir=" + o.ReportDir}
	if o.Skip != "" {
		args = append(args, "--ginkgo.skip="+o.Skip)
	}
	logf, err := os.Create(res.Log)
	if err != nil {
		return res, err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, bc.Bin("e2e.test"), args...)
	cmd.Dir = o.ReportDir
	cmd.Env = append(os.Environ(), "KUBECONFIG="+p.RouterKubeconfig(), "PATH="+filepath.Dir(bc.Bin("kubectl"))+":"+os.Getenv("PATH"))
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	start := time.Now()
	if err := lab.StartIn(lab.RouterNS(labName), cmd); err != nil {
		return res, fmt.Errorf("start e2e.test: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var sp SpecParser
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(logf, line)
		if r, ok := sp.Line(line); ok {
			if r.State != "passed" && r.State != "skipped" {
				res.FailedSpecs = append(res.FailedSpecs, r.Text)
			}
			progress(fmt.Sprintf("[%d] %-7s %7.1fs  %s", sp.Done, r.State, r.Seconds, r.Text))
		}
	}
	res.Ran, res.Total = sp.Ran, sp.Total
	res.Passed, res.Failed, res.Pending, res.Skip = sp.Passed, sp.Failed, sp.Pending, sp.Skipped
	res.SkippedAtRun = sp.SkippedAtRun
	err = <-done
	res.Elapsed = time.Since(start)
	if res.Ran == 0 && err != nil {
		return res, fmt.Errorf("e2e.test: %v (see %s)", err, res.Log)
	}
	return res, nil
}

// DefaultFocus selects every conformance spec of sig-network.
const DefaultFocus = `\[sig-network\].*\[Conformance\]`

// Exclusion is a spec (or family) the default selection leaves out, with the reason; the same
// list is in docs/conformance.md.
type Exclusion struct{ Pattern, Reason string }

// Exclusions are left out of the default selection.
var Exclusions = []Exclusion{
	{`\[Serial\]|\[Disruptive\]`, "serial and disruptive specs restart or reconfigure cluster components the lab shares with other runs"},
}

// DefaultSkip joins Exclusions into one ginkgo skip expression.
func DefaultSkip() string {
	var ps []string
	for _, e := range Exclusions {
		ps = append(ps, e.Pattern)
	}
	return strings.Join(ps, "|")
}
