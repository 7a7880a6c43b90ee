package main

import (
	"encoding/json"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/vpcnet/vpcnet/internal/catalog"
	"github.com/vpcnet/vpcnet/internal/plan"
	"github.com/vpcnet/vpcnet/internal/testenv"
)

var maxPodsLine = regexp.MustCompile(`^([a-z0-9][a-z0-9.-]*) ([0-9]+)$`)

// parseMaxPods checks that every line is `TYPE N`, sorted by type, and returns the map.
func parseMaxPods(t *testing.T, out string) map[string]int {
	t.Helper()
	got := map[string]int{}
	var names []string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		m := maxPodsLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %q is not `TYPE N`", line)
		}
		n, _ := strconv.Atoi(m[2])
		got[m[1]] = n
		names = append(names, m[1])
	}
	if !sort.StringsAreSorted(names) {
		t.Fatalf("types not sorted by name: %v", names)
	}
	return got
}

func TestPlanMaxPodsAllSharedCSV(t *testing.T) {
	csv := testenv.SharedData(t, "instance-types.csv")
	out, errOut, code := vpcnet(t, nil, "plan", "max-pods", "--all", "--instance-types", csv)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := parseMaxPods(t, out)
	c, err := catalog.Load(csv)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != c.Len() {
		t.Fatalf("%d lines for %d types", len(got), c.Len())
	}
	for name, want := range map[string]int{"t3.medium": 17, "m5.large": 29, "m5.24xlarge": 737, "t2.micro": 4} {
		if got[name] != want {
			t.Errorf("%s %d; want %d", name, got[name], want)
		}
	}
	// The same file through the environment variable gives the same answer.
	env, _, code := vpcnet(t, []string{catalog.EnvInstanceTypes + "=" + csv}, "plan", "max-pods", "--all")
	if code != 0 || env != out {
		t.Fatalf("with $%s: exit %d, same output %v", catalog.EnvInstanceTypes, code, env == out)
	}

	// Prefix mode over the CSV leaves out the non-Nitro types and says so.
	out, errOut, code = vpcnet(t, nil, "plan", "max-pods", "--all", "--prefix-delegation", "--instance-types", csv)
	pd := parseMaxPods(t, out)
	if code != 0 || pd["m5.large"] != 434 || !strings.Contains(errOut, "not Nitro-based") {
		t.Fatalf("prefix --all: exit %d, m5.large %d, stderr %q", code, pd["m5.large"], errOut)
	}
	if _, ok := pd["t2.micro"]; ok {
		t.Fatal("prefix --all lists t2.micro, a Xen type")
	}
	// --cap: every value at most 250, m5.24xlarge at 250 (96 vCPUs, learnt from the built-in set).
	out, errOut, _ = vpcnet(t, nil, "plan", "max-pods", "--all", "--cap", "--prefix-delegation", "--instance-types", csv)
	capped := parseMaxPods(t, out)
	for name, n := range capped {
		if n > 250 || (n > 110 && name != "m5.24xlarge" && name != "m5.16xlarge" && name != "m5.12xlarge" && name != "m5.8xlarge") {
			t.Fatalf("--cap left %s at %d", name, n)
		}
	}
	if capped["m5.24xlarge"] != 250 || capped["m5.large"] != 110 || !strings.Contains(errOut, "does not know their vCPUs") {
		t.Fatalf("--cap: m5.24xlarge %d, m5.large %d, stderr %q", capped["m5.24xlarge"], capped["m5.large"], errOut)
	}
}

