package cni_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vpcnet/vpcnet/internal/probe"
)

// vpcnet-cni first, then the reference portmap, bandwidth and tuning plugins in one conflist (at
// 1.0.0, the newest version Debian's plugins speak): each gets our result as prevResult and does
// its job on our veth pair.
func TestChainingWithReferencePlugins(t *testing.T) {
	needRef(t, "portmap", "bandwidth", "tuning")
	c := newCluster(t, clusterOpts{})
	portmap := map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}}
	bandwidth := map[string]any{"type": "bandwidth", "capabilities": map[string]bool{"bandwidth": true}}
	tuning := map[string]any{"type": "tuning", "sysctl": map[string]string{"net.ipv4.conf.eth0.log_martians": "1"}}
	list := c.conflist(t, "1.0.0", portmap, bandwidth, tuning)
	// Debian's portmap 1.1.1 fails CHECK on IPv4-only pods, looking for ip6tables rules it never
	// made (containernetworking/plugins#819, fixed upstream), so CHECK runs the chain without it.
	checkList := c.conflist(t, "1.0.0", bandwidth, tuning)
	server, client := newPod(t, "web"), newPod(t, "client")
	server.rt.CapabilityArgs = map[string]any{
		"portMappings": []map[string]any{{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}},
		"bandwidth":    map[string]any{"ingressRate": 100_000_000, "ingressBurst": 1_000_000, "egressRate": 100_000_000, "egressBurst": 1_000_000},
	}
	// Debian's bandwidth 1.1.1 panics in CHECK for a pod without limits, so both get some.
	client.rt.CapabilityArgs = map[string]any{"bandwidth": server.rt.CapabilityArgs["bandwidth"]}
	for _, p := range []*pod{server, client} {
		if err := c.addRetry(list, p, 30*time.Second); err != nil {
			t.Fatalf("ADD %s through the chain: %v", p.name, err)
		}
		if err := c.cni.CheckNetworkList(bg, checkList, p.rt); err != nil {
			t.Fatalf("CHECK %s through the chain: %v", p.name, err)
		}
	}
	// tuning set the sysctl inside the pod.
	if err := probe.In(server.ns.Path(), func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/conf/eth0/log_martians")
		if err == nil && string(bytes.TrimSpace(b)) != "1" {
			t.Errorf("tuning: log_martians = %q in the pod, want 1", b)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// bandwidth put a shaper on our host veth (found from our result).
	c.do(t, func() error {
		veth, err := netlink.LinkByName(server.res.Interfaces[0].Name)
		if err != nil {
			return err
		}
		qd, err := netlink.QdiscList(veth)
		if err != nil {
			return err
		}
		tbf := false
		for _, q := range qd {
			tbf = tbf || q.Type() == "tbf"
		}
		if !tbf {
			t.Errorf("bandwidth: no tbf qdisc on %s: %v", veth.Attrs().Name, qd)
		}
		return nil
	})
	// portmap: the client reaches the server's port 80 at the node's address, port 8080.
	var ln net.Listener
	if err := probe.In(server.ns.Path(), func() error {
		var err error
		ln, err = net.Listen("tcp4", server.ip.String()+":80")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(conn, "hello from "+server.ip.String())
			conn.Close()
		}
	}()
	var reply string
	err := probe.In(client.ns.Path(), func() error {
		d := net.Dialer{Timeout: 10 * time.Second}
		var lastErr error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			conn, err := d.Dial("tcp4", netip.AddrPortFrom(c.primaryIP, 8080).String())
			if err != nil {
				lastErr = err
				time.Sleep(200 * time.Millisecond)
				continue
			}
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			b, err := io.ReadAll(conn)
			conn.Close()
			reply = string(b)
			return err
		}
		return fmt.Errorf("dial node %s:8080: %w", c.primaryIP, lastErr)
	})
	if err != nil || reply != "hello from "+server.ip.String() {
		t.Fatalf("portmap: got %q, %v", reply, err)
	}
	for _, p := range []*pod{server, client} {
		for i := 0; i < 2; i++ {
			if err := c.cni.DelNetworkList(bg, list, p.rt); err != nil {
				t.Fatalf("DEL %d of %s through the chain: %v", i+1, p.name, err)
			}
		}
	}
	if left := c.leftovers(t); len(left) > 0 {
		t.Fatalf("after DEL: %v", left)
	}
}
