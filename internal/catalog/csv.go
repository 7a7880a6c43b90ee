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

// maxLimit bounds every number in the file, so arithmetic on the limits cannot overflow.
const maxLimit = 1 << 20

// fieldError is a problem with one field of a record; col is 0-based.
type fieldError struct {
	col int
	msg string
}

func (e *fieldError) Error() string { return e.msg }

func fieldErr(col int, format string, args ...any) error {
	return &fieldError{col: col, msg: fmt.Sprintf(format, args...)}
}

// Parse reads the instance-type CSV format. source names the input in errors and in the
// catalog. Every error names the line and the column at fault, as
// "SOURCE: line L, column C (NAME): what is wrong".
func Parse(r io.Reader, source string) (*Catalog, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: line 1, column 1: empty file, expected the header %q", source, strings.Join(columns, ","))
	}
	if err != nil {
		return nil, csvError(source, err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	if err := checkHeader(header); err != nil {
		return nil, fmt.Errorf("%s: line 1, %w", source, err)
	}
	var types []InstanceType
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(source, err)
		}
		t, err := parseRecord(rec)
		if err != nil {
			var fe *fieldError
			if !errors.As(err, &fe) {
				return nil, fmt.Errorf("%s: %w", source, err)
			}
			line, _ := cr.FieldPos(min(fe.col, len(rec)-1))
			return nil, fmt.Errorf("%s: line %d, column %d%s: %s", source, line, fe.col+1, columnName(fe.col), fe.msg)
		}
		line, _ := cr.FieldPos(0)
		if first, dup := seen[t.Name]; dup {
			return nil, fmt.Errorf("%s: line %d, column 1 (instance_type): %q is listed twice (first on line %d)", source, line, t.Name, first)
		}
		seen[t.Name] = line
		types = append(types, t)
	}
	if len(types) == 0 {
		return nil, fmt.Errorf("%s: line 2, column 1: no instance types after the header", source)
	}
	return New(source, types), nil
}

// csvError turns an encoding/csv error into one naming line and column.
func csvError(source string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: line %d, column %d: %v", source, pe.Line, pe.Column, pe.Err)
	}
	return fmt.Errorf("%s: %w", source, err)
}

func columnName(col int) string {
	if col < len(columns) {
		return " (" + columns[col] + ")"
	}
	return ""
}

func checkHeader(header []string) error {
	for i, want := range columns {
		if i >= len(header) {
			return fmt.Errorf("column %d: header ends after %d columns, expected %q next", i+1, len(header), want)
		}
		if got := strings.TrimSpace(header[i]); got != want {
			return fmt.Errorf("column %d: header names %q, expected %q", i+1, got, want)
		}
	}
	if len(header) > len(columns) {
		return fmt.Errorf("column %d: unexpected header column %q, expected %d columns", len(columns)+1, header[len(columns)], len(columns))
	}
	return nil
}

func parseRecord(rec []string) (InstanceType, error) {
	if len(rec) < len(columns) {
		return InstanceType{}, fieldErr(len(rec), "row ends after %d fields, expected %d", len(rec), len(columns))
	}
	if len(rec) > len(columns) {
		return InstanceType{}, fieldErr(len(columns), "unexpected extra field %q, expected %d fields", rec[len(columns)], len(columns))
	}
	t := InstanceType{Name: strings.TrimSpace(rec[0])}
	if t.Name == "" || strings.ContainsFunc(t.Name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return t, fieldErr(0, "%q is not an instance type name", rec[0])
	}
	switch h := strings.TrimSpace(rec[1]); h {
	case "nitro", "xen":
		t.Hypervisor = h
	case "", "unknown":
		t.Hypervisor = ""
	default:
		return t, fieldErr(1, "%q: expected nitro, xen, unknown or empty", h)
	}
	bm, err := strconv.ParseBool(strings.TrimSpace(rec[2]))
	if err != nil {
		return t, fieldErr(2, "%q: expected true or false", rec[2])
	}
	t.BareMetal = bm
	if t.MaxENIs, err = number(3, rec[3], 1); err != nil {
		return t, err
	}
	if t.IPv4PerENI, err = number(4, rec[4], 1); err != nil {
		return t, err
	}
	if t.DefaultNetworkCard, err = number(5, rec[5], 0); err != nil {
		return t, err
	}
	if t.NetworkCards, err = networkCards(rec[6]); err != nil {
		return t, err
	}
	if len(t.NetworkCards) > 0 && !hasCard(t.NetworkCards, t.DefaultNetworkCard) {
		return t, fieldErr(6, "%q does not list the default network card %d", rec[6], t.DefaultNetworkCard)
	}
	return t, nil
}

// networkCards parses "INDEX:MAX_INTERFACES ..." (column 7).
func networkCards(s string) ([]NetworkCard, error) {
	var cards []NetworkCard
	for _, f := range strings.Fields(s) {
		idx, max, ok := strings.Cut(f, ":")
		if !ok {
			return nil, fieldErr(6, "entry %q: expected INDEX:MAX_INTERFACES", f)
		}
		i, err1 := strconv.Atoi(idx)
		n, err2 := strconv.Atoi(max)
		if err1 != nil || err2 != nil || i < 0 || i > maxLimit || n < 1 || n > maxLimit {
			return nil, fieldErr(6, "entry %q: expected INDEX:MAX_INTERFACES with INDEX 0 or more and MAX_INTERFACES 1 or more", f)
		}
		if hasCard(cards, i) {
			return nil, fieldErr(6, "entry %q: network card %d listed twice", f, i)
		}
		cards = append(cards, NetworkCard{Index: i, MaxInterfaces: n})
	}
	return cards, nil
}

func hasCard(cards []NetworkCard, index int) bool {
	for _, c := range cards {
		if c.Index == index {
			return true
		}
	}
	return false
}

// number parses a whole number in [least, maxLimit] from column col.
func number(col int, s string, least int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < least || n > maxLimit {
		return 0, fieldErr(col, "%q: expected a whole number from %d to %d", s, least, maxLimit)
	}
	return n, nil
}
