// Package store keeps the node's pod address allocations on disk, keyed by (network, container
// ID, interface name) as in the CNI spec: every change is fsync'd to an append-only journal of
// self-checking records before it is acknowledged, so a crash at any instant loses nothing
// acknowledged and never gives one address to two keys. Whatever happens to the disk, nothing
// acknowledged is lost without a loud report (Damage), the damaged journal is kept aside, never
// rewritten away, and an address whose record is damaged stays held (quarantined) rather than
// being handed to a new pod.
package store

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
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
	// PodUID is the pod's metadata.uid (the ADD's K8S_POD_UID), "" when the runtime gave none or
	// the allocation predates the field: journals without it load as before, and an agent
	// that predates it skips the unknown key. The API-server GC tells a pod re-created under the
	// same name from its predecessor by it.
	PodUID string    `json:"u,omitempty"`
	Netns  string    `json:"ns,omitempty"`
	At     time.Time `json:"t"`
}

// ErrAddrHeld is returned by Put for an address another key holds.
var ErrAddrHeld = errors.New("address held by another key")

// ErrKeyHolds is returned by Put for a key that already holds a different address.
var ErrKeyHolds = errors.New("key already holds an address")

// ErrLocked is returned by Open when another process has the store open.
var ErrLocked = errors.New("allocation store in use by another process")

// ErrBroken is returned by Put and Delete once a failed write could not be undone: what is on
// disk is unknown, so nothing more is acknowledged until the store is opened again.
var ErrBroken = errors.New("allocation store unusable after a failed write")

// Damage is what Open found wrong with the journal. The zero value means nothing.
type Damage struct {
	Evidence    string       // the damaged journal kept aside (a hard link), "" if none was needed
	Torn        int          // bytes of a torn last record dropped (a crash mid-append: never acknowledged)
	Damaged     int          // whole records that failed their checksum
	Repaired    int          // of those, records with one damaged byte, undone through the checksum
	Unknown     int          // of those, how many named no readable address
	Quarantined []netip.Addr // addresses of damaged records, held under quarantine keys
	Emptied     bool         // the journal was empty or lacked its header: cut or emptied
	Missing     bool         // the journal is gone from a directory that held a store
}

// Lost tells whether the journal was damaged beyond a torn last record, so that acknowledged
// allocations may have been lost, quarantined or repaired: it is what vpcnetd reports as an
// error. It is false for a clean journal and for one whose only fault is a torn last record.
func (d Damage) Lost() bool { return d.Damaged > 0 || d.Emptied || d.Missing }

// String is one line for the log.
func (d Damage) String() string {
	var parts []string
	if d.Missing {
		parts = append(parts, "the journal is missing")
	}
	if d.Emptied {
		parts = append(parts, "the journal was emptied or cut at its start")
	}
	if d.Damaged > 0 {
		parts = append(parts, fmt.Sprintf("%d damaged records (%d repaired, %d with no readable address)", d.Damaged, d.Repaired, d.Unknown))
	}
	if len(d.Quarantined) > 0 {
		parts = append(parts, fmt.Sprintf("quarantined %v", d.Quarantined))
	}
	if d.Torn > 0 {
		parts = append(parts, fmt.Sprintf("dropped a torn last record of %d bytes", d.Torn))
	}
	if d.Evidence != "" {
		parts = append(parts, "the journal as found is kept in "+d.Evidence)
	}
	if len(parts) == 0 {
		return "clean"
	}
	return strings.Join(parts, "; ")
}

// Store is the allocation table and its journal. It is safe for concurrent use.
type Store struct {
	mu   sync.Mutex
	dir  string
	lock *os.File
	f    *os.File
	size int64 // bytes of whole records in the journal: where the next append starts
	// allocated is how far the journal's blocks are reserved (fallocate, KEEP_SIZE); 0 when the
	// file system cannot reserve.
	allocated int64
	broken    error // set when a failed append could not be undone
	damage    Damage
	byKey     map[Key]Alloc
	byAddr    map[netip.Addr]Key
	// released is when addresses no key holds were last released, so that their cooldown
	// survives a restart.
	released map[netip.Addr]time.Time
	records  int // records in the journal, live or not
}

const journalName = "allocations.journal"

