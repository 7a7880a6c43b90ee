package catalog

// builtinTypes is a hand-written set of common types so the commands work with no file.
// Limits follow AWS's published DescribeInstanceTypes network info; vCPUs are AWS's defaults.
var builtinTypes = []InstanceType{
	nitro("c5.large", 3, 10, 2),
	nitro("c5.xlarge", 4, 15, 4),
	nitro("c5.2xlarge", 4, 15, 8),
	nitro("c5.4xlarge", 8, 30, 16),
	nitro("m5.large", 3, 10, 2),
	nitro("m5.xlarge", 4, 15, 4),
	nitro("m5.2xlarge", 4, 15, 8),
	nitro("m5.4xlarge", 8, 30, 16),
	nitro("m5.8xlarge", 8, 30, 32),
	nitro("m5.12xlarge", 8, 30, 48),
	nitro("m5.16xlarge", 15, 50, 64),
	nitro("m5.24xlarge", 15, 50, 96),
	{Name: "t2.micro", Hypervisor: "xen", MaxENIs: 2, IPv4PerENI: 2, NetworkCards: []NetworkCard{{0, 2}}, VCPUs: 1},
	nitro("t3.nano", 2, 2, 2),
	nitro("t3.micro", 2, 2, 2),
	nitro("t3.small", 3, 4, 2),
	nitro("t3.medium", 3, 6, 2),
	nitro("t3.large", 3, 12, 2),
	nitro("t3.xlarge", 4, 15, 4),
	nitro("t3.2xlarge", 4, 15, 8),
}

func nitro(name string, enis, ips, vcpus int) InstanceType {
	return InstanceType{Name: name, Hypervisor: "nitro", MaxENIs: enis, IPv4PerENI: ips,
		NetworkCards: []NetworkCard{{0, enis}}, VCPUs: vcpus}
}

var builtinByName = func() map[string]InstanceType {
	m := make(map[string]InstanceType, len(builtinTypes))
	for _, t := range builtinTypes {
		m[t.Name] = t
	}
	return m
}()

// Builtin returns the built-in catalog.
func Builtin() *Catalog { return New("built-in", builtinTypes) }
