// Package store keeps the node's pod address allocations on disk, keyed by (network, container
// ID, interface name) as in the CNI spec: every change is fsync'd to an append-only journal
// before it is acknowledged, so a crash at any instant loses nothing acknowledged and never
// gives one address to two keys.
package store

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Key identifies one attachment.
type Key struct {
	Network     string `json:"n"`
	ContainerID string `json:"c"`
	IfName      string `json:"i"`
}

func (k Key) String() string { return k.Network + "/" + k.ContainerID + "/" + k.IfName }

// Alloc is an address held for a key.
type Alloc struct {
	Key          Key        `json:"k"`
	Addr         netip.Addr `json:"a"`
	ENI          string     `json:"e,omitempty"`
	PodNamespace string     `json:"pn,omitempty"`
	PodName      string     `json:"p,omitempty"`
	Netns        string     `json:"ns,omitempty"`
	At           time.Time  `json:"t"`
}

// ErrAddrHeld is returned by Put for an address another key holds.
var ErrAddrHeld = errors.New("address held by another key")

// ErrKeyHolds is returned by Put for a key that already holds a different address.
var ErrKeyHolds = errors.New("key already holds an address")

// Store is the allocation table and its journal. It is safe for concurrent use.
type Store struct {
	mu     sync.Mutex
	dir    string
	f      *os.File
	byKey  map[Key]Alloc
	byAddr map[netip.Addr]Key
	// released is when addresses no key holds were last released, so that their cooldown
	// survives a restart.
	released map[netip.Addr]time.Time
	records  int // records in the journal, live or not
}

const journalName = "allocations.journal"

// Open loads the store in dir (created 0700 if missing), dropping a torn last record, and
// rewrites the journal compactly.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("allocation store: %w", err)
	}
	s := &Store{dir: dir}
	data, err := os.ReadFile(filepath.Join(dir, journalName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("allocation store: %w", err)
	}
	live, released, _ := replay(data)
	s.byKey, s.byAddr, s.released = map[Key]Alloc{}, map[netip.Addr]Key{}, released
	for _, a := range live {
		s.byKey[a.Key], s.byAddr[a.Addr] = a, a.Key
	}
	if err := s.compact(); err != nil {
		return nil, err
	}
	return s, nil
}

// Close closes the journal.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Close()
}

// Get returns what key holds.
func (s *Store) Get(k Key) (Alloc, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.byKey[k]
	return a, ok
}

// Holder returns the key holding addr.
func (s *Store) Holder(addr netip.Addr) (Key, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.byAddr[addr]
	return k, ok
}

// List returns every allocation ordered by address.
func (s *Store) List() []Alloc {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Alloc, 0, len(s.byKey))
	for _, a := range s.byKey {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y Alloc) int { return x.Addr.Compare(y.Addr) })
	return out
}

// Released returns when each address no key holds was last released (within the last ten
// minutes, across restarts).
func (s *Store) Released() map[netip.Addr]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[netip.Addr]time.Time, len(s.released))
	for a, t := range s.released {
		out[a] = t
	}
	return out
}

// Put records a and returns once it is on disk. Putting the same key and address again is a
// no-op.
func (s *Store) Put(a Alloc) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.byKey[a.Key]; ok {
		if cur.Addr == a.Addr {
			return nil
		}
		return fmt.Errorf("%w: %s holds %s", ErrKeyHolds, a.Key, cur.Addr)
	}
	if k, ok := s.byAddr[a.Addr]; ok {
		return fmt.Errorf("%w: %s is held by %s", ErrAddrHeld, a.Addr, k)
	}
	if err := s.append(record{Op: opAdd, Alloc: a}); err != nil {
		return err
	}
	s.byKey[a.Key], s.byAddr[a.Addr] = a, a.Key
	delete(s.released, a.Addr)
	s.maybeCompact()
	return nil
}

// Delete releases what k holds, on disk before it returns. ok is false when k held nothing.
func (s *Store) Delete(k Key) (Alloc, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteLocked(k)
}

func (s *Store) deleteLocked(k Key) (Alloc, bool, error) {
	a, ok := s.byKey[k]
	if !ok {
		return Alloc{}, false, nil
	}
	now := time.Now().UTC()
	if err := s.append(record{Op: opDel, Alloc: Alloc{Key: k, Addr: a.Addr, At: now}}); err != nil {
		return Alloc{}, false, err
	}
	delete(s.byKey, k)
	delete(s.byAddr, a.Addr)
	s.released[a.Addr] = now
	s.maybeCompact()
	return a, true, nil
}

// GC releases every allocation of network whose key is not in valid, and returns them.
func (s *Store) GC(network string, valid []Key) ([]Alloc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := map[Key]bool{}
	for _, k := range valid {
		keep[k] = true
	}
	var gone []Alloc
	for k := range s.byKey {
		if k.Network != network || keep[k] {
			continue
		}
		a, _, err := s.deleteLocked(k)
		if err != nil {
			return gone, err
		}
		gone = append(gone, a)
	}
	slices.SortFunc(gone, func(x, y Alloc) int { return x.Addr.Compare(y.Addr) })
	return gone, nil
}

// append writes one record and fsyncs it.
func (s *Store) append(r record) error {
	_, err := s.f.Write(r.encode())
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		// The journal may now end in a torn record that would hide later ones: rewrite it from
		// memory, which does not hold r yet.
		if cerr := s.compact(); cerr != nil {
			err = fmt.Errorf("%w; rewriting the journal: %w", err, cerr)
		}
		return fmt.Errorf("allocation store: %w", err)
	}
	s.records++
	return nil
}

// maybeCompact rewrites the journal once it is mostly dead records. Called after the in-memory
// state includes the last record; on failure the old journal, already complete, stays in use.
func (s *Store) maybeCompact() {
	if s.records > 1024 && s.records > 4*(len(s.byKey)+len(s.released)) {
		_ = s.compact()
	}
}
