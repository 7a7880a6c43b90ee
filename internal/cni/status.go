package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/vpcnet/vpcnet/internal/agentapi"
	"google.golang.org/grpc/status"
)

// reasonStarting is the agent's status reason before it has read the instance and its ENIs.
const reasonStarting = "starting"

// cmdStatus answers whether this node's pod network can work, not whether an address is free
// this instant (ADD answers "try again later", 11, for that):
//
//   - nil when the agent answers and has started: ready, or not ready only for want of an
//     address now (max-pods, no free address, subnet exhausted, the cloud failing while it runs;
//     a started agent knows the node's max pods, MaxPods > 0);
//   - 50 when the agent answers but has not started (reason "starting", or no max pods yet) and
//     never worked, or has not worked again for longer than statusGracePeriod;
//   - 51 when the agent cannot be reached and never worked, or has been unreachable for longer
//     than statusGracePeriod (a restart or a rollout shorter than that does not flip the node).
//
// The error's message is the same for as long as the cause is: it names the time the outage
// began (RFC 3339, UTC), never the time elapsed.
//
// "Worked" and "since when not" are kept in <stateDir>/<network>/agent.json (written only when
// they change). Releases queued while the agent was away are sent first.
func cmdStatus(args *skel.CmdArgs) error {
	c, err := load(args, 0)
	if err != nil {
		return err
	}
	a, err := dialAgent(c.conf.AgentSocket)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("config field %q: %v", "agentSocket", err), "")
	}
	defer a.Close()
	var rep *agentapi.StatusReply
	err = a.flushPending(c.store, c.conf.Name, nil)
	if err == nil {
		rep, err = a.status()
	}
	now := time.Now()
	switch {
	case err != nil && !unreachable(err):
		if _, ok := status.FromError(err); ok {
			return a.agentError("STATUS", err)
		}
		return ioError(err)
	case err != nil:
		e := a.agentError("STATUS", err)
		return c.notWorking(now, types.ErrLimitedConnectivity, e.Msg, e.Details)
	case rep.GetReady() || rep.GetMaxPods() > 0 && rep.GetReason() != reasonStarting:
		c.agentWorks()
		return nil
	default:
		return c.notWorking(now, types.ErrPluginNotAvailable,
			fmt.Sprintf("node agent has not started (%s): %s", rep.GetReason(), rep.GetMessage()),
			fmt.Sprintf("free=%d assigned=%d maxPods=%d", rep.GetFree(), rep.GetAssigned(), rep.GetMaxPods()))
	}
}

// agentState is <stateDir>/<network>/agent.json.
type agentState struct {
	// Worked is when the agent was first seen working (an ADD it answered, a STATUS of a started
	// agent); zero: never.
	Worked time.Time `json:"worked,omitzero"`
	// DownSince is when STATUS first found it not working after that; zero: it works.
	DownSince time.Time `json:"downSince,omitzero"`
}

func (s store) agentStatePath() string { return filepath.Join(s.dir, "agent.json") }

func (s store) loadAgentState() agentState {
	var st agentState
	if b, err := os.ReadFile(s.agentStatePath()); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st
}

// agentWorks notes that the agent works (best effort: a failure only costs the grace period).
func (c *call) agentWorks() {
	st := c.store.loadAgentState()
	if !st.Worked.IsZero() && st.DownSince.IsZero() {
		return
	}
	if st.Worked.IsZero() {
		st.Worked = time.Now()
	}
	st.DownSince = time.Time{}
	_ = c.store.saveAgentState(st)
}

// saveAgentState replaces agent.json (temp file and rename, no fsync: losing it to a crash only
// costs the grace period, and ADDs that run at once need not each wait on the disk).
func (s store) saveAgentState(st agentState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, ".agent.json.*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), s.agentStatePath())
}

// notWorking answers STATUS for an agent that does not work now: nil within the grace period of
// an agent that worked before, else the error (code, msg, details).
func (c *call) notWorking(now time.Time, code uint, msg, details string) error {
	st := c.store.loadAgentState()
	if st.Worked.IsZero() {
		return types.NewError(code, msg, details)
	}
	if st.DownSince.IsZero() {
		st.DownSince = now
		if err := c.store.saveAgentState(st); err != nil {
			return ioError(errors.Join(errors.New("cannot note the agent's outage"), err))
		}
	}
	if down := now.Sub(st.DownSince); down >= c.conf.grace {
		// The message names when the outage began, not how long it has lasted, so it stays the
		// same while the cause does: kubelet then folds its NetworkNotReady events into one
		// with a count instead of recording a new one each time it asks.
		return types.NewError(code, fmt.Sprintf("%s (since %s, longer than statusGracePeriod %s)",
			msg, st.DownSince.UTC().Format(time.RFC3339), c.conf.grace), details)
	}
	return nil
}
