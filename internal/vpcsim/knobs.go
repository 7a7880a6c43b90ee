package vpcsim

import (
	"context"
	"time"

	"golang.org/x/time/rate"

	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
)

// rateLimiter is a token bucket for one action.
type rateLimiter struct{ *rate.Limiter }

func newRateLimiter(r Rate) *rateLimiter {
	return &rateLimiter{rate.NewLimiter(rate.Limit(r.PerSecond), max(r.Burst, 1))}
}

// asyncLatency names the actions whose latency is spent in a pending state rather than
// before the reply: the attachment stays attaching (or detaching) for that long.
var asyncLatency = map[string]bool{"AttachNetworkInterface": true, "DetachNetworkInterface": true}

// SetLatency sets an action's latency; 0 removes it.
func (s *Server) SetLatency(action string, d time.Duration) {
	s.knobMu.Lock()
	defer s.knobMu.Unlock()
	if d <= 0 {
		delete(s.latency, action)
		return
	}
	s.latency[action] = d
}

// SetThrottle sets an action's token bucket ("*" for every action); a zero Rate removes it.
func (s *Server) SetThrottle(action string, r Rate) {
	s.knobMu.Lock()
	defer s.knobMu.Unlock()
	if r.PerSecond <= 0 && r.Burst <= 0 {
		delete(s.limiters, action)
		return
	}
	s.limiters[action] = newRateLimiter(r)
}

// SetFailRate sets the share (0..1) of an action's calls that fail with InternalError
// ("*" for every action); 0 removes it.
func (s *Server) SetFailRate(action string, r float64) {
	s.knobMu.Lock()
	defer s.knobMu.Unlock()
	if r <= 0 {
		delete(s.fail, action)
		return
	}
	s.fail[action] = min(r, 1)
}

// SetDeny makes an action ("*" for all) answer UnauthorizedOperation, or allows it again.
func (s *Server) SetDeny(action string, deny bool) {
	s.knobMu.Lock()
	defer s.knobMu.Unlock()
	if !deny {
		delete(s.deny, action)
		return
	}
	s.deny[action] = true
}

func (s *Server) latencyOf(action string) time.Duration {
	s.knobMu.Lock()
	defer s.knobMu.Unlock()
	return s.latency[action]
}

// Admit applies the knobs before a call, in EC2's order: permission (the caller's role, then
// the deny knob), throttling, then the call itself (an injected failure, latency). The caller
// was authenticated before. It implements ec2api.Backend.
func (s *Server) Admit(ctx context.Context, action, caller string) error {
	if err := s.permitted(action, caller); err != nil {
		return err
	}
	s.knobMu.Lock()
	if s.deny[action] || s.deny["*"] {
		s.knobMu.Unlock()
		return model.Unauthorized()
	}
	for _, key := range []string{action, "*"} {
		if l := s.limiters[key]; l != nil && !l.Allow() {
			s.knobMu.Unlock()
			s.log.Debug("vpcsim: throttled", "action", action)
			return model.Throttled()
		}
	}
	failRate, ok := s.fail[action]
	if !ok {
		failRate = s.fail["*"]
	}
	failed := failRate > 0 && s.rng.Float64() < failRate
	delay := s.latency[action]
	s.knobMu.Unlock()
	if failed {
		return model.Internal()
	}
	if delay > 0 && !asyncLatency[action] {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return model.Errf(model.CodeInternalError, "request cancelled")
		}
	}
	return nil
}
