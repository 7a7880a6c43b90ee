package model

import (
	"encoding/base64"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Filter is one EC2 filter: a resource matches when one of its values for Name matches one of
// Values (with * and ? wildcards). Filters are ANDed.
type Filter struct {
	Name   string
	Values []string
}

// Page selects a page of a Describe call. MaxResults 0 means all.
type Page struct {
	MaxResults int
	NextToken  string
}

// valuesFunc returns a resource's values for a filter name, or false for an unknown name.
type valuesFunc func(name string) ([]string, bool)

func tagValues(t Tags, name string) ([]string, bool) {
	switch {
	case strings.HasPrefix(name, "tag:"):
		if v, ok := t[name[4:]]; ok {
			return []string{v}, true
		}
		return nil, true
	case name == "tag-key":
		return sortedKeys(t), true
	case name == "tag-value":
		var vs []string
		for _, k := range sortedKeys(t) {
			vs = append(vs, t[k])
		}
		return vs, true
	}
	return nil, false
}

func checkFilters(fs []Filter, known valuesFunc) *Error {
	for _, f := range fs {
		if f.Name == "" {
			return Missing("Filter.Name")
		}
		if _, ok := known(f.Name); !ok {
			return Errf(CodeInvalidParameterValue, "The filter '%s' is invalid", f.Name)
		}
	}
	return nil
}

func matches(fs []Filter, values valuesFunc) bool {
	for _, f := range fs {
		have, _ := values(f.Name)
		ok := false
		for _, want := range f.Values {
			for _, h := range have {
				if glob(want, h) {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// glob matches s against a pattern where * is any run and ? is one character.
func glob(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == s
	}
	p, str := []rune(pattern), []rune(s)
	var pi, si, star, mark = 0, 0, -1, 0
	for si < len(str) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == str[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// paginate returns the page of sorted ids that pg selects and the token for the next one.
func paginate(ids []string, pg Page, minMax, maxMax int) ([]string, string, *Error) {
	if pg.MaxResults != 0 && (pg.MaxResults < minMax || pg.MaxResults > maxMax) {
		return nil, "", Errf(CodeInvalidParameterValue, "Value ( %d ) for parameter maxResults is invalid. Expecting a value between %d and %d.", pg.MaxResults, minMax, maxMax)
	}
	start := 0
	if pg.NextToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(pg.NextToken)
		if err != nil || len(raw) == 0 {
			return nil, "", Errf(CodeInvalidPaginationToken, "Invalid pagination token: %q", pg.NextToken)
		}
		start = sort.SearchStrings(ids, string(raw))
	}
	ids = ids[start:]
	if pg.MaxResults == 0 || len(ids) <= pg.MaxResults {
		return ids, "", nil
	}
	return ids[:pg.MaxResults], base64.RawURLEncoding.EncodeToString([]byte(ids[pg.MaxResults])), nil
}

func lookupIDs[V any](kind string, mp map[string]V, ids []string) ([]string, *Error) {
	if len(ids) == 0 {
		return sortedKeys(mp), nil
	}
	var missing []string
	seen := map[string]bool{}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if err := checkID(kind, id); err != nil {
			return nil, err
		}
		if _, ok := mp[id]; !ok {
			missing = append(missing, id)
			continue
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if len(missing) > 0 {
		return nil, notFound(kind, strings.Join(missing, ", "))
	}
	sort.Strings(out)
	return out, nil
}

// DescribeInput is the common shape of Describe calls: IDs, filters and paging.
type DescribeInput struct {
	IDs     []string
	Filters []Filter
	Page    Page
}

func (m *Model) vpcValues(v *VPC) valuesFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "vpc-id":
			return []string{v.ID}, true
		case "cidr", "cidr-block-association.cidr-block", "cidrBlock":
			return []string{v.CIDR.String()}, true
		case "state":
			return []string{"available"}, true
		case "owner-id":
			return []string{OwnerID}, true
		case "is-default":
			return []string{"false"}, true
		}
		return tagValues(v.Tags, name)
	}
}

// DescribeVpcs lists VPCs.
func (m *Model) DescribeVpcs(in DescribeInput) ([]*VPC, string, error) {
	ids, err := lookupIDs("vpc", m.st.VPCs, in.IDs)
	if err != nil {
		return nil, "", err
	}
	if err := checkFilters(in.Filters, m.vpcValues(&VPC{})); err != nil {
		return nil, "", err
	}
	var keep []string
	for _, id := range ids {
		if matches(in.Filters, m.vpcValues(m.st.VPCs[id])) {
			keep = append(keep, id)
		}
	}
	page, next, err := paginate(keep, in.Page, 5, 1000)
	if err != nil {
		return nil, "", err
	}
	out := make([]*VPC, 0, len(page))
	for _, id := range page {
		out = append(out, m.st.VPCs[id].clone())
	}
	return out, next, nil
}

func (m *Model) subnetValues(s *Subnet) valuesFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "subnet-id":
			return []string{s.ID}, true
		case "vpc-id":
			return []string{s.VPCID}, true
		case "cidr-block", "cidr", "cidrBlock":
			return []string{s.CIDR.String()}, true
		case "availability-zone", "availabilityZone":
			return []string{s.AZ}, true
		case "state":
			return []string{"available"}, true
		case "owner-id":
			return []string{OwnerID}, true
		case "available-ip-address-count":
			if set := m.used[s.ID]; set != nil {
				return []string{strconv.Itoa(set.available())}, true
			}
			return nil, true
		}
		return tagValues(s.Tags, name)
	}
}

// DescribeSubnets lists subnets with their free address counts.
func (m *Model) DescribeSubnets(in DescribeInput) ([]*SubnetView, string, error) {
	ids, err := lookupIDs("subnet", m.st.Subnets, in.IDs)
	if err != nil {
		return nil, "", err
	}
	if err := checkFilters(in.Filters, m.subnetValues(&Subnet{})); err != nil {
		return nil, "", err
	}
	var keep []string
	for _, id := range ids {
		if matches(in.Filters, m.subnetValues(m.st.Subnets[id])) {
			keep = append(keep, id)
		}
	}
	page, next, err := paginate(keep, in.Page, 5, 1000)
	if err != nil {
		return nil, "", err
	}
	out := make([]*SubnetView, 0, len(page))
	for _, id := range page {
		out = append(out, m.subnetView(m.st.Subnets[id]))
	}
	return out, next, nil
}

func (m *Model) instanceValues(i *Instance) valuesFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "instance-id":
			return []string{i.ID}, true
		case "instance-type":
			return []string{i.Type}, true
		case "instance-state-name":
			return []string{i.State}, true
		case "subnet-id":
			return []string{i.SubnetID}, true
		case "vpc-id":
			return []string{i.VPCID}, true
		case "availability-zone":
			return []string{i.AZ}, true
		case "reservation-id":
			return []string{i.ReservationID}, true
		case "private-ip-address":
			for _, id := range i.ENIs {
				if e := m.st.ENIs[id]; e.Attachment.DeviceIndex == 0 {
					return []string{e.PrimaryIP.String()}, true
				}
			}
			return nil, true
		case "network-interface.network-interface-id":
			return i.ENIs, true
		}
		return tagValues(i.Tags, name)
	}
}

