package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Target is what a figure should reach: its ratio to the reference (or, with OnValue, the
// figure itself) compared with Limit by Op ("<=", "<", ">=" or ">").
type Target struct {
	OnValue bool    `json:"onValue,omitempty"`
	Op      string  `json:"op"`
	Limit   float64 `json:"limit"`
}

// Met says whether the row's figures meet t.
func (t Target) Met(value, ratio float64) bool {
	x := ratio
	if t.OnValue {
		x = value
	}
	switch t.Op {
	case "<=":
		return x <= t.Limit
	case "<":
		return x < t.Limit
	case ">=":
		return x >= t.Limit
	case ">":
		return x > t.Limit
	}
	return false
}

// String is the target as the table shows it: "ratio <= 1.3", ">= 90%".
func (t Target) String(unit string) string {
	if t.OnValue {
		return t.Op + " " + formatValue(t.Limit, unit)
	}
	return "ratio " + t.Op + " " + strconv.FormatFloat(t.Limit, 'f', -1, 64)
}

// NoReference is the Reference of a figure that has none.
const NoReference = "-"

// Row is one figure of one scenario, with its reference: measured in the same run, but for the
// churn rows' upstream figures (fixed, from issue 16) and the ceiling rows' (computed on the trace).
type Row struct {
	Scenario  string  `json:"scenario"`
	Figure    string  `json:"figure"`
	Unit      string  `json:"unit"` // ms, %, Gbit/s, MiB, calls, ...
	Value     float64 `json:"value"`
	Reference string  `json:"reference"` // what the reference is
	RefValue  float64 `json:"refValue"`
	Ratio     float64 `json:"ratio"` // Value / RefValue, or the median of per-round ratios where rounds pair them (dataplane)
	Target    *Target `json:"target,omitempty"`
	Pass      *bool   `json:"pass,omitempty"`
}

// NewRow fills in the ratio and, with a target, pass or miss.
func NewRow(scenario, figure, unit string, value float64, reference string, refValue float64, t *Target) Row {
	r := Row{Scenario: scenario, Figure: figure, Unit: unit, Value: value, Reference: reference, RefValue: refValue,
		Ratio: Ratio(value, refValue), Target: t}
	if t != nil {
		ok := t.Met(r.Value, r.Ratio)
		r.Pass = &ok
	}
	return r
}

// Machine is what the bench ran on.
type Machine struct {
	CPUs   int    `json:"cpus"`
	CPU    string `json:"cpu"`
	Kernel string `json:"kernel"`
}

// Report is a whole run.
type Report struct {
	Machine   Machine  `json:"machine"`
	Command   string   `json:"command"`
	Short     bool     `json:"short"`
	Scenarios []string `json:"scenarios"`
	Took      Seconds  `json:"tookSeconds"`
	Rows      []Row    `json:"rows"`
	Notes     []string `json:"notes,omitempty"` // what each scenario did, in a sentence or two
}

// Seconds is a duration that marshals as seconds.
type Seconds time.Duration

// MarshalJSON writes the duration in seconds.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return json.Marshal(math.Round(time.Duration(s).Seconds()*10) / 10)
}

// UnmarshalJSON reads seconds.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*s = Seconds(f * float64(time.Second))
	return nil
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report as one aligned table, then the notes.
func WriteTable(w io.Writer, r Report) error {
	fmt.Fprintf(w, "vpcnet lab bench: %d CPU(s), %s, kernel %s; %s in %s\n\n",
		r.Machine.CPUs, r.Machine.CPU, r.Machine.Kernel, mode(r.Short), time.Duration(r.Took).Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tFIGURE\tVALUE\tREFERENCE\tREF VALUE\tRATIO\tTARGET\tRESULT")
	for _, row := range r.Rows {
		target, result := "-", "-"
		if row.Target != nil {
			target = row.Target.String(row.Unit)
			result = "miss"
			if row.Pass != nil && *row.Pass {
				result = "pass"
			}
		}
		ref := formatValue(row.RefValue, row.Unit)
		if row.Reference == NoReference || row.Reference == FullTraceOnly {
			ref = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Scenario, row.Figure, formatValue(row.Value, row.Unit),
			row.Reference, ref, formatRatio(row.Ratio), target, result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range r.Notes {
			fmt.Fprintln(w, n)
		}
	}
	return nil
}

func mode(short bool) string {
	if short {
		return "short run"
	}
	return "full run"
}

// formatValue prints a figure with its unit and a precision that suits its size.
func formatValue(v float64, unit string) string {
	switch unit {
	case "%":
		return fmt.Sprintf("%.1f%%", v)
	case "":
		return trimFloat(v)
	}
	return trimFloat(v) + " " + unit
}

// trimFloat prints 3 significant digits for small values, whole numbers for large ones.
func trimFloat(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
	}
}

func formatRatio(r float64) string {
	if r == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", r)
}
