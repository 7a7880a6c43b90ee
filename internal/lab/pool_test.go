package lab

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	growingMsg  = "no free address now (0 assigned, 0 cooling down); the pool is growing: warm ENI target 1: assign 5"
	atTargetMsg = "no free address now (0 assigned, 0 cooling down): the pool is at its target (WARM_ENI_TARGET=0); an ADD makes it grow"
)

// A node is reported after its pool's first top-up, not at the moment it turned ready: the
// DaemonSet's agent is first seen before it runs, and a ready agent may hold none yet.
func TestWaitPoolWaitsForTheFirstTopUp(t *testing.T) {
	seq := []NodeInfo{
		{Name: "n", Agent: AgentInfo{Reason: "unreachable", Message: "dial unix: no such file"}},
		{Name: "n", Agent: AgentInfo{Ready: true, Reason: "no-addresses", Message: growingMsg}},
		{}, // the lab did not answer this time
		{Name: "n", Agent: AgentInfo{Ready: true, Free: 5, Message: "5 addresses free"}, ENIs: []ENIInfo{{ID: "eni-1"}}},
		{Name: "n", Agent: AgentInfo{Ready: true, Free: 9}},
	}
	calls := 0
	get := func(context.Context) (NodeInfo, error) {
		n := seq[calls]
		calls++
		if n.Name == "" {
			return n, errors.New("lab down")
		}
		return n, nil
	}
	first := NodeInfo{Name: "n"}
	got := waitPool(context.Background(), get, first, time.Minute, time.Millisecond)
	if calls != 4 || got.Agent.Free != 5 || len(got.ENIs) != 1 {
		t.Fatalf("after %d polls: %+v; want the 4th answer, 5 free on 1 ENI", calls, got)
	}
	if line := PoolLine(got.Agent); line != "5 address(es) free" {
		t.Errorf("PoolLine = %q", line)
	}
}

// An agent that holds none and fetches none (its target is 0) is reported at once, with its
// reason; one still growing at the bound is reported as growing, never as "0 free".
func TestWaitPoolStopsWhereThePoolRests(t *testing.T) {
	for _, tc := range []struct {
		name      string
		agent     AgentInfo
		wantCalls int
		wantLine  string
	}{
		{"at target", AgentInfo{Ready: true, Reason: "no-addresses", Message: atTargetMsg}, 1, "no address free (agent: " + atTargetMsg + ")"},
		{"full", AgentInfo{Ready: true, Reason: "max-pods", Message: "full: pods hold all 15"}, 1, "no address free (agent: full: pods hold all 15)"},
		{"growing past the bound", AgentInfo{Ready: true, Reason: "no-addresses", Message: growingMsg}, 0, "no address free yet (agent: " + growingMsg + ")"},
		{"never ready", AgentInfo{Reason: "starting", Message: "reading IMDS"}, 0, "agent not ready (starting: reading IMDS)"},
	} {
		calls := 0
		get := func(context.Context) (NodeInfo, error) {
			calls++
			return NodeInfo{Name: "n", Agent: tc.agent}, nil
		}
		start := time.Now()
		got := waitPool(context.Background(), get, NodeInfo{Name: "n"}, 50*time.Millisecond, time.Millisecond)
		if tc.wantCalls != 0 && calls != tc.wantCalls {
			t.Errorf("%s: %d polls, want %d", tc.name, calls, tc.wantCalls)
		}
		if tc.wantCalls == 0 && (calls < 2 || time.Since(start) < 50*time.Millisecond) {
			t.Errorf("%s: returned after %d polls in %s, before the bound", tc.name, calls, time.Since(start))
		}
		if line := PoolLine(got.Agent); line != tc.wantLine {
			t.Errorf("%s: PoolLine = %q, want %q", tc.name, line, tc.wantLine)
		}
		if strings.Contains(PoolLine(got.Agent), "0 address") {
			t.Errorf("%s: %q reports a count of 0", tc.name, PoolLine(got.Agent))
		}
	}
}

// poolSettled recognises a growing pool by the agent's own words: they must still be there.
func TestAgentGrowingWording(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "agent", "status.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "; "+agentPoolGrowing+": ") {
		t.Fatalf("internal/agent/status.go no longer says %q when the pool grows: update agentPoolGrowing", agentPoolGrowing)
	}
}
