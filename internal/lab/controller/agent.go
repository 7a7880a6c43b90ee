package controller

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/fabric"
)

// CNIConfName is the file the agent writes its CNI config list to, once ready.
const CNIConfName = "10-vpcnet.conflist"

// agentProc supervises one node's vpcnetd as kubelet does a DaemonSet pod: restarted a second
// after it exits, until the node goes away.
type agentProc struct {
	mu       sync.Mutex
	pid      int
	restarts int
	stopping bool
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the supervisor gives up the process for good
}

// agentEnv is vpcnetd's whole environment: the lab's paths and endpoints, and the settings.
func (c *Controller) agentEnv(n *node) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=/root",
		"VPCNET_STATE_DIR=" + n.paths.AgentState(),
		"VPCNET_SOCKET=" + n.paths.AgentSocket(),
		"VPCNET_CNI_CONF_DIR=" + n.paths.CNIConfDir(),
		"VPCNET_CNI_CONF_NAME=" + CNIConfName,
		"VPCNET_HOST_NETWORKING=true",
		"VPCNET_METRICS_ADDR=" + lab.AgentMetricsAddr,
		"VPCNET_CLUSTER_NAME=" + c.cfg.Name,
		"AWS_EC2_ENDPOINT=http://" + fabric.EC2Addr.String(),
		"AWS_ENDPOINT_URL_EC2=http://" + fabric.EC2Addr.String(),
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://" + fabric.IMDSAddr.String(),
		"AWS_ACCESS_KEY_ID=" + accessKey,
		"AWS_SECRET_ACCESS_KEY=" + secretKey,
	}
	return append(env, c.cfg.AgentEnv()...)
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
		stopping := a.stopping
		a.mu.Unlock()
		if stopping {
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
// is waiting for whenever that changes.
func (c *Controller) waitAgentReady(ctx context.Context, n *node, step func(string)) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	last := ""
	for {
		st := c.agentStatus(ctx, n)
		if st.Ready {
			return nil
		}
		if st.Reason != last {
			last = st.Reason
			step(fmt.Sprintf("waiting for vpcnetd on %s: %s", n.name, st.Reason))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vpcnetd on %s not ready (%v): %s (%s); see %s", n.name, ctx.Err(), st.Reason, st.Message, n.paths.AgentLog())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
