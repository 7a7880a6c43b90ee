package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/vpcnet/vpcnet/internal/lab/probe"
	"github.com/vpcnet/vpcnet/internal/netnsx"
)

// Exec runs a command inside a pod's network namespace with this process's standard streams
// and returns its exit code.
func Exec(name, pod string, argv []string) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("no command given")
	}
	ns := PodNS(name, pod)
	if _, err := os.Stat(netnsx.Path(ns)); err != nil {
		return 0, fmt.Errorf("lab %s has no pod %q (namespace %s)", name, pod, ns)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := probe.In(ns, cmd.Start); err != nil {
		return 0, err
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, err
}
