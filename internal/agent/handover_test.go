package agent_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/testenv"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// A DaemonSet rollout (docs/kubernetes.md, "Upgrade") relies on this handover: on SIGTERM
// vpcnetd stops serving and removes its socket, so the plugin answers "agent not running" rather
// than hanging on a dead socket, and leaves the conflist, so the runtime keeps the node's
// network configured; the next agent takes over the socket and every allocation.
func TestSIGTERMRemovesSocketLeavesConflistAndNextAgentKeepsAllocations(t *testing.T) {
	dir := filepath.Dir(testenv.CLI(t))
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	cfg := testConfig(t, x)
	conf := filepath.Join(cfg.CNIConfDir, cfg.CNIConfName)
	start := func() (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(filepath.Join(dir, "vpcnetd"))
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
			"AWS_EC2_ENDPOINT=" + x.s.Endpoint(), "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + x.imds, "AWS_REGION=" + x.s.Region(),
			"AWS_ACCESS_KEY_ID=" + x.s.OperatorCredentials().AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + x.s.OperatorCredentials().SecretAccessKey,
			"VPCNET_SOCKET=" + cfg.Socket, "VPCNET_STATE_DIR=" + cfg.StateDir, "VPCNET_CNI_CONF_DIR=" + cfg.CNIConfDir,
			"VPCNET_METRICS_ADDR=", "VPCNET_HOST_NETWORKING=false", "VPCNET_CLUSTER_NAME=test", "IP_COOLDOWN_PERIOD=1s"}
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
		return cmd, &logs
	}
	first, logs := start()
	waitFor(t, 60*time.Second, "the first agent to write the conflist", func() bool {
		_, err := os.Stat(conf)
		return err == nil
	}, logs.String)
	conn, err := agentapi.Dial(cfg.Socket)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, sim: x, cfg: cfg, client: agentapi.NewAgentClient(conn)}
	ip := n.mustAdd("pod-a")
	conn.Close()
	written, _ := os.ReadFile(conf)

	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- first.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("vpcnetd on SIGTERM: %v (want exit 0)\n%s", err, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("vpcnetd still running 30s after SIGTERM\n%s", logs)
	}
	if _, err := os.Lstat(cfg.Socket); !os.IsNotExist(err) {
		t.Fatalf("socket %s left behind after SIGTERM (%v): the plugin would dial a dead agent", cfg.Socket, err)
	}
	if b, err := os.ReadFile(conf); err != nil || !bytes.Equal(b, written) {
		t.Fatalf("conflist after SIGTERM: %v (changed: %v); the runtime would mark the node's network not ready", err, !bytes.Equal(b, written))
	}

	_, logs2 := start()
	waitFor(t, 60*time.Second, "the next agent to serve", func() bool {
		c, err := agentapi.Dial(cfg.Socket)
		if err != nil {
			return false
		}
		defer c.Close()
		st, err := agentapi.NewAgentClient(c).Status(bg, &agentapi.StatusRequest{Version: agentapi.Version})
		return err == nil && st.Reason != agent.ReasonStarting
	}, logs2.String)
	conn, err = agentapi.Dial(cfg.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n.client = agentapi.NewAgentClient(conn)
	// A new pod first: had the allocation been lost, the next agent could hand pod-a's address
	// out again.
	if other := n.mustAdd("pod-b"); other == ip {
		t.Fatalf("after the handover a new pod got %s, pod-a's address", ip)
	}
	if again := n.mustAdd("pod-a"); again != ip {
		t.Fatalf("after the handover pod-a's ADD answers %s, want its address %s kept", again, ip)
	}
	if b, _ := os.ReadFile(conf); !bytes.Equal(b, written) {
		t.Fatalf("the next agent rewrote the conflist differently:\n%s\nwas\n%s", b, written)
	}
}
