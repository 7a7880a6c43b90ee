package catalog

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vpcnet/vpcnet/internal/testenv"
)

const header = "instance_type,hypervisor,bare_metal,max_enis,ipv4_per_eni,default_network_card,network_cards\n"

func loadShared(t *testing.T) *Catalog {
	t.Helper()
	c, err := Load(testenv.SharedData(t, "instance-types.csv"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParse(t *testing.T) {
	in := header +
		"m5.large,nitro,false,3,10,0,0:3\n" +
		"t2.micro,xen,false,2,2,0,0:2\n" +
		"m5.metal,unknown,true,15,50,0,0:15\n" +
		"c6in.32xlarge,nitro,false,8,50,0,\"0:8 1:8\"\n" +
		"x.none,,false,1,2,0,\n"
	c, err := Parse(strings.NewReader(in), "test.csv")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Names(); !slices.Equal(got, []string{"c6in.32xlarge", "m5.large", "m5.metal", "t2.micro", "x.none"}) {
		t.Fatalf("Names = %v", got)
	}
	if c.Source() != "test.csv" || c.Len() != 5 {
		t.Fatalf("Source, Len = %q, %d", c.Source(), c.Len())
	}
	metal, _ := c.Lookup("m5.metal")
	if metal.Hypervisor != "" || !metal.BareMetal || !metal.Nitro() || metal.MaxENIs != 15 || metal.IPv4PerENI != 50 {
		t.Errorf("m5.metal = %+v", metal)
	}
	c6, _ := c.Lookup("c6in.32xlarge")
	if !slices.Equal(c6.NetworkCards, []NetworkCard{{0, 8}, {1, 8}}) {
		t.Errorf("c6in.32xlarge cards = %v", c6.NetworkCards)
	}
	xen, _ := c.Lookup("t2.micro")
	if xen.Nitro() {
		t.Errorf("t2.micro counts as Nitro")
	}
}

func TestParseErrors(t *testing.T) {
	row := "m5.large,nitro,false,3,10,0,0:3\n"
	tests := []struct {
		name string
		in   string
		want string // the error must contain this, line and column included
	}{
		{"empty", "", "line 1, column 1: empty file"},
		{"wrong header", "type,hypervisor\n" + row, `line 1, column 1: header names "type"`},
		{"short header", "instance_type,hypervisor\n" + row, "line 1, column 3: header ends"},
		{"long header", strings.TrimSuffix(header, "\n") + ",vcpus\n" + row, `line 1, column 8: unexpected header column "vcpus"`},
		{"no rows", header, "line 2, column 1: no instance types"},
		{"short row", header + "m5.large,nitro,false,3\n", "line 2, column 5 (ipv4_per_eni): row ends after 4 fields"},
		{"long row", header + "m5.large,nitro,false,3,10,0,0:3,x\n", `line 2, column 8: unexpected extra field "x"`},
		{"blank name", header + " ,nitro,false,3,10,0,0:3\n", "line 2, column 1 (instance_type)"},
		{"name with space", header + "m5 large,nitro,false,3,10,0,0:3\n", "line 2, column 1 (instance_type)"},
		{"hypervisor", header + "m5.large,kvm,false,3,10,0,0:3\n", `line 2, column 2 (hypervisor): "kvm"`},
		{"bare metal", header + "m5.large,nitro,maybe,3,10,0,0:3\n", `line 2, column 3 (bare_metal): "maybe"`},
		{"zero enis", header + row + "m5.xlarge,nitro,false,0,15,0,0:4\n", `line 3, column 4 (max_enis): "0"`},
		{"huge enis", header + "m5.xlarge,nitro,false,99999999999,15,0,0:4\n", "line 2, column 4 (max_enis)"},
		{"ips not a number", header + "m5.xlarge,nitro,false,4,lots,0,0:4\n", `line 2, column 5 (ipv4_per_eni): "lots"`},
		{"negative card", header + "m5.xlarge,nitro,false,4,15,-1,0:4\n", "line 2, column 6 (default_network_card)"},
		{"card entry", header + "m5.xlarge,nitro,false,4,15,0,0-4\n", `line 2, column 7 (network_cards): entry "0-4"`},
		{"card zero interfaces", header + "m5.xlarge,nitro,false,4,15,0,0:0\n", "line 2, column 7 (network_cards)"},
		{"card twice", header + "m5.xlarge,nitro,false,4,15,0,\"0:4 0:4\"\n", "line 2, column 7 (network_cards): entry \"0:4\": network card 0 listed twice"},
		{"default card missing", header + "m5.xlarge,nitro,false,4,15,1,0:4\n", "line 2, column 7 (network_cards): \"0:4\" does not list the default network card 1"},
		{"duplicate", header + row + row, `line 3, column 1 (instance_type): "m5.large" is listed twice (first on line 2)`},
		{"bad quote", header + "m5.large,\"nitro,false\n", "line 2, column"},
		{"quote in field", header + "m5.la\"rge,nitro,false,3,10,0,0:3\n", "line 2, column 6"},
		{"multi-line quoted field keeps lines", header + "\"m5.\nlarge\",nitro,false,3,10,0,0:3\n", "line 2, column 1 (instance_type)"},
		{"error after multi-line field", header + "a,nitro,false,3,10,0,\"0:3\n\"\nb,nitro,false,x,10,0,0:3\n", "line 4, column 4 (max_enis)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tc.in), "types.csv")
			if err == nil {
				t.Fatalf("Parse succeeded with %d types; want an error containing %q", c.Len(), tc.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "types.csv: line ") || !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q; want it to start with the source and line and contain %q", msg, tc.want)
			}
			if strings.Contains(msg, "\n") {
				t.Fatalf("error spans lines: %q", msg)
			}
		})
	}
}

func TestClosest(t *testing.T) {
	c := Builtin()
	tests := []struct {
		name string
		want string // the nearest suggestion
	}{
		{"m5.larg", "m5.large"},
		{"m5.lrage", "m5.large"},
		{"M5.LARGE", "m5.large"},
		{"t3.mediun", "t3.medium"},
		{"c5.4xlarg", "c5.4xlarge"},
		{"t2.micr", "t2.micro"},
	}
	for _, tc := range tests {
		_, err := c.Lookup(tc.name)
		ue, ok := err.(*UnknownTypeError)
		if !ok {
			t.Fatalf("Lookup(%q) error = %v; want *UnknownTypeError", tc.name, err)
		}
		if len(ue.Closest) != 3 || ue.Closest[0] != tc.want {
			t.Errorf("Lookup(%q) closest = %v; want %s first of 3", tc.name, ue.Closest, tc.want)
		}
		if msg := ue.Error(); !strings.Contains(msg, tc.want) || !strings.Contains(msg, "built-in") {
			t.Errorf("error %q does not name %s and the catalog", msg, tc.want)
		}
	}
	if got := c.Closest("m5.large", 0); len(got) != 0 {
		t.Errorf("Closest(n=0) = %v", got)
	}
	if got := New("empty", nil).Closest("m5.large", 3); len(got) != 0 {
		t.Errorf("Closest on an empty catalog = %v", got)
	}
	if _, err := c.Lookup("m5.large"); err != nil {
		t.Errorf("Lookup(m5.large): %v", err)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "", 3}, {"", "ab", 2}, {"m5.large", "m5.large", 0}, {"m5.large", "m5.xlarge", 1}, {"kitten", "sitting", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d; want %d", tc.a, tc.b, got, tc.want)
		}
		if got := editDistance(tc.b, tc.a); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d; want %d", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Setenv(EnvInstanceTypes, "")
	c, err := Load("")
	if err != nil || c.Source() != "built-in" {
		t.Fatalf("Load(\"\") = %v, %v; want the built-in catalog", c, err)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "types.csv")
	if err := os.WriteFile(file, []byte(header+"m5.large,nitro,false,3,10,0,0:3\nzz.huge,nitro,false,4,15,0,0:4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvInstanceTypes, file)
	c, err = Load("")
	if err != nil || c.Source() != file || c.Len() != 2 {
		t.Fatalf("Load with $%s = %v, %v", EnvInstanceTypes, c, err)
	}
	m5, _ := c.Lookup("m5.large")
	zz, _ := c.Lookup("zz.huge")
	if m5.VCPUs != 2 || zz.VCPUs != 0 {
		t.Errorf("vCPUs from the built-in set: m5.large %d (want 2), zz.huge %d (want 0)", m5.VCPUs, zz.VCPUs)
	}

	if _, err := Load(filepath.Join(dir, "missing.csv")); err == nil || !strings.Contains(err.Error(), "missing.csv") {
		t.Errorf("Load(missing) error = %v; want one naming the file", err)
	}
}

func TestSharedCSV(t *testing.T) {
	c := loadShared(t)
	if c.Len() < 1000 {
		t.Fatalf("shared CSV has %d types; its README says 1391", c.Len())
	}
	for _, tc := range []struct {
		name string
		want int
	}{{"t3.medium", 17}, {"m5.large", 29}, {"m5.24xlarge", 737}} {
		it, err := c.Lookup(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := MaxPods(it, Mode{}); err != nil || got != tc.want {
			t.Errorf("MaxPods(%s) = %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}

var errorShape = regexp.MustCompile(`^fuzz\.csv: line [0-9]+, column [0-9]+`)

func FuzzParse(f *testing.F) {
	f.Add(header + "m5.large,nitro,false,3,10,0,0:3\n")
	f.Add(header + "c6in.32xlarge,nitro,false,8,50,0,\"0:8 1:8\"\n")
	f.Add(header + "m5.metal,unknown,true,15,50,0,0:15\nt2.micro,xen,false,2,2,0,0:2\n")
	f.Add(header + "a,nitro,false,3\n")
	f.Add("\ufeff" + header + "\"x\ny\",,1,1,1,0,\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse(strings.NewReader(in), "fuzz.csv")
		if err != nil {
			if !errorShape.MatchString(err.Error()) {
				t.Fatalf("error %q does not name line and column", err)
			}
			return
		}
		if c.Len() == 0 {
			t.Fatal("Parse succeeded with no types")
		}
		for _, name := range c.Names() {
			it, err := c.Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			if it.MaxENIs < 1 || it.IPv4PerENI < 1 || it.MaxENIs > maxLimit || it.IPv4PerENI > maxLimit {
				t.Fatalf("%s has limits out of range: %+v", name, it)
			}
			n, err := MaxPods(it, Mode{})
			if err != nil || n < 2 {
				t.Fatalf("MaxPods(%s) = %d, %v", name, n, err)
			}
			if _, err := MaxPods(it, Mode{PrefixDelegation: true, CustomNetworking: true}); (err == nil) != it.Nitro() {
				t.Fatalf("prefix MaxPods(%s) error %v, Nitro %v", name, err, it.Nitro())
			}
		}
	})
}
