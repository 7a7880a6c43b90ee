// Package netnsx creates, lists and removes named network namespaces (the ones `ip netns`
// shows, bind-mounted under /run/netns) without shelling out, following iproute2's conventions
// for that directory so that `ip netns add/del` and vpcnet can share it in any order:
//
//   - /run/netns is made a mount point once (a recursive bind mount of itself) and marked
//     shared, recursively, exactly as ip/ipnetns.c does before its first `ip netns add`. A
//     later `ip netns add` then finds a mount point and only re-marks it shared, instead of
//     stacking a new /run/netns layer over namespaces that already exist.
//   - each namespace is an empty file <Dir>/<name>, bind-mounted from /proc/<pid>/task/<tid>/ns/net.
//   - deletion is umount2(MNT_DETACH) of that file and unlink, as `ip netns del` does.
//
// A namespace bound before /run/netns became a mount point (by vpcnet before this convention,
// or by any tool that skips it) is left beneath the layer `ip netns add` stacks on top: its
// file is then still a mount point in a layer no path reaches, and unlink answers EBUSY.
// Delete removes such a file from a private mount namespace, where it is no mount point;
// the kernel then detaches its mounts in every namespace (see unlinkBeneath).
package netnsx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"
)

// Dir is where named namespaces are bind-mounted.
const Dir = "/run/netns"

// Path returns the bind-mount path of the named namespace.
func Path(name string) string { return filepath.Join(Dir, name) }

// Create makes a new named network namespace with its loopback up, and returns a handle to
// it. It fails if the name is taken. The caller's thread stays in its own namespace.
func Create(name string) (ns.NetNS, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." || len(name) > 200 {
		return nil, fmt.Errorf("netns name %q is not valid", name)
	}
	if _, err := os.Stat(Path(name)); err == nil {
		return nil, fmt.Errorf("netns %s already exists", name)
	}
	if err := ensureDir(); err != nil {
		return nil, err
	}
	errc := make(chan error, 1)
	go func() {
		// This goroutine's thread is switched into the new namespace and then thrown away
		// (no UnlockOSThread), so no other goroutine ever runs in the wrong namespace.
		runtime.LockOSThread()
		errc <- bindNew(Path(name))
	}()
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("create netns %s: %w", name, err)
	}
	h, err := ns.GetNS(Path(name))
	if err != nil {
		_ = Delete(name)
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	if err := h.Do(func(ns.NetNS) error { return loopbackUp() }); err != nil {
		h.Close()
		_ = Delete(name)
		return nil, fmt.Errorf("netns %s: loopback up: %w", name, err)
	}
	return h, nil
}

// ensureDir makes Dir exist and be a shared mount point, the way iproute2 prepares it: mark it
// shared (recursively); if that fails with EINVAL because Dir is not a mount point yet, bind it
// onto itself (recursively, so namespaces already bound there stay reachable) and mark it again.
// An exclusive flock on Dir keeps two vpcnet processes from both binding it (two layers).
func ensureDir() error {
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", Dir, err)
	}
	fd, err := unix.Open(Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", Dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", Dir, err)
	}
	bound := false
	for {
		err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) || bound {
			return fmt.Errorf("mount --make-rshared %s: %w", Dir, err)
		}
		if err := unix.Mount(Dir, Dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("mount --rbind %s %s: %w", Dir, Dir, err)
		}
		bound = true
	}
}

// bindNew moves the calling (locked, then discarded) thread into a new network namespace and
// bind-mounts it on path, a file it creates. On failure the file is removed again.
func bindNew(path string) error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	unix.Close(fd)
	src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
	if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
		_ = unix.Unlink(path)
		return fmt.Errorf("bind %s: %w", src, err)
	}
	return nil
}

// Delete removes the named namespace: its bind mount(s) and its file. A name that does not
// exist is not an error. The namespace itself goes away when nothing else holds it.
func Delete(name string) error {
	p := Path(name)
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	// Mounts can be stacked on one file (the same name bound twice); take them all off.
	for i := 0; i < 8; i++ {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
				break
			}
			return fmt.Errorf("unmount netns %s: %w", name, err)
		}
	}
	err := unix.Unlink(p)
	if errors.Is(err, unix.EBUSY) {
		err = unlinkBeneath(p)
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove netns %s: %w", name, err)
	}
	return nil
}

// unlinkBeneath removes path while it is still a mount point in a layer of Dir that a later
// bind mount of Dir covers (see the package comment). On a discarded thread it enters a
// private copy of the mount namespace (propagation off, so nothing it unmounts there reaches
// the host), peels the copies of the covering layers off until path is a plain file there,
// and unlinks it. The kernel allows unlinking a file that is a mount point only in other
// mount namespaces and detaches those mounts (Linux 3.18, "vfs: Lazily remove mounts on
// unlinked files and directories"), so the hidden bind mount goes with the file.
func unlinkBeneath(path string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with its private mount namespace
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return fmt.Errorf("unshare mount namespace: %w", err)
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return fmt.Errorf("make the private mount namespace private: %w", err)
			}
			for i := 0; i < 32; i++ {
				if unix.Unmount(path, unix.MNT_DETACH) == nil {
					continue
				}
				if unix.Unmount(Dir, unix.MNT_DETACH) == nil {
					continue
				}
				break
			}
			return unix.Unlink(path)
		}()
	}()
	return <-errc
}

// List returns the names of existing namespaces that start with prefix, sorted.
func List(prefix string) ([]string, error) {
	entries, err := os.ReadDir(Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}
