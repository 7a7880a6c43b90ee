package agent_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// daemonEnv is the environment of a vpcnetd against x with its state and socket below dir.
func daemonEnv(x *sim, dir, metrics string, extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"),
		"AWS_EC2_ENDPOINT=" + x.s.Endpoint(), "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + x.imds, "AWS_REGION=" + x.s.Region(),
		"VPCNET_SOCKET=" + filepath.Join(dir, "run", "vpcnetd.sock"), "VPCNET_STATE_DIR=" + filepath.Join(dir, "state"),
		"VPCNET_CNI_CONF_DIR=" + filepath.Join(dir, "net.d"), "VPCNET_METRICS_ADDR=" + metrics, "VPCNET_HOST_NETWORKING=false",
		"VPCNET_CLUSTER_NAME=startup", "WARM_IP_TARGET=2", "VPCNET_RESYNC_PERIOD=1s", "VPCNET_EC2_MAX_BACKOFF=100ms"}, extra...)
}

func statusOf(t *testing.T, socket string) (*agentapi.StatusReply, error) {
	conn, err := agentapi.Dial(socket)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return agentapi.NewAgentClient(conn).Status(bg, &agentapi.StatusRequest{Version: agentapi.Version})
}

// exitOf waits (with a deadline) for cmd to end and returns its exit code.
func exitOf(t *testing.T, cmd *exec.Cmd, d time.Duration) int {
	t.Helper()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s still running after %s", cmd.Path, d)
		return -1
	}
}

// TestOneAgentPerNode (issue 11 fault 3): a second vpcnetd with the same state directory and
// socket, or with only the same socket, exits 1 with one line naming the first's pid, and the
// first keeps serving on its socket. Once the first is killed with SIGKILL, its lock is gone
// with it and a new agent takes over the stale socket. Fails at 1ca4798 (the second took the
// socket over).
func TestOneAgentPerNode(t *testing.T) {
	dir := t.TempDir()
	bin := daemonBin(t)
	x := newSim(t, vpcsim.Options{}, "10.0.16.0/24", "t3.medium")
	socket := filepath.Join(dir, "run", "vpcnetd.sock")
	first := startDaemon(t, bin, daemonEnv(x, dir, freePort(t)), filepath.Join(dir, "log1"))
	waitFor(t, 60*time.Second, "the first vpcnetd serving", func() bool {
		st, err := statusOf(t, socket)
		return err == nil && st.Ready
	}, func() string { return tail(filepath.Join(dir, "log1")) })
	pid := fmt.Sprint(first.Process.Pid)

	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"same state dir and socket", daemonEnv(x, dir, freePort(t))},
		{"same socket, other state dir", daemonEnv(x, dir, freePort(t), "VPCNET_STATE_DIR="+filepath.Join(dir, "state2"))},
	} {
		log := filepath.Join(dir, "log-"+strings.ReplaceAll(tc.name, " ", "-"))
		second := startDaemon(t, bin, tc.env, log)
		if code := exitOf(t, second, 60*time.Second); code != 1 {
			t.Fatalf("%s: second vpcnetd exit %d, want 1: %s", tc.name, code, tail(log))
		}
		b, _ := os.ReadFile(log)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		last := lines[len(lines)-1]
		if !strings.Contains(last, "pid "+pid) || !strings.Contains(last, "one agent per node") {
			t.Fatalf("%s: second vpcnetd's last line %q does not name the first's pid %s", tc.name, last, pid)
		}
		if tc.name == "same state dir and socket" && len(lines) != 1 {
			t.Fatalf("%s: second vpcnetd said %d lines, want one: %q", tc.name, len(lines), b)
		}
		if st, err := statusOf(t, socket); err != nil || !st.Ready {
			t.Fatalf("%s: the first vpcnetd no longer answers on its socket: %v %v", tc.name, st, err)
		}
		if first.ProcessState != nil {
			t.Fatalf("%s: the first vpcnetd ended", tc.name)
		}
	}

	first.Process.Kill()
	first.Wait()
	if _, err := os.Lstat(socket); err != nil {
		t.Fatalf("the killed agent's socket should be left behind for this test: %v", err)
	}
	startDaemon(t, bin, daemonEnv(x, dir, freePort(t)), filepath.Join(dir, "log3"))
	waitFor(t, 60*time.Second, "a new vpcnetd to take over after kill -9", func() bool {
		st, err := statusOf(t, socket)
		return err == nil && st.Ready
	}, func() string { return tail(filepath.Join(dir, "log3")) })
}

