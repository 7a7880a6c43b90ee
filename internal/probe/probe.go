// Package probe sends and receives test traffic from inside network namespaces, in Go only, so
// namespace tests, the lab and its bench need no ping, nc or tcpdump: ICMP echoes (counted, or
// one timed), UDP datagrams, a TCP transfer with a checksum, a SYN watch, a scan for tunnel
// devices, and dialing from a namespace. A namespace is named by its path or, without a slash, by
// its name under /run/netns. Sockets are opened with the calling thread inside the namespace and
// used from anywhere after.
package probe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vpcnet/vpcnet/internal/netnsx"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// In runs f with the calling goroutine's thread inside the namespace (a path, or a name under
// /run/netns). Sockets opened in f stay in that namespace after f returns.
func In(nsPathOrName string, f func() error) error {
	path := nsPathOrName
	if !strings.Contains(path, "/") {
		path = netnsx.Path(path)
	}
	h, err := ns.GetNS(path)
	if err != nil {
		return err
	}
	defer h.Close()
	return h.Do(func(ns.NetNS) error { return f() })
}

// Ping sends count ICMP echo requests from the namespace at path to dst and returns how many
// replies came back within timeout each.
func Ping(path string, dst netip.Addr, count int, timeout time.Duration) (int, error) {
	var c *icmp.PacketConn
	err := In(path, func() error {
		var err error
		c, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("icmp socket in %s: %w", path, err)
	}
	defer c.Close()
	id := os.Getpid()&0xffff ^ int(time.Now().UnixNano()&0xffff)
	got := 0
	buf := make([]byte, 1500)
	for seq := 1; seq <= count; seq++ {
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("vpcnet-probe")}}
		b, err := msg.Marshal(nil)
		if err != nil {
			return got, err
		}
		if _, err := c.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return got, fmt.Errorf("echo to %s: %w", dst, err)
		}
		deadline := time.Now().Add(timeout)
		for {
			_ = c.SetReadDeadline(deadline)
			n, peer, err := c.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return got, err
			}
			m, err := icmp.ParseMessage(1, buf[:n])
			if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
				continue
			}
			if e, ok := m.Body.(*icmp.Echo); ok && e.ID == id && e.Seq == seq && peer.String() == dst.String() {
				got++
				break
			}
		}
	}
	return got, nil
}

// ListenUDP opens a UDP socket on addr inside the namespace at path.
func ListenUDP(path string, addr netip.AddrPort) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := In(path, func() error {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	})
	return c, err
}

// SendUDP sends payload from src (zero port: any) to dst from inside the namespace at path.
// src may be any address the namespace holds.
func SendUDP(path string, src, dst netip.AddrPort, payload []byte) error {
	return In(path, func() error {
		var laddr *net.UDPAddr
		if src.Addr().IsValid() {
			laddr = net.UDPAddrFromAddrPort(src)
		}
		c, err := net.DialUDP("udp4", laddr, net.UDPAddrFromAddrPort(dst))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(payload)
		return err
	})
}

// RecvUDP waits up to timeout for one datagram on c and returns its payload and sender; ok is
// false on timeout.
func RecvUDP(c *net.UDPConn, timeout time.Duration) (payload []byte, from netip.AddrPort, ok bool, err error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 65536)
	n, a, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, netip.AddrPort{}, false, nil
		}
		return nil, netip.AddrPort{}, false, err
	}
	return buf[:n], netip.AddrPortFrom(a.Addr().Unmap(), a.Port()), true, nil
}

// WaitPing pings dst from the namespace at path until a reply comes, for up to timeout: for
// paths that settle (neighbour resolution behind a router, routes being installed elsewhere).
func WaitPing(path string, dst netip.Addr, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := Ping(path, dst, 1, 250*time.Millisecond)
		if err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no echo reply from %s within %s", dst, timeout)
		}
	}
}