// DescribeInstances lists instances (terminated ones included), each in its reservation.
func (m *Model) DescribeInstances(in DescribeInput) ([]*Reservation, string, error) {
	ids, err := lookupIDs("instance", m.st.Instances, in.IDs)
	if err != nil {
		return nil, "", err
	}
	if len(in.IDs) > 0 && in.Page.MaxResults != 0 {
		return nil, "", Combination("The parameter instancesSet cannot be used with the parameter maxResults")
	}
	if err := checkFilters(in.Filters, m.instanceValues(&Instance{})); err != nil {
		return nil, "", err
	}
	var keep []string
	for _, id := range ids {
		if matches(in.Filters, m.instanceValues(m.st.Instances[id])) {
			keep = append(keep, id)
		}
	}
	page, next, err := paginate(keep, in.Page, 5, 1000)
	if err != nil {
		return nil, "", err
	}
	var out []*Reservation
	byRes := map[string]*Reservation{}
	for _, id := range page {
		inst := m.st.Instances[id]
		r := byRes[inst.ReservationID]
		if r == nil {
			r = &Reservation{ID: inst.ReservationID}
			byRes[r.ID] = r
			out = append(out, r)
		}
		r.Instances = append(r.Instances, m.instanceView(inst))
	}
	return out, next, nil
}

