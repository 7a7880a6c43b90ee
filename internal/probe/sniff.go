package probe

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
)

// SYNWatch records the sources of TCP SYNs to one port arriving in a namespace. It lets a
// failed transfer say what the far end actually received (after any NAT on the way).
type SYNWatch struct {
	fd   int
	mu   sync.Mutex
	seen []netip.AddrPort
	done chan struct{}
}

// WatchSYNs starts recording SYNs to port in the named namespace; call Stop to get them.
func WatchSYNs(nsName string, port uint16) (*SYNWatch, error) {
	var fd int
	err := In(nsName, func() error {
		var err error
		fd, err = syscall.Socket(syscall.AF_PACKET, syscall.SOCK_DGRAM, int(htons(syscall.ETH_P_IP)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("watch SYNs in %s: %w", nsName, err)
	}
	tv := syscall.Timeval{Usec: 100000}
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	w := &SYNWatch{fd: fd, done: make(chan struct{})}
	go w.read(port)
	return w, nil
}

func (w *SYNWatch) read(port uint16) {
	defer close(w.done)
	buf := make([]byte, 256)
	for {
		n, _, err := syscall.Recvfrom(w.fd, buf, 0)
		if err == syscall.EBADF {
			return
		}
		if err != nil {
			w.mu.Lock()
			closed := w.fd < 0
			w.mu.Unlock()
			if closed {
				return
			}
			continue
		}
		if src, ok := synTo(buf[:n], port); ok {
			w.mu.Lock()
			w.seen = append(w.seen, src)
			w.mu.Unlock()
		}
	}
}

// synTo parses an IPv4 packet and returns its source if it is a TCP SYN (not SYN-ACK) to port.
func synTo(p []byte, port uint16) (netip.AddrPort, bool) {
	if len(p) < 20 || p[0]>>4 != 4 || p[9] != syscall.IPPROTO_TCP {
		return netip.AddrPort{}, false
	}
	ihl := int(p[0]&0x0f) * 4
	if len(p) < ihl+14 {
		return netip.AddrPort{}, false
	}
	tcp := p[ihl:]
	flags := tcp[13]
	if binary.BigEndian.Uint16(tcp[2:4]) != port || flags&0x02 == 0 || flags&0x10 != 0 {
		return netip.AddrPort{}, false
	}
	src := netip.AddrFrom4([4]byte(p[12:16]))
	return netip.AddrPortFrom(src, binary.BigEndian.Uint16(tcp[0:2])), true
}

// Stop ends the watch and returns the SYN sources seen, in order.
func (w *SYNWatch) Stop() []netip.AddrPort {
	w.mu.Lock()
	fd := w.fd
	w.fd = -1
	w.mu.Unlock()
	syscall.Close(fd)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