func TestPlanMaxPods(t *testing.T) {
	tests := []struct {
		args []string
		want string // exact stdout
	}{
		{[]string{"m5.large"}, "m5.large 29\n"},
		{[]string{"t3.medium", "m5.large", "m5.24xlarge", "m5.large"}, "m5.24xlarge 737\nm5.large 29\nt3.medium 17\n"},
		{[]string{"--prefix-delegation", "m5.large"}, "m5.large 434\n"},
		{[]string{"--prefix-delegation", "--cap", "m5.large", "m5.24xlarge"}, "m5.24xlarge 250\nm5.large 110\n"},
		{[]string{"--custom-networking", "m5.large"}, "m5.large 20\n"},
		{[]string{"--custom-networking", "--prefix-delegation", "m5.large"}, "m5.large 290\n"},
		{[]string{"--cap", "m5.24xlarge", "t2.micro"}, "m5.24xlarge 250\nt2.micro 4\n"},
	}
	for _, tc := range tests {
		out, errOut, code := vpcnet(t, nil, append([]string{"plan", "max-pods"}, tc.args...)...)
		if code != 0 || out != tc.want {
			t.Errorf("max-pods %v: exit %d, out %q, err %q; want %q", tc.args, code, out, errOut, tc.want)
		}
	}
	// kubelet's maxPods = pod addresses + the node's host-network pods, counted as given.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--host-network-pods", "3", "t3.medium"}, "t3.medium 18\n"},
		{[]string{"--host-network-pods", "0", "t3.medium", "m5.large"}, "m5.large 27\nt3.medium 15\n"},
		{[]string{"--host-network-pods", "5", "--prefix-delegation", "m5.large"}, "m5.large 437\n"},
	} {
		out, errOut, code := vpcnet(t, nil, append([]string{"plan", "max-pods"}, tc.args...)...)
		if code != 0 || out != tc.want {
			t.Errorf("max-pods %v: exit %d, out %q, err %q; want %q", tc.args, code, out, errOut, tc.want)
		}
	}
	for _, bad := range []string{"-1", "1001", "x"} {
		_, errOut, code := vpcnet(t, nil, "plan", "max-pods", "--host-network-pods", bad, "m5.large")
		if code != 2 || !strings.Contains(errOut, "host-network-pods") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("--host-network-pods %s: exit %d, stderr %q", bad, code, errOut)
		}
	}
	// --cap names the types it capped, with their uncapped number (issue 12 item 10).
	_, errOut, code := vpcnet(t, nil, "plan", "max-pods", "--prefix-delegation", "--cap", "m5.large", "m5.24xlarge", "t3.nano")
	if code != 0 || !strings.Contains(errOut, "capped 2 types") || !strings.Contains(errOut, "m5.24xlarge (11762)") || !strings.Contains(errOut, "m5.large (434)") || strings.Contains(errOut, "t3.nano (") {
		t.Errorf("--cap: exit %d, stderr %q", code, errOut)
	}
	out, _, code := vpcnet(t, nil, "plan", "max-pods", "--all")
	if code != 0 || len(parseMaxPods(t, out)) != catalog.Builtin().Len() {
		t.Errorf("--all over the built-in set: exit %d\n%s", code, out)
	}
}

// TestPlanUsageErrors: bad input exits 2 with one line on stderr naming the flag or argument.
func TestPlanUsageErrors(t *testing.T) {
	base := []string{"plan", "cluster", "--vpc-cidr", "10.10.0.0/16", "--subnet", "10.10.1.0/24", "--instance-type", "m5.large", "--nodes", "3", "--pods-per-node", "20"}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	without := func(flag string) []string {
		var out []string
		for i := 0; i < len(base); i++ {
			if base[i] == flag {
				i++
				continue
			}
			out = append(out, base[i])
		}
		return out
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown type", []string{"plan", "max-pods", "m5.lrage"}, []string{`unknown instance type "m5.lrage"`, "closest known: m5.large"}},
		{"prefix on xen", []string{"plan", "max-pods", "--prefix-delegation", "t2.micro"}, []string{"--prefix-delegation", "t2.micro is not Nitro-based"}},
		{"no types", []string{"plan", "max-pods"}, []string{"or give --all"}},
		{"types and --all", []string{"plan", "max-pods", "--all", "m5.large"}, []string{"--all and instance types"}},
		{"missing catalog", []string{"plan", "max-pods", "--instance-types", "/nonexistent/types.csv", "m5.large"}, []string{"--instance-types", "/nonexistent/types.csv"}},
		{"bad VPC CIDR", with("--vpc-cidr", "10.10.0.0/33"), []string{"--vpc-cidr", "10.10.0.0/33"}},
		{"VPC not a network", with("--vpc-cidr", "10.10.0.1/16"), []string{"--vpc-cidr", "host bits"}},
		{"bad subnet CIDR", with("--subnet", "10.10.2.0"), []string{"--subnet", `"10.10.2.0"`}},
		{"subnet outside", with("--subnet", "10.20.0.0/24"), []string{"--subnet", "10.20.0.0/24 is outside the VPC 10.10.0.0/16"}},
		{"overlapping subnets", with("--subnet", "10.10.1.128/25"), []string{"--subnet", "10.10.1.128/25 overlaps 10.10.1.0/24"}},
		{"overlap, comma separated", with("--subnet", "10.10.2.0/24,10.10.2.0/23"), []string{"--subnet", "overlaps"}},
		{"subnet too small", with("--subnet", "10.10.2.0/29"), []string{"--subnet", "/16 to /28"}},
		{"subnet too large", append(without("--vpc-cidr"), "--vpc-cidr", "10.10.0.0/16", "--subnet", "10.10.0.0/15"), []string{"--subnet", "/16 to /28"}},
		{"zero nodes", with("--nodes", "0"), []string{"--nodes"}},
		{"nodes not a number", with("--nodes", "three"), []string{"--nodes"}},
		{"negative pods", with("--pods-per-node", "-1"), []string{"--pods-per-node"}},
		{"negative warm ENI", with("--warm-eni-target", "-1"), []string{"--warm-eni-target"}},
		{"negative warm IP", with("--warm-ip-target", "-1"), []string{"--warm-ip-target"}},
		{"negative minimum IP", with("--minimum-ip-target", "-5"), []string{"--minimum-ip-target"}},
		{"negative warm prefix", with("--warm-prefix-target", "-1"), []string{"--warm-prefix-target"}},
		{"negative max pods", with("--max-pods", "-1"), []string{"--max-pods"}},
		{"unknown instance type", with("--instance-type", "m5.lrage"), []string{"--instance-type", "m5.large"}},
		{"prefix on xen cluster", with("--instance-type", "t2.micro", "--prefix-delegation"), []string{"--prefix-delegation", "t2.micro"}},
		{"bad format", with("--format", "yaml"), []string{"--format", "yaml"}},
		{"unknown flag", with("--wram-ip-target", "3"), []string{"--wram-ip-target"}},
		{"no VPC", without("--vpc-cidr"), []string{"--vpc-cidr is required"}},
		{"no subnet", without("--subnet"), []string{"--subnet is required"}},
		{"no instance type", without("--instance-type"), []string{"--instance-type is required"}},
		{"no nodes", without("--nodes"), []string{"--nodes is required"}},
		{"no pods per node", without("--pods-per-node"), []string{"--pods-per-node is required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := vpcnet(t, nil, tc.args...)
			if code != 2 {
				t.Fatalf("exit %d; want 2 (stdout %q, stderr %q)", code, out, errOut)
			}
			if out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "vpcnet: ") {
				t.Fatalf("want one line on stderr only; stdout %q, stderr %q", out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Fatalf("stderr %q does not contain %q", errOut, w)
				}
			}
		})
	}
}

