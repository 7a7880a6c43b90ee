package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/netnsx"
)

// UpOptions says how to bring a lab up.
type UpOptions struct {
	Config Config
	Nodes  int
	// Controller is the command that runs the controller (`vpcnet lab controller --name N`);
	// nil: this executable.
	Controller func(name string) *exec.Cmd
	Progress   func(string)
}

// ControllerCommand runs this executable's hidden `lab controller` subcommand.
func ControllerCommand(name string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	return exec.Command(exe, "lab", "controller", "--name", name)
}

// Up builds a lab: state directory, binaries, router namespace, the controller inside it,
// then the nodes. A lab left behind by a crash is swept first; a running one is an error.
// Before it creates anything it runs `vpcnetd --check-settings` with each node's environment:
// a setting vpcnetd would refuse gives a *SettingsError (vpcnetd's one line) and no lab.
func Up(ctx context.Context, o UpOptions) (*Client, error) {
	cfg := o.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	progress := o.Progress
	if progress == nil {
		progress = func(string) {}
	}
	if pid := ControllerAlive(cfg.Name); pid != 0 {
		return nil, fmt.Errorf("lab %s is already up (controller pid %d): `vpcnet lab down --name %s` first, or pick another --name", cfg.Name, pid, cfg.Name)
	}
	if err := runtimeDown(ctx, cfg.Name, func(s string) { progress("cleaning up an old lab: " + s) }); err != nil {
		return nil, fmt.Errorf("clean up the old lab %s: %w", cfg.Name, err)
	}
	if err := Sweep(cfg.Name, func(s string) { progress("cleaning up an old lab: " + s) }); err != nil {
		return nil, fmt.Errorf("clean up the old lab %s: %w", cfg.Name, err)
	}
	p := PathsFor(cfg.Name)
	if cfg.AgentBin == "" || cfg.CNIBin == "" {
		var err error
		if cfg.AgentBin, cfg.CNIBin, err = Binaries(p.Bin(), progress); err != nil {
			return nil, err
		}
	}
	// The agents' settings are checked before anything is made; only binaries built into the
	// lab's directory just now are there, and they go with it.
	for i := range max(o.Nodes, 1) {
		if err := CheckAgentSettings(ctx, cfg.AgentBin, AgentEnv(cfg, p.Node(i+1))); err != nil {
			_ = os.RemoveAll(p.Dir)
			return nil, err
		}
	}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := WriteConfig(p, cfg); err != nil {
		return nil, err
	}
	progress(fmt.Sprintf("starting lab %s: VPC %s, subnets %v, state in %s", cfg.Name, cfg.VPCCIDR, cfg.Subnets, p.Dir))
	h, err := netnsx.Create(RouterNS(cfg.Name))
	if err != nil {
		return nil, err
	}
	h.Close()
	mk := o.Controller
	if mk == nil {
		mk = ControllerCommand
	}
	cmd := mk(cfg.Name)
	logf, err := os.OpenFile(p.ControllerLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	err = StartIn(RouterNS(cfg.Name), cmd)
	logf.Close()
	if err != nil {
		return nil, fmt.Errorf("start the lab controller: %w", err)
	}
	pid := cmd.Process.Pid
	_ = WritePID(p.ControllerPID(), pid)
	go func() { _ = cmd.Wait() }() // reap it should it die while we wait
	c, err := WaitUp(ctx, cfg.Name, pid, 60*time.Second)
	if err != nil {
		return nil, err
	}
	progress(fmt.Sprintf("controller up (pid %d): vpcsim, fabric in %s, IMDS and EC2 API for the nodes", pid, RouterNS(cfg.Name)))
	if rt, _ := runtimeOf(cfg); rt != nil {
		if err := rt.Start(ctx, c, cfg, progress); err != nil {
			return c, fmt.Errorf("%s control plane: %w", cfg.Runtime, err)
		}
	}
	for i := range o.Nodes {
		n, err := c.AddNode(ctx, NodeRequest{}, progress)
		if err != nil {
			return c, fmt.Errorf("node %d of %d: %w", i+1, o.Nodes, err)
		}
		// Ready means the node's pod network works, not that the pool has filled: report the
		// pool once its first top-up landed (bounded), or what the agent says about it.
		n = c.SettledNode(ctx, n)
		progress(fmt.Sprintf("node %s ready: %d ENI(s), %s", n.Name, len(n.ENIs), PoolLine(n.Agent)))
	}
	return c, nil
}

// Down tears the named lab down: asks the controller to remove its nodes and pods, then
// sweeps whatever is left. It is safe on a lab that is not up.
func Down(ctx context.Context, name string, progress func(string)) error {
	if progress == nil {
		progress = func(string) {}
	}
	rtErr := runtimeDown(ctx, name, progress)
	if c, err := NewClient(name); err == nil {
		if pid := ControllerAlive(name); pid != 0 {
			progress("asking the controller to remove nodes and pods")
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.Shutdown(sctx)
			cancel()
			if err == nil {
				deadline := time.Now().Add(60 * time.Second)
				for Alive(pid) && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}
	}
	return errors.Join(rtErr, Sweep(name, progress))
}

// SettingsError is vpcnetd's one-line refusal of a setting, from `vpcnetd --check-settings`
// (exit code 2). `vpcnet lab up` prints it and exits 2, as vpcnetd would.
type SettingsError struct{ Line string }

func (e *SettingsError) Error() string { return e.Line }

// CheckAgentSettings runs `agent --check-settings` with env, which validates the settings
// exactly as a start would and touches nothing. Exit 0: nil. Exit 2: a *SettingsError with the
// line it printed. Anything else (the binary missing, a crash, no answer in 30 s): an error
// saying so.
func CheckAgentSettings(ctx context.Context, agent string, env []string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agent, "--check-settings")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	line := strings.TrimSpace(string(out))
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit) && exit.ExitCode() == 2 && line != "":
		return &SettingsError{Line: line}
	default:
		return fmt.Errorf("%s --check-settings: %v: %s", agent, err, line)
	}
}
