// Package clusterdemo is `vpcnet lab demo`: the seed's EKS + VPC CNI walk-through run with
// kubectl on a real lab cluster (internal/lab/k8s) and verified step by step. Each step prints
// the kubectl commands it runs with their (trimmed) output, then what it checked; the run ends
// with the seed's process table as observed, and fails if any step was not verified.
//
// The order is the seed's: the VPC and its subnets; the cluster and 2 nodes, which register
// NotReady because no CNI is installed yet; `kubectl apply` of vpcnet's manifest (deploy/ with
// the lab's overlay, the path of `lab up --agent daemonset`), after which the agent runs on
// every node and the nodes turn Ready; a Deployment whose pods get VPC subnet addresses; pod to
// pod traffic across nodes with no tunnel device; `kubectl describe pod`; a node joining; and a
// full subnet leaving the next pods ContainerCreating with the reason in their events.
package clusterdemo

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s"
)

// Options says how to run the demo.
type Options struct {
	// Name is the lab's name (its namespaces, state directory and cgroups carry it).
	Name string
	// Keep leaves the cluster up at the end (then `vpcnet lab down --name NAME`).
	Keep bool
	// Out gets the walk-through: steps, kubectl commands and their output, the final table.
	Out io.Writer
	// Progress gets the lab's progress lines (component build, nodes starting); nil: none.
	Progress func(string)
}

// The demo's VPC: the seed's VPC and subnet, plus a /28 (11 usable addresses) to run dry.
var (
	VPC    = netip.MustParsePrefix("10.10.0.0/16")
	Main   = netip.MustParsePrefix("10.10.1.0/24")
	Small  = netip.MustParsePrefix("10.10.2.0/28")
	nodes0 = 2
)

// Row is one line of the final table: a step of the seed's process table as observed.
type Row struct {
	Step, Action, Observed string
	OK                     bool
	Took                   time.Duration
}

// Run runs the walk-through, tears the cluster down (unless Keep) and prints the table. ok
// is true only if every step was verified.
func Run(ctx context.Context, o Options) (ok bool) {
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
	d := &demo{ctx: ctx, o: o, w: o.Out}
	// A lab of that name that is up is someone's: the demo neither uses nor tears it down.
	if pid := lab.ControllerAlive(o.Name); pid != 0 {
		d.rows = append(d.rows, Row{Step: "1", Action: "Create VPC with subnets",
			Observed: fmt.Sprintf("FAILED: lab %s is already up (controller pid %d): pick another --name, or `vpcnet lab down --name %s` first", o.Name, pid, o.Name)})
		writeTable(d.w, d.rows)
		return false
	}
	d.run()
	if !o.Keep {
		d.step("8", "Exit: tear the cluster down", d.teardown)
	} else {
		fmt.Fprintf(d.w, "\nThe cluster stays up: `vpcnet lab kubectl --name %s -- get pods -A -o wide`; `vpcnet lab down --name %s` removes it.\n", o.Name, o.Name)
	}
	writeTable(d.w, d.rows)
	for _, r := range d.rows {
		if !r.OK {
			return false
		}
	}
	return true
}

type demo struct {
	ctx    context.Context
	o      Options
	w      io.Writer
	c      *lab.Client
	rows   []Row
	failed bool
	// what the steps found, for the later ones
	nodes []lab.NodeInfo
	web   []pod
}

// critical steps build what every later step needs: after one fails, only the teardown runs.
var critical = map[string]bool{"1": true, "2": true, "3": true, "4": true, "7": true}