func (m *Model) eniValues(e *ENI) valuesFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "network-interface-id":
			return []string{e.ID}, true
		case "vpc-id":
			return []string{e.VPCID}, true
		case "subnet-id":
			return []string{e.SubnetID}, true
		case "availability-zone":
			return []string{e.AZ}, true
		case "status":
			return []string{e.Status()}, true
		case "description":
			return []string{e.Description}, true
		case "mac-address":
			return []string{e.MAC}, true
		case "owner-id":
			return []string{OwnerID}, true
		case "interface-type":
			return []string{e.InterfaceType}, true
		case "private-ip-address", "addresses.private-ip-address":
			var vs []string
			for _, a := range e.Addrs() {
				vs = append(vs, a.String())
			}
			return vs, true
		case "ipv4-prefixes.ipv4-prefix":
			var vs []string
			for _, p := range e.Prefixes {
				vs = append(vs, p.String())
			}
			return vs, true
		case "group-id":
			return e.SecurityGroups, true
		case "attachment.instance-id", "attachment.attachment-id", "attachment.device-index", "attachment.status",
			"attachment.delete-on-termination", "attachment.instance-owner-id", "attachment.network-card-index":
			a := e.Attachment
			if a == nil {
				return nil, true
			}
			switch name {
			case "attachment.instance-id":
				return []string{a.InstanceID}, true
			case "attachment.attachment-id":
				return []string{a.ID}, true
			case "attachment.device-index":
				return []string{strconv.Itoa(a.DeviceIndex)}, true
			case "attachment.network-card-index":
				return []string{strconv.Itoa(a.NetworkCardIndex)}, true
			case "attachment.status":
				return []string{a.Status}, true
			case "attachment.instance-owner-id":
				return []string{OwnerID}, true
			}
			return []string{strconv.FormatBool(a.DeleteOnTermination)}, true
		}
		return tagValues(e.Tags, name)
	}
}

// DescribeNetworkInterfaces lists ENIs by ID or filter, a page at a time (MaxResults 5..1000;
// not with IDs).
func (m *Model) DescribeNetworkInterfaces(in DescribeInput) ([]*ENI, string, error) {
	if len(in.IDs) > 0 && in.Page.MaxResults != 0 {
		return nil, "", Combination("The parameter NetworkInterfaceId cannot be used with the parameter MaxResults")
	}
	if err := checkFilters(in.Filters, m.eniValues(&ENI{})); err != nil {
		return nil, "", err
	}
	var ids []string
	if len(in.IDs) == 0 {
		ids = m.eniCandidates(in.Filters)
	} else {
		var err *Error
		if ids, err = lookupIDs("eni", m.st.ENIs, in.IDs); err != nil {
			return nil, "", err
		}
	}
	keep := ids
	if len(in.Filters) > 0 {
		keep = nil
		for _, id := range ids {
			if matches(in.Filters, m.eniValues(m.st.ENIs[id])) {
				keep = append(keep, id)
			}
		}
	}
	page, next, err := paginate(keep, in.Page, 5, 1000)
	if err != nil {
		return nil, "", err
	}
	out := make([]*ENI, 0, len(page))
	for _, id := range page {
		out = append(out, m.st.ENIs[id].clone())
	}
	return out, next, nil
}

