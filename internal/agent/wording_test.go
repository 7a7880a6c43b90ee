package agent

import (
	"strings"
	"testing"
	"time"
)

// The subnet-exhausted message says what helps as actions, not as a parenthesis that reads like
// a list of where free addresses are ("free addresses in it (unused ENIs, other nodes' warm
// pools: ...)").
func TestSubnetExhaustedMessageSaysWhatToDo(t *testing.T) {
	msg := subnetExhaustedMessage("subnet-1", "10.10.2.0/28", 2, time.Date(2026, 11, 30, 3, 16, 30, 0, time.UTC))
	want := "subnet subnet-1 (10.10.2.0/28) has no free addresses (InsufficientFreeAddressesInSubnet, 2 in a row, last at 03:16:30): " +
		"to start more pods, free addresses in it (delete unused ENIs; shrink the other nodes' warm pools with a lower " +
		"WARM_ENI_TARGET or with WARM_IP_TARGET and MINIMUM_IP_TARGET) or give the nodes a bigger or an extra subnet"
	if msg != want {
		t.Errorf("message\n got: %s\nwant: %s", msg, want)
	}
	if strings.Contains(msg, "(unused ENIs,") {
		t.Errorf("message still lists: %s", msg)
	}
}
