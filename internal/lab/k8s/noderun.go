package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// NodeSpec is what a node's runtime process (RunNode) needs, written by the CLI as node.json
// in the node's k8s directory.
type NodeSpec struct {
	Name string `json:"name"` // the Kubernetes node name, ip-...ec2.internal
	// Binds give the node its own host paths: each Source (a directory of the lab) is bind
	// mounted on Target (/etc/cni/net.d, /run/containerd, ...) in the node's mount namespace.
	Binds []Bind `json:"binds"`
	// Cgroup is the node's cgroup (relative to each hierarchy's root): the runtime's processes
	// run in <Cgroup>/runtime, kubelet's pods under <Cgroup>/kubepods.
	Cgroup string `json:"cgroup"`
	// Containerd, Kubelet: how to run them; Images are tarballs imported with Ctr once
	// containerd answers.
	Containerd Proc     `json:"containerd"`
	Kubelet    Proc     `json:"kubelet"`
	Ctr        string   `json:"ctr"`
	Socket     string   `json:"socket"` // containerd's socket (inside the mount namespace)
	Images     []string `json:"images"`
}

// Bind is one bind mount of a node's mount namespace.
type Bind struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// Proc is a program with its arguments, environment and log file.
type Proc struct {
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Log  string   `json:"log"`
}

// RunNode is the node's runtime process (`vpcnet lab k8s node-run`), started by the CLI in
// the node's network namespace and in a new mount namespace of its own. It makes the node's
// host paths its own (bind mounts, propagation slave so nothing leaks back to the machine),
// moves itself into the node's cgroup, starts containerd, imports the lab's images, starts
// kubelet, and keeps both running (restarted a second after they exit) until SIGTERM, when it
// stops kubelet, then containerd. Every process of the node (shims and pods included) ends up
// in the node's cgroups, which is how `lab down` finds them.
func RunNode(specPath string) error {
	b, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	var spec NodeSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("%s: %w", specPath, err)
	}
	if err := setupMounts(spec.Binds); err != nil {
		return fmt.Errorf("node %s: mounts: %w", spec.Name, err)
	}
	if err := enterCgroup(spec.Cgroup, os.Getpid()); err != nil {
		return fmt.Errorf("node %s: cgroup: %w", spec.Name, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctrd := &supervised{name: "containerd", p: spec.Containerd}
	if err := ctrd.start(); err != nil {
		return err
	}
	go ctrd.keep(ctx)
	if err := waitSocket(ctx, spec.Socket, 60*time.Second); err != nil {
		ctrd.stop(10 * time.Second)
		return fmt.Errorf("node %s: containerd: %w (see %s)", spec.Name, err, spec.Containerd.Log)
	}
	for _, img := range spec.Images {
		out, err := exec.Command(spec.Ctr, "--address", spec.Socket, "-n", "k8s.io", "images", "import", "--local", img).CombinedOutput()
		if err != nil {
			ctrd.stop(10 * time.Second)
			return fmt.Errorf("node %s: import %s: %v: %s", spec.Name, img, err, strings.TrimSpace(string(out)))
		}
	}
	kubelet := &supervised{name: "kubelet", p: spec.Kubelet}
	if err := kubelet.start(); err != nil {
		ctrd.stop(10 * time.Second)
		return err
	}
	go kubelet.keep(ctx)
	fmt.Fprintf(os.Stderr, "node %s: containerd pid %d, kubelet pid %d\n", spec.Name, ctrd.pid(), kubelet.pid())
	<-ctx.Done()
	kubelet.stop(15 * time.Second)
	ctrd.stop(15 * time.Second)
	return nil
}

// setupMounts makes the whole tree a slave of the machine's (mounts made here stay here,
// namespaces removed outside still go away inside) and binds each source on its target. A
// target that would hide a bind source (the lab's own directory under /run/vpcnet, say) is
// handled by opening every source before the first mount and binding from the open file.
func setupMounts(binds []Bind) error {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make / a slave mount: %w", err)
	}
	fds := make([]int, len(binds))
	for i, b := range binds {
		if err := os.MkdirAll(b.Source, 0o755); err != nil {
			return err
		}
		fd, err := unix.Open(b.Source, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", b.Source, err)
		}
		defer syscall.Close(fd)
		fds[i] = fd
	}
	for i, b := range binds {
		if err := os.MkdirAll(b.Target, 0o755); err != nil {
			return err
		}
		src := fmt.Sprintf("/proc/self/fd/%d", fds[i])
		if err := syscall.Mount(src, b.Target, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", b.Source, b.Target, err)
		}
	}
	return nil
}

// waitSocket waits until a unix socket accepts connections.
func waitSocket(ctx context.Context, path string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not answer after %s", path, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// supervised keeps one program running, as systemd would on a real node.
type supervised struct {
	name     string
	p        Proc
	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	stopping bool
}

func (s *supervised) start() error {
	logf, err := os.OpenFile(s.p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.p.Args[0], s.p.Args[1:]...)
	cmd.Env = s.p.Env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

func (s *supervised) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

// keep restarts the program a second after it exits, until stop.
func (s *supervised) keep(ctx context.Context) {
	for {
		s.mu.Lock()
		done := s.done
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-done:
		}
		s.mu.Lock()
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			return
		}
		fmt.Fprintf(os.Stderr, "%s exited; restarting in 1s\n", s.name)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if err := s.start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return
		}
	}
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (s *supervised) stop(grace time.Duration) {
	s.mu.Lock()
	s.stopping = true
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// errNoCgroupFS says the machine has no cgroup hierarchy mounted where expected.
var errNoCgroupFS = errors.New("no cgroup hierarchy under /sys/fs/cgroup")
