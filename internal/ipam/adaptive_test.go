package ipam

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// every returns n start times ending at t0, d apart.
func every(n int, d time.Duration) []time.Time {
	var out []time.Time
	for i := n - 1; i >= 0; i-- {
		out = append(out, t0.Add(-time.Duration(i)*d))
	}
	return out
}

func TestAdaptiveOf(t *testing.T) {
	big := Limits{MaxENIs: 3, IPv4PerENI: 30}
	for _, tc := range []struct {
		name                 string
		h                    History
		delay                time.Duration
		rate                 float64
		burst, target, batch int
		replenish            time.Duration
	}{
		{name: "nothing seen: two free (a pod and one starting with it), no batch, the default replenish", delay: 10 * time.Second,
			target: NothingSeenTarget, replenish: DefaultReplenish},
		{name: "one start a second, 500ms replenish, 10s release delay",
			h:     History{Starts: every(31, time.Second), Replenish: []time.Duration{400 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second}},
			delay: 10 * time.Second, rate: 31.0 / 30, burst: 2, target: 3, batch: 11, replenish: 500 * time.Millisecond},
		{name: "a burst of 6 within 250ms sets the target above the rate's",
			h:     History{Starts: every(6, 50*time.Millisecond), Replenish: []time.Duration{time.Second}},
			delay: 3 * time.Second, rate: 6.0 / 1, burst: 6, target: 13, batch: 18, replenish: time.Second},
		{name: "starts older than the window are forgotten",
			h:     History{Starts: append([]time.Time{t0.Add(-time.Hour), t0.Add(-31 * time.Second)}, every(3, 10*time.Second)...)},
			delay: 30 * time.Second, rate: 3.0 / 20, burst: 1, target: 2, batch: 5, replenish: DefaultReplenish},
		{name: "the batch is at most one ENI's slots",
			h:     History{Starts: every(30, 100*time.Millisecond), Replenish: []time.Duration{10 * time.Millisecond}},
			delay: 30 * time.Second, rate: 30.0 / 2.9, burst: 1, target: 2, batch: 29, replenish: 10 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base(Settings{Adaptive: true, ReleaseDelay: tc.delay})
			s.Limits, s.History = big, tc.h
			ad := AdaptiveOf(s)
			if d := ad.StartRate - tc.rate; d > 0.01 || d < -0.01 {
				t.Errorf("rate %.3f, want %.3f", ad.StartRate, tc.rate)
			}
			if ad.Burst != tc.burst || ad.Target != tc.target || ad.Batch != tc.batch || ad.Replenish != tc.replenish {
				t.Errorf("burst %d target %d batch %d replenish %s, want %d %d %d %s (%s)", ad.Burst, ad.Target, ad.Batch, ad.Replenish,
					tc.burst, tc.target, tc.batch, tc.replenish, ad.Reason)
			}
		})
	}
}

