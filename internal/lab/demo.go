package lab

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"text/tabwriter"
)

// DemoOptions says how to run the demo.
type DemoOptions struct {
	Name     string
	Keep     bool // leave the lab up
	Progress func(string)
}

// Row is one line of the demo's table: a step of the seed's process table as observed.
type Row struct {
	Step     string
	Action   string
	Observed string
	OK       bool
}

// The demo's lab: the seed's VPC and subnet, plus a /28 to run dry.
var (
	demoVPC   = netip.MustParsePrefix("10.10.0.0/16")
	demoMain  = netip.MustParsePrefix("10.10.1.0/24")
	demoSmall = netip.MustParsePrefix("10.10.2.0/28")
)

// Demo runs the seed's walk-through on a real lab, verifying every step, prints the table of
// observed values to w, and tears the lab down (unless Keep). ok is true only if every step
// was verified; err reports a failure to run at all.
func Demo(ctx context.Context, w io.Writer, o DemoOptions) (ok bool, err error) {
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
	d := &demo{ctx: ctx, name: o.Name, progress: o.Progress}
	cfg := DefaultConfig(o.Name)
	cfg.VPCCIDR, cfg.Subnets = demoVPC, []netip.Prefix{demoMain, demoSmall}
	// Freed addresses come back to the pool after a second, so the exhaustion step is quick.
	cfg.Agent = map[string]string{"IP_COOLDOWN_PERIOD": "1s"}
	d.run(UpOptions{Config: cfg, Progress: o.Progress})
	if !o.Keep {
		d.step("8", "Exit: tear the lab down", d.teardown)
	}
	writeTable(w, d.rows)
	for _, r := range d.rows {
		if !r.OK {
			return false, nil
		}
	}
	return true, nil
}

type demo struct {
	ctx      context.Context
	name     string
	progress func(string)
	c        *Client
	rows     []Row
	failed   bool
	nodes    []NodeInfo
	pods     map[string]PodInfo
}

// critical steps build what every later step needs; after one fails the rest are not run.
var critical = map[string]bool{"1": true, "2": true, "3": true, "4": true}

// step runs one verified step unless a critical one failed before, and records its row.
func (d *demo) step(num, action string, f func() (string, error)) {
	if d.failed && num != "8" {
		d.rows = append(d.rows, Row{Step: num, Action: action, Observed: "not run: an earlier step it needs failed"})
		return
	}
	d.progress(fmt.Sprintf("step %s: %s", num, action))
	obs, err := f()
	if err != nil {
		d.failed = d.failed || critical[num]
		if obs != "" {
			obs += "; "
		}
		obs += "FAILED: " + err.Error()
	}
	d.rows = append(d.rows, Row{Step: num, Action: action, Observed: obs, OK: err == nil})
}

func (d *demo) run(up UpOptions) {
	d.pods = map[string]PodInfo{}
	d.step("1", "Create VPC with subnets", func() (string, error) { return d.createVPC(up) })
	d.step("2", "Create cluster with nodes", d.nodesRegistered)
	d.step("3", "Install the CNI: vpcnetd on every node", d.agentsReady)
	d.step("3b", "Assign ENIs and IPs (warm pool)", d.enisAssigned)
	d.step("4", "Pods start with VPC IP addresses", d.podsStart)
	d.step("5", "Pods communicate over VPC routing", d.podToPod)
	d.step("5b", "Pods reach the internet only via the node's SNAT", d.internet)
	d.step("6", "Check pod IP assignment (pod ls)", d.podIPs)
	d.step("7", "Cluster scales nodes", d.scale)
	d.step("7b", "Subnet exhaustion blocks new pods", d.exhaust)
}

func writeTable(w io.Writer, rows []Row) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tACTION\tVERIFIED\tOBSERVED")
	for _, r := range rows {
		mark := "yes"
		if !r.OK {
			mark = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Step, r.Action, mark, r.Observed)
	}
	tw.Flush()
	failed := 0
	for _, r := range rows {
		if !r.OK {
			failed++
		}
	}
	if failed == 0 {
		fmt.Fprintf(w, "\nAll %d steps verified: every pod has a VPC address and talks over plain VPC routing.\n", len(rows))
	} else {
		fmt.Fprintf(w, "\n%d of %d steps NOT verified.\n", failed, len(rows))
	}
}
