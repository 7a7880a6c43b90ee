package model

import (
	"math/bits"
	"net/netip"
)

// addrSet records which offsets of a subnet are taken (the 5 reserved addresses included).
type addrSet struct {
	base netip.Addr
	size int
	free int
	bits []uint64
}

// reservedCount is the number of addresses AWS reserves in every subnet.
const reservedCount = 5

func newAddrSet(p netip.Prefix) *addrSet {
	size := 1 << (32 - p.Bits())
	s := &addrSet{base: p.Masked().Addr(), size: size, free: size, bits: make([]uint64, (size+63)/64)}
	for _, off := range []int{0, 1, 2, 3, size - 1} {
		s.set(off)
	}
	return s
}

func (s *addrSet) offset(a netip.Addr) int {
	b, x := s.base.As4(), a.As4()
	return int(uint32(x[0])<<24|uint32(x[1])<<16|uint32(x[2])<<8|uint32(x[3])) -
		int(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]))
}

func (s *addrSet) addr(off int) netip.Addr {
	b := s.base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + uint32(off)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (s *addrSet) isSet(off int) bool { return s.bits[off/64]&(1<<(off%64)) != 0 }

func (s *addrSet) set(off int) {
	if !s.isSet(off) {
		s.bits[off/64] |= 1 << (off % 64)
		s.free--
	}
}

func (s *addrSet) clear(off int) {
	if s.isSet(off) {
		s.bits[off/64] &^= 1 << (off % 64)
		s.free++
	}
}

func (s *addrSet) mark(a netip.Addr)   { s.set(s.offset(a)) }
func (s *addrSet) unmark(a netip.Addr) { s.clear(s.offset(a)) }

func (s *addrSet) markPrefix(p netip.Prefix) {
	off := s.offset(p.Addr())
	for i := 0; i < 16; i++ {
		s.set(off + i)
	}
}

func (s *addrSet) unmarkPrefix(p netip.Prefix) {
	off := s.offset(p.Addr())
	for i := 0; i < 16; i++ {
		s.clear(off + i)
	}
}

// reserved reports whether the offset is one of the five addresses AWS keeps.
func (s *addrSet) reserved(off int) bool { return off <= 3 || off == s.size-1 }

// taken reports whether a is in use (or reserved).
func (s *addrSet) taken(a netip.Addr) bool { return s.isSet(s.offset(a)) }

// prefixFree reports whether the aligned /28 at p is wholly free.
func (s *addrSet) prefixFree(p netip.Prefix) bool {
	off := s.offset(p.Addr())
	return (s.bits[off/64]>>(off%64))&0xFFFF == 0
}

// lowestFree returns the n lowest free addresses, or false if there are fewer.
func (s *addrSet) lowestFree(n int) ([]netip.Addr, bool) {
	if n > s.free {
		return nil, false
	}
	out := make([]netip.Addr, 0, n)
	for w, word := range s.bits {
		for word != ^uint64(0) && len(out) < n {
			b := bits.TrailingZeros64(^word)
			off := w*64 + b
			if off >= s.size {
				break
			}
			out = append(out, s.addr(off))
			word |= 1 << b
		}
		if len(out) == n {
			return out, true
		}
	}
	return out, len(out) == n
}

// freePrefixes returns the n lowest wholly free aligned /28 blocks, or false if there are fewer.
func (s *addrSet) freePrefixes(n int) ([]netip.Prefix, bool) {
	out := make([]netip.Prefix, 0, n)
	for off := 0; off+16 <= s.size && len(out) < n; off += 16 {
		if (s.bits[off/64]>>(off%64))&0xFFFF == 0 {
			out = append(out, netip.PrefixFrom(s.addr(off), 28))
		}
	}
	return out, len(out) == n
}

// available is AvailableIpAddressCount.
func (s *addrSet) available() int { return s.free }
