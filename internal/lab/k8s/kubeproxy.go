package k8s

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s/cache"
)

// DNSServiceIP is the cluster DNS Service's address (kubelet's clusterDNS): the tenth address
// of ServiceCIDR, as EKS and kubeadm choose it.
var DNSServiceIP = func() netip.Addr {
	a := netip.MustParsePrefix(ServiceCIDR).Addr()
	for range 10 {
		a = a.Next()
	}
	return a
}()

// kubeProxyRole is the marker role of a node's kube-proxy (stopped with the node).
func kubeProxyRole(index int) string { return fmt.Sprintf("node-%d-kube-proxy", index) }

// KubeProxyRunning reports whether the node's kube-proxy process runs.
func KubeProxyRunning(labName string, index int) bool {
	return len(markedPIDs(lab.PathsFor(labName).Dir, kubeProxyRole(index))) > 0
}

// startKubeProxy runs kube-proxy for a node in iptables mode in the node's network namespace
// (its rules are the namespace's own), as user system:kube-proxy (bound to the built-in
// ClusterRole system:node-proxier). It leaves the machine-wide conntrack sysctls alone
// (--conntrack-max-per-core=0 and the timeouts 0): only per-namespace settings change.
func startKubeProxy(p Paths, labName string, n lab.NodeInfo, advertise netip.Addr) error {
	if KubeProxyRunning(labName, n.Index) {
		return nil
	}
	bc := cache.Open("", cache.Default)
	pki, err := loadCA(p.PKI())
	if err != nil {
		return err
	}
	crt, key, err := pki.issue("kube-proxy", "system:kube-proxy", nil, nil, nil)
	if err != nil {
		return err
	}
	dir := p.Node(n.Index)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	kc := filepath.Join(dir, "kube-proxy.kubeconfig")
	if err := writeKubeconfig(kc, fmt.Sprintf("https://%s:%d", advertise, APIPort), pki.CertPath(), crt, key, "system:kube-proxy"); err != nil {
		return err
	}
	return startIn(n.NS, p, kubeProxyRole(n.Index), false, bc.Bin("kube-proxy"),
		"--kubeconfig="+kc, "--hostname-override="+n.Name, "--proxy-mode=iptables",
		"--conntrack-max-per-core=0", "--conntrack-tcp-timeout-established=0s", "--conntrack-tcp-timeout-close-wait=0s",
		"--metrics-bind-address=127.0.0.1:10249", "--healthz-bind-address=127.0.0.1:10256", "--v=1")
}

// EnsureKubeProxy starts kube-proxy on every node of a lab where it does not run yet (labs
// started before kube-proxy was part of a node).
func EnsureKubeProxy(labName string, st lab.Status, progress func(string)) error {
	lp := lab.PathsFor(labName)
	cfg, err := lab.ReadConfig(lp)
	if err != nil {
		return err
	}
	for _, n := range st.Nodes {
		if KubeProxyRunning(labName, n.Index) {
			continue
		}
		progress(fmt.Sprintf("node %s: starting kube-proxy (iptables mode)", n.Name))
		if err := startKubeProxy(PathsOf(lp), labName, n, cfg.Subnets[0].Addr().Next()); err != nil {
			return fmt.Errorf("node %s: kube-proxy: %w", n.Name, err)
		}
	}
	return nil
}
