package cni

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"
)

// Every input that decides where the plugin acts is checked before it acts, and a failed check
// changes nothing. The codes are the CNI spec's (SPEC.md, "Error"):
//
//   - 4 (invalid necessary environment variables) for CNI_NETNS and CNI_IFNAME: they come from
//     the runtime's environment, and the spec asks the message to name the variable;
//   - 7 (invalid network config) for config fields (name, stateDir, valid-attachments): the
//     network config is what is wrong, and the message names the field;
//   - 1 (incompatible CNI version) when the requested cniVersion cannot carry our result.

// MaxNetworkName bounds the network name: it names a directory in the state dir (one path
// component, at most 255 bytes on Linux filesystems, less room for temporary names).
const MaxNetworkName = 200

// maxIfName is IFNAMSIZ-1.
const maxIfName = 15

// checkNetworkName checks the config's name as the spec describes it (alphanumeric first, then
// alphanumerics, '_', '.', '-') and bounds it: it is a directory of the state dir.
func checkNetworkName(name string) *types.Error {
	if name == "" {
		return fieldError("name", "is missing")
	}
	if len(name) > MaxNetworkName {
		return fieldError("name", fmt.Sprintf("is %d characters long, more than %d", len(name), MaxNetworkName))
	}
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return fieldError("name", fmt.Sprintf("%q: must start with a letter or digit, then letters, digits, '_', '.' or '-'", name))
		}
	}
	return nil
}

// checkIfName checks CNI_IFNAME as a Linux interface name the pod side can take: 1 to 15
// bytes, no '/', ':' or whitespace, not "." or "..", and not "lo" (the pod's loopback, which
// the plugin must never touch).
func checkIfName(name string) *types.Error {
	bad := func(why string) *types.Error {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_IFNAME %q %s", name, why), "")
	}
	switch {
	case name == "":
		return bad("is empty")
	case len(name) > maxIfName:
		return bad(fmt.Sprintf("is longer than %d bytes", maxIfName))
	case name == "." || name == "..":
		return bad("is not an interface name")
	case name == "lo":
		return bad("is the pod's loopback")
	case strings.ContainsAny(name, "/: \t\n\r\x00"):
		return bad("contains '/', ':' or whitespace")
	}
	return nil
}

// checkNetns checks that CNI_NETNS is a network namespace and not the one the plugin runs in
// (the node's): wiring "the pod side" there would change the node's own interfaces and routes.
func checkNetns(path string) *types.Error {
	bad := func(why string) *types.Error {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_NETNS %q %s", path, why), "")
	}
	if path == "" {
		return bad("is empty")
	}
	target, err := ns.GetNS(path)
	if err != nil {
		var notNS ns.NSPathNotNSErr
		var notExist ns.NSPathNotExistErr
		switch {
		case errors.As(err, &notNS):
			return bad("is not a network namespace")
		case errors.As(err, &notExist):
			return bad("does not exist (the sandbox is gone)")
		}
		return bad(fmt.Sprintf("cannot be opened: %v", err))
	}
	defer target.Close()
	// /proc files pass ns.GetNS's filesystem test; the namespace type is certain.
	if t, err := unix.IoctlRetInt(int(target.Fd()), unix.NS_GET_NSTYPE); err != nil || t != unix.CLONE_NEWNET {
		return bad("is not a network namespace")
	}
	var pod, self syscall.Stat_t
	if err := syscall.Fstat(int(target.Fd()), &pod); err != nil {
		return bad(fmt.Sprintf("cannot be read: %v", err))
	}
	// The plugin's main thread never leaves the namespace it was started in (namespace switches
	// happen on locked helper threads), so /proc/self/ns/net is the node's.
	if err := syscall.Stat("/proc/self/ns/net", &self); err != nil {
		return types.NewError(types.ErrIOFailure, "cannot read the plugin's own network namespace: "+err.Error(), "")
	}
	if pod.Dev == self.Dev && pod.Ino == self.Ino {
		return bad("is the node's own network namespace, not a pod's")
	}
	return nil
}

// checkStateDir checks that the stateDir config field is a directory or can become one: a path
// that is (or runs through) a file is a config error.
func checkStateDir(dir string) *types.Error {
	for d := dir; ; {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fieldError("stateDir", fmt.Sprintf("%q: %s is not a directory", dir, d))
			}
			return nil
		}
		if errors.Is(err, syscall.ENOTDIR) {
			return fieldError("stateDir", fmt.Sprintf("%q: a part of the path is not a directory", dir))
		}
		if !errors.Is(err, os.ErrNotExist) {
			return types.NewError(types.ErrIOFailure, fmt.Sprintf("state dir %s: %v", dir, err), "")
		}
		parent := d[:max(strings.LastIndex(d, "/"), 1)]
		if parent == d {
			return nil
		}
		d = parent
	}
}

// checkResultVersion says whether a result can be given at the requested cniVersion, before
// anything is allocated or wired (a result the runtime cannot take would leave a wired pod the
// runtime thinks failed).
func checkResultVersion(v string) *types.Error {
	probe := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if _, err := probe.GetAsVersion(v); err != nil {
		return types.NewError(types.ErrIncompatibleCNIVersion, fmt.Sprintf("cannot give a result at cniVersion %q", v), err.Error())
	}
	return nil
}

// checkValidAttachments checks GC's cni.dev/valid-attachments: every entry names a container and
// an interface. An entry without them would make every attachment look invalid and be removed.
func checkValidAttachments(valid []types.GCAttachment) *types.Error {
	for i, v := range valid {
		if v.ContainerID == "" || v.IfName == "" {
			return fieldError("cni.dev/valid-attachments", fmt.Sprintf("entry %d (%+v) lacks containerID or ifname", i, v))
		}
	}
	return nil
}
