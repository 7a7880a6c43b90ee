package agent_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/ipam/store"
	"github.com/vpcnet/vpcnet/internal/testenv"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// TestCrashDuringStorm builds vpcnetd, runs it against an in-process vpcsim and kills it with
// SIGKILL during a storm of 200 concurrent ADD and DEL calls, 20 times. After every crash no
// address is held by two keys and every acknowledged ADD is still held; at the end the store,
// the agent's pool and EC2 agree, and nothing is leaked.
func TestCrashDuringStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills vpcnetd 20 times")
	}
	dir := keptDir(t, "vpcnetd-crash")
	bin := daemonBin(t)
	x := newSim(t, vpcsim.Options{}, "10.0.16.0/20", "m5.4xlarge") // 8 ENIs of 29 pod addresses
	metrics := freePort(t)
	socket := filepath.Join(dir, "run", "vpcnetd.sock")
	env := append(os.Environ(),
		"AWS_EC2_ENDPOINT="+x.s.Endpoint(), "AWS_EC2_METADATA_SERVICE_ENDPOINT="+x.imds, "AWS_REGION="+x.s.Region(),
		"VPCNET_SOCKET="+socket, "VPCNET_STATE_DIR="+filepath.Join(dir, "state"), "VPCNET_CNI_CONF_DIR="+filepath.Join(dir, "net.d"),
		"VPCNET_METRICS_ADDR="+metrics, "VPCNET_HOST_NETWORKING=false", "VPCNET_CLUSTER_NAME=crash",
		"MINIMUM_IP_TARGET=150", "WARM_IP_TARGET=40", "IP_COOLDOWN_PERIOD=100ms", "VPCNET_RESYNC_PERIOD=1s",
		"VPCNET_EC2_MAX_BACKOFF=100ms", "VPCNET_DETACHED_ENI_GRACE=2s", "VPCNET_DETACHED_ENI_SWEEP=1s", "VPCNET_LOG_LEVEL=info")

	conn, err := agentapi.Dial(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := agentapi.NewAgentClient(conn)
	acked := map[string]netip.Addr{} // keys whose ADD was acknowledged and no DEL was sent since
	r := rand.New(rand.NewPCG(4, 2))
	var kills, acks, dels int
	for round := range 20 {
		cmd := startDaemon(t, bin, env, filepath.Join(dir, fmt.Sprint("log", round)))
		waitFor(t, 60*time.Second, "vpcnetd serving", func() bool {
			st, err := c.Status(bg, &agentapi.StatusRequest{Version: agentapi.Version})
			return err == nil && st.Reason != "starting"
		}, func() string { return tail(filepath.Join(dir, fmt.Sprint("log", round))) })
		for k, ip := range acked {
			if _, err := c.Check(bg, &agentapi.CheckRequest{Version: agentapi.Version, Key: key(k), Ip: ip.String()}); err != nil {
				t.Fatalf("round %d: acknowledged %s=%s lost: %v", round, k, ip, err)
			}
		}
		// As a container runtime does after a node agent restart: GC what it does not know (ADDs
		// that were cut off, DELs that were not acknowledged).
		var valid []*agentapi.Key
		for k := range acked {
			valid = append(valid, key(k))
		}
		if _, err := c.GC(bg, &agentapi.GCRequest{Version: agentapi.Version, Network: "vpcnet", Valid: valid}); err != nil {
			t.Fatalf("round %d: GC: %v", round, err)
		}
		waitFor(t, 60*time.Second, "WARM_IP_TARGET free", func() bool {
			st, err := c.Status(bg, &agentapi.StatusRequest{Version: agentapi.Version})
			return err == nil && st.Free >= 40
		}, func() string { return tail(filepath.Join(dir, fmt.Sprint("log", round))) })
		// The storm: new keys (ADD, half of them then DEL) and DELs for half the old ones.
		var mu sync.Mutex
		var wg sync.WaitGroup
		killAt, roundAcks, refused := 1+r.IntN(80), 0, 0
		killNow := make(chan struct{})
		var old []string
		for k := range acked {
			old = append(old, k)
		}
		ops := 0
		for i := 0; ops < 200; i++ {
			ops++
			if i < len(old) && r.IntN(2) == 0 {
				k := old[i]
				mu.Lock()
				delete(acked, k) // a DEL was sent: the key may or may not hold its address
				mu.Unlock()
				wg.Go(func() {
					if _, err := c.Del(bg, &agentapi.DelRequest{Version: agentapi.Version, Key: key(k)}); err == nil {
						mu.Lock()
						dels++
						mu.Unlock()
					}
				})
				continue
			}
			k, thenDel := fmt.Sprintf("r%d-%d", round, i), r.IntN(2) == 0
			wg.Go(func() {
				rep, err := c.Add(bg, &agentapi.AddRequest{Version: agentapi.Version, Key: key(k)})
				mu.Lock()
				if err != nil {
					if status.Code(err) == codes.ResourceExhausted {
						refused++
					}
					mu.Unlock()
					return
				}
				acks++
				if roundAcks++; roundAcks == killAt {
					close(killNow)
				}
				if !thenDel {
					acked[k] = netip.MustParseAddr(rep.Allocation.Ip)
				}
				mu.Unlock()
				if thenDel {
					c.Del(bg, &agentapi.DelRequest{Version: agentapi.Version, Key: key(k)})
				}
			})
		}
		select { // kill -9 once killAt ADDs were acknowledged: in the middle of the storm
		case <-killNow:
		case <-time.After(5 * time.Second):
		}
		cmd.Process.Kill()
		cmd.Wait()
		kills++
		wg.Wait()
		t.Logf("round %d: killed after %d acknowledged ADDs (%d refused for want of an address); %d keys held", round, roundAcks, refused, len(acked))
		checkStore(t, filepath.Join(dir, "state", "ipam"), acked, round)
	}
	t.Logf("%d kills, %d ADDs acknowledged, %d DELs acknowledged; %d keys held", kills, acks, dels, len(acked))

	// Restart once more and let the pool settle: store, agent and EC2 agree; nothing leaked.
	cmd := startDaemon(t, bin, env, filepath.Join(dir, "log-final"))
	var why string
	var valid []*agentapi.Key
	for k := range acked {
		valid = append(valid, key(k))
	}
	waitFor(t, 60*time.Second, "GC after the last restart", func() bool {
		_, err := c.GC(bg, &agentapi.GCRequest{Version: agentapi.Version, Network: "vpcnet", Valid: valid})
		return err == nil
	})
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitFor(t, 60*time.Second, "store, pool and EC2 to agree", func() bool {
		s, err := c.Status(bg, &agentapi.StatusRequest{Version: agentapi.Version})
		if err != nil || int(s.Assigned) != len(acked) {
			why = fmt.Sprintf("status %v; %d acknowledged", s, len(acked))
			return false
		}
		cloud, _ := x.cloudAddrs(t)
		for k, ip := range acked {
			if _, ok := cloud[ip]; !ok {
				t.Fatalf("%s holds %s, which EC2 does not show on the instance", k, ip)
			}
		}
		pool := enisFromAgent(t, "http://"+metrics)
		why = fmt.Sprintf("agent shows %d addresses, EC2 %d", len(pool), len(cloud))
		if len(pool) != len(cloud) {
			return false
		}
		for ip := range cloud {
			if _, ok := pool[ip]; !ok {
				return false
			}
		}
		return true
	}, func() string { return why + "\n" + tail(filepath.Join(dir, "log-final")) })
	waitFor(t, 60*time.Second, "no detached ENI left", func() bool { return x.detached(t) == 0 })
	rep, err := c.GC(bg, &agentapi.GCRequest{Version: agentapi.Version, Network: "vpcnet"})
	if err != nil || len(rep.Released) != len(acked) {
		t.Fatalf("GC released %d of %d: %v", len(rep.GetReleased()), len(acked), err)
	}
}

