package probe

import (
	"net/netip"
	"testing"
)

func TestSynTo(t *testing.T) {
	// IPv4 header (20 bytes) from 10.0.0.1 to 10.0.0.2, then a TCP header from port 4660 to 80.
	pkt := func(flags byte, dport uint16) []byte {
		p := make([]byte, 40)
		p[0], p[9] = 0x45, 6
		copy(p[12:16], []byte{10, 0, 0, 1})
		copy(p[16:20], []byte{10, 0, 0, 2})
		p[20], p[21] = 0x12, 0x34
		p[22], p[23] = byte(dport>>8), byte(dport)
		p[33] = flags
		return p
	}
	tests := []struct {
		name string
		p    []byte
		want netip.AddrPort
		ok   bool
	}{
		{"syn", pkt(0x02, 80), netip.MustParseAddrPort("10.0.0.1:4660"), true},
		{"syn-ack", pkt(0x12, 80), netip.AddrPort{}, false},
		{"other port", pkt(0x02, 81), netip.AddrPort{}, false},
		{"ack", pkt(0x10, 80), netip.AddrPort{}, false},
		{"short", pkt(0x02, 80)[:30], netip.AddrPort{}, false},
		{"udp", func() []byte { p := pkt(0x02, 80); p[9] = 17; return p }(), netip.AddrPort{}, false},
	}
	for _, tc := range tests {
		got, ok := synTo(tc.p, 80)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: synTo = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
