package lab

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// FirstTopUpWait bounds how long `lab up` and `lab node add` wait, once a node is ready, for its
// warm pool's first top-up before they report what it holds.
const FirstTopUpWait = 15 * time.Second

// agentPoolGrowing is how internal/agent's status message (reason no-addresses) says the pool
// is fetching addresses now; TestAgentGrowingWording keeps the two in step.
const agentPoolGrowing = "the pool is growing"

// poolSettled reports whether the agent's free count is one the node will keep showing: it
// has free addresses, or it is ready and not fetching any (its target is met, the node is full,
// the subnet is dry or the cloud failed: its message says which). An agent not ready yet, or
// ready with none free while its pool grows (the node's agent in a DaemonSet is seen first
// before it even runs), is not settled.
func poolSettled(a AgentInfo) bool {
	if a.Free > 0 {
		return true
	}
	return a.Ready && !(a.Reason == "no-addresses" && strings.Contains(a.Message, agentPoolGrowing))
}

// PoolLine says what a node's warm pool holds, as `lab up` and `lab node add` print it after
// SettledNode: "5 address(es) free", or, with none free, the agent's own words on why
// ("no address free yet (agent: ... the pool is growing ...)", or "no address free (agent: ...)").
func PoolLine(a AgentInfo) string {
	switch {
	case a.Free > 0:
		return fmt.Sprintf("%d address(es) free", a.Free)
	case !a.Ready:
		return fmt.Sprintf("agent not ready (%s: %s)", a.Reason, a.Message)
	case !poolSettled(a):
		return fmt.Sprintf("no address free yet (agent: %s)", a.Message)
	default:
		return fmt.Sprintf("no address free (agent: %s)", a.Message)
	}
}

// SettledNode asks the lab about node n until its agent's pool has settled (poolSettled: its
// first top-up landed, or the agent says why it holds none) or FirstTopUpWait passes, and
// returns the node as last seen; n itself if the lab never answered.
func (c *Client) SettledNode(ctx context.Context, n NodeInfo) NodeInfo {
	return waitPool(ctx, func(ctx context.Context) (NodeInfo, error) {
		st, err := c.Status(ctx)
		if err != nil {
			return NodeInfo{}, err
		}
		return FindNode(st, n.Name)
	}, n, FirstTopUpWait, 250*time.Millisecond)
}

// waitPool polls get every interval until the node's pool has settled, limit passes or ctx
// ends, and returns the last node get gave (n before any).
func waitPool(ctx context.Context, get func(context.Context) (NodeInfo, error), n NodeInfo, limit, every time.Duration) NodeInfo {
	deadline := time.Now().Add(limit)
	for {
		if got, err := get(ctx); err == nil {
			n = got
		}
		if poolSettled(n.Agent) || !time.Now().Before(deadline) {
			return n
		}
		select {
		case <-ctx.Done():
			return n
		case <-time.After(every):
		}
	}
}
