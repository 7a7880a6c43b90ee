package lab

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/lab/fabric"
	"github.com/vpcnet/vpcnet/internal/netnsx"
	"github.com/vpcnet/vpcnet/internal/probe"
)

// Checks the demo and the tests make against the namespaces themselves, not the controller's word.

const probeTimeout = 5 * time.Second

// PodHasAddr checks that the pod's eth0 holds ip.
func PodHasAddr(ns string, ip netip.Addr) error {
	var found bool
	err := probe.In(ns, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if x, ok := netip.AddrFromSlice(a.IP.To4()); ok && x == ip {
				found = true
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	if !found {
		return fmt.Errorf("namespace %s: eth0 does not hold %s", ns, ip)
	}
	return nil
}

// CrossNode pings b from a and a from b, and sends a MiB over TCP from a to b, checking that
// b sees a's own address (no NAT between pods).
func CrossNode(a, b PodInfo) (string, error) {
	rtt1, err := probe.Echo(a.NS, netip.Addr{}, b.IP, probeTimeout)
	if err != nil {
		return "", err
	}
	rtt2, err := probe.Echo(b.NS, netip.Addr{}, a.IP, probeTimeout)
	if err != nil {
		return "", err
	}
	tr, err := probe.TCPTransfer(b.NS, b.IP, a.NS, 1<<20, probeTimeout)
	if err != nil {
		return "", err
	}
	if tr.Source.Addr() != a.IP {
		return "", fmt.Errorf("%s saw the transfer from %s, not from %s", b.Name, tr.Source.Addr(), a.IP)
	}
	return fmt.Sprintf("ping %s->%s %s, %s->%s %s; TCP 1 MiB %s->%s in %s, source %s kept",
		a.Name, b.Name, rtt1.Round(time.Microsecond), b.Name, a.Name, rtt2.Round(time.Microsecond),
		a.Name, b.Name, tr.Duration.Round(time.Microsecond), a.IP), nil
}

// ViaSNAT sends from the pod to the internet namespace and checks the far end saw the node's
// primary address.
func ViaSNAT(lab string, p PodInfo, nodeIP netip.Addr) (string, error) {
	tr, err := probe.TCPTransfer(InternetNS(lab), fabric.InternetHost, p.NS, 64<<10, probeTimeout)
	if err != nil {
		return "", fmt.Errorf("%w%s", err, snatDiagnosis(lab, p))
	}
	if tr.Source.Addr() != nodeIP {
		return "", fmt.Errorf("the internet saw %s from %s, want the node's %s", p.Name, tr.Source.Addr(), nodeIP)
	}
	return fmt.Sprintf("%s (%s) -> %s: arrived from %s, the node's primary IP", p.Name, p.IP, fabric.InternetHost, nodeIP), nil
}

// TunnelDevices lists overlay devices in the lab's namespaces, and how many namespaces it looked in.
func TunnelDevices(lab string) ([]string, int, error) {
	names, err := netnsx.List(NSPrefix(lab))
	if err != nil {
		return nil, 0, err
	}
	var out []string
	for _, ns := range names {
		links, err := probe.Links(ns)
		if err != nil {
			return nil, 0, err
		}
		for _, l := range links {
			if probe.IsTunnel(l.Type) {
				out = append(out, fmt.Sprintf("%s/%s (%s)", ns, l.Name, l.Type))
			}
		}
	}
	return out, len(names), nil
}

// Leftovers lists what of the named lab still exists: namespaces, its directory, processes.
func Leftovers(lab string) ([]string, error) {
	names, err := netnsx.List(NSPrefix(lab))
	if err != nil {
		return nil, err
	}
	out := append([]string(nil), names...)
	p := PathsFor(lab)
	if _, err := os.Stat(p.Dir); err == nil {
		out = append(out, p.Dir)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range procs {
		pid, _ := strconv.Atoi(filepath.Base(d))
		if pid == os.Getpid() || !Alive(pid) {
			continue
		}
		env, _ := os.ReadFile(filepath.Join(d, "environ"))
		if bytes.Contains(env, []byte("VPCNET_STATE_DIR="+p.Dir+"/")) || isController(pid, lab) {
			out = append(out, "process "+strconv.Itoa(pid))
		}
	}
	return out, nil
}

// AgentMetricsAddr is where every lab node's vpcnetd serves /healthz, /metrics and /v1/*, on
// the node namespace's own loopback.
const AgentMetricsAddr = "127.0.0.1:61678"

// AgentHealthz asks the node's vpcnetd for /healthz from inside the node's namespace.
func AgentHealthz(nodeNS string) error {
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: probe.Dialer(nodeNS)}}
	resp, err := hc.Get("http://" + AgentMetricsAddr + "/healthz")
	if err != nil {
		return fmt.Errorf("vpcnetd healthz in %s: %w", nodeNS, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("vpcnetd healthz in %s: %s %s", nodeNS, resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// snatDiagnosis tries once more while watching what reaches the internet namespace, and says
// which sources its SYNs came from: the node's address with source port 0, say, means the
// node's SNAT rewrites ports wrongly, nothing means the fabric or the node dropped them.
func snatDiagnosis(lab string, p PodInfo) string {
	const port = 47001
	w, err := probe.WatchSYNs(InternetNS(lab), port)
	if err != nil {
		return ""
	}
	_, err = probe.TCPTransferPort(InternetNS(lab), netip.AddrPortFrom(fabric.InternetHost, port), p.NS, 1024, 2*time.Second)
	seen := w.Stop()
	if err == nil {
		return " (a second try worked)"
	}
	if len(seen) == 0 {
		return " (no SYN reached the internet namespace)"
	}
	return fmt.Sprintf(" (the internet namespace got SYNs from %v)", seen)
}
