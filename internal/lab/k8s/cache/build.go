package cache

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrProxy is wrapped by a build error that comes from not reaching the Go module proxy.
var ErrProxy = errors.New("cannot reach the Go module proxy")

// build runs comp's go command and moves its binaries into bin/.
func (c *Cache) build(ctx context.Context, comp Component, log io.Writer) error {
	if _, err := exec.LookPath("go"); err != nil {
		return fmt.Errorf("build %s: the go command is not on PATH: install Go (https://go.dev/dl)", comp.Name)
	}
	dir := c.Dir
	if comp.Module != nil {
		dir = c.src(comp.Name)
		for name, content := range comp.Module {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				return err
			}
		}
	}
	out, err := os.MkdirTemp(filepath.Join(c.Dir, "bin"), ".build-"+comp.Name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(out)
	env := append(os.Environ(), "GOWORK=off", "GO111MODULE=on")
	env = append(env, comp.Env...)
	args := append([]string{comp.Verb}, comp.Flags...)
	switch comp.Verb {
	case "build":
		args = append(args, "-o", out+"/")
	case "test": // go test -c: a test binary, <package>.test
		args = append(args, "-c", "-o", out+"/")
	default:
		env = append(env, "GOBIN="+out)
	}
	args = append(args, comp.Packages...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = env
	var tail bytes.Buffer
	w := io.Writer(&tail)
	if log != nil {
		fmt.Fprintf(log, "== %s %s: go %s (in %s)\n", comp.Name, comp.Version, strings.Join(args, " "), dir)
		w = io.MultiWriter(&tail, log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return buildError(comp, tail.String(), err)
	}
	for _, b := range comp.Binaries {
		if err := os.Rename(filepath.Join(out, b), c.Bin(b)); err != nil {
			return fmt.Errorf("build %s: go %s made no %s: %w", comp.Name, args[0], b, err)
		}
	}
	return nil
}

// proxySigns are what the go command prints when it cannot reach GOPROXY.
var proxySigns = []string{"dial tcp", "no such host", "connection refused", "i/o timeout", "network is unreachable",
	"TLS handshake timeout", "proxyconnect", "module lookup disabled by GOPROXY=off", "server misbehaving",
	"connection reset by peer", "502 Bad Gateway", "503 Service Unavailable", "504 Gateway Timeout"}

// buildError turns a failed go command into one line: ErrProxy when the output says the module
// proxy could not be reached, else the command's last error lines.
func buildError(comp Component, output string, err error) error {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "go: downloading ") || strings.HasPrefix(l, "go: finding ") {
			continue
		}
		for _, s := range proxySigns {
			if strings.Contains(l, s) {
				proxy := os.Getenv("GOPROXY")
				if proxy == "" {
					proxy = goEnv("GOPROXY")
				}
				return fmt.Errorf("build %s %s: %w (GOPROXY=%s): %s", comp.Name, comp.Version, ErrProxy, proxy, l)
			}
		}
		lines = append(lines, l)
	}
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	if len(lines) == 0 {
		return fmt.Errorf("build %s %s: %v", comp.Name, comp.Version, err)
	}
	return fmt.Errorf("build %s %s: %v: %s", comp.Name, comp.Version, err, strings.Join(lines, "; "))
}

// goEnv asks the go command for one of its settings.
func goEnv(key string) string {
	b, err := exec.Command("go", "env", key).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
