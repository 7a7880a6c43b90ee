package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestJournalSnapshotAndTornTail(t *testing.T) {
	dir := t.TempDir()
	s, ld, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ld.State != nil || len(ld.Records) != 0 {
		t.Fatalf("fresh dir loaded %+v", ld)
	}
	now := time.Now()
	for i := 0; i < 3; i++ {
		if err := s.Append("A", now, map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := Open(dir); err == nil {
		t.Fatal("a second Open of a locked dir succeeded")
	}
	s.Close()
	// A crash mid-write leaves a torn last line: it is dropped, the rest kept.
	f, _ := os.OpenFile(filepath.Join(dir, journalName), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"Seq":4,"Action":"A","Inp`)
	f.Close()
	s, ld, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ld.Records) != 3 || ld.Records[2].Seq != 3 {
		t.Fatalf("records %+v", ld.Records)
	}
	if err := s.Append("B", now, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Snapshot([]byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Append("C", now, 2); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, ld, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if string(ld.State) != `{"x":1}` || len(ld.Records) != 1 || ld.Records[0].Action != "C" || ld.Records[0].Seq != 5 {
		t.Fatalf("after snapshot: %s %+v", ld.State, ld.Records)
	}
}

func TestSnapshotThenCrashBeforeTruncate(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := Open(dir)
	s.Append("A", time.Now(), 1)
	s.Append("B", time.Now(), 2)
	jr, _ := os.ReadFile(filepath.Join(dir, journalName))
	s.Snapshot([]byte(`{}`))
	s.Close()
	// Put the old journal back, as if the crash came between rename and truncate.
	os.WriteFile(filepath.Join(dir, journalName), jr, 0o644)
	s, ld, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(ld.Records) != 0 {
		t.Fatalf("records already in the snapshot replayed: %+v", ld.Records)
	}
}

func TestCorruptMiddleIsAnError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, journalName), []byte("garbage\n{\"Seq\":1,\"Action\":\"A\"}\n"), 0o644)
	if _, _, err := Open(dir); err == nil {
		t.Fatal("corrupt journal accepted")
	}
}
