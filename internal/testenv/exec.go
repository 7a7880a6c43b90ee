package testenv

import (
	"context"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
)

// NodeExec is a libcni invoke.Exec that runs plugins the way a container runtime on the node
// does: as processes in the node's network namespace (a child forked from a thread inside the
// namespace starts there).
type NodeExec struct {
	Node ns.NetNS
	raw  invoke.RawExec
}

// ExecPlugin runs the plugin at path in e.Node with stdin and env; its error is the plugin's
// CNI error when it printed one.
func (e *NodeExec) ExecPlugin(ctx context.Context, path string, stdin []byte, env []string) ([]byte, error) {
	var out []byte
	var err error
	if derr := e.Node.Do(func(ns.NetNS) error { out, err = e.raw.ExecPlugin(ctx, path, stdin, env); return nil }); derr != nil {
		return nil, derr
	}
	return out, err
}

// FindInPath finds plugin in paths, as libcni's default Exec does.
func (e *NodeExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

// Decode decodes a plugin's VERSION answer.
func (e *NodeExec) Decode(b []byte) (version.PluginInfo, error) {
	var d version.PluginDecoder
	return d.Decode(b)
}
