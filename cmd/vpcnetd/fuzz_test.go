package main

import (
	"math"
	"math/big"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
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

// FuzzRuntimeSettings: checkRuntime accepts a GOMEMLIMIT exactly when it is the runtime's syntax
// (digits, then nothing, B, KiB, MiB, GiB or TiB, the bytes fitting an int64; computed here
// with big integers), parseByteCount's value is that product, and GOMAXPROCS and GOGC are
// accepted exactly when they are 32-bit integers (above 0 for GOMAXPROCS; "off" for GOGC).
// Nothing panics and every refusal is one line naming the variable.
func FuzzRuntimeSettings(f *testing.F) {
	for _, v := range []string{"16MiB", "0", "1B", "KiB", "1KiB", "8TiB", "9223372036854775807", "9223372036854775808", "8388608TiB", "8388607TiB", "-0MiB", "-0MiB",
		"-1", "+5MiB", "lots", "16MB", "1iB", "off", "", " 2", "2147483647", "2147483648", "-2147483648"} {
		f.Add(v)
	}
	unitRE := regexp.MustCompile(`^([+-]?[0-9]+)(B|KiB|MiB|GiB|TiB)?$`)
	f.Fuzz(func(t *testing.T, v string) {
		want, wantOK := big.NewInt(0), false
		if m := unitRE.FindStringSubmatch(v); m != nil {
			n, _ := new(big.Int).SetString(strings.TrimPrefix(m[1], "+"), 10)
			shift := map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[m[2]]
			want.Lsh(n, shift)
			wantOK = n.Sign() >= 0 && want.IsInt64()
		}
		got, ok := parseByteCount(v)
		if ok != wantOK || ok && got != want.Int64() {
			t.Fatalf("parseByteCount(%q) = %d, %v; want %s, %v", v, got, ok, want, wantOK)
		}
		for _, name := range []string{envGOMAXPROCS, envGOGC, envGOMEMLIMIT} {
			err := checkRuntime(func(k string) string {
				if k == name {
					return v
				}
				return ""
			})
			n, perr := strconv.ParseInt(v, 10, 32)
			var accept bool
			switch name {
			case envGOMAXPROCS:
				accept = v == "" || perr == nil && n > 0
			case envGOGC:
				accept = v == "" || v == "off" || perr == nil
			case envGOMEMLIMIT:
				accept = v == "" || v == "off" || wantOK
			}
			if (err == nil) != accept {
				t.Fatalf("%s=%q: %v, want accepted %v", name, v, err, accept)
			}
			if err != nil && (strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), name+": ")) {
				t.Fatalf("%s=%q: error %q is not one line naming it", name, v, err)
			}
		}
	})
}
