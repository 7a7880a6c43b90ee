package cni

import (
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

// cmdStatus says whether ADD can succeed now: code 50 when the agent answers but cannot hand out
// an address (with its reason), 51 when the agent cannot be reached (pods already running keep
// their network). It also sends releases queued while the agent was away.
func cmdStatus(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	a, err := dialAgent(conf.AgentSocket)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("config field %q: %v", "agentSocket", err), "")
	}
	defer a.Close()
	rep, err := a.status()
	if err != nil {
		e := a.agentError("STATUS", err)
		return types.NewError(types.ErrLimitedConnectivity, e.Msg, e.Details)
	}
	if !rep.GetReady() {
		return types.NewError(types.ErrPluginNotAvailable,
			fmt.Sprintf("node agent not ready (%s): %s", rep.GetReason(), rep.GetMessage()),
			fmt.Sprintf("free=%d assigned=%d maxPods=%d", rep.GetFree(), rep.GetAssigned(), rep.GetMaxPods()))
	}
	_ = a.flushPending(newStore(conf.StateDir, conf.Name), conf.Name)
	return nil
}
