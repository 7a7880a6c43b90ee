package cni

import (
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestAgentErrorNoAddress: an ADD the agent answers RESOURCE_EXHAUSTED is CNI code 11 carrying the
// agent's own words; the details no longer claim the agent "keeps asking the cloud", which is
// false for a full node (max-pods) or a pool at its target (issue 12 item 10).
func TestAgentErrorNoAddress(t *testing.T) {
	a := &agent{socket: "/nonexistent/vpcnetd.sock"}
	for _, msg := range []string{
		"no free address on this node: full: pods hold all 10 pod addresses this node can hold (2 ENIs x 5 addresses (the instance type's 3, less 1 tagged no_manage)); a pod gets one when another is deleted",
		"no free address on this node: no free address now (0 assigned, 0 cooling down): the pool is at its target (WARM_ENI_TARGET=0)",
	} {
		e := a.agentError("ADD", status.Error(codes.ResourceExhausted, msg))
		if e.Code != types.ErrTryAgainLater || e.Msg != msg {
			t.Errorf("code %d msg %q, want 11 with the agent's message", e.Code, e.Msg)
		}
		if strings.Contains(e.Details, "cloud") || strings.Contains(e.Details, "growing") {
			t.Errorf("details %q claim what the agent does not say", e.Details)
		}
	}
}
