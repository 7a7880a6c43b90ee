package cni

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Every verb on one key (network, container ID, ifname) runs under that key's lock: an flock on
// <stateDir>/<network>/locks/<key hash>. The kernel drops an flock when its holder dies (kill -9
// included), so a crash never leaves a key locked, and the lock file stays where it is. Only the
// verb that ends the key (DEL, GC) removes the file, while it holds the lock; a waiter that then
// gets the lock on the removed file sees that the path now names another file (or none) and
// locks again, so two verbs never both hold "the" lock of one key.

// keyLock is a held per-key lock.
type keyLock struct {
	f    *os.File
	path string
}

func (s store) lockPath(containerID, ifname string) string {
	return filepath.Join(s.dir, "locks", strings.TrimSuffix(keyFile(containerID, ifname), ".json")+".lock")
}

// lockKey blocks until it holds the key's lock (wait false: returns ok false at once if another
// process holds it).
func (s store) lockKey(containerID, ifname string, wait bool) (l *keyLock, ok bool, err error) {
	path := s.lockPath(containerID, ifname)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("state dir %s: %w", s.dir, err)
	}
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
		}
		how := syscall.LOCK_EX
		if !wait {
			how |= syscall.LOCK_NB
		}
		if err := flock(f, how); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
		}
		var held, now syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &held); err != nil {
			f.Close()
			return nil, false, err
		}
		if err := syscall.Stat(path, &now); err == nil && now.Ino == held.Ino && now.Dev == held.Dev {
			return &keyLock{f: f, path: path}, true, nil
		}
		f.Close() // removed (or replaced) while we waited: lock the file that is there now
	}
}

// unlock releases the lock; with remove the key is finished and its lock file goes first.
func (l *keyLock) unlock(remove bool) {
	if remove {
		_ = os.Remove(l.path)
	}
	_ = flock(l.f, syscall.LOCK_UN)
	l.f.Close()
}

// flock retries on EINTR (signals to the Go runtime interrupt blocking flocks).
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
