package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockNode makes this process the node's only agent: it takes an exclusive flock(2) on
// <stateDir>/lock (creating the directory 0700 only if it is missing) and writes its pid there.
// The kernel drops the lock when the process ends, however it ends, so a crashed agent never
// blocks its successor. When another process holds it, the error names that process's pid
// (from the file, else from /proc/locks) and nothing has been changed.
func lockNode(stateDir string) (*os.File, error) {
	if _, err := os.Stat(stateDir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(stateDir, 0o700); err != nil {
			return nil, fmt.Errorf("VPCNET_STATE_DIR: %w", err)
		}
	}
	path := filepath.Join(stateDir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("node lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another vpcnetd (pid %s) holds %s: one agent per node; stop it first", holder(f), path)
		}
		return nil, fmt.Errorf("node lock %s: %w", path, err)
	}
	pid := strconv.Itoa(os.Getpid()) + "\n"
	// Best effort: without it, holder finds the pid in /proc/locks.
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(pid), 0)
	}
	return f, nil
}

// holder names the process holding the flock on f: the pid it wrote, or, if it has not written
// it yet, the one /proc/locks shows for the file's inode.
func holder(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n]))); err == nil && pid > 0 {
		return strconv.Itoa(pid)
	}
	var st syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &st) != nil {
		return "unknown"
	}
	locks, err := os.Open("/proc/locks")
	if err != nil {
		return "unknown"
	}
	defer locks.Close()
	// 1: FLOCK  ADVISORY  WRITE 1234 08:02:131090 0 EOF
	suffix := ":" + strconv.FormatUint(st.Ino, 10)
	sc := bufio.NewScanner(locks)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 6 && fs[1] == "FLOCK" && strings.HasSuffix(fs[5], suffix) {
			return fs[4]
		}
	}
	return "unknown"
}
