package vpcsim

import (
	"context"
	"errors"
	"fmt"
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

// How vpcsim answers a subnet that has no free address or /28 block left (Options.ExhaustionError).
const (
	// ExhaustionCodes answers InsufficientFreeAddressesInSubnet (addresses) and
	// InsufficientCidrBlocks (prefixes), EC2's documented codes. The default.
	ExhaustionCodes = "codes"
	// ExhaustionInvalidParameter answers InvalidParameterValue "There aren't sufficient free
	// Ipv4 addresses or prefixes", as EC2 is reported to answer some exhaustion cases (users of
	// the AWS VPC CNI and of Cilium, at least in prefix mode) on create, assign and attach.
	ExhaustionInvalidParameter = "invalid-parameter"
)

// ExhaustionMessage is EC2's wording in the InvalidParameterValue form of an exhaustion answer.
const ExhaustionMessage = "There aren't sufficient free Ipv4 addresses or prefixes"

// exhaustionActions are the calls whose exhaustion answer the knob changes.
var exhaustionActions = map[string]bool{"CreateNetworkInterface": true, "AssignPrivateIpAddresses": true, "AttachNetworkInterface": true}

// SetExhaustionError sets how exhaustion is answered: ExhaustionCodes ("" too) or
// ExhaustionInvalidParameter; anything else is an error and changes nothing.
func (s *Server) SetExhaustionError(style string) error {
	switch style {
	case "", ExhaustionCodes:
		style = ExhaustionCodes
	case ExhaustionInvalidParameter:
	default:
		return fmt.Errorf("vpcsim: exhaustion error %q: want %q or %q", style, ExhaustionCodes, ExhaustionInvalidParameter)
	}
	s.knobMu.Lock()
	defer s.knobMu.Unlock()
	s.exhaust = style
	return nil
}

// exhaustionAnswer rewrites an exhaustion error of a create, assign or attach call into the
// form the knob asks for.
func (s *Server) exhaustionAnswer(mu model.Mutation, err error) error {
	var me *model.Error
	if !errors.As(err, &me) || (me.Code != model.CodeInsufficientFreeAddresses && me.Code != model.CodeInsufficientCidrBlocks) ||
		!exhaustionActions[model.ActionOf(mu)] {
		return err
	}
	s.knobMu.Lock()
	style := s.exhaust
	s.knobMu.Unlock()
	if style != ExhaustionInvalidParameter {
		return err
	}
	return model.Errf(model.CodeInvalidParameterValue, ExhaustionMessage)
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
