package lab

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// Runtime is what runs on the lab's nodes beside the agent when the lab is a cluster: a
// Kubernetes control plane, and containerd plus kubelet on every node (internal/lab/k8s
// registers itself as "kubernetes"). A lab with Config.Runtime "" or RuntimeNone has none:
// pods are bare namespaces wired through libcni, as the benchmarks want.
type Runtime interface {
	// Start runs once the controller is up, before the first node: the control plane.
	Start(ctx context.Context, c *Client, cfg Config, progress func(string)) error
	// NodeAdded joins a node the controller has just made ready.
	NodeAdded(ctx context.Context, c *Client, n NodeInfo, progress func(string)) error
	// NodeRemoving drains and stops a node before the controller removes it.
	NodeRemoving(ctx context.Context, c *Client, n NodeInfo, progress func(string)) error
	// Down stops everything the runtime started for the lab and restores what it changed on
	// the machine. It runs before the controller's own teardown, and also on a lab that is
	// not up or was left by a crash, so it must find its processes from what is on disk.
	Down(ctx context.Context, name string, progress func(string)) error
}

// RuntimeNone is the bare namespace mode.
const RuntimeNone = "none"

var runtimes = map[string]Runtime{}

// RegisterRuntime makes a runtime available to `lab up --runtime NAME`.
func RegisterRuntime(name string, r Runtime) { runtimes[name] = r }

// Runtimes lists the registered runtime names.
func Runtimes() []string {
	out := []string{RuntimeNone}
	for n := range runtimes {
		out = append(out, n)
	}
	sort.Strings(out[1:])
	return out
}

// runtimeOf returns the lab's runtime, nil for the bare mode.
func runtimeOf(cfg Config) (Runtime, error) {
	if cfg.Runtime == "" || cfg.Runtime == RuntimeNone {
		return nil, nil
	}
	r, ok := runtimes[cfg.Runtime]
	if !ok {
		return nil, fmt.Errorf("lab runtime %q is not known: want one of %v", cfg.Runtime, Runtimes())
	}
	return r, nil
}

// runtimeDown runs every registered runtime's Down for the named lab: whatever a crashed lab
// of that name left, whichever runtime it ran.
func runtimeDown(ctx context.Context, name string, progress func(string)) error {
	var errs []error
	for _, r := range runtimes {
		errs = append(errs, r.Down(ctx, name, progress))
	}
	return errors.Join(errs...)
}

// clientRuntime is the runtime of the lab c talks to, nil for the bare mode or when the
// lab's settings cannot be read.
func (c *Client) runtime() Runtime {
	cfg, err := ReadConfig(c.Paths)
	if err != nil {
		return nil
	}
	r, _ := runtimeOf(cfg)
	return r
}
