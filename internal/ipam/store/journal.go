package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// keepReleased is how long release times survive compaction: longer than any sane
// IP_COOLDOWN_PERIOD.
const keepReleased = 10 * time.Minute

// The journal is a sequence of self-checking lines "<crc32c of json, 8 hex digits> <json>\n":
// the newline ends a record and the checksum covers all of it, so one damaged record never
// hides the others. Replay reads every line on its own:
//
//   - a whole line that checks is applied;
//   - a whole line that does not check is damaged: a record that checks may still end it (a
//     damaged newline, or garbage before a record), and is applied; the addresses that can be
//     read from the rest are quarantined (held under a quarantine key until the plugin's
//     records claim them or the runtime's GC releases them);
//   - bytes after the last newline are a torn last record (a crash in the middle of an append,
//     never acknowledged) and are dropped.
//
// A compacted journal starts with a header record, so an emptied file is told apart from an
// empty store.

type op string

const (
	opHdr op = "hdr" // first record of a compacted journal; At is when it was written
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

// QuarantinePrefix starts the container ID of a quarantine key: an address whose journal
// record was damaged, held so that it is not handed to a new pod while a pod may still use it.
const QuarantinePrefix = "quarantined:"

// DefaultNetwork is the CNI network name vpcnetd's configuration uses; a quarantined address
// whose damaged record does not say its network is held in it, where the runtime's GC sees it.
const DefaultNetwork = "vpcnet"

// IsQuarantine tells whether k is a quarantine key.
func IsQuarantine(k Key) bool {
	return len(k.ContainerID) > len(QuarantinePrefix) && k.ContainerID[:len(QuarantinePrefix)] == QuarantinePrefix
}

// Replay is what a journal holds.
type Replay struct {
	Live     []Alloc                  // allocations, quarantined addresses included, in journal order
	Released map[netip.Addr]time.Time // when each address no key holds was last released
	Good     int                      // bytes up to the end of the last whole line
	Header   bool                     // the journal starts with a header record
	Torn     int                      // bytes of a torn last record, dropped
	Damaged  int                      // whole lines that failed their checksum
	Repaired int                      // of those, lines with one damaged byte, found and undone through the checksum
	Unknown  int                      // damaged lines from which no address could be read
	// Quarantined lists the addresses read from damaged lines that no later record accounts
	// for; each is in Live under a quarantine key.
	Quarantined []netip.Addr
}

// Parse replays a journal. It never fails: damage is counted and quarantined (see Replay),
// and a record that would break the store's rules (an address held twice, a key holding two
// addresses) is skipped.
func Parse(data []byte) Replay {
	rp := Replay{Released: map[netip.Addr]time.Time{}}
	byKey := map[Key]Alloc{}
	byAddr := map[netip.Addr]Key{}
	quarantine := map[netip.Addr]Alloc{}
	var order []Key
	var qorder []netip.Addr
	apply := func(r record) {
		switch r.Op {
		case opAdd:
			if !r.Addr.Is4() && !r.Addr.Is6() || r.Addr.Zone() != "" {
				return
			}
			if _, held := byKey[r.Key]; held {
				return
			}
			if _, held := byAddr[r.Addr]; held {
				return
			}
			// A whole record giving the address to a key proves it was free then: whatever a
			// damaged record before it said about the address is settled.
			delete(quarantine, r.Addr)
			byKey[r.Key], byAddr[r.Addr] = r.Alloc, r.Key
			order = append(order, r.Key)
		case opDel:
			if a, ok := byKey[r.Key]; ok {
				delete(byKey, r.Key)
				delete(byAddr, a.Addr)
				rp.Released[a.Addr] = r.At
			} else if _, ok := quarantine[r.Addr]; ok && r.Addr.IsValid() {
				delete(quarantine, r.Addr) // released after the damaged record
				rp.Released[r.Addr] = r.At
			}
		case opRel:
			if r.Addr.IsValid() {
				rp.Released[r.Addr] = r.At
			}
		}
	}
	for first := true; ; first = false {
		nl := bytes.IndexByte(data[rp.Good:], '\n')
		if nl < 0 {
			// A whole record whose newline was damaged is not torn: keep it.
			if tail := data[rp.Good:]; len(tail) > 10 {
				if r, ok := decode(tail[:len(tail)-1]); ok {
					rp.Damaged++
					rp.Repaired++
					if r.Op != opHdr {
						apply(r)
					}
					rp.Good = len(data)
					break
				}
			}
			rp.Torn = len(data) - rp.Good
			break
		}
		line := data[rp.Good : rp.Good+nl]
		if r, ok := decode(line); ok {
			if r.Op == opHdr {
				rp.Header = rp.Header || first
			} else {
				apply(r)
			}
			rp.Good += nl + 1
			continue
		}
		rp.Damaged++
		tryRepair := rp.Damaged <= maxRepairs
		if r, ok := repairIf(tryRepair, line); ok { // one damaged byte: the checksum finds and undoes it
			rp.Repaired++
			if r.Op != opHdr {
				apply(r)
			} else {
				rp.Header = rp.Header || first
			}
			rp.Good += nl + 1
			continue
		}
		if next := bytes.IndexByte(data[rp.Good+nl+1:], '\n'); tryRepair && next >= 0 {
			// A byte turned into a newline splits a record in two lines.
			joined := data[rp.Good : rp.Good+nl+1+next]
			if _, ok := decode(joined[nl+1:]); !ok {
				if r, ok := repairAt(joined, nl); ok {
					rp.Repaired++
					if r.Op != opHdr {
						apply(r)
					}
					rp.Good += len(joined) + 1
					continue
				}
			}
		}
		damaged, tail := line, record{}
		if i, r, ok := lastRecord(line); ok {
			damaged, tail = line[:i], r
			if r, ok := repairIf(tryRepair, damaged); ok { // its newline was the damaged byte
				rp.Repaired++
				if r.Op != opHdr {
					apply(r)
				}
				apply(tail)
				rp.Good += nl + 1
				continue
			}
		}
		addrs, salvaged, known := salvage(damaged)
		if !known {
			rp.Unknown++
		}
		for _, a := range addrs {
			if _, held := byAddr[a]; held {
				continue // a key holds it: the damaged record may be its DEL; holding is safe
			}
			if _, ok := quarantine[a]; ok {
				continue
			}
			q := Alloc{Key: quarantineKey(salvaged.Key, rp.Good), Addr: a, ENI: salvaged.ENI,
				PodNamespace: salvaged.PodNamespace, PodName: salvaged.PodName, PodUID: salvaged.PodUID, Netns: salvaged.Netns, At: salvaged.At}
			quarantine[a] = q
			qorder = append(qorder, a)
		}
		if tail.Op != "" && tail.Op != opHdr {
			apply(tail)
		}
		rp.Good += nl + 1
	}
	for _, k := range order {
		if a, ok := byKey[k]; ok {
			rp.Live = append(rp.Live, a)
			delete(rp.Released, a.Addr)
			delete(byKey, k) // a key deleted and added again appears twice in order
		}
	}
	held := map[Key]bool{}
	for _, a := range rp.Live {
		held[a.Key] = true
	}
	for _, addr := range qorder {
		q, ok := quarantine[addr]
		if !ok {
			continue
		}
		delete(quarantine, addr)
		for held[q.Key] { // two addresses salvaged for one key, or a key held meanwhile
			q.Key.IfName += "+"
		}
		held[q.Key] = true
		rp.Live = append(rp.Live, q)
		rp.Quarantined = append(rp.Quarantined, addr)
		delete(rp.Released, addr)
	}
	return rp
}

// quarantineKey is the key a quarantined address is held under: the damaged record's own key
// where it could be read, marked, so that DEL of that key releases it and the runtime's GC
// (which never lists it) does too.
func quarantineKey(k Key, at int) Key {
	q := Key{Network: k.Network, ContainerID: QuarantinePrefix + k.ContainerID, IfName: k.IfName}
	if q.Network == "" {
		q.Network = DefaultNetwork
	}
	if k.ContainerID == "" {
		q.ContainerID = QuarantinePrefix + "offset-" + strconv.Itoa(at)
	}
	if q.IfName == "" {
		q.IfName = "-"
	}
	return q
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
	if json.Unmarshal(line[9:], &r) != nil || (r.Op != opAdd && r.Op != opDel && r.Op != opRel && r.Op != opHdr) {
		return r, false
	}
	return r, true
}

// maxRepair bounds the lines repair tries, and maxRepairs the damaged lines of one journal it
// tries, so a journal of garbage replays quickly.
const (
	maxRepair  = 4096
	maxRepairs = 64
)

// repair finds the one byte whose change makes line a record that checks: a single damaged
// byte (the kind a bit flip or a stray write leaves) is undone rather than quarantined. The
// repair must be unique. A line that lost its newline to the damage (one byte too many at the
// end) is cut back.
//
// A damaged checksum field is found by comparing it with the checksum of the JSON. A damaged
// JSON byte is found without trying every value at every position: CRC-32C is linear, so
// changing byte i by d changes the checksum by a value that depends only on d and on the
// number of bytes after i; the candidates are the (i, d) whose change equals the difference
// between the stored and the computed checksum, each then decoded.
func repair(line []byte) (record, bool) {
	if len(line) > maxRepair || len(line) < 10 {
		return record{}, false
	}
	if r, ok := decode(line[:len(line)-1]); ok {
		return r, true
	}
	body := line[9:]
	sum := crc32.Checksum(body, castagnoli)
	// The checksum field or the separator.
	head := fmt.Appendf(nil, "%08x ", sum)
	diff := 0
	for i := range head {
		if head[i] != line[i] && !(i < 8 && head[i] == line[i]|0x20) {
			diff++
		}
	}
	if diff == 1 {
		if r, ok := decode(append(head, body...)); ok {
			return r, true
		}
	}
	want, err := strconv.ParseUint(string(line[:8]), 16, 32)
	if err != nil || line[8] != ' ' || uint32(want) == sum {
		return record{}, false
	}
	syndrome := sum ^ uint32(want)
	// bit[b] is the checksum change of bit b of a byte followed by k zero bytes, k = 0, 1, ...
	n := len(body)
	var bit [8]uint32
	for b := range bit {
		bit[b] = rawCRC(0, []byte{1 << b})
	}
	var found []byte
	var rec record
	buf := slices.Clone(line)
	for k := 0; k < n; k++ {
		i := 9 + n - 1 - k
		for d := 1; d < 256; d++ {
			var c uint32
			for b := range bit {
				if d&(1<<b) != 0 {
					c ^= bit[b]
				}
			}
			if c != syndrome {
				continue
			}
			buf[i] = line[i] ^ byte(d)
			r, ok := decode(buf)
			buf[i] = line[i]
			if !ok {
				continue
			}
			if enc := r.encode(); found == nil {
				found, rec = enc, r
			} else if !bytes.Equal(enc, found) {
				return record{}, false
			}
		}
		for b := range bit { // one more zero byte after the changed one
			bit[b] = rawCRC(bit[b], []byte{0})
		}
	}
	return rec, found != nil
}

// rawCRC runs CRC-32C over p from state, without the initial and final inversions: the linear
// part of the checksum.
func rawCRC(state uint32, p []byte) uint32 { return ^crc32.Update(^state, castagnoli, p) }

func repairIf(try bool, line []byte) (record, bool) {
	if !try {
		return record{}, false
	}
	return repair(line)
}

// repairAt tries every value of byte i of line and returns the record if exactly one record
// checks (hex digits in either case give the same record).
func repairAt(line []byte, i int) (record, bool) {
	if len(line) > maxRepair || i >= len(line) {
		return record{}, false
	}
	buf := slices.Clone(line)
	var found []byte
	var rec record
	for v := range 256 {
		if byte(v) == line[i] {
			continue
		}
		buf[i] = byte(v)
		if r, ok := decode(buf); ok {
			if enc := r.encode(); found == nil {
				found, rec = enc, r
			} else if !bytes.Equal(enc, found) {
				return record{}, false
			}
		}
	}
	return rec, found != nil
}

// lastRecord finds a whole record ending a damaged line (its newline was lost with the record
// before, or garbage was written before it) and returns where it starts.
func lastRecord(line []byte) (int, record, bool) {
	for i := bytes.LastIndex(line, []byte(" {")); i >= 8; i = bytes.LastIndex(line[:i], []byte(" {")) {
		if r, ok := decode(line[i-8:]); ok {
			return i - 8, r, true
		}
	}
	return 0, record{}, false
}

var (
	addrField = regexp.MustCompile(`"a":"([^"]{2,45})"`)
	ipv4Text  = regexp.MustCompile(`(?:^|[^0-9.])((?:[0-9]{1,3}\.){3}[0-9]{1,3})(?:$|[^0-9.])`)
)

// salvage reads what it can from a damaged line: the record's fields if its JSON still
// parses, else every address-looking text in it. known is false when nothing could be read.
func salvage(line []byte) (addrs []netip.Addr, r record, known bool) {
	if i := bytes.IndexByte(line, '{'); i >= 0 && json.Unmarshal(line[i:], &r) == nil {
		switch {
		case r.Op == opRel || r.Op == opHdr:
			return nil, r, true // a release time or a header: no address is held by it
		case (r.Op == opAdd || r.Op == opDel) && r.Addr.IsValid() && r.Addr.Zone() == "":
			return []netip.Addr{r.Addr}, r, true
		}
	}
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	r = record{}
	add := func(s []byte) {
		if a, err := netip.ParseAddr(string(s)); err == nil && a.Zone() == "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, m := range addrField.FindAllSubmatch(line, -1) {
		add(m[1])
	}
	for _, m := range ipv4Text.FindAllSubmatch(line, -1) {
		add(m[1])
	}
	return out, r, len(out) > 0
}

// compact writes the live set to a new journal, fsyncs it and the directory, and renames it
// into place; a crash leaves either the old journal or the new one.
func (s *Store) compact() error {
	path := filepath.Join(s.dir, journalName)
	tmp := path + ".tmp"
	var buf bytes.Buffer
	buf.Write(record{Op: opHdr, Alloc: Alloc{At: time.Now().UTC()}}.encode())
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
		os.Remove(tmp)
		return fmt.Errorf("allocation store: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
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
	s.f, s.size, s.records, s.broken, s.allocated = f, int64(buf.Len()), len(s.byKey)+len(s.released), nil, 0
	s.reserve()
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
