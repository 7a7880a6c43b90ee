package probe

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// Echo sends ICMP echo requests from the namespace to dst until one is answered or timeout
// passes, and returns the round-trip time of the answered one. A valid src binds the
// request's source address.
func Echo(nsName string, src, dst netip.Addr, timeout time.Duration) (time.Duration, error) {
	var conn *icmp.PacketConn
	err := In(nsName, func() error {
		bind := "0.0.0.0"
		if src.IsValid() {
			bind = src.String()
		}
		var err error
		conn, err = icmp.ListenPacket("ip4:icmp", bind)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("ping from %s: %w", nsName, err)
	}
	defer conn.Close()
	id := os.Getpid()&0xffff ^ int(time.Now().UnixNano()&0xffff)
	deadline := time.Now().Add(timeout)
	for seq := 1; time.Now().Before(deadline); seq++ {
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("vpcnet-lab")}}
		b, _ := msg.Marshal(nil)
		sent := time.Now()
		if _, err := conn.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return 0, fmt.Errorf("ping %s from %s: %w", dst, nsName, err)
		}
		if rtt, ok := awaitEcho(conn, dst, id, seq, sent, min(time.Until(deadline), 500*time.Millisecond)); ok {
			return rtt, nil
		}
	}
	return 0, fmt.Errorf("ping %s from %s: no answer within %s", dst, nsName, timeout)
}

// awaitEcho reads until the reply to (id, seq) from dst arrives or wait passes.
func awaitEcho(conn *icmp.PacketConn, dst netip.Addr, id, seq int, sent time.Time, wait time.Duration) (time.Duration, bool) {
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	for {
		n, peer, err := conn.ReadFrom(buf)
		if err != nil {
			return 0, false
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		ip, _ := peer.(*net.IPAddr)
		if !ok || ip == nil || e.ID != id || e.Seq != seq {
			continue
		}
		if a, ok := netip.AddrFromSlice(ip.IP); !ok || a.Unmap() != dst {
			continue
		}
		return time.Since(sent), true
	}
}
