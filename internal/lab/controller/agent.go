package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/lab"
)

// CNIConfName is the file the agent writes its CNI config list to, once ready.
const CNIConfName = lab.AgentCNIConfName

// agentProc supervises one node's vpcnetd as kubelet does a DaemonSet pod: restarted a second
// after it exits, until the node goes away. An agent that exits before it was ever ready
// (bad settings, a second agent on the node, a crash at start) is not restarted: restarting
// cannot fix it, and the node add fails at once with the agent's last log lines.
type agentProc struct {
	mu        sync.Mutex
	pid       int
	restarts  int
	stopping  bool
	ready     bool  // the agent was ready once: from then on an exit is restarted
	startExit error // why the agent exited before it was ever ready
	cmd       *exec.Cmd
	exited    chan struct{} // closed when the supervisor gives up the process for good
}

// agentEnv is vpcnetd's whole environment: lab.AgentEnv (paths, endpoints, settings).
func (c *Controller) agentEnv(n *node) []string {
	// No access key: vpcnetd finds its instance role's credentials through the SDK's default
	// chain, from IMDS, as on EC2.
	return lab.AgentEnv(c.cfg, n.paths)
}

// startAgent starts the node's vpcnetd in the node's namespace and keeps it running.
func (c *Controller) startAgent(n *node) error {
	for _, d := range []string{n.paths.AgentState(), n.paths.CNIConfDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	a := &agentProc{exited: make(chan struct{})}
	n.agent = a
	if err := c.spawnAgent(n, a); err != nil {
		close(a.exited)
		return err
	}
	go c.superviseAgent(n, a)
	return nil
}

func (c *Controller) spawnAgent(n *node, a *agentProc) error {
	logf, err := os.OpenFile(n.paths.AgentLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(c.cfg.AgentBin)
	cmd.Env = c.agentEnv(n)
	cmd.Dir = n.paths.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := lab.StartIn(n.ns, cmd); err != nil {
		return fmt.Errorf("start vpcnetd on %s: %w", n.name, err)
	}
	a.mu.Lock()
	a.cmd, a.pid = cmd, cmd.Process.Pid
	a.mu.Unlock()
	return lab.WritePID(n.paths.AgentPID(), cmd.Process.Pid)
}

func (c *Controller) superviseAgent(n *node, a *agentProc) {
	defer close(a.exited)
	for {
		a.mu.Lock()
		cmd := a.cmd
		a.mu.Unlock()
		err := cmd.Wait()
		a.mu.Lock()
		stopping, ready := a.stopping, a.ready
		if !stopping && !ready {
			a.startExit = fmt.Errorf("vpcnetd (pid %d) exited before it was ready: %v", cmd.Process.Pid, err)
		}
		a.mu.Unlock()
		if stopping {
			return
		}
		if !ready {
			c.logf("node %s: vpcnetd (pid %d) exited before it was ready: %v; not restarting it", n.name, cmd.Process.Pid, err)
			return
		}
		c.logf("node %s: vpcnetd (pid %d) exited: %v; restarting in 1s", n.name, cmd.Process.Pid, err)
		time.Sleep(time.Second)
		a.mu.Lock()
		stopping = a.stopping
		a.mu.Unlock()
		if stopping {
			return
		}
		if err := c.spawnAgent(n, a); err != nil {
			c.logf("node %s: %v", n.name, err)
			return
		}
		a.mu.Lock()
		a.restarts++
		a.mu.Unlock()
	}
}

// stopAgent stops the node's vpcnetd for good.
func (c *Controller) stopAgent(n *node) {
	a := n.agent
	if a == nil {
		return
	}
	a.mu.Lock()
	a.stopping = true
	pid := a.pid
	a.mu.Unlock()
	_ = lab.Terminate(pid, 5*time.Second)
	select {
	case <-a.exited:
	case <-time.After(5 * time.Second):
	}
	_ = os.Remove(n.paths.AgentPID())
}

// agentStatus asks the node's vpcnetd how it is.
func (c *Controller) agentStatus(ctx context.Context, n *node) lab.AgentInfo {
	info := lab.AgentInfo{}
	if a := n.agent; a != nil {
		a.mu.Lock()
		info.PID, info.Restarts = a.pid, a.restarts
		a.mu.Unlock()
	}
	conn, err := agentapi.Dial(n.paths.AgentSocket())
	if err != nil {
		info.Reason, info.Message = "unreachable", err.Error()
		return info
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := agentapi.NewAgentClient(conn).Status(ctx, &agentapi.StatusRequest{Version: agentapi.Version})
	if err != nil {
		info.Reason, info.Message = "unreachable", err.Error()
		return info
	}
	info.Ready, info.Reason, info.Message = st.Ready, st.Reason, st.Message
	info.Free, info.Assigned, info.MaxPods = int(st.Free), int(st.Assigned), int(st.MaxPods)
	if info.Ready {
		if _, err := os.Stat(filepath.Join(n.paths.CNIConfDir(), CNIConfName)); err != nil {
			info.Ready, info.Reason, info.Message = false, "no-cni-config", "the agent has not written its CNI config yet"
		}
	}
	return info
}

// waitAgentReady waits until the node's agent can hand out an address, telling step what it
// is waiting for whenever that changes. An agent that exits first ends the wait at once with
// its exit and the last lines of its log.
func (c *Controller) waitAgentReady(ctx context.Context, n *node, step func(string)) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	a := n.agent
	last := ""
	for {
		st := c.agentStatus(ctx, n)
		if st.Ready {
			a.mu.Lock()
			a.ready = true
			a.mu.Unlock()
			return nil
		}
		if st.Reason != last {
			last = st.Reason
			step(fmt.Sprintf("waiting for vpcnetd on %s: %s", n.name, st.Reason))
		}
		select {
		case <-a.exited:
			a.mu.Lock()
			why := a.startExit
			a.mu.Unlock()
			if why == nil {
				why = errors.New("vpcnetd stopped before it was ready")
			}
			n.keepLog = true
			return fmt.Errorf("node %s: %v; the end of its log %s:\n%s", n.name, why, n.paths.AgentLog(),
				lab.TailFile(n.paths.AgentLog(), agentLogLines))
		case <-ctx.Done():
			n.keepLog = true
			return fmt.Errorf("vpcnetd on %s not ready (%v): %s (%s); the end of its log %s:\n%s", n.name, ctx.Err(), st.Reason, st.Message,
				n.paths.AgentLog(), lab.TailFile(n.paths.AgentLog(), agentLogLines))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// agentLogLines is how much of a failed agent's log an error shows.
const agentLogLines = 15
