package agent_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/cni"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// daemon is one vpcnetd process and its client.
type daemon struct {
	cmd    *exec.Cmd
	log    string
	client agentapi.AgentClient
}

func runDaemon(t *testing.T, bin string, env []string, socket, log string, wrap ...string) *daemon {
	t.Helper()
	var cmd *exec.Cmd
	if len(wrap) > 0 {
		cmd = startDaemon(t, wrap[0], env, log, append(wrap[1:], bin)...)
	} else {
		cmd = startDaemon(t, bin, env, log)
	}
	conn, err := agentapi.Dial(socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	d := &daemon{cmd: cmd, log: log, client: agentapi.NewAgentClient(conn)}
	waitFor(t, 60*time.Second, "vpcnetd ready", func() bool {
		st, err := d.client.Status(bg, &agentapi.StatusRequest{Version: agentapi.Version})
		return err == nil && st.Ready
	}, func() string { return tail(log) })
	return d
}

func (d *daemon) kill() {
	d.cmd.Process.Kill()
	d.cmd.Wait()
}

func (d *daemon) add(id string) (netip.Addr, error) {
	r, err := d.client.Add(bg, &agentapi.AddRequest{Version: agentapi.Version, Key: key(id), PodNamespace: "default", PodName: id})
	if err != nil {
		return netip.Addr{}, err
	}
	return netip.MustParseAddr(r.Allocation.Ip), nil
}

// mustAdd retries while the pool grows.
func (d *daemon) mustAdd(t *testing.T, id string) netip.Addr {
	t.Helper()
	var ip netip.Addr
	waitFor(t, 60*time.Second, "ADD "+id, func() bool {
		var err error
		ip, err = d.add(id)
		if status.Code(err) == codes.ResourceExhausted {
			return false
		}
		if err != nil {
			t.Fatalf("ADD %s: %v", id, err)
		}
		return true
	}, func() string { return tail(d.log) })
	return ip
}

// writeRecord writes the plugin's attachment record for a pod as its ADD does (the JSON of
// cni.Record under <stateDir>/<network>/attachments/).
func writeRecord(t *testing.T, stateDir, id string, ip netip.Addr) {
	t.Helper()
	dir := filepath.Join(stateDir, "vpcnet", "attachments")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(cni.Record{Network: "vpcnet", ContainerID: id, IfName: "eth0", Netns: "/run/netns/" + id, PodNamespace: "default", PodName: id,
		HostVeth: "eni" + id, VethPrefix: "eni", Addr: ip, Table: 254})
	if err := os.WriteFile(filepath.Join(dir, id+".json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedJournalLosesNoPod (issue 11 fault 2, the agent process): four pods hold addresses
// and the plugin's records; vpcnetd is killed, its journal damaged, and restarted. Whatever the
// damage (one byte of record 2 of 4 changed; records 2 and 3 overwritten with garbage; the
// journal emptied), every pod's key holds its address again, the journal as found is kept
// aside, the damage is logged as an error, and new pods filling the node (27 addresses) get none of the four. At
// 1ca4798 the first case dropped records 2-4 and handed their addresses to new pods.
func TestDamagedJournalLosesNoPod(t *testing.T) {
	dir := t.TempDir()
	bin := daemonBin(t)
	x := newSim(t, vpcsim.Options{}, "10.0.16.0/24", "m5.large") // 3 ENIs of 9 pod addresses
	for round, damage := range []struct {
		name string
		do   func(journal []byte, lines [][2]int) []byte
	}{
		{"one byte of record 2 of 4", func(j []byte, l [][2]int) []byte { j[l[1][0]+40] ^= 0x01; return j }},
		{"records 2 and 3 overwritten", func(j []byte, l [][2]int) []byte {
			copy(j[l[1][0]+9:l[2][1]-1], bytes.Repeat([]byte{'#'}, l[2][1]-1-l[1][0]-9))
			return j
		}},
		{"emptied", func([]byte, [][2]int) []byte { return nil }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			rdir := filepath.Join(dir, fmt.Sprint("r", round))
			if err := os.MkdirAll(rdir, 0o755); err != nil {
				t.Fatal(err)
			}
			socket := filepath.Join(rdir, "run", "vpcnetd.sock")
			env := daemonEnv(x, rdir, freePort(t), "WARM_IP_TARGET=3", "IP_COOLDOWN_PERIOD=0", "VPCNET_CLUSTER_NAME="+fmt.Sprint("j", round))
			d := runDaemon(t, bin, env, socket, filepath.Join(rdir, "log1"))
			pods := map[string]netip.Addr{}
			for i := 1; i <= 4; i++ {
				id := fmt.Sprintf("pod%d", i)
				pods[id] = d.mustAdd(t, id)
				writeRecord(t, filepath.Join(rdir, "state", "cni"), id, pods[id])
			}
			d.kill()
			path := filepath.Join(rdir, "state", "ipam", "allocations.journal")
			journal, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var lines [][2]int
			for s := 0; s < len(journal); {
				e := s + bytes.IndexByte(journal[s:], '\n') + 1
				lines = append(lines, [2]int{s, e})
				s = e
			}
			if len(lines) < 4 {
				t.Fatalf("journal of %d lines, want (a header and) 4 ADDs:\n%s", len(lines), journal)
			}
			damaged := damage.do(bytes.Clone(journal), lines[len(lines)-4:]) // the four ADDs
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			d = runDaemon(t, bin, env, socket, filepath.Join(rdir, "log2"))
			for id, ip := range pods {
				if _, err := d.client.Check(bg, &agentapi.CheckRequest{Version: agentapi.Version, Key: key(id), Ip: ip.String()}); err != nil {
					t.Fatalf("%s lost %s after the journal was damaged (%s): %v\n%s", id, ip, damage.name, err, tail(d.log))
				}
			}
			taken := map[netip.Addr]string{}
			for id, ip := range pods {
				taken[ip] = id
			}
			for i := range 23 { // every other address the node may hold
				id := fmt.Sprintf("new%d", i)
				ip := d.mustAdd(t, id)
				if old, ok := taken[ip]; ok {
					t.Fatalf("%s got %s, which %s still holds", id, ip, old)
				}
				taken[ip] = id
			}
			evidence, _ := filepath.Glob(path + ".damaged-*")
			if len(evidence) != 1 {
				t.Fatalf("evidence files %v", evidence)
			}
			if kept, _ := os.ReadFile(evidence[0]); !bytes.Equal(kept, damaged) {
				t.Fatalf("the kept journal differs from the damaged one")
			}
			if b, _ := os.ReadFile(d.log); !strings.Contains(string(b), "level=ERROR") || !strings.Contains(string(b), "journal was damaged") {
				t.Fatalf("no error logged for the damaged journal:\n%s", tail(d.log))
			}
			d.kill()
		})
	}
}

// nsHolder runs a process in a new mount namespace with a small tmpfs on dir, and returns its
// pid: processes run with nsenter -t pid -m see the tmpfs; nothing outside does. The tmpfs goes
// with the namespace when the holder is killed at the end of the test.
func nsHolder(t *testing.T, dir string, size string) int {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs -o size=`+size+`,mode=0700 vpcnet-test "$1" && touch "$2" && exec sleep 3600`, "sh", dir, ready)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, 60*time.Second, "the mount namespace", func() bool { _, err := os.Stat(ready); return err == nil }, func() string { return out.String() })
	return cmd.Process.Pid
}

// TestFullDiskFailsAddCleanly (issue 11 fault 2, a full disk during an append): vpcnetd's store
// is on a tmpfs that the test fills. An ADD whose record does not fit fails with an error the
// plugin passes on (INTERNAL, naming the full disk), its key holds nothing, DELs still succeed
// (the journal keeps reserved room for releases), and once there is room ADDs succeed again; after a restart every acknowledged ADD is held, the failed ones are
// not, and the journal is clean (no half-written record was left ahead of later ones).
func TestFullDiskFailsAddCleanly(t *testing.T) {
	dir := t.TempDir()
	bin := daemonBin(t)
	x := newSim(t, vpcsim.Options{}, "10.0.16.0/24", "m5.large")
	ipam := filepath.Join(dir, "state", "ipam")
	holder := nsHolder(t, ipam, "512k")
	inNS := filepath.Join("/proc", strconv.Itoa(holder), "root") // the holder's view of the files
	socket := filepath.Join(dir, "run", "vpcnetd.sock")
	env := daemonEnv(x, dir, freePort(t), "WARM_IP_TARGET=5", "IP_COOLDOWN_PERIOD=0", "VPCNET_CLUSTER_NAME=full")
	wrap := []string{"nsenter", "-t", strconv.Itoa(holder), "-m", "--"}
	d := runDaemon(t, bin, env, socket, filepath.Join(dir, "log1"), wrap...)

	// Some records first, so that the journal's last page is partly used: the append that
	// finds the disk full is then cut short half-way through its record.
	acked := map[string]netip.Addr{}
	for i := range 3 {
		id := fmt.Sprintf("early%d", i)
		acked[id] = d.mustAdd(t, id)
	}
	// Fill the tmpfs.
	filler, err := os.Create(filepath.Join(inNS, ipam, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{'.'}, 512)
	for {
		if _, err := filler.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the tmpfs: %v", err)
			}
			break
		}
	}
	filler.Close()
	// ADD and DEL pairs until the journal's last page is full: some ADD must then fail.
	var failed []string
	for i := 0; len(failed) < 3 && i < 1000; i++ {
		id := fmt.Sprintf("pod%d", i)
		var ip netip.Addr
		var err error
		waitFor(t, 60*time.Second, "a free address", func() bool {
			ip, err = d.add(id)
			return status.Code(err) != codes.ResourceExhausted
		}, func() string { return tail(d.log) })
		switch {
		case err == nil:
			acked[id] = ip
		case status.Code(err) == codes.Internal && strings.Contains(err.Error(), "no space left on device"):
			failed = append(failed, id)
			continue
		default:
			t.Fatalf("ADD %s on a full disk: %v", id, err)
		}
		_, err = d.client.Del(bg, &agentapi.DelRequest{Version: agentapi.Version, Key: key(id)})
		switch {
		case err == nil:
			delete(acked, id)
		case status.Code(err) == codes.Internal && strings.Contains(err.Error(), "no space left on device"):
			// not released: still held
		default:
			t.Fatalf("DEL %s on a full disk: %v", id, err)
		}
	}
	if len(failed) == 0 {
		t.Fatalf("no ADD failed on a full disk (%d acknowledged)", len(acked))
	}
	for _, id := range failed {
		if _, err := d.client.Check(bg, &agentapi.CheckRequest{Version: agentapi.Version, Key: key(id)}); status.Code(err) != codes.NotFound {
			t.Fatalf("the failed ADD %s is held: %v", id, err)
		}
	}
	// Releases still find room on the full disk: the journal keeps room for them.
	for _, id := range []string{"early0", "early1"} {
		if _, err := d.client.Del(bg, &agentapi.DelRequest{Version: agentapi.Version, Key: key(id)}); err != nil {
			t.Fatalf("DEL %s on a full disk: %v", id, err)
		}
		delete(acked, id)
	}
	if err := os.Remove(filepath.Join(inNS, ipam, "filler")); err != nil {
		t.Fatal(err)
	}
	after := d.mustAdd(t, "after")
	acked["after"] = after
	d.kill()

	d = runDaemon(t, bin, env, socket, filepath.Join(dir, "log2"), wrap...)
	for id, ip := range acked {
		if _, err := d.client.Check(bg, &agentapi.CheckRequest{Version: agentapi.Version, Key: key(id), Ip: ip.String()}); err != nil {
			t.Fatalf("acknowledged %s=%s lost after a full disk and a restart: %v", id, ip, err)
		}
	}
	for _, id := range failed {
		if _, err := d.client.Check(bg, &agentapi.CheckRequest{Version: agentapi.Version, Key: key(id)}); status.Code(err) != codes.NotFound {
			t.Fatalf("the failed ADD %s is held after a restart: %v", id, err)
		}
	}
	if b, _ := os.ReadFile(d.log); strings.Contains(string(b), "journal was damaged") || strings.Contains(string(b), "torn") {
		t.Fatalf("the journal was left damaged by the full disk:\n%s", tail(d.log))
	}
	d.kill()

	// A read-only store directory stops vpcnetd at once with one line, nothing changed.
	remount := exec.Command("nsenter", "-t", strconv.Itoa(holder), "-m", "--", "mount", "-o", "remount,ro", ipam)
	if out, err := remount.CombinedOutput(); err != nil {
		t.Fatalf("remount ro: %v %s", err, out)
	}
	before, _ := os.ReadFile(filepath.Join(inNS, ipam, "allocations.journal"))
	log := filepath.Join(dir, "log3")
	cmd := startDaemon(t, "nsenter", env, log, "-t", strconv.Itoa(holder), "-m", "--", bin)
	if code := exitOf(t, cmd, 60*time.Second); code != 1 {
		t.Fatalf("vpcnetd on a read-only store: exit %d\n%s", code, tail(log))
	}
	b, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if !strings.Contains(lines[len(lines)-1], "read-only file system") {
		t.Fatalf("last line %q does not say the store is read-only", lines[len(lines)-1])
	}
	if now, _ := os.ReadFile(filepath.Join(inNS, ipam, "allocations.journal")); !bytes.Equal(now, before) {
		t.Fatal("the journal changed")
	}
}
