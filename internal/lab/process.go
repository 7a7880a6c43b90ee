package lab

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vpcnet/vpcnet/internal/probe"
)

// StartIn starts cmd detached (its own session) inside the named network namespace: the
// calling thread enters the namespace, forks, and comes back; the child keeps the namespace.
func StartIn(nsName string, cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	return probe.In(nsName, cmd.Start)
}

// WritePID records a process id.
func WritePID(path string, pid int) error {
	return os.WriteFile(path, []byte(strconv.Itoa(pid)), 0o600)
}

// ReadPID returns the process id in path, 0 if there is none.
func ReadPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// procHas reports whether process pid is alive and its /proc file (cmdline or environ) holds
// every one of the NUL-separated words: a recorded pid is only trusted when the process there
// is still the one the lab started.
func procHas(pid int, file string, words ...string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + file)
	if err != nil {
		return false
	}
	fields := bytes.Split(b, []byte{0})
	for _, w := range words {
		found := false
		for _, f := range fields {
			if string(f) == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Alive reports whether pid is a running (not zombie) process.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

// Terminate sends SIGTERM, waits up to grace for the process to go, then sends SIGKILL.
func Terminate(pid int, grace time.Duration) error {
	if !Alive(pid) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !Alive(pid) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for range 100 {
		if !Alive(pid) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// isController reports whether pid runs the named lab's controller (`... lab controller --name NAME`).
func isController(pid int, name string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	return bytes.HasSuffix(b, []byte("\x00lab\x00controller\x00--name\x00"+name+"\x00"))
}

// TailFile returns the last n lines of the file at path, each indented by two spaces, or a
// line saying why it cannot be read. Errors that point at a log show its end with it.
func TailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "  (empty)"
	}
	return "  " + strings.Join(lines, "\n  ")
}
