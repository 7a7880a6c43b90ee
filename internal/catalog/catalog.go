// Package catalog knows EC2 instance types and their networking limits, and the max-pods
// arithmetic that follows from them.
package catalog

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// EnvInstanceTypes names the environment variable that points at an instance-type CSV file.
const EnvInstanceTypes = "VPCNET_INSTANCE_TYPES"

// NetworkCard is one network card of an instance type and the interfaces it can hold.
type NetworkCard struct {
	Index         int
	MaxInterfaces int
}

// InstanceType holds the networking limits of one EC2 instance type.
type InstanceType struct {
	Name       string
	Hypervisor string // "nitro", "xen" or "" when unknown
	BareMetal  bool
	// MaxENIs is the number of network interfaces on the default network card.
	MaxENIs int
	// IPv4PerENI counts private IPv4 addresses per interface, the primary included.
	IPv4PerENI         int
	DefaultNetworkCard int
	NetworkCards       []NetworkCard
	// VCPUs is 0 when the catalog does not know it.
	VCPUs int
}

// Nitro reports whether the type runs on the Nitro system. Bare-metal types count as Nitro:
// AWS supports prefix delegation on them.
func (t InstanceType) Nitro() bool {
	return t.Hypervisor == "nitro" || t.BareMetal
}

// Catalog is a read-only set of instance types keyed by name.
type Catalog struct {
	types  map[string]InstanceType
	source string
}

// New builds a catalog from the given types; a later duplicate replaces an earlier one.
func New(source string, types []InstanceType) *Catalog {
	c := &Catalog{types: make(map[string]InstanceType, len(types)), source: source}
	for _, t := range types {
		c.types[t.Name] = t
	}
	return c
}

// Source says where the catalog came from ("built-in" or a file path).
func (c *Catalog) Source() string { return c.source }

// Len is the number of types in the catalog.
func (c *Catalog) Len() int { return len(c.types) }

// Names returns every type name, sorted.
func (c *Catalog) Names() []string {
	names := make([]string, 0, len(c.types))
	for n := range c.types {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// UnknownTypeError is returned by Lookup for a name the catalog does not hold.
type UnknownTypeError struct {
	Name    string
	Closest []string
	Source  string
}

func (e *UnknownTypeError) Error() string {
	msg := fmt.Sprintf("unknown instance type %q in the %s catalog", e.Name, e.Source)
	if len(e.Closest) > 0 {
		msg += "; closest known: " + strings.Join(e.Closest, ", ")
	}
	return msg
}

// Lookup returns the named type or an *UnknownTypeError naming the closest known types.
func (c *Catalog) Lookup(name string) (InstanceType, error) {
	if t, ok := c.types[name]; ok {
		return t, nil
	}
	return InstanceType{}, &UnknownTypeError{Name: name, Closest: c.Closest(name, 3), Source: c.source}
}

// Closest returns up to n known names nearest to name by edit distance, nearest first.
func (c *Catalog) Closest(name string, n int) []string {
	type cand struct {
		name string
		d    int
	}
	cands := make([]cand, 0, len(c.types))
	for k := range c.types {
		cands = append(cands, cand{k, editDistance(strings.ToLower(name), k)})
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].d != cands[j].d {
			return cands[i].d < cands[j].d
		}
		return cands[i].name < cands[j].name
	})
	out := []string{}
	for i := 0; i < len(cands) && i < n; i++ {
		out = append(out, cands[i].name)
	}
	return out
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Load returns the catalog named by path, or by $VPCNET_INSTANCE_TYPES when path is empty, or
// the built-in catalog when neither is set. Types loaded from a file learn their vCPU count
// from the built-in set where it knows them.
func Load(path string) (*Catalog, error) {
	if path == "" {
		path = os.Getenv(EnvInstanceTypes)
	}
	if path == "" {
		return Builtin(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err // names the path
	}
	defer f.Close()
	c, err := Parse(f, path)
	if err != nil {
		return nil, err
	}
	for name, t := range c.types {
		if b, ok := builtinByName[name]; ok && t.VCPUs == 0 {
			t.VCPUs = b.VCPUs
			c.types[name] = t
		}
	}
	return c, nil
}
