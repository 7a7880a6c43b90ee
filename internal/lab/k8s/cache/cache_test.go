package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBuildSkipsWhatIsBuilt builds the small tools component into a fresh cache, then again:
// the second build must skip it (binaries untouched) and a stamp from another recipe must make
// it build again.
func TestBuildSkipsWhatIsBuilt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go programs")
	}
	c := Open(t.TempDir(), Default)
	var lines []string
	o := BuildOptions{Only: []string{"tools"}, Progress: func(s string) { lines = append(lines, s) }}
	if err := c.Check("tools"); err == nil || !strings.Contains(err.Error(), "vpcnet lab k8s build") {
		t.Fatalf("Check on an empty cache = %v, want an error naming the build command", err)
	}
	if err := c.Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if err := c.Check("tools"); err != nil {
		t.Fatal(err)
	}
	mtimes := map[string]int64{}
	for _, b := range ToolBinaries {
		fi, err := os.Stat(c.Bin(b))
		if err != nil || fi.Mode()&0o111 == 0 {
			t.Fatalf("%s: %v (mode %v)", b, err, fi)
		}
		mtimes[b] = fi.ModTime().UnixNano()
	}
	lines = nil
	if err := c.Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "up to date") {
		t.Fatalf("second build said %q, want one 'up to date' line", lines)
	}
	for _, b := range ToolBinaries {
		fi, _ := os.Stat(c.Bin(b))
		if fi.ModTime().UnixNano() != mtimes[b] {
			t.Errorf("%s was rebuilt although up to date", b)
		}
	}
	if err := os.WriteFile(c.stamp("tools"), []byte("tools local\nan older recipe\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Check("tools"); err == nil {
		t.Fatal("Check accepted a stamp of another recipe")
	}
	lines = nil
	if err := c.Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || !strings.Contains(lines[0], "building") || !strings.Contains(lines[1], "built in") {
		t.Fatalf("build after a stale stamp said %q, want building + built", lines)
	}
}

// TestBuildSaysWhenTheProxyIsUnreachable points GOPROXY at a closed loopback port with an
// empty module cache: the error must be one line that wraps ErrProxy and names GOPROXY.
func TestBuildSaysWhenTheProxyIsUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	t.Setenv("GOPROXY", "http://127.0.0.1:1")
	t.Setenv("GOSUMDB", "off")
	t.Setenv("GOMODCACHE", t.TempDir())
	t.Setenv("GOFLAGS", "-modcacherw")
	c := Open(t.TempDir(), Default)
	err := c.Build(context.Background(), BuildOptions{Only: []string{"etcd"}})
	if !errors.Is(err, ErrProxy) {
		t.Fatalf("err = %v, want ErrProxy", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "GOPROXY=http://127.0.0.1:1") || !strings.Contains(msg, "etcd v3.7.3") {
		t.Fatalf("error %q: want one line naming the component and GOPROXY", msg)
	}
	if _, err := os.Stat(c.stamp("etcd")); err == nil {
		t.Fatal("a failed build left a stamp")
	}
}

func TestSelectAndRecipes(t *testing.T) {
	if _, err := Select(Default, []string{"kubelet"}); err == nil || !strings.Contains(err.Error(), "kubernetes") {
		t.Fatalf("Select(kubelet) = %v, want an error listing the components", err)
	}
	cs, err := Select(Default, []string{"kubernetes", "tools"})
	if err != nil || len(cs) != 2 || cs[0].Name != "tools" || cs[1].Name != "kubernetes" {
		t.Fatalf("Select = %v, %v: want tools then kubernetes (build order)", cs, err)
	}
	k := cs[1]
	gomod := k.Module["go.mod"]
	for _, want := range []string{"require k8s.io/kubernetes v1.37.2", "k8s.io/client-go => k8s.io/client-go v0.37.2", "k8s.io/streaming => k8s.io/streaming v0.37.2"} {
		if !strings.Contains(gomod, want) {
			t.Errorf("kubernetes wrapper go.mod lacks %q", want)
		}
	}
	if !strings.Contains(strings.Join(k.Flags, " "), "k8s.io/component-base/version.gitVersion=v1.37.2") {
		t.Errorf("kubernetes flags %q do not stamp the version", k.Flags)
	}
	other := Default
	other.Kubernetes = "v1.37.3"
	ko, _ := Select(other, []string{"kubernetes"})
	if ko[0].recipe() == k.recipe() {
		t.Error("another Kubernetes version has the same recipe: the cache would not rebuild")
	}
	if Open("/x", other).Dir == Open("/x", Default).Dir {
		t.Error("two version sets share a cache directory")
	}
	if got := Open("/x", Default).Dir; got != filepath.Join("/x", "k8s-1.37.2-containerd-2.4.2-runc-1.5.3-etcd-3.7.3") {
		t.Errorf("Dir = %s", got)
	}
}

// TestBuildOfWhatIsBuiltTakesNoLock: while another process holds the cache's build lock
// (building some other component), a build of components that are all up to date returns at
// once instead of waiting (a lab start hung 10 min behind a conformance build).
func TestBuildOfWhatIsBuiltTakesNoLock(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go programs")
	}
	c := Open(t.TempDir(), Default)
	o := BuildOptions{Only: []string{"tools"}}
	if err := c.Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	unlock, err := c.lock(context.Background(), func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Build(ctx, o); err != nil {
		t.Fatalf("build of an up-to-date component waited for the lock: %v", err)
	}
	// A component that is not built does wait (and gives up with the context).
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if err := c.Build(short, BuildOptions{Only: []string{"runc"}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("build of a missing component with the lock held = %v, want it to wait until the deadline", err)
	}
}
