package main

import (
	"math"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzSettings: any value of any setting, from the environment or a flag, either parses into a
// config every part of the agent can use (counts and durations not negative, loop periods above
// their floor, absolute paths, a plain .conflist name, a finite EC2 rate, a loopback metrics
// address), or is refused with one line naming the setting; nothing panics.
func FuzzSettings(f *testing.F) {
	for i, s := range settings {
		f.Add(uint8(i), s.def, false)
	}
	f.Add(uint8(6), "-5", false)
	f.Add(uint8(6), "99999999999", true)
	f.Add(uint8(1), "3\n", true)
	for _, v := range []string{"0", "NaN", "Inf", "-1", "../../x.conflist", "x.sock", "relative/dir", "0.0.0.0:1", "127.0.0.1:99999", "localhost"} {
		for i := range settings {
			f.Add(uint8(i), v, false)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, v string, asFlag bool) {
		s := settings[int(which)%len(settings)]
		var args, env []string
		if asFlag {
			args = []string{"--" + s.name + "=" + v}
		} else {
			env = []string{s.name + "=" + v}
		}
		values, _, err := gather(args, env)
		if err != nil {
			return
		}
		c, err := parse(values)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, s.name+": ") {
				t.Fatalf("%s=%q: error %q does not start with the setting's name", s.name, v, msg)
			}
			if strings.Contains(msg, "\n") {
				t.Fatalf("%s=%q: error %q is not one line", s.name, v, msg)
			}
			return
		}
		p := c.Pool
		if p.WarmENITarget < 0 || p.WarmIPTarget < 0 || p.MinimumIPTarget < 0 || p.WarmPrefixTarget < 0 || p.MaxENI < 0 || p.MaxPods < 0 ||
			p.Cooldown < 0 || p.ReleaseDelay < 0 || p.WarmENIReleaseDelay < 0 || c.MTU < 0 {
			t.Fatalf("%s=%q gave a negative setting: %+v", s.name, v, p)
		}
		if c.Resync < time.Second || c.DetachedGrace < time.Second || c.SweepPeriod < time.Second || p.Backoff <= 0 || c.Cloud.MaxBackoff <= 0 {
			t.Fatalf("%s=%q gave a loop period below its floor: resync %v grace %v sweep %v backoff %v max backoff %v", s.name, v, c.Resync, c.DetachedGrace, c.SweepPeriod, p.Backoff, c.Cloud.MaxBackoff)
		}
		for _, path := range []string{c.Socket, c.StateDir, c.CNIConfDir} {
			if !filepath.IsAbs(path) {
				t.Fatalf("%s=%q gave a relative path %q", s.name, v, path)
			}
		}
		if c.CNIConfName != filepath.Base(c.CNIConfName) || c.CNIConfName == ".." || !strings.HasSuffix(c.CNIConfName, ".conflist") ||
			filepath.Dir(filepath.Join(c.CNIConfDir, c.CNIConfName)) != c.CNIConfDir {
			t.Fatalf("%s=%q gave a CNI config outside its directory: %q", s.name, v, c.CNIConfName)
		}
		if r := c.Cloud.RatePerSec; math.IsNaN(r) || math.IsInf(r, 0) || r <= 0 {
			t.Fatalf("%s=%q gave EC2 rate %v", s.name, v, r)
		}
		if c.MetricsAddr != "" {
			host, _, err := net.SplitHostPort(c.MetricsAddr)
			if ip, perr := netip.ParseAddr(host); err != nil || (host != "localhost" && (perr != nil || !ip.IsLoopback())) {
				t.Fatalf("%s=%q gave metrics address %q", s.name, v, c.MetricsAddr)
			}
		}
	})
}
