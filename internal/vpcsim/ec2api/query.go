package ec2api

import (
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
)

// maxListLen bounds the members of one list parameter.
const maxListLen = 1000

// params are the Query parameters of one request, with typed accessors that answer with EC2's
// error codes.
type params url.Values

func (p params) has(name string) bool { _, ok := p[name]; return ok }

func (p params) str(name string) string {
	if v := p[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (p params) required(name string) (string, error) {
	v := p.str(name)
	if v == "" {
		return "", model.Missing(name)
	}
	return v, nil
}

// intOpt returns the parameter as an int, 0 when absent.
func (p params) intOpt(name string) (int, error) {
	if !p.has(name) {
		return 0, nil
	}
	return parseInt(name, p.str(name))
}

func parseInt(name, s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < -1<<31 || n > 1<<31-1 {
		return 0, model.InvalidValue(name, s)
	}
	return n, nil
}

func (p params) intPtr(name string) (*int, error) {
	if !p.has(name) {
		return nil, nil
	}
	n, err := parseInt(name, p.str(name))
	return &n, err
}

func (p params) boolPtr(name string) (*bool, error) {
	if !p.has(name) {
		return nil, nil
	}
	switch strings.ToLower(p.str(name)) {
	case "true":
		t := true
		return &t, nil
	case "false":
		f := false
		return &f, nil
	}
	return nil, model.InvalidValue(name, p.str(name))
}

func (p params) boolOpt(name string) (bool, error) {
	b, err := p.boolPtr(name)
	return b != nil && *b, err
}

// list returns the values of name.1, name.2, ... in index order.
func (p params) list(name string) ([]string, error) {
	type kv struct {
		i int
		v string
	}
	var items []kv
	prefix := name + "."
	for k, v := range p {
		if !strings.HasPrefix(k, prefix) || len(v) == 0 {
			continue
		}
		rest := k[len(prefix):]
		if strings.Contains(rest, ".") {
			continue
		}
		i, err := strconv.Atoi(rest)
		if err != nil || i < 1 {
			return nil, model.Errf(model.CodeInvalidParameterValue, "Invalid list index in parameter %s", k)
		}
		items = append(items, kv{i, v[0]})
	}
	if len(items) > maxListLen {
		return nil, model.Errf(model.CodeInvalidParameterValue, "Too many values for %s: at most %d", name, maxListLen)
	}
	sort.Slice(items, func(a, b int) bool { return items[a].i < items[b].i })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.v
	}
	return out, nil
}

// objects returns the members of name.N.* as params keyed by the rest of the name, in index order.
func (p params) objects(name string) ([]params, error) {
	byIdx := map[int]params{}
	prefix := name + "."
	for k, v := range p {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		rest := k[len(prefix):]
		dot := strings.IndexByte(rest, '.')
		if dot < 0 {
			continue
		}
		i, err := strconv.Atoi(rest[:dot])
		if err != nil || i < 1 {
			return nil, model.Errf(model.CodeInvalidParameterValue, "Invalid list index in parameter %s", k)
		}
		if byIdx[i] == nil {
			if len(byIdx) >= maxListLen {
				return nil, model.Errf(model.CodeInvalidParameterValue, "Too many values for %s: at most %d", name, maxListLen)
			}
			byIdx[i] = params{}
		}
		byIdx[i][rest[dot+1:]] = v
	}
	idx := make([]int, 0, len(byIdx))
	for i := range byIdx {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]params, len(idx))
	for n, i := range idx {
		out[n] = byIdx[i]
	}
	return out, nil
}

func (p params) addr(name string) (netip.Addr, error) {
	if !p.has(name) {
		return netip.Addr{}, nil
	}
	return parseAddr(name, p.str(name))
}

func parseAddr(name, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || !a.Is4() {
		return netip.Addr{}, model.InvalidValue(name, s)
	}
	return a, nil
}

func parsePrefix(name, s string) (netip.Prefix, error) {
	pf, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil || !pf.Addr().Is4() {
		return netip.Prefix{}, model.Errf(model.CodeInvalidParameterValue, "Value (%s) for parameter %s is invalid. This is not a valid CIDR block.", s, name)
	}
	return pf, nil
}

func (p params) addrList(name string) ([]netip.Addr, error) {
	vs, err := p.list(name)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(vs))
	for _, v := range vs {
		a, err := parseAddr(name, v)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (p params) prefixList(name string) ([]netip.Prefix, error) {
	vs, err := p.list(name)
	if err != nil {
		return nil, err
	}
	// CreateNetworkInterface sends Ipv4Prefix.N.Ipv4Prefix; the others Ipv4Prefix.N.
	objs, err := p.objects(name)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if o.has("Ipv4Prefix") {
			vs = append(vs, o.str("Ipv4Prefix"))
		}
	}
	out := make([]netip.Prefix, 0, len(vs))
	for _, v := range vs {
		pf, err := parsePrefix("ipv4Prefix", v)
		if err != nil {
			return nil, err
		}
		out = append(out, pf)
	}
	return out, nil
}

func (p params) filters() ([]model.Filter, error) {
	objs, err := p.objects("Filter")
	if err != nil {
		return nil, err
	}
	var out []model.Filter
	for _, o := range objs {
		name := o.str("Name")
		if name == "" {
			return nil, model.Missing("Filter.Name")
		}
		vals, err := o.list("Value")
		if err != nil {
			return nil, err
		}
		out = append(out, model.Filter{Name: name, Values: vals})
	}
	return out, nil
}

func (p params) tags(name string) ([]model.Tag, []bool, error) {
	objs, err := p.objects(name)
	if err != nil {
		return nil, nil, err
	}
	var out []model.Tag
	var valueSet []bool
	for _, o := range objs {
		if !o.has("Key") {
			return nil, nil, model.Missing(name + ".Key")
		}
		out = append(out, model.Tag{Key: o.str("Key"), Value: o.str("Value")})
		valueSet = append(valueSet, o.has("Value"))
	}
	return out, valueSet, nil
}

func (p params) tagSpecs() ([]model.TagSpec, error) {
	objs, err := p.objects("TagSpecification")
	if err != nil {
		return nil, err
	}
	var out []model.TagSpec
	for _, o := range objs {
		rt := o.str("ResourceType")
		if rt == "" {
			return nil, model.Missing("TagSpecification.ResourceType")
		}
		tags, _, err := o.tags("Tag")
		if err != nil {
			return nil, err
		}
		out = append(out, model.TagSpec{ResourceType: rt, Tags: tags})
	}
	return out, nil
}

func (p params) page() (model.Page, error) {
	n, err := p.intOpt("MaxResults")
	if err != nil {
		return model.Page{}, err
	}
	if p.has("MaxResults") && n == 0 {
		return model.Page{}, model.Errf(model.CodeInvalidParameterValue, "Value ( 0 ) for parameter maxResults is invalid.")
	}
	return model.Page{MaxResults: n, NextToken: p.str("NextToken")}, nil
}

func (p params) describe(idParam string) (model.DescribeInput, error) {
	var in model.DescribeInput
	var err error
	if in.IDs, err = p.list(idParam); err != nil {
		return in, err
	}
	if in.Filters, err = p.filters(); err != nil {
		return in, err
	}
	in.Page, err = p.page()
	return in, err
}