func TestDecideAdaptive(t *testing.T) {
	ip0 := addrs("10.0.1.10", 29)
	oneASecond := History{Starts: every(31, time.Second), Replenish: []time.Duration{500 * time.Millisecond}} // 31 starts in 30 s: target 3, batch 11
	st := func(enis ...ENI) State {
		s := base(Settings{Adaptive: true, ReleaseDelay: 10 * time.Second}, enis...)
		s.Limits, s.History = Limits{MaxENIs: 3, IPv4PerENI: 30}, oneASecond
		return s
	}
	tests := []planCase{
		{name: "empty pool grows to target + batch in one call",
			state: st(ENI{ID: "eni-0"}),
			want:  "assign-ips eni-0 14", reason: "adaptive: 1.03 pod starts/s"},
		{name: "below target: tops up to target + batch, not by one",
			state: st(ENI{ID: "eni-0", IPs: ip0[:12]}),
			edit:  func(s *State) { s.Assigned = set(ip0[:10]) }, // 2 free < 3
			want:  "assign-ips eni-0 12"},
		{name: "within the band: no call",
			state: st(ENI{ID: "eni-0", IPs: ip0[:20]}),
			edit:  func(s *State) { s.Assigned = set(ip0[:10]) }, // 10 free, band 3..14
			want:  ""},
		{name: "above the band: waits for the release delay",
			state: st(ENI{ID: "eni-0", IPs: ip0}),
			edit:  func(s *State) { s.Assigned = set(ip0[:5]) }, // 24 free > 14
			want:  "", reason: "released at"},
		{name: "above the band for the release delay: releases down to target + batch + 1 in one call",
			state: st(ENI{ID: "eni-0", IPs: ip0}),
			edit:  func(s *State) { s.Assigned = set(ip0[:5]); s.OverSince = t0.Add(-11 * time.Second) },
			want:  "unassign-ips eni-0 " + fmtAddrs(reversed(ip0[20:])), reason: "releasing"},
		{name: "waiting ADDs are kept what they will take",
			state: st(ENI{ID: "eni-0", IPs: ip0}),
			edit: func(s *State) {
				s.Assigned = set(ip0[:5])
				s.OverSince = t0.Add(-11 * time.Second)
				s.Waiting = 20
			},
			want: "unassign-ips eni-0 " + fmtAddrs(reversed(ip0[25:]))},
		{name: "nothing seen: two free addresses, topped up when one is taken",
			state: func() State { s := st(ENI{ID: "eni-0", IPs: ip0[:2]}); s.History = History{}; return s }(),
			edit:  func(s *State) { s.Assigned = set(ip0[:1]) },
			want:  "assign-ips eni-0 1", reason: "2 free kept, batches of 0"},
		{name: "resting addresses count towards the batch: they are back within the cooldown",
			state: st(ENI{ID: "eni-0", IPs: ip0[:20]}),
			edit: func(s *State) {
				s.Assigned = set(ip0[:12])
				s.Released = rested(ip0[12:18], t0.Add(-time.Second)) // 6 resting, 2 free < 3
			},
			want: "assign-ips eni-0 6"}, // to 3 + 11 free or resting
		{name: "the target is kept free now, whatever rests; with no room, one more: an ENI for that alone",
			state: st(ENI{ID: "eni-0", IPs: ip0[:29]}),
			edit: func(s *State) {
				s.Assigned = set(ip0[:10])
				s.Released = rested(ip0[10:28], t0.Add(-time.Second)) // 18 resting, 1 free < 3, no room
			},
			want: "create-eni 3"}, // to 3 + 1 free
		{name: "the batch is fetched ahead only on ENIs with room: it never attaches an ENI",
			state: st(ENI{ID: "eni-0", IPs: ip0[:28]}),
			edit:  func(s *State) { s.Assigned = set(ip0[:26]) }, // 2 free < 3, room for 1
			want:  "assign-ips eni-0 1", reason: "fetched ahead only on ENIs with room"},
		{name: "an ENI is attached when the target itself needs one, with the batch",
			state: st(ENI{ID: "eni-0", IPs: ip0}),
			edit:  func(s *State) { s.Assigned = set(ip0[:27]) }, // 2 free < 3, no room
			want:  "create-eni 12"},
		{name: "released down to target + batch + 1 free or resting, the target free",
			state: st(ENI{ID: "eni-0", IPs: ip0}),
			edit: func(s *State) {
				s.Assigned = set(ip0[:5])
				s.Released = rested(ip0[5:9], t0.Add(-time.Second)) // 4 resting, 20 free
				s.OverSince = t0.Add(-11 * time.Second)
			},
			want: "unassign-ips eni-0 " + fmtAddrs(reversed(ip0[20:]))}, // 11 free + 4 resting = 3 + 11 + 1
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t) })
	}
}

// rested marks addresses released at at (resting for the cooldown from then).
func rested(as []netip.Addr, at time.Time) map[netip.Addr]time.Time {
	m := map[netip.Addr]time.Time{}
	for _, a := range as {
		m[a] = at
	}
	return m
}

func reversed[T any](in []T) []T {
	out := make([]T, 0, len(in))
	for i := len(in) - 1; i >= 0; i-- {
		out = append(out, in[i])
	}
	return out
}

func fmtAddrs(as []netip.Addr) string { return fmt.Sprint(as) }

// Under the IP targets a top-up adds a batch of half the starts one release delay sees, and the
// pool keeps up to WARM_IP_TARGET + batch free before releasing; with no starts seen the
// targets act as before.
func TestDecideIPTargetBatches(t *testing.T) {
	ip0 := addrs("10.0.1.10", 29)
	st := func(h History, enis ...ENI) State {
		s := base(Settings{WarmIPTarget: 3, ReleaseDelay: 10 * time.Second}, enis...)
		s.Limits, s.History = Limits{MaxENIs: 3, IPv4PerENI: 30}, h
		return s
	}
	seen := History{Starts: every(31, time.Second)} // 1.03/s × 10 s: 11 starts, batch 6
	tests := []planCase{
		{name: "no starts seen: the shortfall only",
			state: st(History{}, ENI{ID: "eni-0", IPs: ip0[:10]}),
			edit:  func(s *State) { s.Assigned = set(ip0[:8]) },
			want:  "assign-ips eni-0 1"},
		{name: "starts seen: shortfall plus a batch",
			state: st(seen, ENI{ID: "eni-0", IPs: ip0[:10]}),
			edit:  func(s *State) { s.Assigned = set(ip0[:8]) },
			want:  "assign-ips eni-0 7", reason: "top-ups of 6"},
		{name: "starts seen: the batch is kept, not released",
			state: st(seen, ENI{ID: "eni-0", IPs: ip0[:15]}),
			edit:  func(s *State) { s.Assigned = set(ip0[:6]); s.OverSince = t0.Add(-time.Minute) },
			want:  ""},
		{name: "starts seen: beyond WARM_IP_TARGET + batch is released",
			state: st(seen, ENI{ID: "eni-0", IPs: ip0}),
			edit:  func(s *State) { s.Assigned = set(ip0[:6]); s.OverSince = t0.Add(-time.Minute) },
			want:  "unassign-ips eni-0 " + fmtAddrs(reversed(ip0[15:]))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t) })
	}
}
