package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// keepReleased is how long release times survive compaction: longer than any sane
// IP_COOLDOWN_PERIOD.
const keepReleased = 10 * time.Minute

// The journal is a sequence of lines "<crc32c of json, 8 hex digits> <json record>\n". A line that
// is incomplete or fails its checksum ends the journal: only the last write can be torn.

type op string

const (
	opAdd op = "add"
	opDel op = "del" // At is when the address was released
	opRel op = "rel" // a release kept across compaction: Addr and At only
)

type record struct {
	Op op `json:"op"`
	Alloc
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (r record) encode() []byte {
	j, err := json.Marshal(r)
	if err != nil {
		panic(err) // plain strings, an address and a time always marshal
	}
	return fmt.Appendf(nil, "%08x %s\n", crc32.Checksum(j, castagnoli), j)
}

// Parse replays a journal and returns the live allocations and how many bytes of it are whole
// records. It never fails: what cannot be read ends the journal, and a record that would break
// the store's rules (an address held twice, a key holding two addresses) is skipped.
func Parse(data []byte) (live []Alloc, good int) {
	live, _, good = replay(data)
	return live, good
}

// replay is Parse that also returns when each address not live now was last released.
func replay(data []byte) (live []Alloc, released map[netip.Addr]time.Time, good int) {
	released = map[netip.Addr]time.Time{}
	byKey := map[Key]Alloc{}
	byAddr := map[string]Key{}
	var order []Key
	for {
		nl := bytes.IndexByte(data[good:], '\n')
		if nl < 0 {
			break
		}
		r, ok := decode(data[good : good+nl])
		if !ok {
			break
		}
		good += nl + 1
		switch r.Op {
		case opAdd:
			if !r.Addr.Is4() && !r.Addr.Is6() {
				continue
			}
			if _, held := byKey[r.Key]; held {
				continue
			}
			if _, held := byAddr[r.Addr.String()]; held {
				continue
			}
			byKey[r.Key], byAddr[r.Addr.String()] = r.Alloc, r.Key
			order = append(order, r.Key)
		case opDel:
			if a, ok := byKey[r.Key]; ok {
				delete(byKey, r.Key)
				delete(byAddr, a.Addr.String())
				released[a.Addr] = r.At
			}
		case opRel:
			if r.Addr.IsValid() {
				released[r.Addr] = r.At
			}
		}
	}
	for _, k := range order {
		if a, ok := byKey[k]; ok {
			live = append(live, a)
			delete(released, a.Addr)
			delete(byKey, k) // a key deleted and added again appears twice in order
		}
	}
	return live, released, good
}

func decode(line []byte) (record, bool) {
	var r record
	if len(line) < 10 || line[8] != ' ' {
		return r, false
	}
	sum, err := strconv.ParseUint(string(line[:8]), 16, 32)
	if err != nil || uint32(sum) != crc32.Checksum(line[9:], castagnoli) {
		return r, false
	}
	if json.Unmarshal(line[9:], &r) != nil || (r.Op != opAdd && r.Op != opDel && r.Op != opRel) {
		return r, false
	}
	return r, true
}

// compact writes the live set to a new journal, fsyncs it and the directory, and renames it
// into place; a crash leaves either the old journal or the new one.
func (s *Store) compact() error {
	path := filepath.Join(s.dir, journalName)
	tmp := path + ".tmp"
	var buf bytes.Buffer
	for _, a := range s.byKey {
		buf.Write(record{Op: opAdd, Alloc: a}.encode())
	}
	for addr, at := range s.released {
		if time.Since(at) > keepReleased {
			delete(s.released, addr)
			continue
		}
		buf.Write(record{Op: opRel, Alloc: Alloc{Addr: addr, At: at}}.encode())
	}
	if err := writeSynced(tmp, buf.Bytes()); err != nil {
		return fmt.Errorf("allocation store: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("allocation store: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("allocation store: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("allocation store: %w", err)
	}
	if s.f != nil {
		s.f.Close()
	}
	s.f, s.records = f, len(s.byKey)+len(s.released)
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
