// Package netnsx creates, lists and removes named network namespaces (the ones `ip netns`
// shows, bind-mounted under /run/netns) without shelling out.
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
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Dir is where named namespaces are bind-mounted.
const Dir = "/run/netns"

// Path returns the bind-mount path of the named namespace.
func Path(name string) string { return filepath.Join(Dir, name) }

// Create makes a new named network namespace with its loopback up, and returns a handle to
// it. It fails if the name is taken. The caller's thread stays in its own namespace.
func Create(name string) (ns.NetNS, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || len(name) > 200 {
		return nil, fmt.Errorf("netns name %q is not valid", name)
	}
	if _, err := os.Stat(Path(name)); err == nil {
		return nil, fmt.Errorf("netns %s already exists", name)
	}
	errc := make(chan error, 1)
	go func() {
		// This goroutine's thread is switched into the new namespace and then thrown away
		// (no UnlockOSThread), so no other goroutine ever runs in the wrong namespace.
		runtime.LockOSThread()
		_, err := netns.NewNamed(name)
		errc <- err
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

// Delete removes the named namespace. A name that does not exist is not an error.
func Delete(name string) error {
	p := Path(name)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", name, err)
	}
	return nil
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
