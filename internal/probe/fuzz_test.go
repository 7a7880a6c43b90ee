package probe

import "testing"

// FuzzSynTo: any bytes off the wire parse without panicking.
func FuzzSynTo(f *testing.F) {
	f.Add([]byte{0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x12, 0x34, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0, 0, 0, 0, 0, 0}, uint16(80))
	f.Add([]byte{0x4f}, uint16(1))
	f.Fuzz(func(t *testing.T, p []byte, port uint16) {
		if src, ok := synTo(p, port); ok && !src.Addr().Is4() {
			t.Fatalf("synTo returned %v", src)
		}
	})
}
