package bench

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// fakeResult is a setting's figures on a trace, distinct per setting so that a row showing
// another setting's figure as its reference is visible.
func fakeResult(i int) churnResult {
	return churnResult{utilisation: 30 + float64(i), warm: 100, callsPerPod: 0.3 + float64(i)/100, readyP99: 50 + float64(i)}
}

// churnRun are the churn rows a whole run prints, scaled (both traces) or at real speed, with
// made-up figures, in the order runChurn and runChurnRealSpeed add them.
func churnRun(realSpeed, short bool) []Row {
	var rows []Row
	for ti := range ChurnTraces(short) {
		if realSpeed {
			for i, cfg := range realSpeedConfigs {
				if ti > 0 && !cfg.bursty {
					continue
				}
				sfx := churnSuffix(cfg, realSpeedFactor, ti)
				o := fakeResult(i)
				rows = append(rows, settingRows(cfg, ti == 0, realSpeedFactor, sfx, o, nil, short)...)
				rows = append(rows, boundRows(cfg, sfx, 70, 60, o.utilisation)...)
			}
			continue
		}
		var cfgs []churnConfig
		var res []churnResult
		for i, cfg := range churnConfigs {
			if ti > 0 && !cfg.bursty {
				continue
			}
			cfgs, res = append(cfgs, cfg), append(res, fakeResult(i))
		}
		for i, rs := range scaledRows(ti, cfgs, res, short) {
			rows = append(rows, rs...)
			rows = append(rows, boundRows(cfgs[i], churnSuffix(cfgs[i], 1, ti), 70, 60, res[i].utilisation)...)
		}
	}
	return rows
}

