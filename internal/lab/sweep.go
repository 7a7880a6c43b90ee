package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/netnsx"
)

// Sweep removes everything the named lab made, whether or not its controller is alive: the
// controller and vpcnetd processes recorded in pid files (only while /proc shows they are
// still the lab's), every namespace named vpcnet-<lab>-..., and the state directory.
func Sweep(name string, progress func(string)) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	p := PathsFor(name)
	var errs []error
	agents, _ := filepath.Glob(filepath.Join(p.Dir, "nodes", "*", "vpcnetd.pid"))
	for _, f := range agents {
		pid := ReadPID(f)
		np := NodePaths{Dir: filepath.Dir(f)}
		if procHas(pid, "environ", "VPCNET_STATE_DIR="+np.AgentState()) {
			progress(fmt.Sprintf("stopping vpcnetd pid %d", pid))
			errs = append(errs, Terminate(pid, 3*time.Second))
		}
	}
	if pid := ReadPID(p.ControllerPID()); isController(pid, name) {
		progress(fmt.Sprintf("stopping the lab controller pid %d", pid))
		errs = append(errs, Terminate(pid, 10*time.Second))
	}
	names, err := netnsx.List(NSPrefix(name))
	errs = append(errs, err)
	for _, n := range names {
		// What still runs in a node's namespace (a DaemonSet's vpcnetd whose node runtime
		// crashed) is the lab's.
		for _, pid := range NamespacePIDs(n) {
			progress(fmt.Sprintf("stopping pid %d left in %s", pid, n))
			errs = append(errs, Terminate(pid, 3*time.Second))
		}
		progress("removing namespace " + n)
		errs = append(errs, netnsx.Delete(n))
	}
	if _, err := os.Stat(p.Dir); err == nil {
		progress("removing " + p.Dir)
		errs = append(errs, os.RemoveAll(p.Dir))
	}
	return errors.Join(errs...)
}

// ControllerAlive returns the pid of the lab's running controller, or 0.
func ControllerAlive(name string) int {
	pid := ReadPID(PathsFor(name).ControllerPID())
	if isController(pid, name) && Alive(pid) {
		return pid
	}
	return 0
}

// Exists reports whether anything of the named lab is left on this machine: its state directory
// under Root() or a namespace named for it. A lab that `lab up` only partly made exists; one
// that `lab down` removed, or that never was, does not.
func Exists(name string) bool {
	if _, err := os.Stat(PathsFor(name).Dir); err == nil {
		return true
	}
	names, _ := netnsx.List(NSPrefix(name))
	return len(names) > 0
}

// Labs returns the names of the labs that exist on this machine, sorted: the valid lab names
// among Root()'s directories and the namespaces named vpcnet-<lab>-<role>.
func Labs() []string {
	seen := map[string]bool{}
	if ents, err := os.ReadDir(Root()); err == nil {
		for _, e := range ents {
			if e.IsDir() && ValidateName(e.Name()) == nil {
				seen[e.Name()] = true
			}
		}
	}
	names, _ := netnsx.List(nsPrefix)
	for _, n := range names {
		if lab, _, ok := strings.Cut(strings.TrimPrefix(n, nsPrefix), "-"); ok && ValidateName(lab) == nil {
			seen[lab] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