// step runs one verified step unless a critical one failed before, and records its row.
func (d *demo) step(num, action string, f func() (string, error)) {
	if d.failed && num != "8" {
		d.rows = append(d.rows, Row{Step: num, Action: action, Observed: "not run: an earlier step it needs failed"})
		return
	}
	fmt.Fprintf(d.w, "\n== Step %s: %s\n", num, action)
	start := time.Now()
	obs, err := f()
	took := time.Since(start)
	if err != nil {
		d.failed = d.failed || critical[num]
		if obs != "" {
			obs += "; "
		}
		obs += "FAILED: " + err.Error()
		fmt.Fprintf(d.w, "   NOT VERIFIED (%s): %s\n", took.Round(100*time.Millisecond), obs)
	} else {
		fmt.Fprintf(d.w, "   verified (%s): %s\n", took.Round(100*time.Millisecond), obs)
	}
	d.rows = append(d.rows, Row{Step: num, Action: action, Observed: obs, OK: err == nil, Took: took})
}

func (d *demo) run() {
	d.step("1", "Create VPC with subnets", d.createVPC)
	d.step("2", "Create cluster with nodes", d.createCluster)
	d.step("3", "Install the VPC CNI: DaemonSet vpcnet-node (kubectl apply)", d.installCNI)
	d.step("4", "Pods start with VPC IP addresses", d.podsStart)
	d.step("5", "Pods communicate over VPC routing, no tunnel", d.podToPod)
	d.step("6", "Check pod IP assignment (kubectl describe pod)", d.describePod)
	d.step("7", "Cluster scales nodes: pods on the new node get VPC IPs", d.scale)
	d.step("7b", "A full subnet stops new pods", d.exhaust)
}

func writeTable(w io.Writer, rows []Row) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tACTION\tVERIFIED\tTOOK\tOBSERVED")
	failed := 0
	for _, r := range rows {
		mark := "yes"
		if !r.OK {
			mark = "NO"
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Step, r.Action, mark, r.Took.Round(100*time.Millisecond), r.Observed)
	}
	tw.Flush()
	if failed == 0 {
		fmt.Fprintf(w, "\nAll %d steps verified: every pod has a VPC subnet address and talks over plain VPC routing.\n", len(rows))
	} else {
		fmt.Fprintf(w, "\n%d of %d steps NOT verified.\n", failed, len(rows))
	}
}

// kubectl runs the lab's kubectl, prints the command and its output (at most maxLines lines,
// indented), and returns the output.
func (d *demo) kubectl(maxLines int, args ...string) (string, error) {
	out, err := d.kubectlQuiet(args...)
	fmt.Fprintf(d.w, "   $ kubectl %s\n", strings.Join(args, " "))
	fmt.Fprint(d.w, indent(trim(out, maxLines)))
	return out, err
}

// kubectlQuiet runs the lab's kubectl and returns its output; a failure carries the output.
func (d *demo) kubectlQuiet(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(d.ctx, 2*time.Minute)
	defer cancel()
	out, err := k8s.Kubectl(ctx, d.o.Name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// say prints a line of narration: what the demo does that is not a kubectl command.
func (d *demo) say(format string, a ...any) {
	fmt.Fprintf(d.w, "   # "+format+"\n", a...)
}

func trim(s string, maxLines int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if maxLines > 0 && len(lines) > maxLines {
		n := len(lines) - maxLines
		lines = append(lines[:maxLines], fmt.Sprintf("... (%d more lines)", n))
	}
	return strings.Join(lines, "\n") + "\n"
}

func indent(s string) string {
	if strings.TrimSpace(s) == "" {
		return ""
	}
	return "     " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n     ") + "\n"
}

// waitFor polls cond every 500 ms until it holds or limit passes; the error carries the last
// thing cond said.
func (d *demo) waitFor(what string, limit time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(limit)
	last := ""
	for {
		ok, s := cond()
		if ok {
			return nil
		}
		last = s
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %s: %s", what, limit, last)
		}
		select {
		case <-d.ctx.Done():
			return d.ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (d *demo) status() (lab.Status, error) {
	ctx, cancel := context.WithTimeout(d.ctx, 20*time.Second)
	defer cancel()
	return d.c.Status(ctx)
}

func short(node string) string { return strings.TrimSuffix(node, ".ec2.internal") }
