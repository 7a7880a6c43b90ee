package lab

import (
	"os"
	"path/filepath"
	"strconv"
)

// EnvRoot overrides the directory that holds one state directory per lab.
const EnvRoot = "VPCNET_LAB_ROOT"

// DefaultRoot holds the labs' state directories unless $VPCNET_LAB_ROOT says otherwise.
const DefaultRoot = "/run/vpcnet/lab"

// Root returns the directory that holds the state directory of every lab.
func Root() string {
	if r := os.Getenv(EnvRoot); r != "" {
		return r
	}
	return DefaultRoot
}

// Paths lays out one lab's state directory. Everything the lab writes lives under Dir.
type Paths struct{ Dir string }

// PathsFor returns the layout of the named lab's state directory under Root().
func PathsFor(lab string) Paths { return Paths{Dir: filepath.Join(Root(), lab)} }

// Config is the lab's settings as `lab up` wrote them.
func (p Paths) Config() string { return filepath.Join(p.Dir, "lab.json") }

// ControllerPID holds the controller's process id.
func (p Paths) ControllerPID() string { return filepath.Join(p.Dir, "controller.pid") }

// ControllerLog is where the controller and its vpcsim log.
func (p Paths) ControllerLog() string { return filepath.Join(p.Dir, "controller.log") }

// ControlSocket serves the lab's control API to the CLI.
func (p Paths) ControlSocket() string { return filepath.Join(p.Dir, "control.sock") }

// EC2Socket serves the EC2 API to clients in the root namespace.
func (p Paths) EC2Socket() string { return filepath.Join(p.Dir, "ec2.sock") }

// SimState is vpcsim's state directory.
func (p Paths) SimState() string { return filepath.Join(p.Dir, "vpcsim") }

// OperatorCredentials is the AWS shared credentials file (profile "default") holding the
// operator credential vpcsim accepts; the lab's own clients sign with it.
func (p Paths) OperatorCredentials() string { return filepath.Join(p.Dir, "operator-credentials") }

// Bin holds vpcnetd and vpcnet-cni when the lab had to build them.
func (p Paths) Bin() string { return filepath.Join(p.Dir, "bin") }

// CNICache is libcni's cache of results, shared by all pods.
func (p Paths) CNICache() string { return filepath.Join(p.Dir, "cni-cache") }

// Node is the state directory of the lab's node number index.
func (p Paths) Node(index int) NodePaths {
	return NodePaths{Dir: filepath.Join(p.Dir, "nodes", strconv.Itoa(index))}
}

// NodePaths lays out one node's directory: the agent's state, socket, CNI config and log.
type NodePaths struct{ Dir string }

// AgentState is the node agent's VPCNET_STATE_DIR.
func (n NodePaths) AgentState() string { return filepath.Join(n.Dir, "state") }

// AgentSocket is the node agent's VPCNET_SOCKET.
func (n NodePaths) AgentSocket() string { return filepath.Join(n.Dir, "vpcnetd.sock") }

// CNIConfDir is the node agent's VPCNET_CNI_CONF_DIR.
func (n NodePaths) CNIConfDir() string { return filepath.Join(n.Dir, "net.d") }

// AgentLog collects the node agent's output.
func (n NodePaths) AgentLog() string { return filepath.Join(n.Dir, "vpcnetd.log") }

// AgentPID holds the node agent's process id.
func (n NodePaths) AgentPID() string { return filepath.Join(n.Dir, "vpcnetd.pid") }