// daemonBin is cmd/vpcnetd, built once per test process with the CLI and the plugin
// (testenv.CLI): a build per test cost minutes on a loaded machine.
func daemonBin(t testing.TB) string {
	t.Helper()
	return filepath.Join(filepath.Dir(testenv.CLI(t)), "vpcnetd")
}

func startDaemon(t *testing.T, bin string, env []string, log string, args ...string) *exec.Cmd {
	t.Helper()
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
	// A test binary killed by its timeout must not leave agents running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { // also when the test fails half-way
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

// checkStore reads the store of the dead agent: one key per address, every acknowledged ADD held.
func checkStore(t *testing.T, dir string, acked map[string]netip.Addr, round int) {
	t.Helper()
	s, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	held := map[netip.Addr]string{}
	for _, a := range s.List() {
		if k, dup := held[a.Addr]; dup {
			t.Fatalf("round %d: %s held by %s and %s", round, a.Addr, k, a.Key)
		}
		held[a.Addr] = a.Key.ContainerID
	}
	for k, ip := range acked {
		if held[ip] != k {
			t.Fatalf("round %d: acknowledged ADD %s=%s lost after kill -9 (held by %q)", round, k, ip, held[ip])
		}
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// exec_ runs a command inside netns and returns its output.
func exec_(netns interface{ Path() string }, name string, args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"--net=" + netns.Path(), name}, args...)...).CombinedOutput()
	return string(out), err
}
