package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
