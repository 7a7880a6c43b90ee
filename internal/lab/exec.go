package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"time"

	"github.com/vpcnet/vpcnet/internal/netnsx"
	"github.com/vpcnet/vpcnet/internal/probe"
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

// Ping sends ICMP echo requests from a pod to target (a pod name, or an IPv4 address such as
// the internet namespace's 203.0.113.10), so a machine without ping can still check the paths.
func Ping(st Status, pod, target string, timeout time.Duration) (netip.Addr, time.Duration, error) {
	var from *PodInfo
	dst, err := netip.ParseAddr(target)
	for i, p := range st.Pods {
		if p.Name == pod {
			from = &st.Pods[i]
		}
		if err != nil && p.Name == target {
			dst, err = p.IP, nil
		}
	}
	if from == nil {
		return dst, 0, fmt.Errorf("lab %s has no pod %q", st.Name, pod)
	}
	if err != nil {
		return dst, 0, fmt.Errorf("target %q is neither a pod of lab %s nor an IPv4 address", target, st.Name)
	}
	rtt, err := probe.Echo(from.NS, netip.Addr{}, dst, timeout)
	return dst, rtt, err
}
