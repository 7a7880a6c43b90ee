package vpcsim_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpcnet/vpcnet/internal/testenv"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// hopTopo is router <-> node <-> pod: IMDS listens in router, node is the instance (one link
// away), pod is one routing hop behind node, as a pod behind a node on EC2.
type hopTopo struct{ router, node, pod ns.NetNS }

func newHopTopo(t *testing.T) *hopTopo {
	t.Helper()
	tp := &hopTopo{router: testenv.NewNS(t), node: testenv.NewNS(t), pod: testenv.NewNS(t)}
	in := func(n ns.NetNS, f func() error) {
		t.Helper()
		if err := n.Do(func(ns.NetNS) error { return f() }); err != nil {
			t.Fatal(err)
		}
	}
	// pair makes a veth from a (aName, aAddr) to b (bName, bAddr), both up.
	pair := func(a ns.NetNS, aName, aAddr string, b ns.NetNS, bName, bAddr string) {
		in(a, func() error {
			if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: aName}, PeerName: bName}); err != nil {
				return err
			}
			peer, err := netlink.LinkByName(bName)
			if err != nil {
				return err
			}
			return netlink.LinkSetNsFd(peer, int(b.Fd()))
		})
		for _, side := range []struct {
			n          ns.NetNS
			name, addr string
		}{{a, aName, aAddr}, {b, bName, bAddr}} {
			in(side.n, func() error {
				l, err := netlink.LinkByName(side.name)
				if err != nil {
					return err
				}
				addr, _ := netlink.ParseAddr(side.addr)
				if err := netlink.AddrAdd(l, addr); err != nil {
					return err
				}
				return netlink.LinkSetUp(l)
			})
		}
	}
	for _, n := range []ns.NetNS{tp.router, tp.node, tp.pod} {
		in(n, func() error {
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				return err
			}
			return netlink.LinkSetUp(lo)
		})
	}
	pair(tp.router, "r0", "10.99.0.1/30", tp.node, "n0", "10.99.0.2/30")
	pair(tp.node, "n1", "10.99.1.1/30", tp.pod, "p0", "10.99.1.2/30")
	in(tp.node, func() error { return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644) })
	in(tp.pod, func() error {
		_, dst, _ := net.ParseCIDR("0.0.0.0/0")
		return netlink.RouteAdd(&netlink.Route{Dst: dst, Gw: net.ParseIP("10.99.1.1")})
	})
	in(tp.router, func() error {
		_, dst, _ := net.ParseCIDR("10.99.1.0/30")
		return netlink.RouteAdd(&netlink.Route{Dst: dst, Gw: net.ParseIP("10.99.0.2")})
	})
	return tp
}

// serveIMDS serves s's IMDS, answering as instance, on addr inside the router namespace.
func (tp *hopTopo) serveIMDS(t *testing.T, s *vpcsim.Server, instance, addr string) {
	t.Helper()
	var ln net.Listener
	err := tp.router.Do(func(ns.NetNS) (err error) { ln, err = net.Listen("tcp", addr); return err })
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.IMDSHandler(func(*http.Request) (string, error) { return instance, nil }), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// clientIn is an HTTP client whose connections start in n.
func clientIn(n ns.NetNS, timeout time.Duration) *http.Client {
	d := &net.Dialer{}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = n.Do(func(ns.NetNS) error { c, err = d.DialContext(ctx, network, addr); return err })
			return c, err
		}}}
}

// putToken asks for an IMDSv2 token.
func putToken(c *http.Client, url string) (string, error) {
	req, _ := http.NewRequest(http.MethodPut, url+"/latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d %s", resp.StatusCode, b)
	}
	return string(b), err
}

// Issue 11 fault 9: with the IMDSv2 hop limit at its default of 1, a pod one routing hop behind
// its node gets no token (the answer's TTL runs out at the node); the node gets one. With a
// limit of 2 the same pod gets one, so routing is not what stops it.
func TestIMDSHopLimit(t *testing.T) {
	tp := newHopTopo(t)
	f1 := newFixture(t, vpcsim.Options{}, "10.0.0.0/16", "10.0.1.0/24")
	f2 := newFixture(t, vpcsim.Options{IMDSHopLimit: 2}, "10.0.0.0/16", "10.0.1.0/24")
	tp.serveIMDS(t, f1.s, *f1.run(t, "m5.large").InstanceId, "10.99.0.1:80")
	tp.serveIMDS(t, f2.s, *f2.run(t, "m5.large").InstanceId, "10.99.0.1:81")
	limit1, limit2 := "http://10.99.0.1:80", "http://10.99.0.1:81"

	node := clientIn(tp.node, 20*time.Second)
	tok, err := putToken(node, limit1)
	if err != nil || tok == "" {
		t.Fatalf("token from the node: %q %v", tok, err)
	}
	req, _ := http.NewRequest(http.MethodGet, limit1+"/latest/meta-data/iam/security-credentials/", nil)
	req.Header.Set("X-aws-ec2-metadata-token", tok)
	resp, err := node.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != vpcsim.DefaultInstanceRole {
		t.Fatalf("node reads its role: %d %q", resp.StatusCode, body)
	}

	if tok, err := putToken(clientIn(tp.pod, 20*time.Second), limit2); err != nil || tok == "" {
		t.Fatalf("hop limit 2: token from the pod: %q %v", tok, err)
	}
	// The answer never arrives: the client gives up. A second is many round trips between
	// namespaces; the limit-2 answer above took the same path.
	tok, err = putToken(clientIn(tp.pod, 2*time.Second), limit1)
	if err == nil || !strings.Contains(err.Error(), "Client.Timeout") {
		t.Fatalf("hop limit 1: the pod got a token answer (%q, %v)", tok, err)
	}
}