// InstanceTypeView is one DescribeInstanceTypes entry.
type InstanceTypeView struct {
	Name         string
	Hypervisor   string
	BareMetal    bool
	VCPUs        int
	MaxENIs      int
	IPv4PerENI   int
	DefaultCard  int
	NetworkCards []struct{ Index, MaxInterfaces int }
}

// DescribeInstanceTypes lists the catalog (MaxResults 5..100).
func (m *Model) DescribeInstanceTypes(in DescribeInput) ([]*InstanceTypeView, string, error) {
	names := m.cat.Names()
	if len(in.IDs) > 0 {
		var bad []string
		names = nil
		for _, n := range in.IDs {
			if _, err := m.cat.Lookup(n); err != nil {
				bad = append(bad, n)
			} else {
				names = append(names, n)
			}
		}
		if len(bad) > 0 {
			return nil, "", Errf(CodeInvalidInstanceType, "The following supplied instance types do not exist: [%s]", strings.Join(bad, ", "))
		}
		sort.Strings(names)
		names = dedupSorted(names)
	}
	values := func(name string) ([]string, bool) { return nil, false }
	filterVals := func(n string) valuesFunc {
		return func(name string) ([]string, bool) {
			t, _ := m.cat.Lookup(n)
			switch name {
			case "instance-type":
				return []string{t.Name}, true
			case "hypervisor":
				return []string{t.Hypervisor}, true
			case "bare-metal":
				return []string{strconv.FormatBool(t.BareMetal)}, true
			case "network-info.maximum-network-interfaces":
				return []string{strconv.Itoa(t.MaxENIs)}, true
			case "network-info.ipv4-addresses-per-interface":
				return []string{strconv.Itoa(t.IPv4PerENI)}, true
			}
			return values(name)
		}
	}
	if err := checkFilters(in.Filters, filterVals("")); err != nil {
		return nil, "", err
	}
	var keep []string
	for _, n := range names {
		if matches(in.Filters, filterVals(n)) {
			keep = append(keep, n)
		}
	}
	page, next, err := paginate(keep, in.Page, 5, 100)
	if err != nil {
		return nil, "", err
	}
	out := make([]*InstanceTypeView, 0, len(page))
	for _, n := range page {
		t, _ := m.cat.Lookup(n)
		v := &InstanceTypeView{Name: t.Name, Hypervisor: t.Hypervisor, BareMetal: t.BareMetal, VCPUs: t.VCPUs,
			MaxENIs: t.MaxENIs, IPv4PerENI: t.IPv4PerENI, DefaultCard: t.DefaultNetworkCard}
		for _, c := range t.NetworkCards {
			v.NetworkCards = append(v.NetworkCards, struct{ Index, MaxInterfaces int }{c.Index, c.MaxInterfaces})
		}
		if len(v.NetworkCards) == 0 {
			v.NetworkCards = append(v.NetworkCards, struct{ Index, MaxInterfaces int }{0, t.MaxENIs})
		}
		out = append(out, v)
	}
	return out, next, nil
}

func dedupSorted(xs []string) []string {
	out := xs[:0]
	for i, x := range xs {
		if i == 0 || x != xs[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// eniCandidates narrows a filtered DescribeNetworkInterfaces to the ENIs of the instances an
// exact attachment.instance-id filter names (the agent's usual call); else every ENI, sorted.
func (m *Model) eniCandidates(fs []Filter) []string {
	for _, f := range fs {
		if f.Name != "attachment.instance-id" || slices.ContainsFunc(f.Values, func(v string) bool { return strings.ContainsAny(v, "*?") }) {
			continue
		}
		var out []string
		for _, id := range f.Values {
			if inst, ok := m.st.Instances[id]; ok {
				out = append(out, inst.ENIs...)
			}
		}
		sort.Strings(out)
		return dedupSorted(out)
	}
	if m.eniOrder == nil {
		m.eniOrder = sortedKeys(m.st.ENIs)
	}
	return m.eniOrder
}
