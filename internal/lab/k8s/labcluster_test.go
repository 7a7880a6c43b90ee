package k8s_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s"
)

// testLab is one lab cluster a test owns, driven as a user would: the vpcnet CLI (run, must,
// status) and the lab's kubectl with its admin kubeconfig (kubectl, mustKubectl). The test
// takes it down at its end. Helpers fail l.t; sub gives a subtest its own.
type testLab struct {
	t    *testing.T
	bin  string
	name string
}

// testLabRE matches the names newTestLab gives: a letter per test, the owning test process's
// pid, a number.
var testLabRE = regexp.MustCompile(`^([a-z])([0-9]+)x[0-9]+$`)

// newTestLab returns the lab <kind><pid>x<n> for t, driven through the CLI bin, after taking
// down the labs of kind whose test processes were killed mid-test (their pid is gone).
func newTestLab(t *testing.T, bin string, kind byte, n int) *testLab {
	ents, _ := os.ReadDir(lab.Root())
	for _, e := range ents {
		m := testLabRE.FindStringSubmatch(e.Name())
		if m == nil || m[1][0] != kind {
			continue
		}
		if pid, _ := strconv.Atoi(m[2]); pid != os.Getpid() && syscall.Kill(pid, 0) != nil {
			_ = exec.Command(bin, "lab", "down", "--name", e.Name()).Run()
		}
	}
	return &testLab{t: t, bin: bin, name: fmt.Sprintf("%c%dx%d", kind, os.Getpid(), n)}
}

// sub is l for the subtest t, whose helpers must fail t, not its parent.
func (l *testLab) sub(t *testing.T) *testLab {
	c := *l
	c.t = t
	return &c
}

// run runs `vpcnet ARGS` with --name after the first argument (`lab`), so arguments after a
// "--" (lab exec, lab kubectl) stay the command's own; stdout and stderr together.
func (l *testLab) run(args ...string) (string, error) {
	cmd := exec.Command(l.bin, append(args[:1:1], append([]string{"--name", l.name}, args[1:]...)...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (l *testLab) must(args ...string) string {
	l.t.Helper()
	out, err := l.run(args...)
	if err != nil {
		l.t.Fatalf("vpcnet %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// kubectl runs the lab's built kubectl as the cluster admin (k8s.Kubectl, what `vpcnet lab
// kubectl` runs) with stdin; on failure the output has stderr after stdout.
func (l *testLab) kubectl(stdin string, args ...string) (string, error) {
	cmd := k8s.Kubectl(context.Background(), l.name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String() + errb.String(), err
	}
	return out.String(), nil
}

func (l *testLab) mustKubectl(stdin string, args ...string) string {
	l.t.Helper()
	out, err := l.kubectl(stdin, args...)
	if err != nil {
		l.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// status is `lab status --format json`, nodes in their index order.
func (l *testLab) status() lab.Status {
	l.t.Helper()
	var st lab.Status
	if err := json.Unmarshal([]byte(l.must("lab", "status", "--format", "json")), &st); err != nil {
		l.t.Fatal(err)
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].Index < st.Nodes[j].Index })
	return st
}

// waitFor polls cond every 250 ms until it holds or limit passes, then fails with cond's last
// word on what it saw.
func (l *testLab) waitFor(what string, limit time.Duration, cond func() (bool, string)) {
	l.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: not after %s: %s", what, limit, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
