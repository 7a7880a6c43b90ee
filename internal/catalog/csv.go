package catalog

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// columns is the header of the instance-type CSV format (shared/data/README.md).
var columns = []string{"instance_type", "hypervisor", "bare_metal", "max_enis", "ipv4_per_eni", "default_network_card", "network_cards"}

// Parse reads the instance-type CSV format. source names the input in errors and in the
// catalog. Every error names the line and the column at fault.
func Parse(r io.Reader, source string) (*Catalog, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file, expected header %q", source, strings.Join(columns, ","))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	if strings.Join(header, ",") != strings.Join(columns, ",") {
		return nil, fmt.Errorf("%s: line 1: header is %q, expected %q", source, strings.Join(header, ","), strings.Join(columns, ","))
	}
	var types []InstanceType
	seen := map[string]bool{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%s: line %d: %v", source, pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		t, err := parseRecord(rec)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", source, line, err)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("%s: line %d: instance type %q listed twice", source, line, t.Name)
		}
		seen[t.Name] = true
		types = append(types, t)
	}
	if len(types) == 0 {
		return nil, fmt.Errorf("%s: no instance types after the header", source)
	}
	return New(source, types), nil
}

func parseRecord(rec []string) (InstanceType, error) {
	if len(rec) != len(columns) {
		return InstanceType{}, fmt.Errorf("%d fields, expected %d", len(rec), len(columns))
	}
	t := InstanceType{Name: strings.TrimSpace(rec[0])}
	if t.Name == "" || strings.ContainsAny(t.Name, " \t") {
		return t, fmt.Errorf("instance_type %q is not a type name", rec[0])
	}
	switch h := strings.TrimSpace(rec[1]); h {
	case "nitro", "xen":
		t.Hypervisor = h
	case "", "unknown":
		t.Hypervisor = ""
	default:
		return t, fmt.Errorf("hypervisor %q: expected nitro, xen, unknown or empty", h)
	}
	bm, err := strconv.ParseBool(strings.TrimSpace(rec[2]))
	if err != nil {
		return t, fmt.Errorf("bare_metal %q: expected true or false", rec[2])
	}
	t.BareMetal = bm
	if t.MaxENIs, err = positive("max_enis", rec[3]); err != nil {
		return t, err
	}
	if t.IPv4PerENI, err = positive("ipv4_per_eni", rec[4]); err != nil {
		return t, err
	}
	if t.DefaultNetworkCard, err = nonNegative("default_network_card", rec[5]); err != nil {
		return t, err
	}
	for _, f := range strings.Fields(rec[6]) {
		idx, max, ok := strings.Cut(f, ":")
		if !ok {
			return t, fmt.Errorf("network_cards entry %q: expected INDEX:MAX_INTERFACES", f)
		}
		var nc NetworkCard
		if nc.Index, err = nonNegative("network_cards index", idx); err != nil {
			return t, err
		}
		if nc.MaxInterfaces, err = positive("network_cards max interfaces", max); err != nil {
			return t, err
		}
		t.NetworkCards = append(t.NetworkCards, nc)
	}
	return t, nil
}

func positive(field, s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 1<<20 {
		return 0, fmt.Errorf("%s %q: expected a positive whole number", field, s)
	}
	return n, nil
}

func nonNegative(field, s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > 1<<20 {
		return 0, fmt.Errorf("%s %q: expected a whole number, 0 or more", field, s)
	}
	return n, nil
}
