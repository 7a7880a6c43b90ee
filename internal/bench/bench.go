package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/netnsx"
)

// Options say what to run.
type Options struct {
	// Name is the base of the labs' names (each lab adds a suffix); it must leave room for
	// two more characters. "" picks bench<pid>.
	Name      string
	Scenarios []string // nil: all, in the order of Scenarios()
	Short     bool     // a small version of each scenario, for CI
	// RealSpeed plays churn's trace ten times slower, as a cluster lives, with the agents'
	// default timers, for the settings with upstream real-speed figures (instead of churn's rows).
	RealSpeed bool
	// Controller runs a lab's controller; nil: this executable (`vpcnet lab controller`).
	Controller func(name string) *exec.Cmd
	Progress   func(string)
	Command    string // the command line, for the report
}

// scenario is one benchmark: it adds rows and notes to the report.
type scenario struct {
	name    string
	run     func(ctx context.Context, r *runner) error
	mainLab bool // runs on the shared main lab
	// optIn scenarios run only when named (--scenario): k8s needs the Kubernetes build cache
	// (`vpcnet lab k8s build`, about 15 min the first time) and a cluster.
	optIn bool
}

// scenarios in the order they run.
var scenarios = []scenario{
	{"setup", runSetup, true, false},
	{"burst", runBurst, true, false},
	{"dataplane", runDataplane, true, false},
	{"footprint", runFootprint, true, false},
	{"scale-out", runScaleOut, false, false},
	{"churn", runChurn, false, false},
	{"rest", runRest, false, false},
	{"k8s", runK8s, false, true},
}

// Scenarios names every scenario, in the order they run.
func Scenarios() []string {
	out := make([]string, len(scenarios))
	for i, s := range scenarios {
		out[i] = s.name
	}
	return out
}

// DefaultScenarios names the scenarios a run without a selection runs (all but the opt-in
// ones), in order.
func DefaultScenarios() []string {
	var out []string
	for _, s := range scenarios {
		if !s.optIn {
			out = append(out, s.name)
		}
	}
	return out
}

// runner is one bench run: its labs, rows and cleanups.
type runner struct {
	opts     Options
	name     string
	rows     []Row
	notes    []string
	cleanups []func() error
	agentBin string
	cniBin   string
	main     *benchLab // the lab setup, burst, dataplane and footprint share
}

func (r *runner) progress(s string) {
	if r.opts.Progress != nil {
		r.opts.Progress(s)
	}
}

func (r *runner) add(rows ...Row)              { r.rows = append(r.rows, rows...) }
func (r *runner) note(format string, a ...any) { r.notes = append(r.notes, fmt.Sprintf(format, a...)) }

// Run runs the chosen scenarios and returns the report. Every lab and namespace it made is
// gone when it returns, also when it fails or ctx ends. A scenario that fails ends the run.
func Run(ctx context.Context, opts Options) (rep Report, err error) {
	start := time.Now()
	if err := checkScenarios(opts.Scenarios); err != nil {
		return rep, err
	}
	if len(opts.Scenarios) == 0 {
		opts.Scenarios = DefaultScenarios()
	}
	name := opts.Name
	if name == "" {
		name = fmt.Sprintf("bench%d", os.Getpid())
	}
	if err := CheckNamePrefix(name); err != nil {
		return rep, fmt.Errorf("bench name %q: %w (it gets a two-character suffix per lab)", name, err)
	}
	if os.Geteuid() != 0 {
		return rep, errors.New("the bench builds labs in network namespaces: run it as root")
	}
	r := &runner{opts: opts, name: name}
	defer func() {
		for i := len(r.cleanups) - 1; i >= 0; i-- {
			if cerr := r.cleanups[i](); cerr != nil {
				err = errors.Join(err, fmt.Errorf("teardown: %w", cerr))
			}
		}
	}()
	if err := r.binaries(); err != nil {
		return rep, err
	}
	for _, s := range scenarios {
		if !slices.Contains(opts.Scenarios, s.name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		r.progress("scenario " + s.name)
		t := time.Now()
		if err := s.run(ctx, r); err != nil {
			return rep, fmt.Errorf("scenario %s: %w", s.name, err)
		}
		r.progress(fmt.Sprintf("scenario %s done in %s", s.name, time.Since(t).Round(100*time.Millisecond)))
		if r.main != nil && !r.mainNeededAfter(s.name) {
			if err := r.down(r.main); err != nil {
				return rep, err
			}
			r.main = nil
		}
	}
	rep = Report{Machine: ThisMachine(), Command: opts.Command, Short: opts.Short, Scenarios: opts.Scenarios,
		Rows: r.rows, Notes: r.notes}
	rep.Took = Seconds(time.Since(start))
	return rep, nil
}

// mainNeededAfter reports whether a chosen scenario after the named one uses the main lab.
func (r *runner) mainNeededAfter(name string) bool {
	after := false
	for _, s := range scenarios {
		if after && s.mainLab && slices.Contains(r.opts.Scenarios, s.name) {
			return true
		}
		after = after || s.name == name
	}
	return false
}

func checkScenarios(names []string) error {
	for _, n := range names {
		if !slices.Contains(Scenarios(), n) {
			return fmt.Errorf("unknown scenario %q: one of %s", n, strings.Join(Scenarios(), ", "))
		}
	}
	return nil
}

// binaries finds or builds vpcnetd and vpcnet-cni once for every lab of the run.
func (r *runner) binaries() error {
	dir, err := os.MkdirTemp("", "vpcnet-bench-bin")
	if err != nil {
		return err
	}
	r.cleanups = append(r.cleanups, func() error { return os.RemoveAll(dir) })
	r.agentBin, r.cniBin, err = lab.Binaries(dir, r.progress)
	return err
}

// mainLab is the lab of setup, burst, dataplane and footprint: two m5.4xlarge nodes (room for
// 234 pods each) in a /17 subnet with a warm pool of 110 addresses, brought up on first use
// and taken down at the end of the run.
func (r *runner) mainLab(ctx context.Context) (*benchLab, error) {
	if r.main != nil {
		return r.main, nil
	}
	l, err := r.up(ctx, labSpec{suffix: "m", instanceType: "m5.4xlarge", nodes: 2, subnet: mustPrefix("10.10.0.0/17"),
		agent: map[string]string{"WARM_IP_TARGET": "110", "MINIMUM_IP_TARGET": "110"}})
	if err != nil {
		return nil, err
	}
	r.main = l
	return l, nil
}

// ThisMachine describes the machine from /proc and uname.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), CPU: "unknown", Kernel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// LabSuffixes are what the bench appends to its name for each lab it may build: the main lab,
// the scale-out lab, the churn labs (one per setting and trace) and the Kubernetes lab.
var LabSuffixes = []string{"m", "s", "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "k"}

// Leftovers lists the namespaces and state directories of the named bench's labs that still exist.
func Leftovers(name string) ([]string, error) {
	var out []string
	for _, sfx := range LabSuffixes {
		ns, err := netnsx.List(lab.NSPrefix(name + sfx))
		if err != nil {
			return nil, err
		}
		out = append(out, ns...)
		if _, err := os.Stat(lab.PathsFor(name + sfx).Dir); err == nil {
			out = append(out, lab.PathsFor(name+sfx).Dir)
		}
	}
	return out, nil
}

// CheckNamePrefix checks a bench name: each lab the bench builds is the name plus a
// two-character suffix, which must be a valid lab name (lab.ValidateName).
func CheckNamePrefix(prefix string) error { return lab.ValidateName(prefix + "xx") }
