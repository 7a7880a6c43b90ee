package store

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen: whatever bytes the journal and snapshot hold, Open returns an error or a state,
// never panics.
func FuzzOpen(f *testing.F) {
	f.Add([]byte(`{"Seq":1,"Action":"A","Input":{}}`+"\n"), []byte(`{"Seq":0,"State":{}}`))
	f.Add([]byte("{\n"), []byte("x"))
	f.Fuzz(func(t *testing.T, journal, snapshot []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, journalName), journal, 0o644)
		if len(snapshot) > 0 {
			os.WriteFile(filepath.Join(dir, snapshotName), snapshot, 0o644)
		}
		s, _, err := Open(dir)
		if err == nil {
			s.Close()
		}
	})
}