func table(t *testing.T, rows []Row, short bool) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteTable(&b, Report{Short: short, Rows: rows}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// With --short the churn rows play a shortened trace: none claims pass or miss against
// upstream's full-trace figures or issue 16's full-trace targets, and no upstream figure is
// shown as their reference (issue: "14.2 % vs >= 36.7 % → miss" on an 8 s trace).
func TestChurnRowsShortClaimNothing(t *testing.T) {
	for _, realSpeed := range []bool{false, true} {
		rows := churnRun(realSpeed, true)
		upstreamRows := 0
		for _, r := range rows {
			if r.Target != nil || r.Pass != nil {
				t.Errorf("real speed %v, short: %q has target %v", realSpeed, r.Figure, r.Target)
			}
			if strings.HasPrefix(r.Reference, "upstream") && r.Reference != FullTraceOnly {
				t.Errorf("real speed %v, short: %q compares with upstream's full-trace figure %v", realSpeed, r.Figure, r.RefValue)
			}
			if r.Reference == FullTraceOnly {
				upstreamRows++
				if r.RefValue != 0 || r.Ratio != 0 || r.Value <= 0 {
					t.Errorf("%q: value %v, reference value %v, ratio %v", r.Figure, r.Value, r.RefValue, r.Ratio)
				}
			}
		}
		// scaled: 4 AWS settings × 3 rows; real speed: the 2 with upstream real-speed figures.
		if want := map[bool]int{false: 12, true: 6}[realSpeed]; upstreamRows != want {
			t.Errorf("real speed %v, short: %d rows marked %q, want %d", realSpeed, upstreamRows, FullTraceOnly, want)
		}
		out := table(t, rows, true)
		if strings.Contains(out, "pass") || strings.Contains(out, "miss") || !regexp.MustCompile(`% +`+FullTraceOnly+` +- +- +- +-\n`).MatchString(out) {
			t.Errorf("real speed %v, short table:\n%s", realSpeed, out)
		}
		// The ceiling rows are computed for the trace that ran: they stay.
		if !strings.Contains(out, ceilingAtCalls) {
			t.Errorf("short table without ceiling rows:\n%s", out)
		}
	}
	// The full run keeps its claims.
	claims := 0
	for _, r := range churnRun(false, false) {
		if r.Pass != nil {
			claims++
		}
	}
	if claims == 0 {
		t.Error("the full run's churn rows claim nothing")
	}
}

// shortNote says the short trace is a smoke run, not comparable with upstream.
func TestChurnShortNote(t *testing.T) {
	tr := ChurnTraces(true)[0]
	n := traceNote(true, true, tr.Spec)
	if !strings.Contains(n, "smoke run") || !strings.Contains(n, "not comparable with upstream") || !strings.Contains(n, "8s") {
		t.Errorf("short note %q", n)
	}
	if n := traceNote(true, false, ChurnTraces(false)[0].Spec); !strings.Contains(n, "copied from issue 16, not measured in this run") {
		t.Errorf("full churn-trace note %q", n)
	}
}

// Every upstream reference whose warm share is under 99 % says it where it is printed, so that
// upstream's utilisation is not read as won with warm ADDs; upstream's warm figure is the row's.
func TestChurnUpstreamReferenceWarm(t *testing.T) {
	want := map[string]string{
		"utilisation, default (WARM_ENI_TARGET=1)":                        "upstream",
		"utilisation, WARM_IP_TARGET=3":                                   "upstream (53-64 % warm)",
		"utilisation, WARM_IP_TARGET=3, MINIMUM_IP_TARGET=10":             "upstream (73 % warm)",
		"utilisation, prefix + WARM_IP_TARGET=3":                          "upstream (98.9 % warm)",
		"EC2 calls per pod, WARM_IP_TARGET=3":                             "upstream (53-64 % warm)",
		"utilisation, default (WARM_ENI_TARGET=1), real speed":            "upstream, real speed",
		"utilisation, WARM_IP_TARGET=3, real speed":                       "upstream, real speed (95.5 % warm)",
		"ADDs served warm, WARM_IP_TARGET=3, real speed":                  "upstream, real speed (95.5 % warm)",
		"utilisation, WARM_IP_TARGET=3, MINIMUM_IP_TARGET=10, real speed": NoReference,
	}
	got := map[string]Row{}
	for _, rs := range [][]Row{churnRun(false, false), churnRun(true, false)} {
		for _, r := range rs {
			got[r.Figure] = r
		}
	}
	for fig, ref := range want {
		r, ok := got[fig]
		if !ok {
			t.Errorf("no row %q", fig)
			continue
		}
		if r.Reference != ref || (ref != NoReference && (r.RefValue <= 0 || r.Pass == nil)) {
			t.Errorf("%q: reference %q (%v, pass %v), want %q", fig, r.Reference, r.RefValue, r.Pass, ref)
		}
	}
	for _, cfgs := range [][]churnConfig{churnConfigs, realSpeedConfigs} {
		for _, cfg := range cfgs {
			if up := cfg.upstream; up != nil && up.warm < 99 && !strings.HasSuffix(up.reference(1), "("+up.warmShown+" warm)") {
				t.Errorf("%s: warm %v, reference %q", cfg.label, up.warm, up.reference(1))
			}
		}
	}
}

// No row compares a setting with itself: the default on the bursty trace has no reference
// (the issue: its rows printed ratio 1.00 against "default (WARM_ENI_TARGET=1)").
func TestChurnNoSelfReference(t *testing.T) {
	for _, realSpeed := range []bool{false, true} {
		for _, r := range churnRun(realSpeed, false) {
			if r.Reference != NoReference && strings.Contains(r.Figure, ", "+r.Reference) {
				t.Errorf("%q compares with %q", r.Figure, r.Reference)
			}
		}
	}
	for _, r := range churnRun(false, false) {
		if r.Figure == "utilisation, WARM_IP_TARGET=3, bursty trace" &&
			(r.Reference != churnConfigs[0].label || r.RefValue != fakeResult(0).utilisation) {
			t.Errorf("bursty WARM_IP_TARGET=3: reference %q %v, want the default's on that trace", r.Reference, r.RefValue)
		}
		if r.Figure == "utilisation, default (WARM_ENI_TARGET=1), bursty trace" && (r.Reference != NoReference || r.Ratio != 0) {
			t.Errorf("bursty default: reference %q, ratio %v", r.Reference, r.Ratio)
		}
	}
}

// The ceiling rows' names are no longer than the churn rows beside them need (the issue: ~115
// characters, a table ~230 columns wide); the full run's table, scaled or real speed, stays
// within 190 columns.
func TestChurnTableWidth(t *testing.T) {
	for _, realSpeed := range []bool{false, true} {
		rows := churnRun(realSpeed, false)
		longest := 0
		for _, r := range rows {
			if !strings.HasPrefix(r.Figure, "ceiling") {
				longest = max(longest, utf8.RuneCountInString(r.Figure))
			}
		}
		for _, r := range rows {
			if n := utf8.RuneCountInString(r.Figure); strings.HasPrefix(r.Figure, "ceiling") && n > longest+20 {
				t.Errorf("%q: %d characters, the other rows' longest %d", r.Figure, n, longest)
			}
		}
		out := table(t, rows, false)
		for _, line := range strings.Split(out, "\n") {
			if n := utf8.RuneCountInString(line); n > 190 {
				t.Errorf("real speed %v: a line of %d columns:\n%s", realSpeed, n, line)
			}
		}
		if testing.Verbose() {
			t.Logf("\n%s", out)
		}
	}
}
