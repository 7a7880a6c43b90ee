package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/vpcnet/vpcnet/internal/lab"
)

// Every command group of the tree (a command with subcommands) refuses an argument that names
// none of its subcommands with one line on stderr, nothing on stdout, and exit 2; run bare it
// still prints its help with exit 0.
func TestEveryGroupRefusesUnknownSubcommand(t *testing.T) {
	var groups [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.HasSubCommands() {
			groups = append(groups, path)
		}
		for _, sub := range c.Commands() {
			if sub.Name() == "help" {
				continue
			}
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(newRoot(), nil)
	if len(groups) < 6 {
		t.Fatalf("found only %d command groups: %v", len(groups), groups)
	}
	for _, g := range groups {
		name := "vpcnet"
		if len(g) > 0 {
			name += " " + strings.Join(g, " ")
		}
		out, errOut, code := vpcnet(t, nil, append(append([]string(nil), g...), "bogus")...)
		if code != 2 || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 ||
			!strings.Contains(errOut, `unknown command "bogus" for "`+name+`"`) {
			t.Errorf("%s bogus: exit %d, stdout %q, stderr %q; want exit 2, one line naming the unknown command", name, code, out, errOut)
		}
	}
	// A suggestion for a near miss, and a group with no argument still helps.
	if _, errOut, code := vpcnet(t, nil, "lab", "describe", "nod", "x"); code != 2 || !strings.Contains(errOut, "did you mean node?") {
		t.Errorf("lab describe nod x: exit %d, %q; want exit 2 with the suggestion node", code, errOut)
	}
	if out, _, code := vpcnet(t, nil, "lab", "node"); code != 0 || !strings.Contains(out, "Available Commands:") {
		t.Errorf("lab node: exit %d, %q; want its help with exit 0", code, out)
	}
	// `vpcnet help TOPIC` helps with a command and refuses a topic that names none.
	for _, topic := range [][]string{{"bogus"}, {"lab", "bogus"}, {"lab", "up", "extra"}} {
		out, errOut, code := vpcnet(t, nil, append([]string{"help"}, topic...)...)
		if code != 2 || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "no help topic") {
			t.Errorf("help %v: exit %d, stdout %q, stderr %q; want exit 2 and one line", topic, code, out, errOut)
		}
	}
	if _, errOut, _ := vpcnet(t, nil, "help", "lab", "stauts"); !strings.Contains(errOut, "did you mean status?") {
		t.Errorf("help lab stauts: %q; want the suggestion status", errOut)
	}
	if _, errOut, _ := vpcnet(t, nil, "help", "bogus"); !strings.Contains(errOut, "its commands: ") || !strings.Contains(errOut, "lab") {
		t.Errorf("help bogus: %q; want the root's commands listed", errOut)
	}
	if out, _, code := vpcnet(t, nil, "help", "lab", "up"); code != 0 || !strings.Contains(out, "vpcnet lab up") {
		t.Errorf("help lab up: exit %d, %q; want lab up's help with exit 0", code, out)
	}
}

// `lab down` of a lab that does not exist fails with one line naming the labs that do; down of a
// partly made lab (a state directory and nothing else) works, and a second down then fails.
func TestLabDownOfMissingLabFails(t *testing.T) {
	root := t.TempDir()
	name := fmt.Sprintf("hyg%d", os.Getpid())
	other := fmt.Sprintf("other%d", os.Getpid())
	if err := os.MkdirAll(filepath.Join(root, other), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{lab.EnvRoot + "=" + root}
	out, errOut, code := vpcnet(t, env, "lab", "down", "--name", name)
	if code != 1 || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 ||
		!strings.Contains(errOut, "no lab named "+name+" (labs on this machine: ") || !strings.Contains(errOut, other) {
		t.Errorf("down of a lab that never existed: exit %d, stdout %q, stderr %q; want exit 1 and one line naming %s", code, out, errOut, other)
	}
	// A partly made lab: only its state directory.
	if err := os.MkdirAll(filepath.Join(root, name, "nodes"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = vpcnet(t, env, "lab", "down", "--name", name)
	if code != 0 || !strings.Contains(out, "lab "+name+" is down") {
		t.Fatalf("down of a partly made lab: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(root, name)); !os.IsNotExist(err) {
		t.Errorf("down left the state directory: %v", err)
	}
	if _, errOut, code = vpcnet(t, env, "lab", "down", "--name", name); code != 1 || !strings.Contains(errOut, "no lab named "+name) {
		t.Errorf("second down: exit %d, stderr %q; want exit 1, no lab named %s", code, errOut, name)
	}
}

// pflag takes the first `quoted` word of a flag's usage as the name of its argument, so a
// backtick in a usage is only right around one upper-case placeholder (`FILE`, `ACTION=RATE/BURST,...`); anything else
// garbles the help (`--keep vpcnet lab down   leave the lab up...`). Checks every flag of the tree.
func TestNoFlagUsageHasStrayBackticks(t *testing.T) {
	placeholder := regexp.MustCompile(`^[A-Z][A-Z0-9_=,./]*$`)
	n := 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		check := func(f *pflag.Flag) {
			n++
			if !strings.Contains(f.Usage, "`") {
				return
			}
			name, rest := pflag.UnquoteUsage(f)
			if !placeholder.MatchString(name) || strings.Contains(rest, "`") {
				t.Errorf("%s --%s: usage %q makes the argument name %q; quote with ' instead, or quote only an upper-case placeholder", c.CommandPath(), f.Name, f.Usage, name)
			}
		}
		c.LocalFlags().VisitAll(check)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot())
	if n < 30 {
		t.Fatalf("checked only %d flags", n)
	}
	out, _, code := vpcnet(t, nil, "lab", "demo", "--help")
	if code != 0 || !strings.Contains(out, "--keep ") || strings.Contains(out, "--keep vpcnet") {
		t.Errorf("lab demo --help: exit %d, the --keep line is garbled:\n%s", code, out)
	}
}

// The demo's help and docs/lab.md say what the walk-through and its table are, without the
// project's own jargon ("the seed's walk-through / process table"), and do not claim that the
// table's IDs vary (vpcsim's IDs are the same on every run).
func TestDemoWordingHasNoJargon(t *testing.T) {
	out, _, code := vpcnet(t, nil, "lab", "demo", "--help")
	if code != 0 || strings.Contains(out, "seed's") || !strings.Contains(out, "EKS + VPC CNI walk-through") || !strings.Contains(out, "a table of the steps") {
		t.Errorf("lab demo --help: exit %d, jargon or no description of the table:\n%s", code, out)
	}
	doc, err := os.ReadFile("../../docs/lab.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"seed's", "IDs and times vary"} {
		if strings.Contains(string(doc), bad) {
			t.Errorf("docs/lab.md still says %q", bad)
		}
	}
}

// Help says what the commands do, and bad input is refused before anything runs (exit 2, one line).
func TestHelpMatchesBehaviour(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		want, not string
	}{
		{[]string{"lab", "pod", "run", "--help"}, "creates a Pod through the API", ""},
		{[]string{"lab", "pod", "run", "--help"}, "network namespace and wires it", ""},
		{[]string{"lab", "pod", "rm", "--help"}, "delete the Pod, kubelet runs CNI DEL", ""},
		{[]string{"lab", "bench", "--help"}, "prefix of the labs' names", `(default "default")`},
	} {
		out, _, code := vpcnet(t, nil, tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) || tc.not != "" && strings.Contains(out, tc.not) {
			t.Errorf("%v: exit %d; want %q in it, not %q:\n%s", tc.args, code, tc.want, tc.not, out)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lab", "bench", "--real-speed", "--scenario", "setup"}, "--real-speed applies only to the churn scenario"},
		{[]string{"lab", "bench", "--name", "BAD"}, `--name "BAD": a prefix of 1-18 lowercase letters`},
		{[]string{"lab", "bench", "--scenario="}, "--scenario is empty"},
		{[]string{"lab", "describe", "node"}, "describe node wants one NODE: a node's name, index or instance ID"},
	} {
		out, errOut, code := vpcnet(t, nil, tc.args...)
		if code != 2 || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", tc.args, code, out, errOut, tc.want)
		}
	}
}