// Open loads the store in dir (created 0700 if missing) and takes its lock (ErrLocked when
// another process holds it). A clean journal is appended to as it is. Anything else is kept
// aside first (a hard link named allocations.journal.damaged-<UTC time>, never overwritten), then
// the journal is rewritten from what could be read: a torn last record is dropped; a damaged
// record's readable addresses are quarantined; an emptied or missing journal is reported.
// Damage says what was found. A directory that cannot be written fails Open.
func Open(dir string) (*Store, error) {
	fresh := false
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("allocation store: %w", err)
		}
		fresh = true
	}
	used := !fresh && !emptyDir(dir) // a store was opened here before
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, lock: lock}
	ok := false
	defer func() {
		if !ok {
			s.closeFiles()
		}
	}()
	path := filepath.Join(dir, journalName)
	data, err := os.ReadFile(path)
	exists := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("allocation store: %w", err)
	}
	rp := Parse(data)
	s.byKey, s.byAddr, s.released = map[Key]Alloc{}, map[netip.Addr]Key{}, rp.Released
	for _, a := range rp.Live {
		s.byKey[a.Key], s.byAddr[a.Addr] = a, a.Key
	}
	s.records = len(rp.Live) + len(rp.Released)
	d := Damage{Torn: rp.Torn, Damaged: rp.Damaged, Repaired: rp.Repaired, Unknown: rp.Unknown, Quarantined: rp.Quarantined}
	switch {
	case !exists && used:
		d.Missing = true
	case exists && (len(data) == 0 || !rp.Header && !legacy(data)):
		d.Emptied = true
	}
	if exists && (d.Torn > 0 || d.Damaged > 0 || d.Emptied) {
		ev, err := keepEvidence(path)
		if err != nil {
			return nil, fmt.Errorf("allocation store: keeping the damaged journal aside: %w", err)
		}
		d.Evidence = ev
	}
	s.damage = d
	if !exists || d.Lost() || d.Torn > 0 || !rp.Header {
		if err := s.compact(); err != nil {
			return nil, err
		}
	} else {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("allocation store: %w", err)
		}
		s.f, s.size = f, int64(len(data))
		s.reserve()
	}
	ok = true
	return s, nil
}

// legacy tells whether a journal without a header was written before headers existed: it
// then starts with a whole record. (A journal cut at the front starts in the middle of one.)
func legacy(data []byte) bool {
	nl := strings.IndexByte(string(data[:min(len(data), 4096)]), '\n')
	if nl < 0 {
		return false
	}
	_, ok := decode(data[:nl])
	return ok
}

func emptyDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	return len(entries) == 0
}

// keepEvidence hard-links the journal to a new name carrying the time, so the rewrite that
// follows cannot destroy it.
func keepEvidence(path string) (string, error) {
	base := path + ".damaged-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	for i := 0; ; i++ {
		name := base
		if i > 0 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		err := os.Link(path, name)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		return name, syncDir(filepath.Dir(path))
	}
}

const lockName = "lock"

// lockDir takes an exclusive flock on dir/lock: one process per store, so a second agent can
// never compact the journal under the first.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("allocation store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("allocation store: lock: %w", err)
	}
	return f, nil
}

// Damage returns what Open found wrong with the journal.
func (s *Store) Damage() Damage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.damage
}

// Close closes the journal and releases the store's lock.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeFiles()
}

