package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Metric is one sample line of the Prometheus text format.
type Metric struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// ParseMetrics reads the Prometheus text exposition format; comments and lines it cannot read
// are skipped.
func ParseMetrics(text string) []Metric {
	var out []Metric
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		m := Metric{Labels: map[string]string{}}
		rest := line
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			m.Name = line[:i]
			if !parseLabels(line[i+1:j], m.Labels) {
				continue
			}
			rest = strings.TrimSpace(line[j+1:])
		} else {
			name, r, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			m.Name, rest = name, strings.TrimSpace(r)
		}
		v, _, _ := strings.Cut(rest, " ") // a timestamp may follow
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue
		}
		m.Value = f
		out = append(out, m)
	}
	return out
}

// parseLabels reads `a="x",b="y"` into into.
func parseLabels(s string, into map[string]string) bool {
	for s = strings.TrimSpace(s); s != ""; {
		k, rest, ok := strings.Cut(s, "=")
		if !ok || len(rest) < 2 || rest[0] != '"' {
			return false
		}
		var val strings.Builder
		i := 1
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
				switch rest[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(rest[i])
				}
				continue
			}
			val.WriteByte(rest[i])
		}
		if i >= len(rest) {
			return false
		}
		into[strings.TrimSpace(k)] = val.String()
		s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest[i+1:]), ","))
	}
	return true
}

// SumMetric adds up the samples of name whose labels pass keep (nil keeps all).
func SumMetric(ms []Metric, name string, keep func(labels map[string]string) bool) float64 {
	var sum float64
	for _, m := range ms {
		if m.Name == name && (keep == nil || keep(m.Labels)) {
			sum += m.Value
		}
	}
	return sum
}

// ParseVmRSS returns the resident set size in bytes from /proc/PID/status.
func ParseVmRSS(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("VmRSS line %q", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in status")
}

// ParseCPUTicks returns utime + stime, in clock ticks, from /proc/PID/stat.
func ParseCPUTicks(stat string) (int64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat has no command name")
	}
	f := strings.Fields(stat[i+1:])
	// After the name: state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15).
	if len(f) < 13 {
		return 0, fmt.Errorf("stat has %d fields after the name", len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat utime %q stime %q", f[11], f[12])
	}
	return u + s, nil
}

// ParseIperf3 returns the receiver's throughput in bits per second from `iperf3 -J` output.
func ParseIperf3(out []byte) (float64, error) {
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, fmt.Errorf("iperf3 output: %w", err)
	}
	if r.Error != "" {
		return 0, fmt.Errorf("iperf3: %s", r.Error)
	}
	if r.End.SumReceived.BitsPerSecond <= 0 {
		return 0, fmt.Errorf("iperf3 reported no throughput")
	}
	return r.End.SumReceived.BitsPerSecond, nil
}