// TestSocketDirectoryLeftAlone (issue 11 fault 10): a socket in an existing directory leaves the
// directory's mode as it was (VPCNET_SOCKET=/tmp/x.sock made /tmp 0700); a missing directory is
// created 0700. Fails at 1ca4798.
func TestSocketDirectoryLeftAlone(t *testing.T) {
	dir := t.TempDir()
	bin := daemonBin(t)
	x := newSim(t, vpcsim.Options{}, "10.0.16.0/24", "t3.medium")
	shared := filepath.Join(dir, "tmp")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil { // like /tmp
		t.Fatal(err)
	}
	socket := filepath.Join(shared, "x.sock")
	cmd := startDaemon(t, bin, daemonEnv(x, dir, freePort(t), "VPCNET_SOCKET="+socket), filepath.Join(dir, "log"))
	waitFor(t, 60*time.Second, "vpcnetd serving", func() bool {
		_, err := statusOf(t, socket)
		return err == nil
	}, func() string { return tail(filepath.Join(dir, "log")) })
	fi, err := os.Stat(shared)
	if err != nil || fi.Mode().Perm()|fi.Mode()&os.ModeSticky != 0o777|os.ModeSticky {
		t.Fatalf("the existing socket directory's mode changed to %v (%v)", fi.Mode(), err)
	}
	if fi, err := os.Lstat(socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v (%v), want 0600", fi.Mode(), err)
	}
	cmd.Process.Kill()
	cmd.Wait()

	fresh := filepath.Join(dir, "made", "by", "agent", "x.sock")
	startDaemon(t, bin, daemonEnv(x, dir, freePort(t), "VPCNET_SOCKET="+fresh), filepath.Join(dir, "log2"))
	waitFor(t, 60*time.Second, "vpcnetd serving on a new directory", func() bool {
		_, err := statusOf(t, fresh)
		return err == nil
	}, func() string { return tail(filepath.Join(dir, "log2")) })
	if fi, err := os.Stat(filepath.Dir(fresh)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("created socket directory mode %v (%v), want 0700", fi.Mode(), err)
	}
}

// TestListenersBeforeCloud (issue 12 item 8): with IMDS unreachable (a closed loopback port)
// and AWS_REGION unset, vpcnetd serves its socket and /healthz at once: STATUS says
// cloud-unreachable, ADD fails UNAVAILABLE saying so, /healthz answers 503 saying so. Fails at
// 1ca4798 (neither listener served).
func TestListenersBeforeCloud(t *testing.T) {
	dir := t.TempDir()
	bin := daemonBin(t)
	closed := freePort(t) // nothing listens there any more
	metrics := freePort(t)
	socket := filepath.Join(dir, "run", "vpcnetd.sock")
	env := []string{"PATH=" + os.Getenv("PATH"), "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://" + closed, "AWS_EC2_ENDPOINT=http://" + closed,
		"VPCNET_SOCKET=" + socket, "VPCNET_STATE_DIR=" + filepath.Join(dir, "state"), "VPCNET_CNI_CONF_DIR=" + filepath.Join(dir, "net.d"),
		"VPCNET_METRICS_ADDR=" + metrics, "VPCNET_HOST_NETWORKING=false"}
	cmd := startDaemon(t, bin, env, filepath.Join(dir, "log"))
	var st *agentapi.StatusReply
	waitFor(t, 60*time.Second, "STATUS to say cloud-unreachable", func() bool {
		var err error
		st, err = statusOf(t, socket)
		return err == nil && st.Reason == agent.ReasonCloudUnreachable
	}, func() string { return fmt.Sprintf("%v\n%s", st, tail(filepath.Join(dir, "log"))) })
	if st.Ready || !strings.Contains(st.Message, "region") {
		t.Fatalf("status %v does not say what is unreachable", st)
	}
	conn, err := agentapi.Dial(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = agentapi.NewAgentClient(conn).Add(bg, &agentapi.AddRequest{Version: agentapi.Version, Key: key("pod-1")})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), agent.ReasonCloudUnreachable) {
		t.Fatalf("ADD with the cloud unreachable: %v", err)
	}
	r, err := http.Get("http://" + metrics + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), agent.ReasonCloudUnreachable) {
		t.Fatalf("/healthz: %d %q", r.StatusCode, body)
	}
	if cmd.ProcessState != nil {
		t.Fatal("vpcnetd ended")
	}
}