func (s *Store) closeFiles() error {
	var err error
	if s.f != nil {
		err = s.f.Close()
		s.f = nil
	}
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
	return err
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
// When k holds nothing but an address was quarantined under k's quarantine key (its record was
// damaged), that address is released.
func (s *Store) Delete(k Key) (Alloc, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byKey[k]; !ok && !IsQuarantine(k) {
		if q := quarantineKey(k, 0); s.byKey[q].Addr.IsValid() {
			k = q
		}
	}
	return s.deleteLocked(k)
}

// Restore puts a for a key that another source of truth (the plugin's attachment record) shows
// holding it. An address held under a quarantine key is handed to a; an address held by another
// key, or a key holding another address, is an error (ErrAddrHeld, ErrKeyHolds) and changes
// nothing. restored is false when the store already had a.
func (s *Store) Restore(a Alloc) (restored bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.byKey[a.Key]; ok {
		if cur.Addr == a.Addr {
			return false, nil
		}
		return false, fmt.Errorf("%w: %s holds %s", ErrKeyHolds, a.Key, cur.Addr)
	}
	if k, ok := s.byAddr[a.Addr]; ok {
		if !IsQuarantine(k) {
			return false, fmt.Errorf("%w: %s is held by %s", ErrAddrHeld, a.Addr, k)
		}
		// The quarantine key's DEL, then a's ADD: a crash between the two leaves the address
		// free until the plugin's record claims it again at the next start. Room for both is
		// checked first, so the ADD is not refused after the DEL went in.
		del := record{Op: opDel, Alloc: Alloc{Key: k, Addr: a.Addr, At: time.Now().UTC()}}
		if need := s.size + int64(len(del.encode())+len(record{Op: opAdd, Alloc: a}.encode())) + releaseRoom; s.allocated > 0 && need > s.allocated {
			if s.reserve(); need > s.allocated {
				return false, fmt.Errorf("allocation store: %w: the journal's last %d KiB are kept for releases", syscall.ENOSPC, releaseRoom>>10)
			}
		}
		if err := s.append(del); err != nil {
			return false, err
		}
		delete(s.byKey, k)
		delete(s.byAddr, a.Addr)
	}
	if err := s.append(record{Op: opAdd, Alloc: a}); err != nil {
		return false, err
	}
	s.byKey[a.Key], s.byAddr[a.Addr] = a, a.Key
	delete(s.released, a.Addr)
	s.maybeCompact()
	return true, nil
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

// Room kept ahead of the journal's end (fallocate(2) with FALLOC_FL_KEEP_SIZE), so that a full
// disk refuses new allocations while releases still find room: an ADD is refused (ENOSPC)
// once fewer than releaseRoom reserved bytes would be left after it; a DEL may use them all.
const (
	reserveBytes = 64 << 10
	releaseRoom  = 16 << 10
)

// reserve extends the journal's reserved room to reserveBytes past its end, if it can.
func (s *Store) reserve() {
	if err := syscall.Fallocate(int(s.f.Fd()), 1 /* FALLOC_FL_KEEP_SIZE */, s.size, reserveBytes); err == nil {
		s.allocated = s.size + reserveBytes
	}
}

// append writes one record and fsyncs it. A new allocation that would eat into the room kept
// for releases is refused first (ENOSPC), nothing written. On failure (a full disk: ENOSPC from
// the write or the fsync) the journal is cut back to its last whole record and fsync'd, so the
// record is neither acknowledged nor left half-written ahead of later ones; if even that fails,
// the store refuses further changes (ErrBroken) until it is opened again.
func (s *Store) append(r record) error {
	if s.broken != nil {
		return fmt.Errorf("%w: %v; restart vpcnetd once the disk is fixed", ErrBroken, s.broken)
	}
	b := r.encode()
	need := s.size + int64(len(b))
	margin := int64(0)
	if r.Op == opAdd {
		margin = releaseRoom
	}
	if s.allocated > 0 && need+margin > s.allocated {
		s.reserve()
		if r.Op == opAdd && need+margin > s.allocated {
			return fmt.Errorf("allocation store: %w: the journal's last %d KiB are kept for releases", syscall.ENOSPC, releaseRoom>>10)
		}
	}
	n, err := s.f.Write(b)
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		if n > 0 || !errors.Is(err, syscall.ENOSPC) {
			if terr := s.undo(); terr != nil {
				s.broken = fmt.Errorf("%v, then cutting the journal back to %d bytes: %v", err, s.size, terr)
				return fmt.Errorf("%w: %v", ErrBroken, s.broken)
			}
		}
		return fmt.Errorf("allocation store: %w", err)
	}
	s.size += int64(len(b))
	s.records++
	return nil
}

// undo cuts the journal back to s.size and makes that durable. The cut also frees the reserved
// room, which is taken again if it can be.
func (s *Store) undo() error {
	if err := s.f.Truncate(s.size); err != nil {
		return err
	}
	if s.allocated > 0 {
		s.allocated = s.size
		s.reserve()
	}
	return s.f.Sync()
}

// maybeCompact rewrites the journal once it is mostly dead records. Called after the in-memory
// state includes the last record; on failure the old journal, already complete, stays in use.
func (s *Store) maybeCompact() {
	if s.records > 1024 && s.records > 4*(len(s.byKey)+len(s.released)) {
		_ = s.compact()
	}
}
