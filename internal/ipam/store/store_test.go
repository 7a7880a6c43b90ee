package store

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func key(i int) Key { return Key{Network: "vpcnet", ContainerID: fmt.Sprint("c", i), IfName: "eth0"} }

func alloc(i int, addr string) Alloc {
	return Alloc{Key: key(i), Addr: netip.MustParseAddr(addr), ENI: "eni-1", At: time.Unix(1, 0).UTC()}
}

func TestPutGetDelete(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(alloc(1, "10.0.0.5")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(alloc(1, "10.0.0.5")); err != nil {
		t.Fatalf("same key, same address: %v", err)
	}
	if err := s.Put(alloc(1, "10.0.0.6")); !errors.Is(err, ErrKeyHolds) {
		t.Fatalf("same key, other address: %v", err)
	}
	if err := s.Put(alloc(2, "10.0.0.5")); !errors.Is(err, ErrAddrHeld) {
		t.Fatalf("other key, same address: %v", err)
	}
	if a, ok := s.Get(key(1)); !ok || a.Addr.String() != "10.0.0.5" {
		t.Fatalf("get: %v %v", a, ok)
	}
	if _, ok, err := s.Delete(key(1)); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if _, ok, err := s.Delete(key(1)); ok || err != nil {
		t.Fatalf("delete again: %v %v", ok, err)
	}
	if err := s.Put(alloc(2, "10.0.0.5")); err != nil {
		t.Fatalf("address free again: %v", err)
	}
}

func TestReopenRestores(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	for i := range 50 {
		if err := s.Put(alloc(i, fmt.Sprint("10.0.0.", i+10))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 50; i += 2 {
		s.Delete(key(i))
	}
	s.Close()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := len(s.List()); n != 25 {
		t.Fatalf("restored %d, want 25", n)
	}
	if _, ok := s.Get(key(1)); !ok {
		t.Fatal("key 1 lost")
	}
	if _, ok := s.Get(key(2)); ok {
		t.Fatal("deleted key 2 came back")
	}
}

// TestTornTail cuts the journal at every byte: what was whole survives, nothing is held twice.
func TestTornTail(t *testing.T) {
	var journal []byte
	var ends []int
	for i := range 6 {
		journal = append(journal, record{Op: opAdd, Alloc: alloc(i, fmt.Sprint("10.0.0.", i))}.encode()...)
		ends = append(ends, len(journal))
		if i == 3 {
			journal = append(journal, record{Op: opDel, Alloc: alloc(1, "10.0.0.1")}.encode()...)
			ends = append(ends, len(journal))
		}
	}
	for cut := 0; cut <= len(journal); cut++ {
		live, good := Parse(journal[:cut])
		whole := 0
		for _, e := range ends {
			if e <= cut {
				whole = e
			}
		}
		if good != whole {
			t.Fatalf("cut %d: %d good bytes, want %d", cut, good, whole)
		}
		seen := map[netip.Addr]bool{}
		for _, a := range live {
			if seen[a.Addr] {
				t.Fatalf("cut %d: %s twice", cut, a.Addr)
			}
			seen[a.Addr] = true
		}
	}
}

func TestOpenDropsTornRecordAndAppends(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	s.Put(alloc(1, "10.0.0.1"))
	s.Close()
	f, _ := os.OpenFile(filepath.Join(dir, journalName), os.O_WRONLY|os.O_APPEND, 0)
	f.Write(bytes.TrimSuffix(record{Op: opAdd, Alloc: alloc(2, "10.0.0.2")}.encode(), []byte("}\n")))
	f.Close()
	s, _ = Open(dir)
	if err := s.Put(alloc(3, "10.0.0.3")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, _ = Open(dir)
	defer s.Close()
	if n := len(s.List()); n != 2 {
		t.Fatalf("%d allocations after a torn record, want 2: %v", n, s.List())
	}
}

func TestGC(t *testing.T) {
	s, _ := Open(t.TempDir())
	defer s.Close()
	for i := range 5 {
		s.Put(alloc(i, fmt.Sprint("10.0.0.", i)))
	}
	other := Alloc{Key: Key{Network: "other", ContainerID: "x", IfName: "eth0"}, Addr: netip.MustParseAddr("10.0.0.9")}
	s.Put(other)
	gone, err := s.GC("vpcnet", []Key{key(1), key(3)})
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 3 || len(s.List()) != 3 {
		t.Fatalf("released %d, left %d", len(gone), len(s.List()))
	}
	if _, ok := s.Get(other.Key); !ok {
		t.Fatal("GC touched another network")
	}
}

func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	for i := range 3000 {
		s.Put(alloc(i, "10.0.0.7"))
		if i != 2999 {
			s.Delete(key(i))
		}
	}
	s.Close()
	st, _ := os.Stat(filepath.Join(dir, journalName))
	if st.Size() > 200*1024 {
		t.Fatalf("journal is %d bytes: never compacted", st.Size())
	}
	s, _ = Open(dir)
	defer s.Close()
	if a, ok := s.Get(key(2999)); !ok || a.Addr.String() != "10.0.0.7" {
		t.Fatal("last allocation lost")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(record{Op: opAdd, Alloc: alloc(1, "10.0.0.1")}.encode())
	f.Add(append(record{Op: opAdd, Alloc: alloc(1, "10.0.0.1")}.encode(), record{Op: opDel, Alloc: alloc(1, "10.0.0.1")}.encode()...))
	f.Add([]byte("00000000 {}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		live, good := Parse(data)
		if good < 0 || good > len(data) {
			t.Fatalf("good %d of %d", good, len(data))
		}
		addrs, keys := map[netip.Addr]bool{}, map[Key]bool{}
		var again []byte
		for _, a := range live {
			if addrs[a.Addr] || keys[a.Key] {
				t.Fatalf("%v held twice", a)
			}
			addrs[a.Addr], keys[a.Key] = true, true
			again = append(again, record{Op: opAdd, Alloc: a}.encode()...)
		}
		if l2, g2 := Parse(again); len(l2) != len(live) || g2 != len(again) {
			t.Fatalf("re-encoded journal reads back %d of %d", len(l2), len(live))
		}
	})
}

func TestReleaseTimesSurviveRestartAndCompaction(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	s.Put(alloc(1, "10.0.0.1"))
	s.Put(alloc(2, "10.0.0.2"))
	before := time.Now()
	s.Delete(key(1))
	s.Close()
	for range 2 { // the second Open reads the compacted journal
		s, _ = Open(dir)
		at, ok := s.Released()[netip.MustParseAddr("10.0.0.1")]
		if !ok || at.Before(before.Add(-time.Second)) {
			t.Fatalf("release time of 10.0.0.1 lost: %v %v", at, ok)
		}
		if _, ok := s.Released()[netip.MustParseAddr("10.0.0.2")]; ok {
			t.Fatal("a held address has a release time")
		}
		s.Close()
	}
	s, _ = Open(dir)
	defer s.Close()
	s.Put(alloc(3, "10.0.0.1"))
	if _, ok := s.Released()[netip.MustParseAddr("10.0.0.1")]; ok {
		t.Fatal("an address held again keeps its release time")
	}
}
