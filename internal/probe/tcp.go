package probe

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// Transfer is what a TCP transfer observed.
type Transfer struct {
	Bytes    int64
	Duration time.Duration
	// Source is the client's address as the server saw it (its own, or the node's after SNAT).
	Source netip.AddrPort
}

// TCPTransfer sends size random bytes from a client in clientNS to a server it starts in
// serverNS on serverAddr, and checks that the server received exactly those bytes (SHA-256).
func TCPTransfer(serverNS string, serverAddr netip.Addr, clientNS string, size int64, timeout time.Duration) (Transfer, error) {
	return TCPTransferPort(serverNS, netip.AddrPortFrom(serverAddr, 0), clientNS, size, timeout)
}

// TCPTransferPort is TCPTransfer with the server on a given port (0: any free one).
func TCPTransferPort(serverNS string, server netip.AddrPort, clientNS string, size int64, timeout time.Duration) (Transfer, error) {
	serverAddr := server.Addr()
	var ln net.Listener
	err := In(serverNS, func() error {
		var err error
		ln, err = net.Listen("tcp4", server.String())
		return err
	})
	if err != nil {
		return Transfer{}, fmt.Errorf("listen in %s on %s: %w", serverNS, serverAddr, err)
	}
	defer ln.Close()
	type served struct {
		sum  []byte
		n    int64
		from netip.AddrPort
		err  error
	}
	done := make(chan served, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- served{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		h := sha256.New()
		n, err := io.Copy(h, c)
		sum := h.Sum(nil)
		if err == nil {
			_, err = c.Write(sum)
		}
		from, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		done <- served{sum: sum, n: n, from: from, err: err}
	}()

	start := time.Now()
	sent, echoed, err := sendRandom(clientNS, netip.AddrPortFrom(serverAddr, uint16(ln.Addr().(*net.TCPAddr).Port)), size, timeout)
	if err != nil {
		return Transfer{}, err
	}
	var s served
	select {
	case s = <-done:
	case <-time.After(timeout):
		return Transfer{}, fmt.Errorf("tcp %s -> %s: server got nothing within %s", clientNS, serverAddr, timeout)
	}
	if s.err != nil {
		return Transfer{}, fmt.Errorf("tcp %s -> %s: server: %w", clientNS, serverAddr, s.err)
	}
	if s.n != size || string(s.sum) != string(sent) || string(echoed) != string(sent) {
		return Transfer{}, fmt.Errorf("tcp %s -> %s: server received %d of %d bytes or a different checksum", clientNS, serverAddr, s.n, size)
	}
	return Transfer{Bytes: s.n, Duration: time.Since(start), Source: s.from}, nil
}

// sendRandom dials dst from nsName, writes size random bytes, half-closes, and reads back the
// server's checksum. It returns its own checksum and the server's.
func sendRandom(nsName string, dst netip.AddrPort, size int64, timeout time.Duration) (sent, echoed []byte, err error) {
	var c net.Conn
	err = In(nsName, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", dst.String(), timeout)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("tcp %s -> %s: %w", nsName, dst, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(c, h), io.LimitReader(rand.Reader, size)); err != nil {
		return nil, nil, fmt.Errorf("tcp %s -> %s: send: %w", nsName, dst, err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return nil, nil, err
	}
	echoed, err = io.ReadAll(c)
	if err != nil {
		return nil, nil, fmt.Errorf("tcp %s -> %s: read checksum: %w", nsName, dst, err)
	}
	return h.Sum(nil), echoed, nil
}
