// Package store keeps vpcsim's state durable in a directory: a snapshot (state.json, replaced by
// write-temp, fsync, rename) and an append-only journal (journal.jsonl, one fsynced JSON line
// per committed change). A change is durable before its reply; a torn last line from a crash is
// discarded, so a crash mid-request never leaves a half-applied change.
package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

const (
	snapshotName = "state.json"
	journalName  = "journal.jsonl"
	lockName     = "lock"
)

// Record is one committed change in the journal.
type Record struct {
	Seq    uint64
	Time   time.Time
	Action string
	Input  json.RawMessage
}

type snapshotFile struct {
	Seq   uint64
	Saved time.Time
	State json.RawMessage
}

// Store is an open state directory. It is not safe for concurrent use.
type Store struct {
	dir     string
	lock    *os.File
	journal *os.File
	seq     uint64
	entries int
}

// Loaded is what a state directory held when opened: the last snapshot's state (nil when
// there is none) and the journal records after it, in order.
type Loaded struct {
	State   json.RawMessage
	Records []Record
}

// Open opens (creating it if need be) and locks a state directory and reads it back.
func Open(dir string) (*Store, *Loaded, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("state dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("state dir: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("state dir %s is in use by another vpcsim: %w", dir, err)
	}
	s := &Store{dir: dir, lock: lock}
	ld, err := s.load()
	if err != nil {
		lock.Close()
		return nil, nil, err
	}
	return s, ld, nil
}

func (s *Store) load() (*Loaded, error) {
	ld := &Loaded{}
	data, err := os.ReadFile(filepath.Join(s.dir, snapshotName))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("state snapshot: %w", err)
	default:
		var sf snapshotFile
		if err := json.Unmarshal(data, &sf); err != nil {
			return nil, fmt.Errorf("state snapshot %s: %w", filepath.Join(s.dir, snapshotName), err)
		}
		ld.State, s.seq = sf.State, sf.Seq
	}
	jpath := filepath.Join(s.dir, journalName)
	f, err := os.OpenFile(jpath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("state journal: %w", err)
	}
	r := bufio.NewReader(f)
	var good int64
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			break // a last line without its newline is torn: dropped below
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("state journal: %w", err)
		}
		var rec Record
		if jerr := json.Unmarshal(bytes.TrimSpace(line), &rec); jerr != nil {
			// Only the last line can be torn; anything after it means corruption.
			if _, perr := r.Peek(1); perr == nil {
				f.Close()
				return nil, fmt.Errorf("state journal %s: corrupt record at byte %d: %v", jpath, good, jerr)
			}
			break
		}
		good += int64(len(line))
		if rec.Seq <= s.seq {
			continue // already in the snapshot (crash between snapshot and truncation)
		}
		ld.Records = append(ld.Records, rec)
		s.seq = rec.Seq
		s.entries++
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, fmt.Errorf("state journal: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("state journal: %w", err)
	}
	s.journal = f
	return ld, nil
}

// Append writes one record and syncs it to disk; it sets the record's sequence number.
func (s *Store) Append(action string, at time.Time, input any) error {
	raw, err := json.Marshal(input)
	if err != nil {
		return fmt.Errorf("journal %s: %w", action, err)
	}
	rec := Record{Seq: s.seq + 1, Time: at, Action: action, Input: raw}
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("journal %s: %w", action, err)
	}
	line = append(line, '\n')
	if _, err := s.journal.Write(line); err != nil {
		return fmt.Errorf("journal %s: %w", action, err)
	}
	if err := s.journal.Sync(); err != nil {
		return fmt.Errorf("journal %s: %w", action, err)
	}
	s.seq++
	s.entries++
	return nil
}

// Entries is the number of journal records since the last snapshot.
func (s *Store) Entries() int { return s.entries }

// Snapshot durably replaces the snapshot with state and empties the journal.
func (s *Store) Snapshot(state []byte) error {
	data, err := json.Marshal(snapshotFile{Seq: s.seq, Saved: time.Now().UTC(), State: state})
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, snapshotName+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, snapshotName)); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	// The journal's records are now in the snapshot; records with Seq <= snapshot Seq are
	// skipped on load, so a crash before this truncation is harmless.
	if err := s.journal.Truncate(0); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if _, err := s.journal.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	s.entries = 0
	return s.journal.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// Close releases the directory.
func (s *Store) Close() error {
	err := s.journal.Close()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	return err
}