// TestPlanClusterTableAndJSON runs the example in both forms and checks that the table
// shows the numbers the JSON carries.
func TestPlanClusterTableAndJSON(t *testing.T) {
	args := []string{"plan", "cluster", "--vpc-cidr", "10.10.0.0/16", "--subnet", "10.10.1.0/24",
		"--instance-type", "m5.large", "--nodes", "3", "--pods-per-node", "20"}
	table, errOut, code := vpcnet(t, nil, args...)
	if code != 0 {
		t.Fatalf("table: exit %d: %s", code, errOut)
	}
	js, errOut, code := vpcnet(t, nil, append(args, "--format", "json")...)
	if code != 0 {
		t.Fatalf("json: exit %d: %s", code, errOut)
	}
	var r plan.Result
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatalf("json output: %v\n%s", err, js)
	}
	// The JSON is the planner's answer for the same input.
	want, err := plan.Plan(plan.Input{
		VPC: r.VPC.CIDR, Subnets: []netip.Prefix{r.Modes[0].Subnets[0].CIDR}, Type: mustType(t, "m5.large"),
		Nodes: 3, PodsPerNode: 20, Warm: plan.DefaultWarm(),
	})
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.MarshalIndent(want, "", "  ")
	if strings.TrimSpace(js) != string(wantJSON) {
		t.Fatalf("JSON differs from plan.Plan:\n%s\nwant\n%s", js, wantJSON)
	}

	m := r.Selected()
	n, s, h := m.Node, m.Subnets[0], m.Headroom
	// The subnet row carries the same numbers, in the header's order.
	row := fields(t, table, s.CIDR.String())
	wantRow := []string{s.CIDR.String(), itoa(s.Size), itoa(s.Reserved), itoa(s.Nodes), itoa(s.NodePrimaries), itoa(s.ENIPrimaries),
		itoa(s.PodAddresses), itoa(s.WarmAddresses), itoa(s.Free), strconv.FormatFloat(s.Utilisation, 'f', 1, 64) + "%", itoa(s.MoreNodes)}
	if strings.Join(row, " ") != strings.Join(wantRow, " ") {
		t.Fatalf("subnet row %v; JSON says %v", row, wantRow)
	}
	head := fields(t, table, "SUBNET")
	if strings.Join(head, " ") != "SUBNET SIZE RESERVED NODES NODE IPS ENI IPS POD IPS WARM IPS FREE USED MORE NODES" {
		t.Fatalf("header %v", head)
	}
	for _, want := range []string{
		"holds            " + itoa(n.Addresses) + " addresses: " + itoa(n.PodsWithAddress) + " for pods + " + itoa(n.Warm) + " warm",
		"ENIs             " + itoa(n.ENIs) + " of " + itoa(n.MaxENIs),
		"max pods " + itoa(n.MaxPods),
		"HEADROOM  " + itoa(h.MoreNodes) + " more nodes fit",
		h.FirstExhausted.String() + " runs out of " + h.RunsOut + " first, after " + itoa(h.RoundRobin) + " more",
		itoa(r.VPC.OutsideSubnets) + " of " + itoa(r.VPC.Size) + " addresses are in no subnet",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	// The comparison rows: one column per mode, the numbers of each mode's result.
	for _, c := range []struct {
		label string
		f     func(plan.ModeResult) string
	}{
		{"subnet addresses per node", func(m plan.ModeResult) string { return itoa(m.Node.SubnetAddresses) }},
		{"ENIs per node", func(m plan.ModeResult) string { return itoa(m.Node.ENIs) }},
		{"max pods", func(m plan.ModeResult) string { return itoa(m.Node.MaxPods) }},
		{"subnet addresses, cluster", func(m plan.ModeResult) string { return itoa(m.SubnetAddresses) }},
		{"free addresses", func(m plan.ModeResult) string { return itoa(m.Subnets[0].Free) }},
	} {
		var want []string
		for _, m := range r.Modes {
			want = append(want, c.f(m))
		}
		line := fields(t, table, c.label)
		got := line[len(line)-len(want):]
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("row %q: %v; JSON says %v", c.label, got, want)
		}
	}
	// The numbers themselves: 3 ENIs x 9 slots on each node, 30 subnet addresses a node.
	if n.Addresses != 27 || n.SubnetAddresses != 30 || s.Free != 161 || h.MoreNodes != 5 {
		t.Errorf("node %+v subnet %+v headroom %+v", n, s, h)
	}
	if strings.Contains(table, " \n") {
		t.Error("table has trailing blanks")
	}
}

