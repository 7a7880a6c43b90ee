package k8s

import (
	"regexp"
	"strconv"
	"strings"
)

// SpecResult is one finished spec as ginkgo's verbose reporter prints it.
type SpecResult struct {
	Text    string  // the spec's full text, without its trailing label list
	State   string  // passed, failed, skipped, panicked, timedout, interrupted, aborted
	Seconds float64 // the spec's run time
}

// SpecParser reads e2e.test's output (ginkgo v2, --ginkgo.v --ginkgo.no-color) one line at a
// time. Ginkgo frames each spec with a rule line of 30 dashes; the spec's text is the first
// non-blank line after the rule, or after the end marker in the reporter's other layout. The end
// marker is "• [12.3 seconds]", "• [FAILED] [12.3 seconds]", "S [SKIPPED] [0.0 seconds]" and
// so on. The summary is "Ran 4 of 3206 Specs in 57.3 seconds" and "4 Passed | 0 Failed | 0
// Pending | 3202 Skipped". Lines it does not know are ignored; it never fails.
type SpecParser struct {
	Done                             int // specs finished so far
	SkippedAtRun                     int // selected specs that skipped themselves (Skip at run time)
	Ran, Total                       int
	Passed, Failed, Pending, Skipped int

	spec      string
	afterRule bool
	pending   *SpecResult // an end marker waiting for its text
}

var (
	ranRe     = regexp.MustCompile(`^Ran (\d+) of (\d+) Specs`)
	countsRe  = regexp.MustCompile(`(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped`)
	specEndRe = regexp.MustCompile(`^(•|S) (?:\[(FAILED|PANICKED|TIMEDOUT|SKIPPED|INTERRUPTED|ABORTED)\] )?\[([0-9.]+) seconds\]`)
	labelsRe  = regexp.MustCompile(` \[[^\[\]]*\]$`)
	rule      = strings.Repeat("-", 30)
)

// Line takes one line of output and returns a spec that it finished, if any.
func (p *SpecParser) Line(line string) (SpecResult, bool) {
	t := strings.TrimSpace(line)
	if m := ranRe.FindStringSubmatch(t); m != nil {
		p.Ran, _ = strconv.Atoi(m[1])
		p.Total, _ = strconv.Atoi(m[2])
	}
	if m := countsRe.FindStringSubmatch(t); m != nil {
		p.Passed, _ = strconv.Atoi(m[1])
		p.Failed, _ = strconv.Atoi(m[2])
		p.Pending, _ = strconv.Atoi(m[3])
		p.Skipped, _ = strconv.Atoi(m[4])
	}
	// Only a rule at the start of the line frames a spec: progress reports inside a spec
	// (a slow spec, an interrupt) hold indented rules followed by log lines.
	if strings.TrimRight(line, " \t\r") == rule {
		p.afterRule, p.spec = true, ""
		return SpecResult{}, false
	}
	if m := specEndRe.FindStringSubmatch(t); m != nil {
		r := SpecResult{State: "passed"}
		r.Seconds, _ = strconv.ParseFloat(m[3], 64)
		switch {
		case m[1] == "S" || m[2] == "SKIPPED":
			r.State = "skipped"
		case m[2] != "":
			r.State = strings.ToLower(m[2])
		}
		p.afterRule = false
		if p.spec != "" {
			r.Text, p.spec = p.spec, ""
			p.count(r)
			return r, true
		}
		p.pending = &r
		return SpecResult{}, false
	}
	if t == "" || !(p.afterRule || p.pending != nil) {
		return SpecResult{}, false
	}
	text := strings.TrimPrefix(t, "[It] ")
	for {
		s := labelsRe.ReplaceAllString(text, "")
		if s == text || !strings.Contains(s, " ") {
			break
		}
		// Keep the spec's own tags ([Conformance], [LinuxOnly]); drop ginkgo's label list,
		// which has a comma or repeats them.
		if last := text[len(s):]; !strings.Contains(last, ",") && !strings.Contains(last, "sig-") {
			break
		}
		text = s
	}
	p.afterRule = false
	if p.pending != nil {
		r := *p.pending
		p.pending = nil
		r.Text = text
		p.count(r)
		return r, true
	}
	p.spec = text
	return SpecResult{}, false
}

func (p *SpecParser) count(r SpecResult) {
	p.Done++
	if r.State == "skipped" {
		p.SkippedAtRun++
	}
}
