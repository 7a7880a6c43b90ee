package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vpcnet/vpcnet/internal/atomicfile"
)

// Record is what ADD keeps so that DEL can clean up without the agent or the pod's namespace.
type Record struct {
	Network      string     `json:"network"`
	ContainerID  string     `json:"containerID"`
	IfName       string     `json:"ifname"`
	Netns        string     `json:"netns"`
	PodNamespace string     `json:"podNamespace,omitempty"`
	PodName      string     `json:"podName,omitempty"`
	PodUID       string     `json:"podUID,omitempty"` // K8S_POD_UID; records that predate it have none
	HostVeth     string     `json:"hostVeth"`
	VethPrefix   string     `json:"vethPrefix"`
	Addr         netip.Addr `json:"addr"`
	Table        int        `json:"table"`
	ENI          string     `json:"eni,omitempty"`
}

// store is the plugin's state directory for one network:
//
//	<stateDir>/<network>/attachments/<hash>.json   one Record per attachment
//	<stateDir>/<network>/pending/<hash>.json       releases the agent has not confirmed
//	<stateDir>/<network>/lock                      serialises queue flushes
type store struct{ dir string }

func newStore(stateDir, network string) store {
	return store{dir: filepath.Join(stateDir, network)}
}

func keyFile(containerID, ifname string) string {
	h := sha256.Sum256([]byte(containerID + "\x00" + ifname))
	return hex.EncodeToString(h[:16]) + ".json"
}

func (s store) recordPath(containerID, ifname string) string {
	return filepath.Join(s.dir, "attachments", keyFile(containerID, ifname))
}

func (s store) pendingPath(containerID, ifname string) string {
	return filepath.Join(s.dir, "pending", keyFile(containerID, ifname))
}

// writeJSON writes v to path atomically and durably (temp file, fsync, rename, fsync dir).
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600, 0o700)
}

func (s store) saveRecord(r Record) error {
	if err := writeJSON(s.recordPath(r.ContainerID, r.IfName), r); err != nil {
		return fmt.Errorf("state dir %s: save %s/%s: %w", s.dir, r.ContainerID, r.IfName, err)
	}
	return nil
}

// loadRecord returns the record of an attachment; ok is false when there is none.
func (s store) loadRecord(containerID, ifname string) (Record, bool, error) {
	var r Record
	b, err := os.ReadFile(s.recordPath(containerID, ifname))
	if errors.Is(err, os.ErrNotExist) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, false, fmt.Errorf("state file %s: %w", s.recordPath(containerID, ifname), err)
	}
	return r, true, nil
}

func (s store) removeRecord(containerID, ifname string) error {
	err := os.Remove(s.recordPath(containerID, ifname))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// records lists every attachment record of the network.
func (s store) records() ([]Record, error) {
	return readAll[Record](filepath.Join(s.dir, "attachments"))
}

// pendingRelease is a DEL the agent has not heard of yet.
type pendingRelease struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
}

func (s store) queueRelease(containerID, ifname string) error {
	return writeJSON(s.pendingPath(containerID, ifname), pendingRelease{containerID, ifname})
}

func (s store) pending() ([]pendingRelease, error) {
	return readAll[pendingRelease](filepath.Join(s.dir, "pending"))
}

func (s store) dropPending(containerID, ifname string) error {
	err := os.Remove(s.pendingPath(containerID, ifname))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Attachments returns the attachment records of every network in stateDir (the plugin's
// stateDir config field): one per pod the plugin wired and has not unwired. A record that cannot
// be read or decoded is an error naming its file.
func Attachments(stateDir string) ([]Record, error) {
	return eachNetwork(stateDir, func(s store) ([]Record, error) {
		return readAllStrict[Record](filepath.Join(s.dir, "attachments"), true)
	})
}

// PendingRelease is a release DEL or GC queued in the state dir while the agent was unreachable.
type PendingRelease struct {
	Network, ContainerID, IfName string
}

// PendingReleases returns the releases queued in stateDir, every network.
func PendingReleases(stateDir string) ([]PendingRelease, error) {
	return eachNetwork(stateDir, func(s store) ([]PendingRelease, error) {
		ps, err := readAllStrict[pendingRelease](filepath.Join(s.dir, "pending"), true)
		out := make([]PendingRelease, len(ps))
		for i, p := range ps {
			out[i] = PendingRelease{filepath.Base(s.dir), p.ContainerID, p.IfName}
		}
		return out, err
	})
}

func eachNetwork[T any](stateDir string, f func(store) ([]T, error)) ([]T, error) {
	entries, err := os.ReadDir(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []T
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		v, err := f(newStore(stateDir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, v...)
	}
	return out, nil
}

func readAll[T any](dir string) ([]T, error) { return readAllStrict[T](dir, false) }

// readAllStrict decodes every *.json file in dir; strict makes an undecodable file an error
// instead of skipping it.
func readAllStrict[T any](dir string, strict bool) ([]T, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []T
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			if strict {
				return nil, fmt.Errorf("state file %s: %w", filepath.Join(dir, e.Name()), err)
			}
			continue // a torn write cannot happen (rename), so this is not ours; skip it
		}
		out = append(out, v)
	}
	return out, nil
}

// lock takes the network's state lock until the returned function is called.
func (s store) lock() (func(), error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