func TestPlanClusterPrefixAndWarnings(t *testing.T) {
	out, errOut, code := vpcnet(t, nil, "plan", "cluster", "--vpc-cidr", "10.10.0.0/16",
		"--subnet", "10.10.1.0/24,10.10.2.0/26", "--subnet", "10.10.3.0/25",
		"--instance-type", "m5.xlarge", "--nodes", "5", "--pods-per-node", "40", "--prefix-delegation", "--warm-prefix-target", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"prefix mode", "WARM_PREFIX_TARGET=1: keep 1 free /28 prefix",
		"4 /28 prefixes = 64 addresses: 40 for pods + 24 warm",
		"FREE /28s", "prefix (planned)", "if EC2 scatters ENI primaries one per /28",
		"WARNING: 10.10.2.0/26 is 71 addresses short for its 2 nodes",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Too many pods: warnings about max pods and pods without an address.
	out, _, code = vpcnet(t, nil, "plan", "cluster", "--vpc-cidr", "10.10.0.0/16", "--subnet", "10.10.0.0/20",
		"--instance-type", "t3.medium", "--nodes", "2", "--pods-per-node", "20")
	warnings := regexp.MustCompile(`(?m)^  WARNING +20 pods \+ 2 host-network pods exceed max pods 17\n  WARNING +5 pods per node get no address \(max ENIs\)$`)
	if code != 0 || !warnings.MatchString(out) {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
	// A Xen type: prefix mode is n/a in the comparison.
	out, _, code = vpcnet(t, nil, "plan", "cluster", "--vpc-cidr", "10.10.0.0/16", "--subnet", "10.10.1.0/24",
		"--instance-type", "t2.micro", "--nodes", "2", "--pods-per-node", "1")
	if code != 0 || !strings.Contains(out, "n/a") || !strings.Contains(out, "prefix: t2.micro is not Nitro-based") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"plan"}, {"plan", "max-pods"}, {"plan", "cluster"}} {
		out, _, code := vpcnet(t, nil, append(args, "--help")...)
		if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "vpcnet plan") {
			t.Errorf("%v --help: exit %d\n%s", args, code, out)
		}
	}
}

func fields(t *testing.T, out, first string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if strings.HasPrefix(strings.TrimSpace(line), first) && len(f) > 0 {
			return f
		}
	}
	t.Fatalf("no line starting with %q in\n%s", first, out)
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }

func mustType(t *testing.T, name string) catalog.InstanceType {
	t.Helper()
	it, err := catalog.Builtin().Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// The subnet warning counts in the right number: "1 address short for its 1 node".
func TestPlanClusterWarningCountsOne(t *testing.T) {
	out, errOut, code := vpcnet(t, nil, "plan", "cluster", "--vpc-cidr", "10.10.0.0/16", "--subnet", "10.10.1.0/28",
		"--instance-type", "t3.medium", "--nodes", "1", "--pods-per-node", "9", "--warm-ip-target", "1")
	if want := "WARNING: 10.10.1.0/28 is 1 address short for its 1 node\n"; code != 0 || !strings.Contains(out, want) {
		t.Errorf("exit %d, stderr %q; output lacks %q:\n%s", code, errOut, want, out)
	}
}
