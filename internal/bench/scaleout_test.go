package bench

import (
	"errors"
	"testing"
)

func TestFirstError(t *testing.T) {
	a, b := errors.New("pod s1: no address"), errors.New("pod s2: no address")
	if err := firstError([]error{nil, nil}); err != nil {
		t.Errorf("no failures: %v", err)
	}
	if err := firstError([]error{nil, a}); err != a {
		t.Errorf("one failure: %v, want it as it is", err)
	}
	err := firstError([]error{nil, a, b, b})
	if !errors.Is(err, a) || err.Error() != "pod s1: no address (and 2 more pods failed)" {
		t.Errorf("three failures: %q", err)
	}
}
