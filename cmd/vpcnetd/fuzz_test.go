package main

import (
	"strings"
	"testing"
)

// FuzzSettings: any value of any setting, from the environment or a flag, either parses into a
// config whose counts and durations are not negative, or is refused with one line naming the
// setting; nothing panics.
func FuzzSettings(f *testing.F) {
	for _, s := range settings {
		f.Add(uint8(0), s.def, false)
	}
	f.Add(uint8(6), "-5", false)
	f.Add(uint8(6), "99999999999", true)
	f.Add(uint8(1), "3\n", true)
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
			if msg := err.Error(); !strings.HasPrefix(msg, s.name+": ") {
				t.Fatalf("%s=%q: error %q does not start with the setting's name", s.name, v, msg)
			}
			return
		}
		p := c.Pool
		if p.WarmENITarget < 0 || p.WarmIPTarget < 0 || p.MinimumIPTarget < 0 || p.WarmPrefixTarget < 0 || p.MaxENI < 0 || p.MaxPods < 0 ||
			p.Cooldown < 0 || p.ReleaseDelay < 0 || c.MTU < 0 {
			t.Fatalf("%s=%q gave a negative setting: %+v", s.name, v, p)
		}
	})
}
