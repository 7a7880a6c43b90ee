package vpcsim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/vpcsim/ec2api"
)

// Actions lists the EC2 actions vpcsim serves.
func Actions() []string { return ec2api.Actions() }

func checkAction(a string) error {
	if a == "*" || slices.Contains(ec2api.Actions(), a) {
		return nil
	}
	return fmt.Errorf("unknown action %q (one of %s, or *)", a, strings.Join(ec2api.Actions(), ", "))
}

func splitPairs(s string) ([][2]string, error) {
	var out [][2]string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%q is not ACTION=VALUE", item)
		}
		if err := checkAction(k); err != nil {
			return nil, err
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// ParseLatency parses "ACTION=DURATION,..." (e.g. "AttachNetworkInterface=2s").
func ParseLatency(s string) (map[string]time.Duration, error) {
	pairs, err := splitPairs(s)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Duration{}
	for _, p := range pairs {
		d, err := time.ParseDuration(p[1])
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%s: %q is not a duration such as 500ms or 2s", p[0], p[1])
		}
		out[p[0]] = d
	}
	return out, nil
}

// ParseThrottle parses "ACTION=RATE/BURST,..." (e.g. "*=20/40,AssignPrivateIpAddresses=5/10").
func ParseThrottle(s string) (map[string]Rate, error) {
	pairs, err := splitPairs(s)
	if err != nil {
		return nil, err
	}
	out := map[string]Rate{}
	for _, p := range pairs {
		rs, bs, ok := strings.Cut(p[1], "/")
		r, rerr := strconv.ParseFloat(rs, 64)
		b, berr := strconv.Atoi(bs)
		if !ok || rerr != nil || berr != nil || r <= 0 || b < 1 {
			return nil, fmt.Errorf("%s: %q is not RATE/BURST with RATE > 0 per second and BURST >= 1", p[0], p[1])
		}
		out[p[0]] = Rate{PerSecond: r, Burst: b}
	}
	return out, nil
}

// ParseFail parses "ACTION=RATE,..." with RATE in 0..1 (e.g. "AttachNetworkInterface=0.1").
func ParseFail(s string) (map[string]float64, error) {
	pairs, err := splitPairs(s)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, p := range pairs {
		f, err := strconv.ParseFloat(p[1], 64)
		if err != nil || f < 0 || f > 1 {
			return nil, fmt.Errorf("%s: %q is not a rate between 0 and 1", p[0], p[1])
		}
		out[p[0]] = f
	}
	return out, nil
}

// ParseDeny parses "ACTION,..." for the UnauthorizedOperation knob.
func ParseDeny(s string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if err := checkAction(a); err != nil {
			return nil, err
		}
		out[a] = true
	}
	return out, nil
}
