package catalog

import (
	"strings"
	"testing"
)

func TestMaxPods(t *testing.T) {
	xen := InstanceType{Name: "t2.micro", Hypervisor: "xen", MaxENIs: 2, IPv4PerENI: 2}
	metal := InstanceType{Name: "m5.metal", BareMetal: true, MaxENIs: 15, IPv4PerENI: 50}
	unknown := InstanceType{Name: "cr1.8xlarge", MaxENIs: 8, IPv4PerENI: 30}
	builtin := func(name string) InstanceType {
		t.Helper()
		it, err := Builtin().Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	tests := []struct {
		name    string
		typ     InstanceType
		mode    Mode
		want    int
		wantErr string
	}{
		// secondary-IP mode: ENIs x (IPs per ENI - 1) + 2
		{"t3.medium secondary", builtin("t3.medium"), Mode{}, 3*5 + 2, ""},
		{"m5.large secondary", builtin("m5.large"), Mode{}, 3*9 + 2, ""},
		{"m5.24xlarge secondary", builtin("m5.24xlarge"), Mode{}, 15*49 + 2, ""},
		{"t3.nano secondary", builtin("t3.nano"), Mode{}, 2*1 + 2, ""},
		{"t2.micro xen secondary", xen, Mode{}, 2*1 + 2, ""},
		// prefix mode: ENIs x (IPs per ENI - 1) x 16 + 2
		{"m5.large prefix", builtin("m5.large"), Mode{PrefixDelegation: true}, 3*9*16 + 2, ""},
		{"t3.medium prefix", builtin("t3.medium"), Mode{PrefixDelegation: true}, 3*5*16 + 2, ""},
		{"bare metal counts as nitro", metal, Mode{PrefixDelegation: true}, 15*49*16 + 2, ""},
		// custom networking leaves the primary ENI out
		{"m5.large custom", builtin("m5.large"), Mode{CustomNetworking: true}, 2*9 + 2, ""},
		{"m5.large custom prefix", builtin("m5.large"), Mode{CustomNetworking: true, PrefixDelegation: true}, 2*9*16 + 2, ""},
		{"single ENI custom", InstanceType{Name: "x.one", Hypervisor: "nitro", MaxENIs: 1, IPv4PerENI: 4}, Mode{CustomNetworking: true}, 2, ""},
		// non-Nitro refusal
		{"xen prefix refused", xen, Mode{PrefixDelegation: true}, 0, "not Nitro"},
		{"unknown hypervisor prefix refused", unknown, Mode{PrefixDelegation: true}, 0, "not Nitro"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MaxPods(tc.typ, tc.mode)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.typ.Name) {
					t.Fatalf("MaxPods = %d, %v; want an error naming %s and %q", got, err, tc.typ.Name, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("MaxPods = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestRecommendedCap(t *testing.T) {
	tests := []struct {
		vcpus   int
		want    int
		wantOK  bool
		maxPods int
		capped  int
	}{
		{0, 110, false, 737, 110},
		{2, 110, true, 29, 29},
		{30, 110, true, 234, 110},
		{31, 250, true, 737, 250},
		{96, 250, true, 737, 250},
		{96, 250, true, 100, 100},
	}
	for _, tc := range tests {
		it := InstanceType{Name: "x", VCPUs: tc.vcpus}
		got, ok := RecommendedCap(it)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("RecommendedCap(vcpus=%d) = %d, %v; want %d, %v", tc.vcpus, got, ok, tc.want, tc.wantOK)
		}
		if c := Capped(it, tc.maxPods); c != tc.capped {
			t.Errorf("Capped(vcpus=%d, %d) = %d; want %d", tc.vcpus, tc.maxPods, c, tc.capped)
		}
	}
}

// The built-in set must agree with AWS's published limits, wherever the shared CSV has the type.
func TestBuiltinMatchesSharedCSV(t *testing.T) {
	for _, want := range []string{"t2.micro", "t3.micro", "t3.2xlarge", "m5.large", "m5.24xlarge", "c5.large", "c5.4xlarge"} {
		if _, err := Builtin().Lookup(want); err != nil {
			t.Errorf("built-in catalog lacks %s", want)
		}
	}
	c := loadShared(t)
	for _, name := range Builtin().Names() {
		b, _ := Builtin().Lookup(name)
		f, err := c.Lookup(name)
		if err != nil {
			t.Errorf("built-in %s is not in the shared CSV", name)
			continue
		}
		if b.MaxENIs != f.MaxENIs || b.IPv4PerENI != f.IPv4PerENI || b.Hypervisor != f.Hypervisor || b.BareMetal != f.BareMetal {
			t.Errorf("built-in %s = %+v, CSV says %+v", name, b, f)
		}
	}
}
