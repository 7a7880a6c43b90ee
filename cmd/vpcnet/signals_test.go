package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/catalog"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

// startLabUp starts the real `vpcnet lab up --nodes 1` (built with vpcnetd and vpcnet-cni beside
// it, testenv.CLI) of a lab under a temporary state root, its stderr on a pipe; the lab is
// removed at the end of the test whatever happens.
func startLabUp(t *testing.T, tag string) (*exec.Cmd, string, *os.File) {
	t.Helper()
	testenv.RequireNetns(t)
	root := t.TempDir()
	t.Setenv(lab.EnvRoot, root)
	name := fmt.Sprintf("hyg%s%d", tag, os.Getpid())
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.CLI(t), "lab", "up", "--name", name, "--nodes", "1")
	cmd.Env = append(os.Environ(), catalog.EnvInstanceTypes+"=", lab.EnvRoot+"="+root)
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = lab.Down(t.Context(), name, nil)
	})
	return cmd, name, r
}

// waitExit waits up to 3 minutes for cmd and returns its exit code (-1: killed by a signal).
func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode()
	case <-time.After(3 * time.Minute):
		t.Fatal("vpcnet lab up did not end within 3 minutes")
		return 0
	}
}

// `vpcnet lab up 2>&1 | head -1`: the reader of stderr goes after the first line. vpcnet is not
// killed by SIGPIPE halfway; it stops, and since nobody can read a message, removes the lab.
func TestLabUpWithBrokenPipeLeavesNoLab(t *testing.T) {
	cmd, name, r := startLabUp(t, "p")
	first, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("no first line: %v", err)
	}
	r.Close() // head -1 exits
	code := waitExit(t, cmd)
	if code != 1 {
		t.Errorf("lab up with a broken stderr after %q: exit %d (-1: killed by a signal), want 1", first, code)
	}
	if lab.Exists(name) {
		ns, _ := os.ReadDir("/run/netns")
		t.Errorf("lab %s is left half made after the broken pipe (namespaces %v)", name, ns)
	}
}

// SIGTERM during `lab up`: the message names the signal, not the step it cut short.
func TestLabUpSIGTERMNamesTheSignal(t *testing.T) {
	cmd, name, r := startLabUp(t, "s")
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("lab up ended before it started the lab: %v", err)
		}
		if strings.Contains(line, "starting lab "+name) {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	code := waitExit(t, cmd)
	t.Logf("exit %d %v after SIGTERM", code, time.Since(sent))
	// vpcnet's last line is its error, in the pipe once vpcnet has exited; read up to it with a
	// deadline, so a reader that never gets it fails the test instead of hanging it.
	lastc := make(chan string, 1)
	go func() {
		for {
			line, err := br.ReadString('\n')
			if strings.HasPrefix(line, "vpcnet: ") || err != nil {
				lastc <- strings.TrimSpace(line)
				return
			}
		}
	}()
	var last string
	select {
	case last = <-lastc:
	case <-time.After(time.Minute):
		t.Fatal("no error line from vpcnet within a minute of its exit")
	}
	if code != 1 || !strings.HasPrefix(last, "vpcnet: stopped by SIGTERM; the lab is partly up") ||
		strings.Contains(last, "context canceled") || !strings.Contains(last, "vpcnet lab down --name "+name) {
		t.Errorf("lab up after SIGTERM: exit %d, last line %q; want exit 1 and 'stopped by SIGTERM; the lab is partly up ... lab down'", code, last)
	}
}
